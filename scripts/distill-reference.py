#!/usr/bin/env python3
"""Reference values of the feature and relational distillation losses, computed by the authors'
code as RepDistiller vendors it (third_party/RepDistiller/distiller_zoo, unchanged), for
tests/it/losses.rs: each loss and its gradient with respect to the student's features, on fixed
inputs, in float64.

  .venv-bench/bin/python scripts/distill-reference.py > tests/fixtures/distill-reference.json

Needs torch (scripts/bench.sh --pytorch installs it into .venv-bench/); never needed by the tests,
which read the committed JSON.
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "third_party", "RepDistiller", "distiller_zoo"))
from NST import NSTLoss  # noqa: E402
from PKT import PKT  # noqa: E402
from RKD import RKDLoss  # noqa: E402
from SP import Similarity  # noqa: E402


def inputs(shape, seed):
    """Deterministic values in [-2, 2) from a linear congruential sequence (no RNG to agree on)."""
    n = 1
    for d in shape:
        n *= d
    state, out = seed, []
    for _ in range(n):
        state = (state * 1103515245 + 12345) % (1 << 31)
        out.append(4.0 * state / (1 << 31) - 2.0)
    return torch.tensor(out, dtype=torch.float64).reshape(shape)


def case(name, loss, s_shape, t_shape, seed, **params):
    f_s = inputs(s_shape, seed).requires_grad_(True)
    f_t = inputs(t_shape, seed + 1)
    value = loss(f_s, f_t)
    if isinstance(value, list):
        value = sum(value)
    value = value.reshape(())
    (grad,) = torch.autograd.grad(value, f_s)
    return {
        "loss": name,
        "params": params,
        "student_shape": list(s_shape),
        "teacher_shape": list(t_shape),
        "student": f_s.detach().reshape(-1).tolist(),
        "teacher": f_t.reshape(-1).tolist(),
        "value": value.item(),
        "grad": grad.reshape(-1).tolist(),
    }


def main():
    cases = [
        # SP on a last-stage feature map (RepDistiller: feat[-2]), channels may differ
        case("Similarity", lambda s, t: Similarity()([s], [t]), (6, 4, 3, 3), (6, 8, 3, 3), 1),
        case("Similarity", lambda s, t: Similarity()([s], [t]), (5, 7), (5, 3), 2),
        # PKT and RKD on pooled features (RepDistiller: feat[-1])
        case("Pkt", lambda s, t: PKT()(s, t), (6, 5), (6, 9), 3),
        case("Pkt", lambda s, t: PKT()(s, t), (4, 12), (4, 6), 4),
        case("Rkd", lambda s, t: RKDLoss(25, 50)(s, t), (6, 5), (6, 9), 5, distance=25.0, angle=50.0),
        case("Rkd", lambda s, t: RKDLoss(1, 2)(s, t), (5, 4), (5, 4), 6, distance=1.0, angle=2.0),
        # NST on feature maps of the same size, channel counts different
        case("Nst", lambda s, t: NSTLoss()([s], [t]), (3, 4, 3, 3), (3, 6, 3, 3), 7),
        case("Nst", lambda s, t: NSTLoss()([s], [t]), (4, 5, 2, 4), (4, 5, 2, 4), 8),
    ]
    json.dump({"source": "third_party/RepDistiller/distiller_zoo (HobbitLong/RepDistiller b84f547), torch " + torch.__version__, "cases": cases}, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
