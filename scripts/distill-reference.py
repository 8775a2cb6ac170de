#!/usr/bin/env python3
"""Reference values of the feature and relational distillation losses, computed by the authors'
code as RepDistiller vendors it (third_party/RepDistiller/distiller_zoo, unchanged) and by the
Teacher-free KD and CTKD authors' code (third_party/Teacher-free-KD, third_party/CTKD, unchanged),
for tests/it/losses.rs:
each loss and its gradient with respect to the student's features (and to the learned parts a
loss owns: CC's embeddings, VID's regressor and variances), on fixed inputs, in float64. CC's
Taylor form, which no vendored code computes, is written out below from the paper's equations.

  .venv-bench/bin/python scripts/distill-reference.py > tests/fixtures/distill-reference.json

Needs torch (scripts/bench.sh --pytorch installs it into .venv-bench/); never needed by the tests,
which read the committed JSON.
"""
import contextlib
import json
import math
import os
import sys
from types import SimpleNamespace

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "third_party", "RepDistiller", "distiller_zoo"))
from NST import NSTLoss  # noqa: E402
from PKT import PKT  # noqa: E402
from RKD import RKDLoss  # noqa: E402
from SP import Similarity  # noqa: E402
from CC import Correlation  # noqa: E402
from VID import VIDLoss  # noqa: E402
from FSP import FSP  # noqa: E402
from AB import ABLoss  # noqa: E402
from FitNet import HintLoss  # noqa: E402
from FT import FactorTransfer  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "third_party", "RepDistiller", "models"))
from util import Connector, ConvReg, LinearEmbed, Paraphraser, Translator  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "third_party", "RepDistiller"))
torch.Tensor.cuda = lambda self, *a, **k: self  # the references call .cuda(); here they run on the CPU
from crd.criterion import CRDLoss  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "third_party", "mdistiller"))
# OFD.py takes the normal CDF from scipy.stats; the same function from the standard library, so
# that scipy need not be installed: Φ(x) = erfc(−x/√2)/2
sys.modules["scipy"] = SimpleNamespace()
sys.modules["scipy.stats"] = SimpleNamespace(norm=SimpleNamespace(cdf=lambda x: 0.5 * math.erfc(-x / math.sqrt(2.0))))
from distillers.ReviewKD import ReviewKD  # noqa: E402
from distillers.OFD import OFD  # noqa: E402
import distillers.KDSVD as KDSVD  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "third_party", "CTKD"))
from models.temp_global import Global_T  # noqa: E402
from distiller_zoo.KD import DistillKL  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "third_party", "Teacher-free-KD"))
from my_loss_function import loss_kd_regularization  # noqa: E402


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


def record(name, params, s_shape, t_shape, student, teacher, value, grad, inputs_extra=None, **results):
    """One fixture case: the inputs (with `inputs_extra`, e.g. weights or labels, after them), the
    value and the student's gradient, then any further results (learned parts' gradients, …)."""
    out = {
        "loss": name,
        "params": params,
        "student_shape": list(s_shape),
        "teacher_shape": list(t_shape),
        "student": student.detach().reshape(-1).tolist(),
        "teacher": teacher.reshape(-1).tolist() if teacher is not None else [],
    }
    out.update(inputs_extra or {})
    out.update({"value": value.item(), "grad": grad.reshape(-1).tolist()})
    out.update(results)
    return out


def case(name, loss, s_shape, t_shape, seed, **params):
    f_s = inputs(s_shape, seed).requires_grad_(True)
    f_t = inputs(t_shape, seed + 1)
    value = loss(f_s, f_t)
    if isinstance(value, list):
        value = sum(value)
    value = value.reshape(())
    (grad,) = torch.autograd.grad(value, f_s)
    return record(name, params, s_shape, t_shape, f_s, f_t, value, grad)


def weights(module, seed, keep=()):
    """Every parameter of `module` but those named in `keep` (left at the module's own initial
    value) set from `inputs` (scaled to ±0.5), in float64; returns their names and values as the
    fixture stores them."""
    out = {}
    for k, (name, p) in enumerate(sorted(module.named_parameters())):
        if name not in keep:
            with torch.no_grad():
                p.copy_(0.25 * inputs(tuple(p.shape), seed + 7 * k))
        out[name] = {"shape": list(p.shape), "values": p.detach().reshape(-1).tolist()}
    return out


