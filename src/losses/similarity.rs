//! Similarity-preserving distillation: the batch's pairwise similarities of a source's features
//! taught to a target's.

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use super::check::EdgeCheck;
use super::common::flat_features;
use super::kind::{Inputs, LossKind, Reads, Targets};

/// `Similarity` (SP): "Similarity-Preserving Knowledge Distillation" (Tung & Mori, ICCV 2019),
/// eqs. (1)–(4): with `Q = f·fᵀ` the `[B, B]` Gram matrix of a batch's features (flattened), `G`
/// its rows L2-normalised, `(1/B²) ‖G_t − G_s‖²_F` between the source's (t, detached) and the
/// target's (s) features at the taps named — the two may have different widths. As RepDistiller's
/// `distiller_zoo/SP.py` (vendored under `third_party/RepDistiller/`): rows normalised by
/// `max(‖row‖₂, 1e-12)`; RepDistiller reads the last stage's feature map (the CIFAR networks'
/// `stage3` / `group3`) and weights the term 3000.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Similarity {
    /// Tap of the source.
    pub from_tap: String,
    /// Tap of the target.
    pub to_tap: String,
}

/// The row-normalised Gram matrix `G = normalize_rows(f·fᵀ)` of a batch of features.
///
/// # Shapes
/// `f` `[B, F]` → `[B, B]`.
pub fn similarity_matrix(f: Tensor<2>) -> Tensor<2> {
    let q = f.clone().matmul(f.transpose());
    let norm = super::common::safe_norm(q.clone().powi_scalar(2).sum_dim(1));
    q / norm
}

/// `(1/B²) Σ (G_t − G_s)²` for the source's detached features `t` and the target's `s`.
///
/// # Shapes
/// `t` `[B, F_t]`, `s` `[B, F_s]` → `[1]`.
pub fn similarity_loss(t: Tensor<2>, s: Tensor<2>) -> Tensor<1> {
    let [b, _] = s.dims();
    (similarity_matrix(t.detach()) - similarity_matrix(s)).powi_scalar(2).sum().div_scalar((b * b) as f64)
}

impl LossKind for Similarity {
    fn name(&self) -> &'static str {
        "Similarity"
    }
    fn label(&self) -> String {
        format!("Similarity({} -> {})", self.from_tap, self.to_tap)
    }
    fn reads(&self) -> Reads<'_> {
        Reads { targets: Targets::Features, own_taps: std::slice::from_ref(&self.to_tap), source_taps: std::slice::from_ref(&self.from_tap) }
    }
    /// One source, and taps that exist (any rank: the features are flattened).
    fn check(&mut self, edge: &mut EdgeCheck) {
        edge.feature_taps(&self.from_tap, &self.to_tap);
    }
    fn loss(&self, i: Inputs) -> Tensor<1> {
        similarity_loss(flat_features(i.source_taps[0].clone()), flat_features(i.own_tap()))
    }
}
