#!/usr/bin/env python3
"""Parameter counts of the reference PyTorch definitions of cohort's CIFAR zoo, for
tests/fixtures/zoo-param-counts.json (so the test needs no Python).

Each entry: the reference constructor (a function of the number of classes) (RepDistiller's `models/`, vendored unchanged in
scripts/reference_models/repdistiller/), instantiated for CIFAR-100 (100 classes), and the cohort
`model:` value that defines the same network; `parameters` is
`sum(p.numel() for p in model.parameters())` (batch-norm running statistics are buffers, not
parameters).

    .venv-bench/bin/python scripts/zoo-param-counts.py > tests/fixtures/zoo-param-counts.json
"""
import contextlib
import io
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "reference_models", "repdistiller"))

import ShuffleNetv1  # noqa: E402
import ShuffleNetv2  # noqa: E402
import mobilenetv2  # noqa: E402
import resnet  # noqa: E402
import vgg  # noqa: E402
import wrn  # noqa: E402

ZOO = [
    ("resnet20", lambda c: resnet.resnet20(num_classes=c), "ResNet(blocks: [3, 3, 3], widths: [16, 32, 64])"),
    ("resnet32", lambda c: resnet.resnet32(num_classes=c), "ResNet(blocks: [5, 5, 5], widths: [16, 32, 64])"),
    ("resnet56", lambda c: resnet.resnet56(num_classes=c), "ResNet(blocks: [9, 9, 9], widths: [16, 32, 64])"),
    ("resnet110", lambda c: resnet.resnet110(num_classes=c), "ResNet(blocks: [18, 18, 18], widths: [16, 32, 64])"),
    ("resnet8x4", lambda c: resnet.resnet8x4(num_classes=c), "ResNet(blocks: [1, 1, 1], widths: [64, 128, 256], stem: 32)"),
    ("resnet32x4", lambda c: resnet.resnet32x4(num_classes=c), "ResNet(blocks: [5, 5, 5], widths: [64, 128, 256], stem: 32)"),
    ("wrn_16_2", lambda c: wrn.wrn_16_2(num_classes=c), "Wrn(depth: 16, widen: 2)"),
    ("wrn_40_1", lambda c: wrn.wrn_40_1(num_classes=c), "Wrn(depth: 40, widen: 1)"),
    ("wrn_40_2", lambda c: wrn.wrn_40_2(num_classes=c), "Wrn(depth: 40, widen: 2)"),
    ("wrn_28_10", lambda c: wrn.wrn(depth=28, widen_factor=10, num_classes=c), "Wrn(depth: 28, widen: 10)"),
    ("vgg8_bn", lambda c: vgg.vgg8_bn(num_classes=c), "Vgg(depth: 8)"),
    ("vgg11_bn", lambda c: vgg.vgg11_bn(num_classes=c), "Vgg(depth: 11)"),
    ("vgg13_bn", lambda c: vgg.vgg13_bn(num_classes=c), "Vgg(depth: 13)"),
    ("MobileNetV2", lambda c: mobilenetv2.mobile_half(num_classes=c), "MobileNetV2(expansion: 6, width: 0.5)"),
    ("ShuffleV1", lambda c: ShuffleNetv1.ShuffleV1(num_classes=c), "ShuffleNetV1(groups: 3)"),
    ("ShuffleV2", lambda c: ShuffleNetv2.ShuffleV2(num_classes=c), "ShuffleNetV2(size: 1.0)"),
]


def main():
    out = []
    for name, make, model in ZOO:
        with contextlib.redirect_stdout(io.StringIO()):  # mobilenetv2.py prints while it builds
            m = make(100)
        out.append({"name": name, "model": model, "classes": 100, "parameters": sum(p.numel() for p in m.parameters())})
    json.dump(out, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