def learned_case(name, module, loss, s_shape, t_shape, seed, keep=(), **params):
    """A case whose loss owns learned parts (`module`): their values and gradients are stored."""
    module = module.double()
    stored = weights(module, seed + 100, keep)
    f_s = inputs(s_shape, seed).requires_grad_(True)
    f_t = inputs(t_shape, seed + 1)
    value = loss(module, f_s, f_t).reshape(())
    names = [n for n, _ in sorted(module.named_parameters())]
    grads = torch.autograd.grad(value, [f_s] + [dict(module.named_parameters())[n] for n in names])
    weight_grads = {n: g.reshape(-1).tolist() for n, g in zip(names, grads[1:])}
    return record(name, params, s_shape, t_shape, f_s, f_t, value, grads[0], {"weights": stored}, weight_grads=weight_grads)


def cc_taylor(f_s, f_t, gamma, order):
    """The paper's CC (Peng et al. 2019, eqs. 4-9), written out: unit rows, the P-order Taylor
    expansion of exp(-gamma |fi - fj|^2) = exp(-2 gamma) exp(2 gamma fi.fj), mean of the squared
    difference of the two B x B matrices."""

    def psi(f):
        f = f / f.norm(dim=1, keepdim=True).clamp_min(1e-12)
        sim = f @ f.t()
        return sum(math.exp(-2 * gamma) * (2 * gamma) ** p / math.factorial(p) * sim**p for p in range(order + 1))

    return ((psi(f_t) - psi(f_s)) ** 2).mean()


def tf_case(logits_shape, seed, correct, temperature, multiplier):
    z = inputs(logits_shape, seed).mul(3.0).requires_grad_(True)
    y = torch.tensor([(7 * i + seed) % logits_shape[1] for i in range(logits_shape[0])])
    params = SimpleNamespace(reg_alpha=1.0, reg_temperature=temperature, multiplier=multiplier)
    assert correct == 0.99, "the reference fixes the correct-class probability at 0.99"
    value = loss_kd_regularization(z, y, params).reshape(())
    (grad,) = torch.autograd.grad(value, z)
    params = {"correct": correct, "temperature": temperature, "multiplier": multiplier}
    return record("TeacherFree", params, logits_shape, [0], z, None, value, grad, {"labels": y.tolist()})


def ctkd_case(shape, seed, theta, lam, t_start=1.0, t_end=20.0):
    """CTKD's global temperature (Global_T, its gradient reversal with weight lam) and DistillKL,
    as helper/loops.py combines them: T = t_start + t_end * sigmoid(Global_T(...))."""
    z = inputs(shape, seed).mul(3.0).requires_grad_(True)
    v = inputs(shape, seed + 1).mul(3.0)
    mlp = Global_T().double()
    with torch.no_grad():
        mlp.global_T.fill_(theta)
    temp = t_start + t_end * torch.sigmoid(mlp(v, z, lam))
    value = DistillKL()(z, v, temp).reshape(())
    grad, dtheta = torch.autograd.grad(value, [z, mlp.global_T])
    params = {"theta": theta, "lambda": lam, "t_start": t_start, "t_end": t_end}
    return record("CurriculumTemperature", params, shape, shape, z, v, value, grad, weight_grads={"global_T": dtheta.reshape(-1).tolist()}, temperature=temp.item())


def map_lists(s_maps, t_maps, seed):
    """The inputs of a loss on lists of feature maps: the student's maps `s_maps` as one flat
    tensor [B, N] (map after map; its gradient is stored flat), the teacher's `t_maps` likewise."""
    b = s_maps[0][0]
    f_s = inputs((b, sum(map_sizes(s_maps))), seed).requires_grad_(True)
    f_t = inputs((b, sum(map_sizes(t_maps))), seed + 1)
    return f_s, f_t


def map_sizes(maps):
    return [m[1] * m[2] * m[3] for m in maps]


