#!/usr/bin/env python3
"""The numbers of scripts/benchmark-online.sh, read from the runs' files and from `cohort compare
--json` (standard-library Python; the statistics — means, Welch intervals and p — are cohort's).

  benchmark_online.py val-score [--seeds S] DIR
                                             mean over seeds (those in S, e.g. 0,1,2, or all) and
                                             peers (peer1..3 or net.head1..3) of the mean
                                             validation accuracy (%) of the last 5 epochs, from
                                             DIR/seed-*/metrics.csv; a diverged run scores 0
  benchmark_online.py best [--seeds S] DIR...
                                             the DIR with the highest val-score (ties: the first)
  benchmark_online.py welch FILE EXP NODE    "+d.dd [lo, hi] points, p …" of a row against its
                                             baseline
  benchmark_online.py mean FILE EXP NODE     the row's figure (%), "mean ± sd"
  benchmark_online.py verdict FILE EXP NODE  reproduces / does not reproduce, from the interval
  benchmark_online.py last DIR NODE METRIC SPLIT
                                             mean over seeds of METRIC at the last epoch (METRIC
                                             also matches a term's `METRIC:<term>` rows)
  benchmark_online.py diverged DIR           "k of n runs diverged: seed-1 (node, epoch e), …", or
                                             nothing when none did (from summary.json)
  benchmark_online.py collapsed DIR          "k of n", the peers or branches (peer1..3, net.head1..3)
                                             of the complete runs whose last-epoch test accuracy is
                                             under 20 % (chance is 10 %: a dead network)
  benchmark_online.py fell DIR               "seed-s node (epoch e: best% → low%, last last%), …":
                                             the peers or branches of the complete runs whose test
                                             accuracy fell more than 30 points below their best so
                                             far (an optimiser blow-up the network may recover
                                             from), or nothing
  benchmark_online.py first-above DIR NODE METRIC SPLIT X
                                             mean over seeds of the first epoch where METRIC > X

FILE is a `cohort compare --json` output.
"""
import csv
import glob
import json
import os
import re
import sys

# the scored networks: the peers, or the first three branches (OKDDip on branches: its peers, not the
# leader, branch 4)
PEERS = re.compile(r"^(peer[0-9]|net\.head[1-3])$")


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def val_score(d, seeds=None):
    """Mean over seeds (all, or those in `seeds`) of the peers' mean validation accuracy (%) of the
    last 5 epochs; a run that diverged scores 0."""
    per_seed = []
    for f in sorted(glob.glob(os.path.join(d, "seed-*", "metrics.csv"))):
        run = os.path.dirname(f)
        if seeds is not None and int(run.rsplit("seed-", 1)[1]) not in seeds:
            continue
        summary = os.path.join(run, "summary.json")
        if not os.path.exists(summary):
            sys.exit(f"benchmark_online.py: {run} is incomplete (no summary.json)")
        if json.load(open(summary)).get("status") == "diverged":
            per_seed.append(0.0)
            continue
        acc = {}
        for r in rows(f):
            if r["split"] == "validation" and r["metric"] == "accuracy" and PEERS.match(r["node"]) and int(r["epoch"]) > 0:
                acc.setdefault(r["node"], []).append((int(r["epoch"]), float(r["value"])))
        means = [sum(v for _, v in sorted(a)[-5:]) / len(sorted(a)[-5:]) for a in acc.values()]
        per_seed.append(sum(means) / len(means))
    if seeds is not None and len(per_seed) != len(seeds):
        sys.exit(f"benchmark_online.py: {d} lacks some of the seeds {sorted(seeds)}")
    return 100 * sum(per_seed) / len(per_seed)


def seed_option(args):
    """`--seeds 0,1,2` at the front of args: (the set, the rest)."""
    if args and args[0] == "--seeds":
        return {int(x) for x in args[1].split(",")}, args[2:]
    return None, args


def row(data, exp, node):
    for r in data["rows"]:
        if r["experiment"] == exp and r["node"] == node:
            return r
    sys.exit(f"benchmark_online.py: no row {exp}:{node}")


def figure(r):
    return r["figure"] or r["final"]


def per_seed_metric(d, node, metric, split):
    out = []
    for f in sorted(glob.glob(os.path.join(d, "seed-*", "metrics.csv"))):
        v = [(int(r["epoch"]), float(r["value"])) for r in rows(f) if r["node"] == node and r["split"] == split and r["metric"].split(":")[0] == metric]
        out.append(sorted(v))
    return out


