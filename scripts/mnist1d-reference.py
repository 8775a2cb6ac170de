#!/usr/bin/env python3
"""Write golden values of the published MNIST-1D generator (Greydanus) for cohort's tests.

Not needed to run or test cohort: it produced tests/fixtures/mnist1d_reference.json once.
    python3 -m venv /tmp/ref && /tmp/ref/bin/pip install numpy scipy mnist1d==0.0.2.post1
    /tmp/ref/bin/python scripts/mnist1d-reference.py > tests/fixtures/mnist1d_reference.json
"""
import json

import mnist1d
import numpy as np
from mnist1d.data import get_dataset_args, make_dataset


def summary(args):
    d = make_dataset(args)
    x, xt, y, yt = d["x"], d["x_test"], d["y"], d["y_test"]
    return {
        "args": {k: getattr(args, k) for k in ("num_samples", "train_split", "padding", "scale_coeff",
                                               "max_translation", "corr_noise_scale", "iid_noise_scale",
                                               "shear_scale", "final_seq_length", "seed")},
        "n_train": int(len(y)), "n_test": int(len(yt)),
        "y_train_head": [int(v) for v in y[:50]],
        "y_test_head": [int(v) for v in yt[:50]],
        "train_class_counts": [int(c) for c in np.bincount(y, minlength=10)],
        "x_train_rows": {str(i): [float(v) for v in x[i]] for i in (0, 1, 2, len(y) - 1)},
        "x_test_rows": {str(i): [float(v) for v in xt[i]] for i in (0, len(yt) - 1)},
        "x_train_sum": float(x.sum()), "x_train_sumsq": float((x ** 2).sum()),
        "x_test_sum": float(xt.sum()), "x_test_sumsq": float((xt ** 2).sum()),
    }


default = get_dataset_args()
custom = get_dataset_args()
custom.num_samples, custom.seed, custom.final_seq_length = 1000, 7, 60
custom.corr_noise_scale, custom.iid_noise_scale, custom.shear_scale = 0.5, 0.05, 1.0
custom.padding, custom.scale_coeff, custom.max_translation = [20, 40], 0.2, 30
out = {"generator": f"mnist1d {getattr(mnist1d, '__version__', '0.0.2.post1')}, numpy {np.__version__}",
       "default": summary(default), "custom": summary(custom)}
print(json.dumps(out, indent=1))
