#!/usr/bin/env python3
"""Reference values of Welch's two-sample test for tests/it/stats.rs, computed with SciPy.

For fixed samples (seed lists of accuracies, and edge cases: tiny and unequal sizes, a zero
difference, very different variances), writes tests/fixtures/welch.json with, per case, the
difference of means a − b, its standard error, the Welch–Satterthwaite degrees of freedom, the
95 % confidence interval of the difference (t quantile from scipy.stats.t.ppf) and the two-sided
p-value of scipy.stats.ttest_ind(a, b, equal_var=False).

    python3 scripts/welch-reference.py      # needs numpy and scipy (any recent version)
"""
import json
import math
import os

import numpy as np
import scipy
from scipy import stats

CASES = {
    "benchmark-like": ([0.7195, 0.7012, 0.7321, 0.6988, 0.7254], [0.6876, 0.6701, 0.6954, 0.6812, 0.6902]),
    "ten-seeds": ([0.712, 0.705, 0.731, 0.699, 0.725, 0.718, 0.702, 0.709, 0.722, 0.714], [0.688, 0.671, 0.695, 0.682, 0.690, 0.679, 0.684, 0.693, 0.677, 0.686]),
    "overlapping": ([0.558, 0.561, 0.549, 0.566, 0.552], [0.560, 0.557, 0.563, 0.551, 0.568]),
    "unequal-sizes": ([0.91, 0.93, 0.92], [0.90, 0.89, 0.915, 0.905, 0.898, 0.902, 0.911]),
    "unequal-variances": ([0.80, 0.81, 0.79, 0.805], [0.60, 0.95, 0.70, 0.85, 0.75]),
    "two-each": ([0.5, 0.7], [0.4, 0.45]),
    "equal-means": ([1.0, 2.0, 3.0], [2.0, 1.0, 3.0]),
    "large-difference": ([0.99, 0.991, 0.989, 0.992], [0.10, 0.11, 0.09, 0.12]),
}


def welch(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    diff = a.mean() - b.mean()
    q = stats.t.ppf(0.975, df)
    p = stats.ttest_ind(a, b, equal_var=False).pvalue
    return {"a": a.tolist(), "b": b.tolist(), "diff": diff, "se": se, "df": df, "ci95": [diff - q * se, diff + q * se], "p": float(p)}


out = {"scipy": scipy.__version__, "numpy": np.__version__, "cases": {k: welch(*v) for k, v in CASES.items()}}
path = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "welch.json")
with open(path, "w") as f:
    json.dump(out, f, indent=1)
    f.write("\n")
print(f"wrote {os.path.normpath(path)}")