def main(argv):
    cmd, args = argv[1], argv[2:]
    if cmd == "val-score":
        seeds, args = seed_option(args)
        print("%.2f" % val_score(args[0], seeds))
    elif cmd == "best":
        seeds, args = seed_option(args)
        scores = [(val_score(d, seeds), -i, d) for i, d in enumerate(args)]
        print(max(scores)[2])
    elif cmd in ("welch", "mean", "verdict"):
        data = json.load(open(args[0]))
        r = row(data, args[1], args[2])
        if cmd == "mean":
            s = figure(r)
            print("%.2f ± %.2f" % (100 * s["mean"], 100 * s["std"]))
            return
        w = (r.get("versus") or {}).get("welch")
        if w is None:
            print("–" if cmd == "welch" else "no comparison")
        elif cmd == "welch":
            p = "< 0.001" if w["p"] < 0.001 else "%.3f" % w["p"]
            print("%+.2f [%+.2f, %+.2f] points, p %s" % (100 * w["diff"], 100 * w["ci95"][0], 100 * w["ci95"][1], p))
        elif w["ci95"][0] > 0:
            print("reproduces")
        elif w["ci95"][1] < 0:
            print("does not reproduce here (below its baseline)")
        else:
            print("does not reproduce here (interval contains 0)")
    elif cmd == "last":
        d, node, metric, split = args
        v = [s[-1][1] for s in per_seed_metric(d, node, metric, split) if s]
        print("%.3f" % (sum(v) / len(v)) if v else "–")
    elif cmd == "diverged":
        runs = sorted(glob.glob(os.path.join(args[0], "seed-*", "summary.json")), key=lambda f: int(f.split("seed-")[1].split("/")[0]))
        bad = []
        for f in runs:
            s = json.load(open(f))
            if s.get("status") == "diverged":
                d = s.get("diverged") or {}
                bad.append("%s (%s, epoch %s)" % (os.path.basename(os.path.dirname(f)), d.get("node", "?"), d.get("epoch", "?")))
        if bad:
            print("%d of %d runs diverged (a non-finite loss stopped them): %s" % (len(bad), len(runs), ", ".join(bad)))
    elif cmd == "collapsed":
        dead = total = 0
        for f in sorted(glob.glob(os.path.join(args[0], "seed-*", "summary.json"))):
            if json.load(open(f)).get("status") != "complete":
                continue
            last = {}
            for r in rows(os.path.join(os.path.dirname(f), "metrics.csv")):
                if r["split"] == "test" and r["metric"] == "accuracy" and PEERS.match(r["node"]):
                    last[r["node"]] = float(r["value"])
            total += len(last)
            dead += sum(1 for v in last.values() if v < 0.2)
        print("%d of %d" % (dead, total))
    elif cmd == "fell":
        out = []
        for f in sorted(glob.glob(os.path.join(args[0], "seed-*", "summary.json")), key=lambda f: int(f.split("seed-")[1].split("/")[0])):
            if json.load(open(f)).get("status") != "complete":
                continue
            acc = {}
            for r in rows(os.path.join(os.path.dirname(f), "metrics.csv")):
                if r["split"] == "test" and r["metric"] == "accuracy" and PEERS.match(r["node"]) and int(r["epoch"]) > 0:
                    acc.setdefault(r["node"], []).append((int(r["epoch"]), float(r["value"])))
            for node, v in sorted(acc.items()):
                v.sort()
                best, drop = 0.0, None
                for e, a in v:
                    if drop is None and best - a > 0.30:
                        drop = (e, best, a)
                    best = max(best, a)
                if drop:
                    seed = os.path.basename(os.path.dirname(f))
                    out.append("%s %s (epoch %d: %.1f %% → %.1f %%, last %.1f %%)" % (seed, node, drop[0], 100 * drop[1], 100 * drop[2], 100 * v[-1][1]))
        print(", ".join(out))
    elif cmd == "first-above":
        d, node, metric, split, x = args
        firsts = [next((e for e, v in s if v > float(x)), None) for s in per_seed_metric(d, node, metric, split)]
        hit = [e for e in firsts if e is not None]
        print("%.1f (%d of %d seeds)" % (sum(hit) / len(hit), len(hit), len(firsts)) if hit else "never")
    else:
        sys.exit(f"benchmark_online.py: unknown command {cmd}")


if __name__ == "__main__":
    main(sys.argv)
