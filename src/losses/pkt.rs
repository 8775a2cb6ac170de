//! Probabilistic knowledge transfer: the batch's cosine-similarity distributions of a source's
//! features taught to a target's.

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use super::check::EdgeCheck;
use super::common::flat_features;
use super::kind::{Inputs, LossKind, Reads, Targets};
use crate::diagnostics::Diagnostic;

/// `Pkt`: "Learning Deep Representations with Probabilistic Knowledge Transfer" (Passalis &
/// Tefas, ECCV 2018), with the cosine kernel of the authors' code: each feature vector scaled to
/// unit norm (`f / (‖f‖ + ε)`, ε = 1e-7), `K = (f·fᵀ + 1)/2`, each row made a distribution
/// `P_ij = K_ij / Σ_j K_ij`, and `mean_ij P^t_ij · log((P^t_ij + ε)/(P^s_ij + ε))` — a KL divergence
/// averaged over the `B²` entries — between the source's (t, detached) and the target's (s) flat
/// features. As RepDistiller's `distiller_zoo/PKT.py` (vendored under `third_party/RepDistiller/`),
/// which reads the pooled features (`pool`) and weights the term 30000.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pkt {
    /// Tap of the source (flat features).
    pub from_tap: String,
    /// Tap of the target (flat features).
    pub to_tap: String,
}

const EPS: f64 = 1e-7;

/// The row-stochastic cosine-kernel matrix `P` of a batch of features.
///
/// # Shapes
/// `f` `[B, F]` → `[B, B]`.
pub fn cosine_distribution(f: Tensor<2>) -> Tensor<2> {
    let norm = f.clone().powi_scalar(2).sum_dim(1).sqrt();
    let f = f / norm.add_scalar(EPS);
    let k = f.clone().matmul(f.transpose()).add_scalar(1.0).div_scalar(2.0);
    k.clone() / k.sum_dim(1)
}

/// `mean_ij P^t_ij · log((P^t_ij + ε)/(P^s_ij + ε))` for the source's detached features `t` and the
/// target's `s`.
///
/// # Shapes
/// `t` `[B, F_t]`, `s` `[B, F_s]` → `[1]`.
pub fn pkt_loss(t: Tensor<2>, s: Tensor<2>) -> Tensor<1> {
    let (pt, ps) = (cosine_distribution(t.detach()), cosine_distribution(s));
    (pt.clone() * (pt.add_scalar(EPS).log() - ps.add_scalar(EPS).log())).mean()
}

impl LossKind for Pkt {
    fn name(&self) -> &'static str {
        "Pkt"
    }
    fn label(&self) -> String {
        format!("Pkt({} -> {})", self.from_tap, self.to_tap)
    }
    fn reads(&self) -> Reads<'_> {
        Reads { targets: Targets::Features, own_taps: std::slice::from_ref(&self.to_tap), source_taps: std::slice::from_ref(&self.from_tap) }
    }
    /// One source, and flat taps (the reference multiplies feature matrices `[B, F]`).
    fn check(&mut self, edge: &mut EdgeCheck) {
        let Some((u, v)) = edge.feature_taps(&self.from_tap, &self.to_tap) else { return };
        for (field, tap, shape) in [("from_tap", &self.from_tap, &u), ("to_tap", &self.to_tap, &v)] {
            if shape.len() != 1 {
                let msg = format!("PKT compares flat feature vectors, but `{tap}` is a feature map {shape:?}");
                edge.error(
                    Diagnostic::at(edge.loss_path().field(field), msg).hint("use a flat tap: a conv network's pooled features (`pool`), an MLP's `hidden<i>`"),
                );
            }
        }
    }
    fn loss(&self, i: Inputs) -> Tensor<1> {
        pkt_loss(flat_features(i.source_taps[0].clone()), flat_features(i.own_tap()))
    }
}
