#!/usr/bin/env python3
"""A network trained by cohort, in PyTorch: exports one node of a run with `cohort
export-weights`, builds the reference PyTorch definition of its architecture (RepDistiller's
models, vendored in scripts/reference_models/repdistiller/), loads the weights with
`load_state_dict(..., strict=True)`, evaluates it on the run's test split (exported with
`cohort data export --run`, normalised as the run saw it) and checks that PyTorch's accuracy is
cohort's (`cohort eval --json`) to within one test sample.

    python scripts/load-in-pytorch.py RUN --node ID [--cohort target/release/cohort]

Run it from the folder the run was made in (relative data paths in the experiment start there).

Needs torch, safetensors and numpy (scripts/lib/bench.sh's .venv-bench has them). The heart of
it, for your own code:

    from safetensors.torch import load_file
    model = resnet.resnet32(num_classes=100)               # the reference definition
    model.load_state_dict(load_file("student.safetensors")) # names, shapes and BN statistics fit
    model.eval()
"""
import argparse
import contextlib
import io
import json
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "reference_models", "repdistiller"))

import ShuffleNetv1  # noqa: E402
import ShuffleNetv2  # noqa: E402
import mobilenetv2  # noqa: E402
import resnet  # noqa: E402
import vgg  # noqa: E402
import wrn  # noqa: E402


def numbers(text, field):
    m = re.search(field + r":\s*(\[[^\]]*\]|[0-9.]+|Some\(([0-9.]+)\)|None)", text)
    if not m:
        return None
    v = m.group(2) or m.group(1)
    return None if v == "None" else json.loads(v) if v.startswith("[") else float(v)


def reference_model(spec, classes):
    """The RepDistiller network for a cohort model written in RON (the file's metadata)."""
    with contextlib.redirect_stdout(io.StringIO()):  # mobilenetv2.py prints while it builds
        if spec.startswith("ResNet"):
            blocks, widths, stem = numbers(spec, "blocks"), numbers(spec, "widths"), numbers(spec, "stem")
            if len(set(blocks)) != 1 or len(widths) != 3:
                sys.exit(f"{spec}: RepDistiller's ResNet has three stages of equal depth")
            return resnet.ResNet(6 * blocks[0] + 2, [int(stem or widths[0])] + widths, "basicblock", num_classes=classes)
        if spec.startswith("Wrn"):
            return wrn.wrn(depth=int(numbers(spec, "depth")), widen_factor=int(numbers(spec, "widen")), num_classes=classes)
        if spec.startswith("Vgg"):
            return getattr(vgg, f"vgg{int(numbers(spec, 'depth'))}_bn")(num_classes=classes)
        if spec.startswith("MobileNetV2"):
            return mobilenetv2.mobilenetv2_T_w(int(numbers(spec, "expansion")), numbers(spec, "width"), classes)
        if spec.startswith("ShuffleNetV1"):
            return ShuffleNetv1.ShuffleV1(num_classes=classes)
        if spec.startswith("ShuffleNetV2"):
            return ShuffleNetv2.ShuffleV2(num_classes=classes)
    sys.exit(f"{spec}: no reference PyTorch definition")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run")
    ap.add_argument("--node", required=True)
    ap.add_argument("--cohort", default=os.environ.get("COHORT", "target/release/cohort"))
    args = ap.parse_args()

    def cohort(*a):
        r = subprocess.run([args.cohort, *a], capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"cohort {' '.join(a)}: exit {r.returncode}\n{r.stderr}")
        return r.stdout

    with tempfile.TemporaryDirectory() as tmp:
        weights = os.path.join(tmp, "node.safetensors")
        cohort("export-weights", args.run, "--node", args.node, "--out", weights)
        cohort("data", "export", "--run", args.run, "--format", "npz", "--out", tmp)
        with safe_open(weights, "pt") as f:
            meta = f.metadata()
        model = reference_model(meta["cohort_model_ron"], int(meta["classes"]))
        model.load_state_dict(load_file(weights), strict=True)
        model.eval()
        data = np.load(os.path.join(tmp, "data.npz"))
        x, y = torch.from_numpy(data["x_test"]), torch.from_numpy(data["y_test"])
        with torch.no_grad():
            pred = torch.cat([model(x[i : i + 500]).argmax(1) for i in range(0, len(x), 500)])
    torch_errors = int((pred != y).sum())
    ours = json.loads(cohort("eval", args.run, "--node", args.node, "--json"))
    print(f"{meta['reference']} with {args.run}'s `{args.node}` ({meta['cohort_model']}): PyTorch {torch_errors} test errors of {len(y)}, cohort {ours['errors']}")
    if abs(torch_errors - ours["errors"]) > 1:
        sys.exit("the accuracies differ by more than one test sample")


if __name__ == "__main__":
    main()
