//! Distillation losses as pure functions of tensors (definitions and papers: `docs/losses.md`).
//!
//! Notation: `z` logits `[B, C]` of the network being trained, `v` logits of a source, `T`
//! temperature, `p^T = softmax(v/T)`, `q^T = softmax(z/T)`, `B` batch size. Every target built
//! here is detached: gradients flow only into `z`. Reductions are batch means ("batchmean": sum
//! over classes, mean over the batch), never means over `B·C`.

use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::{Int, Tensor};

/// Cross-entropy with integer labels, batch mean: `−(1/B) Σ_b log softmax(z_b)[y_b]`.
pub fn cross_entropy(z: Tensor<2>, y: Tensor<1, Int>) -> Tensor<1> {
    let [b, _] = z.dims();
    let logp = log_softmax(z, 1);
    logp.gather(1, y.reshape([b, 1])).mean().neg()
}

/// The softened, detached target distribution of one source: `p^T = softmax(v/T)`.
pub fn soft_target(v: Tensor<2>, t: f64) -> Tensor<2> {
    softmax(v.detach().div_scalar(t), 1)
}

/// `T²·KL(p ‖ q^T)`, batchmean, for a detached target distribution `p` (rows sum to 1) and the
/// trained logits `z`: `T²·(1/B) Σ_b Σ_c p_bc (log p_bc − log softmax(z_b/T)_c)`, with
/// `0·log 0 = 0`. Hinton et al. 2015: the T² keeps gradient magnitudes comparable across T.
///
/// Gradient w.r.t. `z`: `T·(q^T − p)/B`.
pub fn kl_to_target(p: Tensor<2>, z: Tensor<2>, t: f64) -> Tensor<1> {
    let [b, _] = z.dims();
    let p = p.detach();
    let logq = log_softmax(z.div_scalar(t), 1);
    // p·log p with 0·log 0 = 0: clamping only changes entries where p = 0, which p multiplies away
    let plogp = p.clone() * p.clone().clamp_min(1e-30).log();
    (plogp - p * logq).sum().div_scalar(b as f64).mul_scalar(t * t)
}

/// Hinton soft-target loss from one source: `T²·KL(softmax(v/T) ‖ softmax(z/T))`.
pub fn soft_target_kl(v: Tensor<2>, z: Tensor<2>, t: f64) -> Tensor<1> {
    kl_to_target(soft_target(v, t), z, t)
}

/// Multi-teacher target: `Σ_i w_i softmax(v_i/T)` with `Σ w_i = 1` (empty `weights` = equal).
pub fn mixture_target(vs: &[Tensor<2>], weights: &[f64], t: f64) -> Tensor<2> {
    assert!(!vs.is_empty(), "a mixture needs at least one source");
    let equal = 1.0 / vs.len() as f64;
    vs.iter().enumerate().map(|(i, v)| soft_target(v.clone(), t).mul_scalar(weights.get(i).copied().unwrap_or(equal))).reduce(|a, b| a + b).expect("non-empty")
}

/// Deep Mutual Learning term for one peer: `(1/|S|) Σ_{l∈S} T²·KL(p_l^T ‖ q^T)` (Zhang et al.
/// 2018; with K peers, S = the K−1 others, so the factor is 1/(K−1)).
pub fn mutual_kl(sources: &[Tensor<2>], z: Tensor<2>, t: f64) -> Tensor<1> {
    assert!(!sources.is_empty(), "mutual learning needs at least one other peer");
    let n = sources.len() as f64;
    sources.iter().map(|v| soft_target_kl(v.clone(), z.clone(), t)).reduce(|a, b| a + b).expect("non-empty").div_scalar(n)
}

/// Ensemble target from the mean of logits: `softmax(((1/M) Σ_m v_m)/T)` (KDCL's naive
/// ensemble of logits), detached.
pub fn mean_logits_target(vs: &[Tensor<2>], t: f64) -> Tensor<2> {
    let n = vs.len() as f64;
    let mean = vs.iter().cloned().reduce(|a, b| a + b).expect("non-empty").div_scalar(n);
    soft_target(mean, t)
}

/// KDCL-MinLogit ensemble (Guo et al. 2020): for each member, its logits minus its logit of the
/// true class (so the true class is 0 for everyone), then the element-wise minimum across
/// members; the target is `softmax(min/T)`, detached.
pub fn min_logit_target(vs: &[Tensor<2>], y: Tensor<1, Int>, t: f64) -> Tensor<2> {
    let [b, c] = vs[0].dims();
    let yy = y.reshape([b, 1]);
    let shifted = vs.iter().map(|v| {
        let v = v.clone().detach();
        let true_logit = v.clone().gather(1, yy.clone()).expand([b, c]);
        v - true_logit
    });
    let min = shifted.reduce(|a, b| a.min_pair(b)).expect("non-empty");
    soft_target(min, t)
}

