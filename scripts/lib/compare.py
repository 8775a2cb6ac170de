#!/usr/bin/env python3
"""Reads `cohort compare --json` output (standard-library Python) for the study scripts, so that
they read data, never the Markdown table, log.txt or manifest.ron text.

  compare.py acc FILE EXP NODE          "mean ± std" of the final test accuracy (%), 2 decimals
  compare.py mean FILE EXP NODE         its mean, 2 decimals
  compare.py peer-mean FILE EXP REGEX   mean over the nodes matching REGEX of their 2-decimal means
  compare.py close FILE A B             per node of A: within max(2 × the larger std, 1.0) points
                                        under B? ("check passed: …" / "CHECK FAILED: …" lines)
  compare.py revisions FILE             the git revisions of every run, one per line, sorted
  compare.py incomplete FILE            the runs without a summary (EXP/seed-N), one per line
  compare.py steps FILE EXP             mean training steps/s over every epoch of every run
  compare.py median-steps FILE EXP      "median (N epochs)" of the same
  compare.py description FILE EXP       the experiment's description (its first run's)
  compare.py backend FILE EXP           the backend its first run's manifest records
  compare.py versus FILE EXP NODE       "+d.dd [lo, hi] points, Welch p = …" of the row against
                                        its baseline (FILE from `cohort compare --baseline`)

FILE is a path or - (standard input).
"""
import json
import re
import sys


def load(path):
    return json.load(sys.stdin if path == "-" else open(path))


def row(data, exp, node):
    for r in data["rows"]:
        if r["experiment"] == exp and r["node"] == node:
            return r
    return None


def pct(r):
    return "%.2f" % (100 * r["final"]["mean"]), "%.2f" % (100 * r["final"]["std"])


def experiment(data, exp):
    return next(x for x in data["experiments"] if x["name"] == exp)


def main(argv):
    cmd, data = argv[1], load(argv[2])
    args = argv[3:]
    if cmd in ("acc", "mean"):
        r = row(data, *args)
        if r is not None:
            m, s = pct(r)
            print(f"{m} ± {s}" if cmd == "acc" else m)
    elif cmd == "peer-mean":
        exp, regex = args
        means = [float(pct(r)[0]) for r in data["rows"] if r["experiment"] == exp and re.search(regex, r["node"])]
        print("%.2f" % (sum(means) / len(means)))
    elif cmd == "close":
        a, b = args
        nodes = [r["node"] for r in data["rows"] if r["experiment"] == a]
        if not nodes:
            print(f"CHECK FAILED: no rows for {a} in the table")
        for n in nodes:
            ra, rb = row(data, a, n), row(data, b, n)
            if rb is None:
                print(f"CHECK FAILED: {b} has no row for {n}")
                continue
            (ma, sa), (mb, sb) = [tuple(float(v) for v in pct(r)) for r in (ra, rb)]
            d = abs(mb - ma)
            tol = max(2 * max(sa, sb), 1.0)
            ok = d <= tol
            verdict = "check passed" if ok else "CHECK FAILED"
            print(f"{verdict}: {n}: {a} {ma:.2f}, {b} {mb:.2f}, |difference| {d:.2f} {'≤' if ok else '>'} {tol:.2f}")
    elif cmd == "revisions":
        revs = {run.get("git_revision") or "unknown" for x in data["experiments"] for run in x["runs"]}
        print("\n".join(sorted(revs)))
    elif cmd == "incomplete":
        for x in data["experiments"]:
            for run in x["runs"]:
                if run["status"] == "incomplete":
                    print(f"{x['dir']}/{run['run']}")
    elif cmd in ("steps", "median-steps"):
        v = [s for run in experiment(data, args[0])["runs"] for s in run["steps_per_second"]]
        if cmd == "steps":
            print("%.1f" % (sum(v) / len(v)))
        else:
            v.sort()
            n = len(v)
            median = v[(n - 1) // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2
            print("%.0f (%d epochs)" % (median, n))
    elif cmd == "versus":
        w = row(data, *args)["versus"]["welch"]
        p = "< 0.001" if w["p"] < 0.001 else "= %.3f" % w["p"]
        print("%+.2f [%+.2f, %+.2f] points, Welch p %s" % (100 * w["diff"], 100 * w["ci95"][0], 100 * w["ci95"][1], p))
    elif cmd in ("description", "backend"):
        print(experiment(data, args[0])["runs"][0][cmd])
    else:
        sys.exit(f"compare.py: unknown command {cmd}")


if __name__ == "__main__":
    main(sys.argv)
