//! Decoupled knowledge distillation.

use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::{Int, Tensor};
use serde::{Deserialize, Serialize};

use super::check::EdgeCheck;
use super::common::one_hot;
use super::kind::{Inputs, LossKind, Reads, Targets};
use crate::values::{Temperature, Weight, unit_weight};

/// `Dkd`: "Decoupled Knowledge Distillation" (Zhao, Cui, Song, Qiu & Liang, CVPR 2022), eq. (7):
/// `α·TCKD + β·NCKD` with `TCKD = T²·KL(b^p ‖ b^q)` over the binary (target class, rest)
/// probabilities and `NCKD = T²·KL(p̂ ‖ q̂)` over the non-target classes renormalised; batch
/// mean. One source. mdistiller's CIFAR defaults: α = 1, β = 8, T = 4, and its linear warm-up
/// over the first 20 epochs (`warmup: 20`: the term × `min(e/20, 1)` in epoch e counted from 1,
/// as mdistiller's `min(kwargs["epoch"] / self.warmup, 1.0)`; 0 = none, the default here).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dkd {
    /// Weight α of the target-class term.
    #[serde(default = "unit_weight")]
    pub alpha: Weight,
    /// Weight β of the non-target term.
    #[serde(default = "dkd_beta")]
    pub beta: Weight,
    /// Temperature T.
    #[serde(default = "dkd_temperature")]
    pub temperature: Temperature,
    /// Epochs of mdistiller's linear warm-up (0: none).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub warmup: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

fn dkd_beta() -> Weight {
    Weight::new(8.0).expect("valid")
}
fn dkd_temperature() -> Temperature {
    Temperature::new(4.0).expect("valid")
}

/// Decoupled KD of the trained logits `z` from the source's `v` with labels `y`: `α·TCKD +
/// β·NCKD`, where with `p = softmax(v/T)`, `q = softmax(z/T)` and t the label,
/// - `TCKD = T²·(1/B) Σ_b KL([p_t, 1 − p_t] ‖ [q_t, 1 − q_t])` (target class vs the rest), and
/// - `NCKD = T²·(1/B) Σ_b KL(p̂ ‖ q̂)` over the non-target classes, `p̂_i = p_i / (1 − p_t)`,
///   computed as mdistiller does: softmax of the logits with the target logit lowered by
///   1000·T (so its probability is 0).
///
/// The non-target masses `1 − p_t` and `1 − q_t` are the sums of the non-target probabilities
/// (mdistiller's `cat_mask`), not `1 − p_t` in floating point, which loses every digit as
/// `p_t → 1`.
///
/// `v` is detached.
///
/// # Shapes
/// `v`, `z` `[B, C]`, `y` `[B]` → `[1]`.
pub fn dkd(v: Tensor<2>, z: Tensor<2>, y: Tensor<1, Int>, alpha: f64, beta: f64, t: f64) -> Tensor<1> {
    let [b, c] = z.dims();
    let gt = one_hot(y, c);
    let v = v.detach().div_scalar(t);
    let z = z.div_scalar(t);
    let p = softmax(v.clone(), 1);
    let logq = log_softmax(z.clone(), 1);
    let q = logq.exp();
    let ln = |x: Tensor<2>| x.clamp_min(1e-30).log();
    let pt = (p.clone() * gt.clone()).sum_dim(1);
    let qt = (q.clone() * gt.clone()).sum_dim(1);
    let others = gt.clone().neg().add_scalar(1.0);
    let (p_rest, q_rest) = ((p * others.clone()).sum_dim(1), (q * others).sum_dim(1));
    let tckd = pt.clone() * (ln(pt) - ln(qt)) + p_rest.clone() * (ln(p_rest) - ln(q_rest));
    let mask = gt.mul_scalar(1000.0);
    let p_hat = softmax(v - mask.clone(), 1);
    let logq_hat = log_softmax(z - mask, 1);
    let nckd = (p_hat.clone() * (ln(p_hat) - logq_hat)).sum_dim(1);
    (tckd.mul_scalar(alpha) + nckd.mul_scalar(beta)).sum().div_scalar(b as f64).mul_scalar(t * t)
}

impl LossKind for Dkd {
    fn name(&self) -> &'static str {
        "Dkd"
    }
    fn label(&self) -> String {
        let warmup = if self.warmup > 0 { format!(", warm-up {}", self.warmup) } else { String::new() };
        format!("DKD(α={}, β={}, T={}{warmup})", self.alpha, self.beta, self.temperature)
    }
    fn reads(&self) -> Reads<'_> {
        Reads::logits(Targets::SourceLogits)
    }
    fn check(&mut self, edge: &mut EdgeCheck) {
        edge.one_source("this loss compares the node with exactly one source", Some("give one node in `from` (a teacher or a peer)"));
    }
    fn loss(&self, i: Inputs) -> Tensor<1> {
        let warm = if self.warmup == 0 { 1.0 } else { ((i.epoch + 1) as f64 / self.warmup as f64).min(1.0) };
        dkd(i.targets[0].clone(), i.z, i.y, self.alpha.get(), self.beta.get(), self.temperature.get()).mul_scalar(warm)
    }
}
