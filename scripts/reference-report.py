#!/usr/bin/env python3
"""results/reference/README.md: cohort vs its PyTorch twin (scripts/reference-pytorch.py), from
committed files only — cohort's runs (results/examples/runs, results/reproductions/dml/runs) and
the twin's JSON files (results/reference/runs/pytorch). Standard library only, so that
scripts/check-results.sh can rebuild it anywhere.

Per experiment and framework: the mean over seeds of the peers' mean final test accuracy, its
sample std, and Welch's two-sample t-test of the per-seed values (two-sided p).
"""
import csv
import glob
import json
import math
import os
import re
import sys

COHORT = {
    "quickstart": "results/examples/runs/quickstart",
    "quickstart-independent": "results/examples/runs/quickstart-independent",
    "independent-2": "results/reproductions/dml/runs/independent-2",
    "dml-2": "results/reproductions/dml/runs/dml-2",
    "dml-2-sequential": "results/reproductions/dml/runs/dml-2-sequential",
    "independent-4": "results/reproductions/dml/runs/independent-4",
    "dml-4": "results/reproductions/dml/runs/dml-4",
    "dml-e-4": "results/reproductions/dml/runs/dml-e-4",
}
TWIN = "results/reference/runs/pytorch"


def seed_of(path):
    return int(re.search(r"seed-(\d+)", path).group(1))


def cohort_seed(run):
    """Mean over the peers of the final-epoch test accuracy of one cohort run."""
    last, acc = {}, {}
    with open(os.path.join(run, "metrics.csv")) as f:
        for r in csv.DictReader(f):
            if r["split"] == "test" and r["metric"] == "accuracy" and r["node"].startswith("peer"):
                e = int(r["epoch"])
                if e >= last.get(r["node"], -1):
                    last[r["node"]], acc[r["node"]] = e, float(r["value"])
    return sum(acc.values()) / len(acc)


def twin_seed(path):
    with open(path) as f:
        a = json.load(f)["test_accuracy"]
    return sum(a.values()) / len(a)


def betacf(a, b, x):
    """Continued fraction of the regularised incomplete beta function (Numerical Recipes 6.4)."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > 1e-300 else 1e-300)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        c = 1.0 + aa / c
        d = 1.0 / (d if abs(d) > 1e-300 else 1e-300)
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        c = 1.0 + aa / c
        d = 1.0 / (d if abs(d) > 1e-300 else 1e-300)
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def betainc(a, b, x):
    if x <= 0.0 or x >= 1.0:
        return max(0.0, min(1.0, x))
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(1.0 - x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * betacf(a, b, x) / a
    return 1.0 - front * betacf(b, a, 1.0 - x) / b


def welch(u, v):
    """Welch's t statistic, degrees of freedom and two-sided p-value."""
    mu, mv = sum(u) / len(u), sum(v) / len(v)
    su = sum((x - mu) ** 2 for x in u) / (len(u) - 1) / len(u)
    sv = sum((x - mv) ** 2 for x in v) / (len(v) - 1) / len(v)
    if su + sv == 0.0:
        return 0.0, float("nan"), 1.0 if mu == mv else 0.0
    t = (mu - mv) / math.sqrt(su + sv)
    df = (su + sv) ** 2 / (su**2 / (len(u) - 1) + sv**2 / (len(v) - 1))
    return t, df, betainc(df / 2.0, 0.5, df / (df + t * t))


def stats(v):
    m = sum(v) / len(v)
    s = math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1)) if len(v) > 1 else 0.0
    return m, s


def main():
    rows = []
    for name, run_dir in COHORT.items():
        ours = {seed_of(r): cohort_seed(r) for r in sorted(glob.glob(os.path.join(run_dir, "seed-*"))) if os.path.exists(os.path.join(r, "summary.json"))}
        twin = {seed_of(p): twin_seed(p) for p in sorted(glob.glob(os.path.join(TWIN, name, "seed-*.json")))}
        if len(ours) < 2 or len(twin) < 2:
            sys.exit(f"{name}: need at least 2 seeds of each (cohort {len(ours)}, PyTorch {len(twin)})")
        rows.append((name, list(ours.values()), list(twin.values())))
    version = json.load(open(glob.glob(os.path.join(TWIN, "*", "seed-*.json"))[0]))["framework"]
    out = ["# cohort vs PyTorch: the same recipe in both frameworks", ""]
    out += [
        "The quick start and the DML study (`results/examples/`, `results/reproductions/dml/`) against",
        f"their twin in {version} (`scripts/reference-pytorch.py`): the same MNIST-1D data, hold-out and",
        "batch order (cohort's random streams reproduced in Python), the same networks, losses, optimiser",
        "and epochs; each framework's own initial weights. Figure: the mean over the peers of the final",
        "test accuracy, mean ± sample std over the seeds; Welch's two-sample t-test of the per-seed",
        "values (two-sided). A small p says the two frameworks' results differ by more than seed noise.",
        "",
        "| experiment | cohort (%) | PyTorch (%) | difference (points) | seeds (cohort, PyTorch) | Welch p |",
        "|---|---|---|---|---|---|",
    ]
    for name, ours, twin in rows:
        (mo, so), (mt, st) = stats(ours), stats(twin)
        _, _, p = welch(ours, twin)
        out.append(f"| {name} | {100 * mo:.2f} ± {100 * so:.2f} | {100 * mt:.2f} ± {100 * st:.2f} | {100 * (mo - mt):+.2f} | {len(ours)}, {len(twin)} | {p:.3f} |")
    small = [name for name, ours, twin in rows if welch(ours, twin)[2] < 0.05]
    out += [""]
    if small:
        out.append(f"p < 0.05 (differences beyond seed noise at this sample size): {', '.join(small)}.")
    else:
        out.append("No experiment differs between the frameworks at p < 0.05.")
    out += ["", "Produced by `scripts/reference.sh` (the twin's runs) and `scripts/reference-report.py` (this table, from the committed files)."]
    os.makedirs("results/reference", exist_ok=True)
    with open("results/reference/README.md", "w") as f:
        f.write("\n".join(out) + "\n")
    print("\n".join(out))


if __name__ == "__main__":
    main()
