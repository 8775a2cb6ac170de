#!/usr/bin/env python3
"""Writes tests/fixtures/pytorch/: a PyTorch network of cohort's zoo with its weights and its
outputs, for tests/it/pytorch.rs (which needs no Python).

The network is RepDistiller's `resnet8` (models/resnet.py, vendored unchanged in
scripts/reference_models/repdistiller/), 10 classes: cohort's
`ResNet(blocks: [1, 1, 1], widths: [16, 32, 64])`. Its weights are PyTorch's initialisation with
seed 0, then the batch-norm affine parameters are drawn at random and the running statistics are
filled by 20 training-mode passes over random batches, so that loading them is tested too.

Files:
- resnet8.pth          `torch.save({"model": model.state_dict(), "epoch": 240})`, a training
                        checkpoint as RepDistiller writes its teachers
- resnet8.safetensors  the same `state_dict` (`safetensors.torch.save_file`)
- io.json              {"inputs": [N, 3, 32, 32] flat, "eval_logits": model.eval()(inputs),
                        "train_logits": model.train()(inputs) (batch statistics),
                        "state_dict": [[name, shape], ...] in the state_dict's order}
- zoo.json             for every network of the zoo (scripts/zoo-param-counts.py's list, 10
                        classes): its state_dict's names and shapes, and its eval-mode logits for
                        two synthetic inputs with synthetic weights, both defined by formulas
                        (`synthetic` below) that tests/it/pytorch.rs computes again, so that no
                        weights need committing

    .venv-bench/bin/python scripts/make-pytorch-fixture.py tests/fixtures/pytorch
"""
import contextlib
import copy
import io
import json
import os
import sys

import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "reference_models", "repdistiller"))

import resnet  # noqa: E402

import importlib.util  # noqa: E402

import numpy as np  # noqa: E402


def zoo():
    """The (name, constructor, cohort model) list of scripts/zoo-param-counts.py."""
    spec = importlib.util.spec_from_file_location("zoo", os.path.join(os.path.dirname(__file__), "zoo-param-counts.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def uniform(n, t):
    """n numbers in [-1, 1) from an integer hash of (t, k), k = 0..n-1, exact in any language:
    h = (2654435761 k + 40503 t + 12345) mod 2^32; h ^= h >> 15; h = 2246822519 h mod 2^32;
    h ^= h >> 13; u = 2 h / 2^32 - 1."""
    m = np.uint64(0xFFFFFFFF)
    k = np.arange(n, dtype=np.uint64)
    h = (k * np.uint64(2654435761) + np.uint64(40503 * t + 12345)) & m
    h ^= h >> np.uint64(15)
    h = (h * np.uint64(2246822519)) & m
    h ^= h >> np.uint64(13)
    return h.astype(np.float64) / 2.0**32 * 2.0 - 1.0


def synthetic(name, shape, t):
    """Tensor number t of a state_dict, by formula (tests/it/pytorch.rs has the same): u =
    uniform(numel, t) over the elements in C order; running variances 1 + 0.5|u|, running means
    and biases 0.1 u, other 1-D tensors (batch-norm weights) 1 + 0.2 u, weights u·sqrt(3 / fan_in)
    with fan_in = numel / shape[0]."""
    n = int(np.prod(shape)) if len(shape) else 1
    u = uniform(n, t)
    if name.endswith("running_var"):
        v = 1 + 0.5 * np.abs(u)
    elif name.endswith("running_mean") or name.endswith("bias"):
        v = 0.1 * u
    elif len(shape) == 1:
        v = 1 + 0.2 * u
    else:
        v = u * np.sqrt(3.0 / (n / shape[0]))
    return torch.from_numpy(v.astype(np.float32).reshape(shape))


def synthetic_inputs(n):
    """n inputs of 3×32×32: uniform(n · 3072, 1000000)."""
    return torch.from_numpy(uniform(n * 3072, 1000000).astype(np.float32).reshape(n, 3, 32, 32))


def zoo_fixture(out):
    entries = []
    module = zoo()
    for name, make, model in module.ZOO:
        with contextlib.redirect_stdout(io.StringIO()):  # mobilenetv2.py prints while it builds
            net = make(10)
        state = net.state_dict()
        weights = {k: (v if k.endswith("num_batches_tracked") else synthetic(k, list(v.shape), t)) for t, (k, v) in enumerate(state.items())}
        net.load_state_dict(weights)
        net.eval()
        with torch.no_grad():
            logits = net(synthetic_inputs(2))
        entries.append({"name": name, "model": model, "classes": 10, "state_dict": [[k, list(v.shape)] for k, v in state.items()], "logits": logits.tolist()})
    with open(os.path.join(out, "zoo.json"), "w") as f:
        json.dump(entries, f)
        f.write("\n")


def main(out):
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    model = resnet.resnet8(num_classes=10)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    model.train()
    with torch.no_grad():
        for _ in range(20):
            model(torch.randn(16, 3, 32, 32) * 0.5 + 0.1)
    state = model.state_dict()
    # as RepDistiller saves its teachers (their checkpoints nest the state_dict under "model")
    torch.save({"model": state, "epoch": 240}, os.path.join(out, "resnet8.pth"))
    save_file({k: v.contiguous() for k, v in state.items()}, os.path.join(out, "resnet8.safetensors"))
    inputs = torch.randn(2, 3, 32, 32)
    model.eval()
    with torch.no_grad():
        eval_logits = model(inputs)
        train_logits = copy.deepcopy(model).train()(inputs)
    with open(os.path.join(out, "io.json"), "w") as f:
        json.dump(
            {
                "model": "ResNet(blocks: [1, 1, 1], widths: [16, 32, 64])",
                "classes": 10,
                "inputs": inputs.flatten().tolist(),
                "eval_logits": eval_logits.tolist(),
                "train_logits": train_logits.tolist(),
                "state_dict": [[k, list(v.shape)] for k, v in state.items()],
            },
            f,
        )
        f.write("\n")
    zoo_fixture(out)


if __name__ == "__main__":
    main(sys.argv[1])