/// FitNets hint (Romero et al. 2015): `½·(1/B) Σ_b ‖u_b − r(v)_b‖²` for the source's detached
/// hint `u` and the adapted guided features `r(v)`, both `[B, N]` (features flattened); the
/// squared norm sums over features, the mean is over the batch.
pub fn hint(u: Tensor<2>, rv: Tensor<2>) -> Tensor<1> {
    let [b, _] = rv.dims();
    (rv - u.detach()).powi_scalar(2).sum().div_scalar(2.0 * b as f64)
}

/// Attention map of a feature map `[B, C, N]` (positions flattened), Zagoruyko & Komodakis
/// 2017 with p = 2: `at(x)_b = a_b / max(‖a_b‖₂, 1e-12)` where `a_bn = (1/C) Σ_c x_bcn²`.
/// Shape `[B, N]`.
pub fn attention_map(x: Tensor<3>) -> Tensor<2> {
    let [b, _, n] = x.dims();
    let a: Tensor<2> = x.powi_scalar(2).mean_dim(1).reshape([b, n]);
    let norm = a.clone().powi_scalar(2).sum_dim(1).sqrt().clamp_min(1e-12);
    a / norm
}

/// Attention transfer loss: `(1/(B·N)) Σ_{b,n} (at(v)_bn − at(u)_bn)²` between the trained
/// features `v` and the source's detached features `u`, both `[B, C, N]` (channel counts may
/// differ; positions must match).
pub fn attention_transfer(u: Tensor<3>, v: Tensor<3>) -> Tensor<1> {
    (attention_map(v) - attention_map(u.detach())).powi_scalar(2).mean()
}

/// LFME logit regulariser (Chen et al. 2024): `(1/(B·C)) Σ_{b,c} (z_bc − p_bc)²` where `p` is the
/// detached softmax of the sample's own-domain expert (`torch.nn.MSELoss()` between the target's
/// logits and the experts' probabilities, as in the authors' code).
pub fn lfme(z: Tensor<2>, p: Tensor<2>) -> Tensor<1> {
    (z - p.detach()).powi_scalar(2).mean()
}

/// The output of a multi-head (Hydra) network: the log of the mean of its heads'
/// probabilities, `log((1/M) Σ_m softmax(h_m))`, computed as a log-sum-exp over heads of
/// `log_softmax(h_m)` minus `log M`. As logits, its softmax is the head mean.
pub fn head_mean_log_probs(heads: &[Tensor<2>]) -> Tensor<2> {
    assert!(!heads.is_empty(), "at least one head");
    let m = heads.len() as f64;
    let logp: Vec<Tensor<2>> = heads.iter().map(|h| log_softmax(h.clone(), 1)).collect();
    let max = logp.iter().cloned().reduce(|a, b| a.max_pair(b)).expect("non-empty");
    let sum = logp.into_iter().map(|l| (l - max.clone()).exp()).reduce(|a, b| a + b).expect("non-empty");
    max + sum.log() - m.ln()
}

/// ONE's gated ensemble (Lan et al. 2018): `Σ_m g_bm·h_bm` for the heads' logits `h_m` `[B, C]`
/// and gate weights `g` `[B, M]` (rows sum to 1).
pub fn gated_logits(heads: &[Tensor<2>], g: Tensor<2>) -> Tensor<2> {
    let [b, _] = g.dims();
    heads.iter().enumerate().map(|(m, h)| h.clone() * g.clone().slice([0..b, m..m + 1])).reduce(|a, c| a + c).expect("at least one head")
}

/// Logit standardisation (Sun et al., CVPR 2024, "Logit Standardization in Knowledge
/// Distillation", Algorithm 1): each sample's logits z-scored, `(z − mean_c z) / (std_c z +
/// 1e-7)`, with the unbiased standard deviation (`torch.std`'s default, as the official code).
/// Applied to the target's and the sources' logits before the temperature softmax.
pub fn standardize_logits(z: Tensor<2>) -> Tensor<2> {
    let [_, c] = z.dims();
    let centred = z.clone() - z.mean_dim(1);
    let std = centred.clone().powi_scalar(2).sum_dim(1).div_scalar((c.max(2) - 1) as f64).sqrt();
    centred / std.add_scalar(1e-7)
}

/// `[B, C]` one-hot rows of the labels `y`.
fn one_hot(y: Tensor<1, Int>, c: usize) -> Tensor<2> {
    let [b] = y.dims();
    let classes = Tensor::<1, Int>::arange(0..c as i64, &y.device()).reshape([1, c]).expand([b, c]);
    y.reshape([b, 1]).expand([b, c]).equal(classes).float()
}