def split_maps(f, maps):
    """The maps of `map_lists`' flat tensor `f`."""
    return [p.reshape(m) for p, m in zip(torch.split(f, map_sizes(maps), dim=1), maps)]


def fsp_case(s_maps, t_maps, seed):
    """FSP on lists of feature maps: the student's maps are slices of one flat tensor [B, N] (its
    gradient is stored flat, map after map), the teacher's likewise."""
    f_s, f_t = map_lists(s_maps, t_maps, seed)
    value = sum(FSP(s_maps, t_maps)(split_maps(f_s, s_maps), split_maps(f_t, t_maps))).reshape(())
    (grad,) = torch.autograd.grad(value, f_s)
    params = {"student_maps": [list(m[1:]) for m in s_maps], "teacher_maps": [list(m[1:]) for m in t_maps]}
    return record("Fsp", params, f_s.shape, f_t.shape, f_s, f_t, value, grad)


def ab_case(s_shape, t_shape, seed, margin):
    """AB's alternative L2 (one tap pair: ABLoss(1), weight 2^0) on the student's map through
    RepDistiller's Connector (nothing for equal shapes; else ConvReg without its ReLU: a 1x1
    convolution and a batch norm in training mode, its weights set from `inputs`)."""
    connector = Connector([s_shape], [t_shape]).double()
    loss = lambda m, s, t: sum(ABLoss(1, margin)(m([s]), [t]))  # noqa: E731
    params = {"margin": margin}
    if s_shape == t_shape:
        return case("ActivationBoundary", lambda s, t: loss(connector, s, t), s_shape, t_shape, seed, **params)
    return learned_case("ActivationBoundary", connector, loss, s_shape, t_shape, seed, **params)


def hint_case(s_shape, t_shape, seed):
    """RepDistiller's FitNets: HintLoss (MSELoss, a mean over every element) on the student's map
    through ConvReg (a 1x1 convolution, a batch norm in training mode, a ReLU), learned."""
    return learned_case("HintRepDistiller", ConvReg(s_shape, t_shape), lambda m, s, t: HintLoss()(m(s), t), s_shape, t_shape, seed)


def crd_case(s_dim, t_dim, dim, n_data, classes, k, seed, temperature, momentum):
    """CRD as train_student.py runs it: CRDLoss (Embed on both sides, ContrastMemory, two
    ContrastLoss) on two consecutive batches of 3 samples with the contrast indices given (each
    row: its own index, then k samples of other classes), the memory banks set from `inputs`.
    The first batch's value and gradients (features, both embeddings), the normalisation constants
    it fixes and both banks after each update; the second batch's value (Z fixed, banks updated)."""
    opt = SimpleNamespace(s_dim=s_dim, t_dim=t_dim, feat_dim=dim, nce_k=k, nce_t=temperature, nce_m=momentum, n_data=n_data)
    crd = CRDLoss(opt).double()
    stored = weights(crd, seed + 100)
    with torch.no_grad():
        crd.contrast.memory_v1.copy_(0.2 * inputs((n_data, dim), seed + 200))
        crd.contrast.memory_v2.copy_(0.2 * inputs((n_data, dim), seed + 300))
    banks = {"memory_v1": crd.contrast.memory_v1.reshape(-1).tolist(), "memory_v2": crd.contrast.memory_v2.reshape(-1).tolist()}
    labels = [(5 * i + seed) % classes for i in range(n_data)]

    def contrast(idx):
        rows = []
        for r, i in enumerate(idx):
            others = [j for j in range(n_data) if labels[j] != labels[i]]
            rows.append([i] + [others[(3 * r + 2 * q + seed) % len(others)] for q in range(k)])
        return rows

    def batch(idx, s_seed):
        f_s = inputs((len(idx), s_dim), s_seed).requires_grad_(True)
        f_t = inputs((len(idx), t_dim), s_seed + 1)
        c = contrast(idx)
        with contextlib.redirect_stdout(sys.stderr):  # ContrastMemory prints the constants it fixes
            value = crd(f_s, f_t, torch.tensor(idx), torch.tensor(c)).reshape(())
        return f_s, f_t, c, value

    idx1, idx2 = [1, 4, 6], [6, 0, 9]
    f_s, f_t, c1, value = batch(idx1, seed)
    names = [n for n, _ in sorted(crd.named_parameters())]
    grads = torch.autograd.grad(value, [f_s] + [dict(crd.named_parameters())[n] for n in names])
    weight_grads = {n: g.reshape(-1).tolist() for n, g in zip(names, grads[1:])}
    after = {"z": [crd.contrast.params[2].item(), crd.contrast.params[3].item()], "memory_v1": crd.contrast.memory_v1.reshape(-1).tolist(), "memory_v2": crd.contrast.memory_v2.reshape(-1).tolist()}
    f_s2, f_t2, c2, value2 = batch(idx2, seed + 50)
    second = {"student": f_s2.detach().reshape(-1).tolist(), "teacher": f_t2.reshape(-1).tolist(), "indices": idx2, "contrast": c2, "value": value2.item()}
    params = {"dim": dim, "samples": n_data, "negatives": k, "temperature": temperature, "momentum": momentum}
    extra = {"weights": stored, "banks": banks, "labels": labels, "indices": idx1, "contrast": c1}
    return record("Crd", params, f_s.shape, f_t.shape, f_s, f_t, value, grads[0], extra, weight_grads=weight_grads, after=after, second=second)


