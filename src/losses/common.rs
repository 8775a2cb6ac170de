//! The arithmetic several loss kinds share: softened targets, the KL divergence to a target
//! distribution, logit standardisation, two feature maps brought to the same positions.
//!
//! Notation: `z` logits `[B, C]` of the network being trained, `v` logits of a source, `T`
//! temperature, `p^T = softmax(v/T)`, `q^T = softmax(z/T)`, `B` batch size. Reductions are batch
//! means ("batchmean": sum over classes, mean over the batch), never means over `B·C`.

use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::module::{adaptive_avg_pool1d, adaptive_avg_pool2d};
use burn::tensor::{Int, Tensor};

use crate::models::tap::Tap;

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

/// The trained logits and the sources' logits, z-scored when `standardize` (Sun et al. 2024).
pub fn standardized(standardize: bool, z: Tensor<2>, sources: Vec<Tensor<2>>) -> (Tensor<2>, Vec<Tensor<2>>) {
    if standardize { (standardize_logits(z), sources.into_iter().map(standardize_logits).collect()) } else { (z, sources) }
}

/// `", z-scored"` in a label when the logits are standardised.
pub fn z_label(standardize: bool) -> &'static str {
    if standardize { ", z-scored" } else { "" }
}

/// `[B, C]` one-hot rows of the labels `y`.
pub fn one_hot(y: Tensor<1, Int>, c: usize) -> Tensor<2> {
    let [b] = y.dims();
    let classes = Tensor::<1, Int>::arange(0..c as i64, &y.device()).reshape([1, c]).expand([b, c]);
    y.reshape([b, 1]).expand([b, c]).equal(classes).float()
}

/// Mean over the batch of a tap's positions: flat taps as they are, maps averaged over their
/// positions, `[B, C]`.
pub fn pooled(t: crate::models::tap::Tap) -> Tensor<2> {
    let m = t.channels_by_positions();
    let [b, c, _] = m.dims();
    m.mean_dim(2).reshape([b, c])
}

/// `max(sqrt(x), 1e-12)` with PyTorch's gradient at 0 (none): the square root is taken of
/// `max(x, 1e-24)`, the same value, so that the clamp's zero gradient is not multiplied by the
/// square root's infinite one at 0 (e.g. RKD's difference vector of a sample with itself).
pub fn safe_norm<const D: usize>(squares: Tensor<D>) -> Tensor<D> {
    squares.clamp_min(1e-24).sqrt().clamp_min(1e-12)
}

/// A tap as `[B, features]`: every feature of a sample in one row (a map flattened channel by
/// channel), as the relational losses compare samples.
pub fn flat_features(t: crate::models::Tap) -> Tensor<2> {
    t.channels_by_positions().flatten(1, 2)
}

/// The two taps at the same positions: the one with more positions average-pooled to the
/// other's (RepDistiller pools the larger map).
pub fn common_positions(t: Tap, s: Tap) -> (Tap, Tap) {
    match (t, s) {
        (Tap::Seq(t), Tap::Seq(s)) => {
            let (lt, ls) = (t.dims()[2], s.dims()[2]);
            if ls > lt {
                (Tap::Seq(t), Tap::Seq(adaptive_avg_pool1d(s, lt)))
            } else if lt > ls {
                (Tap::Seq(adaptive_avg_pool1d(t, ls)), Tap::Seq(s))
            } else {
                (Tap::Seq(t), Tap::Seq(s))
            }
        }
        (Tap::Map(t), Tap::Map(s)) => {
            let ([.., ht, wt], [.., hs, ws]) = (t.dims(), s.dims());
            if hs * ws > ht * wt {
                (Tap::Map(t), Tap::Map(adaptive_avg_pool2d(s, [ht, wt])))
            } else if ht * wt > hs * ws {
                (Tap::Map(adaptive_avg_pool2d(t, [hs, ws])), Tap::Map(s))
            } else {
                (Tap::Map(t), Tap::Map(s))
            }
        }
        (t, s) => (t, s),
    }
}
