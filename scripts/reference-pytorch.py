#!/usr/bin/env python3
"""The quick start and the DML study trained in PyTorch with cohort's recipe: the PyTorch twin.

Same data (MNIST-1D as `cohort data export mnist1d` writes it), the same validation hold-out and
the same batches (cohort's random streams reproduced: SplitMix64 keys into numpy's legacy
RandomState, which cohort's `src/data/rng.rs` ports), the same 1-D CNN (`Cnn1d(channels:
[32, 32, 32], kernel: 5)`: convolutions of kernel 5, padding 2, stride 1 then 2, ReLU, a linear
classifier), PyTorch's default initialisation (the distribution burn's defaults follow; the draws
differ), Adam with PyTorch's defaults, and the same losses: CE, plus DML's mean over the other
peers of KL(p_other || p_self), or DML_e's KL(mean of the other peers' probabilities || p_self),
targets detached; simultaneous updates use the pre-step outputs, the sequential order recomputes a
peer's output after its step for the peers after it.

    .venv-bench/bin/python scripts/reference-pytorch.py --data DIR --out results/reference/runs/pytorch

writes one JSON per (experiment, seed) with every peer's final test accuracy. Never needed by
the tests; `scripts/reference.sh` installs torch, runs this and writes results/reference/.
"""
import argparse
import json
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

M64 = (1 << 64) - 1
HOLD_OUT, SHUFFLE = 1, 2  # cohort's `Stream` values (src/data/batch.rs)


def splitmix64(z):
    z = (z + 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def stream_seed(seed, stream, epoch):
    return splitmix64(splitmix64(splitmix64(seed) ^ stream) ^ epoch) >> 32


def shuffled(n, seed, stream, epoch):
    return np.random.RandomState(stream_seed(seed, stream, epoch)).permutation(n)


# The experiments: (name, peers, loss between peers, update order, epochs, batch, lr, validation, train limit)
EXPERIMENTS = {
    "quickstart": (2, "dml", "simultaneous", 20, 100, 0.003, 0.0, None),
    "quickstart-independent": (2, None, "simultaneous", 20, 100, 0.003, 0.0, None),
    "independent-2": (2, None, "simultaneous", 60, 50, 0.002, 0.1, 1000),
    "dml-2": (2, "dml", "simultaneous", 60, 50, 0.002, 0.1, 1000),
    "dml-2-sequential": (2, "dml", "sequential", 60, 50, 0.002, 0.1, 1000),
    "independent-4": (4, None, "simultaneous", 60, 50, 0.002, 0.1, 1000),
    "dml-4": (4, "dml", "simultaneous", 60, 50, 0.002, 0.1, 1000),
    "dml-e-4": (4, "dml_e", "simultaneous", 60, 50, 0.002, 0.1, 1000),
}


def cnn1d(length=40, channels=(32, 32, 32), k=5, classes=10):
    layers, cin = [], 1
    for i, c in enumerate(channels):
        stride = 1 if i == 0 else 2
        layers += [nn.Conv1d(cin, c, k, stride=stride, padding=k // 2), nn.ReLU()]
        length = (length + 2 * (k // 2) - k) // stride + 1
        cin = c
    return nn.Sequential(nn.Unflatten(1, (1, -1)), *layers, nn.Flatten(), nn.Linear(cin * length, classes))


def load(path):
    d = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64)
    return torch.tensor(d[:, 1:], dtype=torch.float32), torch.tensor(d[:, 0], dtype=torch.long)


def split(x, y, seed, validation, limit):
    n = len(y)
    n_val = round(n * validation)
    if n_val > 0:
        order = shuffled(n, seed, HOLD_OUT, 0)
        train = np.sort(order[n_val:])
    else:
        train = np.arange(n)
    if limit is not None:
        train = train[:limit]
    return x[train], y[train]


def loss_of(k, z, targets, kind, y):
    loss = F.cross_entropy(z, y)
    others = [targets[j] for j in range(len(targets)) if j != k]
    if kind == "dml":
        logq = F.log_softmax(z, dim=1)
        loss = loss + sum(F.kl_div(logq, p, reduction="batchmean") for p in others) / len(others)
    elif kind == "dml_e":
        loss = loss + F.kl_div(F.log_softmax(z, dim=1), torch.stack(others).mean(0), reduction="batchmean")
    return loss


def run(name, seed, x, y, xt, yt):
    k, kind, order, epochs, batch, lr, validation, limit = EXPERIMENTS[name]
    torch.manual_seed(seed)
    xtr, ytr = split(x, y, seed, validation, limit)
    peers = [cnn1d() for _ in range(k)]
    opts = [torch.optim.Adam(p.parameters(), lr=lr) for p in peers]
    for epoch in range(epochs):
        perm = shuffled(len(ytr), seed, SHUFFLE, epoch)
        for s in range(0, len(perm), batch):
            idx = torch.tensor(perm[s : s + batch])
            xb, yb = xtr[idx], ytr[idx]
            logits = [p(xb) for p in peers]
            targets = [F.softmax(z.detach(), dim=1) for z in logits]
            for i, (p, opt) in enumerate(zip(peers, opts)):
                # a peer's own output is unchanged until its own step, in either order
                loss = loss_of(i, logits[i], targets, kind, yb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if order == "sequential":
                    with torch.no_grad():
                        targets[i] = F.softmax(p(xb), dim=1)
    with torch.no_grad():
        acc = {f"peer{i + 1}": float((p(xt).argmax(1) == yt).float().mean()) for i, p in enumerate(peers)}
    return {"experiment": name, "seed": seed, "framework": f"pytorch {torch.__version__}", "test_accuracy": acc}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="folder with train.csv and test.csv from `cohort data export mnist1d`")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--experiments", default=",".join(EXPERIMENTS))
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    x, y = load(os.path.join(a.data, "train.csv"))
    xt, yt = load(os.path.join(a.data, "test.csv"))
    for name in a.experiments.split(","):
        for seed in map(int, a.seeds.split(",")):
            r = run(name, seed, x, y, xt, yt)
            d = os.path.join(a.out, name)
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, f"seed-{seed}.json"), "w") as f:
                json.dump(r, f, indent=1, sort_keys=True)
            print(name, seed, " ".join(f"{k} {v:.4f}" for k, v in r["test_accuracy"].items()), flush=True)


if __name__ == "__main__":
    main()