class Fixed(torch.nn.Module):
    """A network replaced by the features it returns (mdistiller's `(logits, features)`)."""

    def __init__(self, logits, features):
        super().__init__()
        self.out = (logits, features)

    def forward(self, image):
        return self.out


def review_case(s_maps, t_maps, pooled, seed, epoch, warmup=20):
    """ReviewKD.forward_train (its `loss_kd`: weight 1, the warm-up at `epoch`) on the student's
    stage outputs `s_maps` plus its pooled features (`feats` + `pooled_feat`; mdistiller skips
    `feats[0]`, given here as zeros) and the teacher's pre-activations `t_maps` plus its pooled
    features (`preact_feats[1:]` + `pooled_feat`). The student's features are one flat tensor
    (maps, then the pooled features, in that order), its gradient stored flat."""
    b = s_maps[0][0]
    (ps, pt) = pooled
    size = lambda m: m[1] * m[2] * m[3]  # noqa: E731
    f_s = inputs((b, sum(size(m) for m in s_maps) + ps), seed).requires_grad_(True)
    f_t = inputs((b, sum(size(m) for m in t_maps) + pt), seed + 1)

    def split(f, maps, p):
        parts = torch.split(f, [size(m) for m in maps] + [p], dim=1)
        return [x.reshape(m) for x, m in zip(parts, maps)], parts[-1]

    s_feats, s_pool = split(f_s, s_maps, ps)
    t_feats, t_pool = split(f_t, t_maps, pt)
    zeros = torch.zeros(s_maps[0], dtype=torch.float64)
    student = Fixed(None, {"feats": [zeros] + s_feats, "pooled_feat": s_pool, "preact_feats": []})
    teacher = Fixed(None, {"preact_feats": [zeros] + t_feats, "pooled_feat": t_pool})
    cfg = SimpleNamespace(REVIEWKD=SimpleNamespace(
        SHAPES=[1] + [m[2] for m in reversed(s_maps)], OUT_SHAPES=[1] + [m[2] for m in reversed(t_maps)],
        IN_CHANNELS=[m[1] for m in s_maps] + [ps], OUT_CHANNELS=[m[1] for m in t_maps] + [pt],
        CE_WEIGHT=1.0, REVIEWKD_WEIGHT=1.0, WARMUP_EPOCHS=warmup, STU_PREACT=False, MAX_MID_CHANNEL=512))
    model = ReviewKD(student, teacher, cfg)
    abfs = model.abfs.double()
    stored = weights(abfs, seed + 100)
    model.train()
    student.out = (torch.zeros(b, 3, dtype=torch.float64), student.out[1])
    _, losses = model.forward_train(None, torch.zeros(b, dtype=torch.long), epoch=epoch)
    value = losses["loss_kd"].reshape(())
    names = [n for n, _ in sorted(abfs.named_parameters())]
    grads = torch.autograd.grad(value, [f_s] + [dict(abfs.named_parameters())[n] for n in names])
    weight_grads = {n: g.reshape(-1).tolist() for n, g in zip(names, grads[1:])}
    params = {"student_maps": [list(m[1:]) for m in s_maps], "teacher_maps": [list(m[1:]) for m in t_maps], "pooled": list(pooled), "epoch": epoch, "warmup": warmup}
    return record("ReviewKd", params, f_s.shape, f_t.shape, f_s, f_t, value, grads[0], {"weights": stored}, weight_grads=weight_grads)


