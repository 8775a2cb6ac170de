//! DIST: distillation of the relations between predictions.

use burn::tensor::Tensor;
use burn::tensor::activation::softmax;
use serde::{Deserialize, Serialize};

use super::check::EdgeCheck;
use super::kind::{Inputs, LossKind, Reads, Targets};
use crate::values::{Temperature, Weight, unit_temperature, unit_weight};

/// `Dist`: "Knowledge Distillation from A Stronger Teacher" (Huang, You, Wang, Qian & Xu,
/// NeurIPS 2022), eq. (9): `τ²·(β·inter + γ·intra)` with `inter = 1 − mean_b ρ(Y_s[b,:],
/// Y_t[b,:])`, `intra = 1 − mean_c ρ(Y_s[:,c], Y_t[:,c])`, ρ the Pearson correlation and `Y =
/// softmax(logits/τ)`. One source.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dist {
    /// Weight β of the inter-class relation.
    #[serde(default = "unit_weight")]
    pub beta: Weight,
    /// Weight γ of the intra-class relation.
    #[serde(default = "unit_weight")]
    pub gamma: Weight,
    /// Temperature τ.
    #[serde(default = "unit_temperature")]
    pub temperature: Temperature,
}

/// Pearson correlation of the rows of `a` and `b`, as DIST's official code: the cosine
/// similarity of the mean-centred rows, `Σ a'b' / (‖a'‖·‖b'‖ + 1e-8)`.
///
/// # Shapes
/// `a`, `b` `[N, M]` → `[N, 1]`.
fn pearson_rows(a: Tensor<2>, b: Tensor<2>) -> Tensor<2> {
    let a = a.clone() - a.mean_dim(1);
    let b = b.clone() - b.mean_dim(1);
    let dot = (a.clone() * b.clone()).sum_dim(1);
    let norms = a.powi_scalar(2).sum_dim(1).sqrt() * b.powi_scalar(2).sum_dim(1).sqrt();
    dot / norms.add_scalar(1e-8)
}

/// DIST: with `Y_s = softmax(z/τ)` and the detached `Y_t = softmax(v/τ)`, `inter = 1 − mean_b
/// ρ(Y_s[b,:], Y_t[b,:])` (each sample's class ranking) and `intra = 1 − mean_c ρ(Y_s[:,c],
/// Y_t[:,c])` (each class's ranking of the samples); the loss is `τ²·(β·inter + γ·intra)`.
///
/// # Shapes
/// `v`, `z` `[B, C]` → `[1]`.
pub fn dist(v: Tensor<2>, z: Tensor<2>, beta: f64, gamma: f64, tau: f64) -> Tensor<1> {
    let ys = softmax(z.div_scalar(tau), 1);
    let yt = softmax(v.detach().div_scalar(tau), 1);
    let inter = pearson_rows(ys.clone(), yt.clone()).mean().neg().add_scalar(1.0);
    let intra = pearson_rows(ys.transpose(), yt.transpose()).mean().neg().add_scalar(1.0);
    (inter.mul_scalar(beta) + intra.mul_scalar(gamma)).mul_scalar(tau * tau)
}

impl LossKind for Dist {
    fn name(&self) -> &'static str {
        "Dist"
    }
    fn label(&self) -> String {
        format!("DIST(β={}, γ={}, τ={})", self.beta, self.gamma, self.temperature)
    }
    fn reads(&self) -> Reads<'_> {
        Reads::logits(Targets::SourceLogits)
    }
    fn check(&mut self, edge: &mut EdgeCheck) {
        edge.one_source("this loss compares the node with exactly one source", Some("give one node in `from` (a teacher or a peer)"));
    }
    fn loss(&self, i: Inputs) -> Tensor<1> {
        dist(i.targets[0].clone(), i.z, self.beta.get(), self.gamma.get(), self.temperature.get())
    }
}
