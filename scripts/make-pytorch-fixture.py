#!/usr/bin/env python3
"""Writes tests/fixtures/pytorch/: a PyTorch network of cohort's zoo with its weights and its
outputs, for tests/pytorch.rs (which needs no Python).

The network is RepDistiller's `resnet8` (models/resnet.py, vendored unchanged in
scripts/reference_models/repdistiller/), 10 classes: cohort's
`ResNet(blocks: [1, 1, 1], widths: [16, 32, 64])`. Its weights are PyTorch's initialisation with
seed 0, then the batch-norm affine parameters are drawn at random and the running statistics are
filled by 20 training-mode passes over random batches, so that loading them is tested too.

Files:
- resnet8.pth          `torch.save(model.state_dict())`
- resnet8.safetensors  the same `state_dict` (`safetensors.torch.save_file`)
- io.json              {"inputs": [N, 3, 32, 32] flat, "eval_logits": model.eval()(inputs),
                        "train_logits": model.train()(inputs) (batch statistics),
                        "state_dict": [[name, shape], ...] in the state_dict's order}

    .venv-bench/bin/python scripts/make-pytorch-fixture.py tests/fixtures/pytorch
"""
import copy
import json
import os
import sys

import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "reference_models", "repdistiller"))

import resnet  # noqa: E402


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
    torch.save(state, os.path.join(out, "resnet8.pth"))
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


if __name__ == "__main__":
    main(sys.argv[1])