def ft_paraphrase_case(t_shape, seed):
    """FT's init stage (helper/pretrain.py, distill == 'factor'): MSELoss of the Paraphraser's
    (k = 0.5, no batch norm) reconstruction of the teacher's map; the gradient for the map and
    every paraphraser parameter."""
    para = Paraphraser(t_shape)
    loss = lambda m, f, _t: torch.nn.MSELoss()(m(f)[1], f)  # noqa: E731
    return learned_case("FtParaphrase", para, loss, t_shape, [0], seed, rate=0.5)


def ft_translate_case(s_shape, t_shape, seed):
    """FT's transfer (helper/loops.py, distill == 'factor'): FactorTransfer() between the
    Translator's factors of the student's map (batch norms in training mode) and the trained
    Paraphraser's (eval mode, `is_factor=True`); the gradients for the student's map and the
    translator's parameters (RepDistiller trains the translator alone in this stage)."""
    modules = torch.nn.ModuleDict({"translator": Translator(s_shape, t_shape), "paraphraser": Paraphraser(t_shape)}).double()
    stored = weights(modules, seed + 100)
    modules["translator"].train()
    modules["paraphraser"].eval()
    f_s = inputs(s_shape, seed).requires_grad_(True)
    f_t = inputs(t_shape, seed + 1)
    value = FactorTransfer()(modules["translator"](f_s), modules["paraphraser"](f_t, is_factor=True)).reshape(())
    names = [n for n, _ in sorted(modules["translator"].named_parameters())]
    grads = torch.autograd.grad(value, [f_s] + [dict(modules["translator"].named_parameters())[n] for n in names])
    weight_grads = {"translator." + n: g.reshape(-1).tolist() for n, g in zip(names, grads[1:])}
    return record("FtTranslate", {"rate": 0.5}, s_shape, t_shape, f_s, f_t, value, grads[0], {"weights": stored}, weight_grads=weight_grads)


def ofd_case(s_shape, t_shape, seed):
    """OFD.ofd_loss on one stage (weight 2^0): the student's pre-activation through
    ConnectorConvBN (1x1 convolution without bias, batch norm in training mode), the teacher's
    pooled to its size, the margins init_ofd_modules reads from a teacher batch norm (its scale and
    shift set from `inputs`, one channel's shift large enough for the -3 sigma branch)."""
    bn = torch.nn.BatchNorm2d(t_shape[1]).double()
    with torch.no_grad():
        bn.weight.copy_(inputs((t_shape[1],), seed + 50))
        bn.bias.copy_(inputs((t_shape[1],), seed + 60))
        bn.bias[0] = 4.0 * abs(bn.weight[0].item()) + 0.1
    ofd = OFD.__new__(OFD)
    torch.nn.Module.__init__(ofd)
    ofd.init_ofd_modules([t_shape[1]], [s_shape[1]], [bn])
    connectors = ofd.connectors.double()
    stored = weights(connectors, seed + 100)
    connectors.train()
    ofd.margins = [m.double() for m in ofd.margins]
    f_s = inputs(s_shape, seed).requires_grad_(True)
    f_t = inputs(t_shape, seed + 1)
    value = ofd.ofd_loss([f_s], [f_t]).reshape(())
    names = [n for n, _ in sorted(connectors.named_parameters())]
    grads = torch.autograd.grad(value, [f_s] + [dict(connectors.named_parameters())[n] for n in names])
    weight_grads = {n: g.reshape(-1).tolist() for n, g in zip(names, grads[1:])}
    extra = {"weights": stored, "bn_weight": bn.weight.tolist(), "bn_bias": bn.bias.tolist(), "margins": ofd.margins[0].reshape(-1).tolist()}
    return record("Ofd", {}, s_shape, t_shape, f_s, f_t, value, grads[0], extra, weight_grads=weight_grads)


