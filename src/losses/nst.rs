//! Neuron selectivity transfer: the distributions of a source's and a target's channels over the
//! positions of a feature map, matched by a polynomial-kernel MMD.

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use super::check::EdgeCheck;
use super::kind::{Inputs, LossKind, Reads, Targets};
use crate::diagnostics::Diagnostic;

/// `Nst`: "Like What You Like: Knowledge Distill via Neuron Selectivity Transfer" (Huang & Wang,
/// 2017), eq. (5) with the polynomial kernel `k(x, y) = (xᵀy)²` (d = 2, c = 0): each channel's map
/// flattened over the positions and L2-normalised (`max(‖·‖, 1e-12)`), then per sample
/// `mean_{ij} k(t_i, t_j) + mean_{ij} k(s_i, s_j) − 2·mean_{ij} k(s_i, t_j)` over the channels, averaged
/// over the batch, between the source's (t, detached) and the target's (s) maps — the channel
/// counts may differ, the positions must agree. As RepDistiller's `distiller_zoo/NST.py` (vendored
/// under `third_party/RepDistiller/`, which average-pools the larger of two maps of different
/// sizes down first; cohort asks for taps of the same size instead), which sums the term over the
/// stage outputs and weights it 50.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Nst {
    /// Tap of the source.
    pub from_tap: String,
    /// Tap of the target.
    pub to_tap: String,
}

/// The polynomial kernel `(⟨a_i, b_j⟩)²` of every pair of channels, per sample.
///
/// # Shapes
/// `a` `[B, C_a, N]`, `b` `[B, C_b, N]` → `[B, C_b, C_a]`.
fn poly_kernel(a: Tensor<3>, b: Tensor<3>) -> Tensor<3> {
    b.matmul(a.swap_dims(1, 2)).powi_scalar(2)
}

/// Each channel's map L2-normalised over the positions.
///
/// # Shapes
/// `f` `[B, C, N]` → `[B, C, N]`.
fn normalize_channels(f: Tensor<3>) -> Tensor<3> {
    let norm = super::common::safe_norm(f.clone().powi_scalar(2).sum_dim(2));
    f / norm
}

/// The NST loss for the source's detached maps `t` and the target's `s`.
///
/// # Shapes
/// `t` `[B, C_t, N]`, `s` `[B, C_s, N]` → `[1]`.
pub fn nst_loss(t: Tensor<3>, s: Tensor<3>) -> Tensor<1> {
    let (t, s) = (normalize_channels(t.detach()), normalize_channels(s));
    poly_kernel(t.clone(), t.clone()).mean() + poly_kernel(s.clone(), s.clone()).mean() - poly_kernel(s, t).mean().mul_scalar(2.0)
}

impl LossKind for Nst {
    fn name(&self) -> &'static str {
        "Nst"
    }
    fn label(&self) -> String {
        format!("Nst({} -> {})", self.from_tap, self.to_tap)
    }
    fn reads(&self) -> Reads<'_> {
        Reads { targets: Targets::Features, own_taps: std::slice::from_ref(&self.to_tap), source_taps: std::slice::from_ref(&self.from_tap) }
    }
    /// One source, feature maps (not flat vectors), at the same positions.
    fn check(&mut self, edge: &mut EdgeCheck) {
        let Some((u, v)) = edge.feature_taps(&self.from_tap, &self.to_tap) else { return };
        if edge.same_positions("neuron selectivity transfer", (&self.from_tap, &u), (&self.to_tap, &v)) && u.len() < 2 {
            let msg = format!("neuron selectivity transfer compares channels over positions, but `{}` is a flat vector {u:?}", self.from_tap);
            edge.error(Diagnostic::at(edge.loss_path(), msg).hint("use conv taps (`block2`, `stage3`, ...)"));
        }
    }
    fn loss(&self, i: Inputs) -> Tensor<1> {
        nst_loss(i.source_taps[0].clone().channels_by_positions(), i.own_tap().channels_by_positions())
    }
}
