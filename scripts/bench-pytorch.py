#!/usr/bin/env python3
"""The cohort bench's DML step in PyTorch, for a side-by-side ratio (scripts/bench.sh --pytorch).

K peers, each: forward on the same batch of 128 random 1x28x28 inputs, loss = CE + mean over the
other peers of KL(p_other || p_self) with the others' probabilities detached, backward, SGD step
(lr 0.01, momentum 0.9) -- peers one after another, as `cohort bench`'s `serial` mode.
Models: the MLP 784-1200-1200-10 and the small CNN (conv3x3 32 same, ReLU, maxpool 2; conv3x3
64, ReLU, maxpool 2; FC 128, ReLU; FC 10), as cohort's `Cnn2d(channels: [32, 64], hidden: 128)`,
on 1x28x28 inputs; the 1-D CNN of the quick start (`Cnn1d(channels: [32, 32, 32])`) on 1x40
sequences, K <= 3; and for K <= 2 the CIFAR-100 ResNet-32 and WRN-16-2 of RepDistiller's
definitions (scripts/reference_models/repdistiller/) on 3x32x32 inputs, 100 classes.

`--device cuda` (or `cuda:N`) measures on a GPU (scripts/gpu-check.sh): the same batches on the
device, each timing window ended by `torch.cuda.synchronize()`.

Prints one line per measurement: `model K steps/s`. Needs torch (scripts/bench.sh --pytorch
installs it into .venv-bench/ on first use); never needed by the tests.
"""
import argparse
import contextlib
import io
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 1200), nn.ReLU(), nn.Linear(1200, 1200), nn.ReLU(), nn.Linear(1200, 10))


def cnn():
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10),
    )


def cnn1d():
    """cohort's `Cnn1d(channels: [32, 32, 32], kernel: 5)` on 40-long sequences: convolutions of
    kernel 5, padding 2, stride 1 then 2, each followed by ReLU; a linear classifier on the
    flattened 32x10 maps."""
    return nn.Sequential(
        nn.Conv1d(1, 32, 5, padding=2), nn.ReLU(),
        nn.Conv1d(32, 32, 5, stride=2, padding=2), nn.ReLU(),
        nn.Conv1d(32, 32, 5, stride=2, padding=2), nn.ReLU(),
        nn.Flatten(), nn.Linear(32 * 10, 10),
    )


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(make, k, steps, repeat, x, y):
    peers = [make().to(x.device) for _ in range(k)]
    opts = [torch.optim.SGD(p.parameters(), lr=0.01, momentum=0.9) for p in peers]

    def step():
        logits = [p(x) for p in peers]
        probs = [F.softmax(z.detach(), dim=1) for z in logits]
        for i, (z, opt) in enumerate(zip(logits, opts)):
            loss = F.cross_entropy(z, y)
            others = [probs[j] for j in range(k) if j != i]
            if others:
                logq = F.log_softmax(z, dim=1)
                kl = sum(F.kl_div(logq, p, reduction="batchmean") for p in others) / len(others)
                loss = loss + kl
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    for _ in range(3):
        step()
    sync(x.device)
    best = 0.0
    for _ in range(repeat):  # best of R windows, as `cohort bench --repeat`
        start = time.perf_counter()
        for _ in range(steps):
            step()
        sync(x.device)
        best = max(best, steps / (time.perf_counter() - start))
    return best


def quiet(make):
    """`make()` with its prints swallowed (RepDistiller's MobileNetV2 prints its settings), so that
    standard output holds only the timings."""
    with contextlib.redirect_stdout(io.StringIO()):
        return make()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--peers", default="1,2,4,8")
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    known = ("mlp-1200", "cnn-32-64", "cnn1d-32", "resnet32", "wrn-16-2", "resnet8x4", "resnet32x4", "vgg8", "mobilenetv2", "shufflenetv2")
    ap.add_argument("--models", default=",".join(known), help="labels as in `cohort bench --models`")
    a = ap.parse_args()
    wanted = a.models.split(",")
    unknown = [m for m in wanted if m not in known]
    if unknown:
        sys.exit(f"--models: unknown {', '.join(unknown)} (known: {', '.join(known)})")
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    dev = torch.device(a.device)
    x = torch.rand(128, 1, 28, 28).to(dev)
    y = (torch.arange(128) % 10).to(dev)
    peers = [int(v) for v in a.peers.split(",")]
    for name, make in [("mlp-1200", mlp), ("cnn-32-64", cnn)]:
        if name not in wanted:
            continue
        for k in peers:
            print(f"{name} {k} {measure(make, k, a.steps, a.repeat, x, y):.2f}", flush=True)
    # the 1-D CNN on MNIST-1D's 40-long sequences, K <= 3
    if "cnn1d-32" in wanted:
        x1 = torch.rand(128, 1, 40).to(dev)
        for k in [k for k in peers if k <= 3]:
            print(f"cnn1d-32 {k} {measure(cnn1d, k, a.steps, a.repeat, x1, y):.2f}", flush=True)
    # the CIFAR-100 rows: RepDistiller's definitions (vendored), 3x32x32 inputs, 100 classes, K <= 2
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "reference_models", "repdistiller"))
    import resnet  # noqa: E402
    import wrn  # noqa: E402
    import vgg  # noqa: E402
    import mobilenetv2  # noqa: E402
    import ShuffleNetv2  # noqa: E402
    x = torch.rand(128, 3, 32, 32).to(dev)
    y = (torch.arange(128) % 100).to(dev)
    cifar = [
        ("resnet32", lambda: resnet.resnet32(num_classes=100)),
        ("wrn-16-2", lambda: wrn.wrn_16_2(num_classes=100)),
        ("resnet8x4", lambda: resnet.resnet8x4(num_classes=100)),
        ("resnet32x4", lambda: resnet.resnet32x4(num_classes=100)),
        ("vgg8", lambda: vgg.vgg8_bn(num_classes=100)),
        ("mobilenetv2", lambda: quiet(lambda: mobilenetv2.mobile_half(num_classes=100))),
        ("shufflenetv2", lambda: ShuffleNetv2.ShuffleV2(num_classes=100)),
    ]
    for name, make in cifar:
        if name not in wanted:
            continue
        for k in [k for k in peers if k <= 2]:
            print(f"{name} {k} {measure(make, k, a.steps, a.repeat, x, y):.2f}", flush=True)


if __name__ == "__main__":
    main()