/// Decoupled KD (Zhao et al., CVPR 2022, eq. (7)) of the trained logits `z` from the source's
/// `v` with labels `y`: `α·TCKD + β·NCKD`, where with `p = softmax(v/T)`, `q = softmax(z/T)` and
/// t the label,
/// - `TCKD = T²·(1/B) Σ_b KL([p_t, 1 − p_t] ‖ [q_t, 1 − q_t])` (target class vs the rest), and
/// - `NCKD = T²·(1/B) Σ_b KL(p̂ ‖ q̂)` over the non-target classes, `p̂_i = p_i / (1 − p_t)`,
///   computed as mdistiller does: softmax of the logits with the target logit lowered by
///   1000·T (so its probability is 0).
///
/// `v` is detached.
pub fn dkd(v: Tensor<2>, z: Tensor<2>, y: Tensor<1, Int>, alpha: f64, beta: f64, t: f64) -> Tensor<1> {
    let [b, c] = z.dims();
    let gt = one_hot(y, c);
    let v = v.detach().div_scalar(t);
    let z = z.div_scalar(t);
    let p = softmax(v.clone(), 1);
    let logq = log_softmax(z.clone(), 1);
    let q = logq.exp();
    let ln = |x: Tensor<2>| x.clamp_min(1e-30).log();
    let pt = (p * gt.clone()).sum_dim(1);
    let qt = (q * gt.clone()).sum_dim(1);
    let (p_rest, q_rest) = (pt.clone().neg().add_scalar(1.0), qt.clone().neg().add_scalar(1.0));
    let tckd = pt.clone() * (ln(pt) - ln(qt)) + p_rest.clone() * (ln(p_rest) - ln(q_rest));
    let mask = gt.mul_scalar(1000.0);
    let p_hat = softmax(v - mask.clone(), 1);
    let logq_hat = log_softmax(z - mask, 1);
    let nckd = (p_hat.clone() * (ln(p_hat) - logq_hat)).sum_dim(1);
    (tckd.mul_scalar(alpha) + nckd.mul_scalar(beta)).sum().div_scalar(b as f64).mul_scalar(t * t)
}

/// Pearson correlation of the rows of `a` and `b` `[N, M]`, as DIST's official code: the cosine
/// similarity of the mean-centred rows, `Σ a'b' / (‖a'‖·‖b'‖ + 1e-8)`. Shape `[N, 1]`.
fn pearson_rows(a: Tensor<2>, b: Tensor<2>) -> Tensor<2> {
    let a = a.clone() - a.mean_dim(1);
    let b = b.clone() - b.mean_dim(1);
    let dot = (a.clone() * b.clone()).sum_dim(1);
    let norms = a.powi_scalar(2).sum_dim(1).sqrt() * b.powi_scalar(2).sum_dim(1).sqrt();
    dot / norms.add_scalar(1e-8)
}

/// DIST (Huang et al., NeurIPS 2022, eq. (9)): with `Y_s = softmax(z/τ)` and the detached
/// `Y_t = softmax(v/τ)` `[B, C]`, `inter = 1 − mean_b ρ(Y_s[b,:], Y_t[b,:])` (each sample's
/// class ranking) and `intra = 1 − mean_c ρ(Y_s[:,c], Y_t[:,c])` (each class's ranking of the
/// samples); the loss is `τ²·(β·inter + γ·intra)`.
pub fn dist(v: Tensor<2>, z: Tensor<2>, beta: f64, gamma: f64, tau: f64) -> Tensor<1> {
    let ys = softmax(z.div_scalar(tau), 1);
    let yt = softmax(v.detach().div_scalar(tau), 1);
    let inter = pearson_rows(ys.clone(), yt.clone()).mean().neg().add_scalar(1.0);
    let intra = pearson_rows(ys.transpose(), yt.transpose()).mean().neg().add_scalar(1.0);
    (inter.mul_scalar(beta) + intra.mul_scalar(gamma)).mul_scalar(tau * tau)
}

/// OKDDip's attention-weighted target logits (Chen et al. 2020, eqs. (3)–(4)): for each sample,
/// `α_j = softmax_j(⟨q, k_j⟩)` over the members j and `t = Σ_j α_j·z_j`. `q` `[B, d]` is the
/// target peer's query, `keys[j]` `[B, d]` and `logits[j]` `[B, C]` the members' keys and
/// logits. The gradient flows through α into the query and the keys (the logits should come
/// detached).
pub fn attention_logits(q: Tensor<2>, keys: &[Tensor<2>], logits: &[Tensor<2>]) -> Tensor<2> {
    assert_eq!(keys.len(), logits.len(), "one key per member");
    let energy = Tensor::cat(keys.iter().map(|k| (q.clone() * k.clone()).sum_dim(1)).collect(), 1);
    let alpha = softmax(energy, 1);
    logits.iter().enumerate().map(|(j, z)| z.clone() * alpha.clone().narrow(1, j, 1)).reduce(|a, b| a + b).expect("at least one member")
}

/// `T²·KL(softmax(v/T) ‖ softmax(z/T))`, batchmean, with the target logits `v` **not**
/// detached (OKDDip trains its attention through the target): the gradient reaches both `z`
/// and whatever `v` depends on.
pub fn kl_tracked_target(v: Tensor<2>, z: Tensor<2>, t: f64) -> Tensor<1> {
    let [b, _] = z.dims();
    let logp = log_softmax(v.div_scalar(t), 1);
    let p = logp.clone().exp();
    let logq = log_softmax(z.div_scalar(t), 1);
    (p * (logp - logq)).sum().div_scalar(b as f64).mul_scalar(t * t)
}