def kdsvd_case(s_maps, t_maps, seed, k=1):
    """KDSVD.kdsvd_loss (weight 1) on lists of feature maps, the student's and the teacher's each
    slices of one flat tensor (as fsp_case). Two things differ from a plain call, both inside the
    reference's own `svd`: its `.float()` cast is the identity here (the fixture is float64, as
    every other case), and `torch.svd` gives each singular pair the sign cohort gives it (the
    largest-magnitude component of the right vector positive; LAPACK's sign is arbitrary and the
    loss depends on it through the teacher's consecutive vectors)."""
    f_s, f_t = map_lists(s_maps, t_maps, seed)

    def signed_svd(x):
        u, s, v = torch.linalg.svd(x, full_matrices=False)
        v = v.transpose(-2, -1)
        lead = torch.gather(v, 1, v.detach().abs().argmax(dim=1, keepdim=True))
        sign = torch.where(lead < 0, -1.0, 1.0).to(x.dtype)
        return u * sign, s, v * sign

    float_, svd_ = torch.Tensor.float, KDSVD.torch.svd
    torch.Tensor.float = lambda self: self
    KDSVD.torch = SimpleNamespace(**{n: getattr(torch, n) for n in dir(torch) if not n.startswith("__")})
    KDSVD.torch.svd = signed_svd
    try:
        value = KDSVD.kdsvd_loss(split_maps(f_s, s_maps), split_maps(f_t, t_maps), k).reshape(())
    finally:
        torch.Tensor.float = float_
        KDSVD.torch = torch
    assert svd_ is torch.svd
    (grad,) = torch.autograd.grad(value, f_s)
    params = {"student_maps": [list(m[1:]) for m in s_maps], "teacher_maps": [list(m[1:]) for m in t_maps], "k": k}
    return record("Kdsvd", params, f_s.shape, f_t.shape, f_s, f_t, value, grad)


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
        # CC, the paper's form (written out above), on pooled features of different widths
        case("CcTaylor", lambda s, t: cc_taylor(s, t, 0.4, 2), (6, 5), (6, 9), 9, gamma=0.4, order=2),
        case("CcTaylor", lambda s, t: cc_taylor(s, t, 0.8, 3), (5, 4), (5, 4), 10, gamma=0.8, order=3),
        # CC, the authors' code, through RepDistiller's LinearEmbed on both sides (both learned;
        # train_student.py, distill == 'correlation')
        learned_case("CcAuthors", torch.nn.ModuleDict({"own": LinearEmbed(5, 4), "source": LinearEmbed(9, 4)}), lambda m, s, t: Correlation()(m["own"](s), m["source"](t)), (6, 5), (6, 9), 11, dim=4),
        learned_case("CcAuthors", torch.nn.ModuleDict({"own": LinearEmbed(3, 2), "source": LinearEmbed(3, 2)}), lambda m, s, t: Correlation()(m["own"](s), m["source"](t)), (4, 3), (4, 3), 12, dim=2),
        # VID on feature maps: same positions (3 -> 5 channels through mid 4), and the student's
        # larger map pooled to the teacher's; the authors' initial variances
        learned_case("Vid", VIDLoss(3, 4, 5), lambda m, s, t: m(s, t), (4, 3, 2, 2), (4, 5, 2, 2), 13, mid=4, init_var=5.0),
        learned_case("Vid", VIDLoss(2, 3, 3), lambda m, s, t: m(s, t), (3, 2, 4, 4), (3, 3, 2, 2), 14, keep=("log_scale",), mid=3, init_var=5.0),
        # Tf-KD_reg, the authors' function with alpha = 1 (its KL term alone)
        tf_case((5, 10), 15, 0.99, 20.0, 100.0),
        tf_case((4, 6), 16, 0.99, 4.0, 1.0),
        # CTKD: the authors' initial θ = 1 at lambda = -0.5, and another theta at lambda = -1
        ctkd_case((5, 10), 17, 1.0, -0.5),
        ctkd_case((4, 7), 18, -0.4, -1.0, t_start=2.0, t_end=5.0),
        # FSP on three taps (two pairs; the second pair's larger map pooled), and on a teacher at
        # twice the student's resolution
        fsp_case([(3, 2, 4, 4), (3, 3, 4, 4), (3, 4, 2, 2)], [(3, 2, 4, 4), (3, 3, 4, 4), (3, 4, 2, 2)], 19),
        fsp_case([(2, 3, 2, 2), (2, 2, 1, 1)], [(2, 3, 4, 4), (2, 2, 2, 2)], 20),
        # AB on pre-activation maps: the same shape (no connector) at the authors' margin, and
        # 2 -> 5 channels through the connector (1x1 conv + BN, learned) at another margin
        ab_case((4, 3, 2, 2), (4, 3, 2, 2), 21, 1.0),
        ab_case((4, 2, 3, 3), (4, 5, 3, 3), 22, 0.5),
        # FitNets as RepDistiller runs it: 3 -> 5 channels, and the same width
        hint_case((4, 3, 2, 2), (4, 5, 2, 2), 23),
        hint_case((3, 2, 3, 3), (3, 2, 3, 3), 24),
        # CRD: RepDistiller's temperature and momentum, and others; embeddings of different widths
        crd_case(5, 7, 4, 12, 3, 4, 25, 0.07, 0.5),
        crd_case(3, 3, 2, 10, 2, 3, 26, 0.5, 0.9),
        # ReviewKD: three stages and the pooled features, the same sizes a side (warm-up epoch 5
        # of 20); and a teacher at twice the student's resolution, past the warm-up
        review_case([(4, 3, 8, 8), (4, 4, 4, 4), (4, 5, 2, 2)], [(4, 4, 8, 8), (4, 6, 4, 4), (4, 7, 2, 2)], (5, 7), 27, 5),
        # FT: the paraphraser's reconstruction, and the transfer (the same size, and a student
        # map twice the teacher's, pooled)
        ft_paraphrase_case((3, 4, 3, 3), 29),
        ft_translate_case((4, 3, 2, 2), (4, 4, 2, 2), 30),
        ft_translate_case((3, 2, 4, 4), (3, 6, 2, 2), 31),
        # OFD: 3 -> 5 channels at the same size, and a teacher at twice the student's resolution
        ofd_case((4, 3, 2, 2), (4, 5, 2, 2), 32),
        ofd_case((3, 2, 2, 2), (3, 4, 4, 4), 33),
        review_case([(6, 2, 4, 4), (6, 3, 2, 2)], [(6, 2, 8, 8), (6, 4, 4, 4)], (3, 4), 28, 30),
        # KDSVD: three stages (mdistiller's k = 1; the teacher wider; the first student map 4 × 8,
        # fewer rows than columns), and two taps at k = 2 (the teacher's singular values scale
        # the vectors)
        kdsvd_case([(3, 2, 2, 8), (3, 3, 3, 6), (3, 4, 2, 5)], [(3, 4, 4, 8), (3, 5, 3, 6), (3, 6, 2, 5)], 34),
        kdsvd_case([(2, 3, 3, 7), (2, 2, 4, 6)], [(2, 3, 3, 7), (2, 4, 2, 6)], 35, k=2),
    ]
    json.dump({"source": "third_party/RepDistiller (HobbitLong/RepDistiller b84f547: distiller_zoo, models/util.py, crd), third_party/Teacher-free-KD (yuanli2333/Teacher-free-Knowledge-Distillation 880a74e), third_party/CTKD (zhengli97/CTKD 7d52522), third_party/mdistiller (megvii-research/mdistiller a08d46f: distillers/ReviewKD.py, distillers/OFD.py, distillers/KDSVD.py), torch " + torch.__version__, "cases": cases}, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
