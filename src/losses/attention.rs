//! Attention transfer between feature maps.

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use super::check::EdgeCheck;
use super::kind::{Inputs, LossKind, Reads, Targets};
use crate::diagnostics::Diagnostic;

/// `Attention`: mean of `(at(v) − at(u))²` with `at(x) = normalize(mean_c x²)` — "Paying More
/// Attention to Attention" (Zagoruyko & Komodakis, ICLR 2017), eq. (2) with p = 2.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attention {
    /// Tap of the source.
    pub from_tap: String,
    /// Tap of the target.
    pub to_tap: String,
}

/// Attention map of a feature map, Zagoruyko & Komodakis 2017 with p = 2: `at(x)_b = a_b /
/// max(‖a_b‖₂, 1e-12)` where `a_bn = (1/C) Σ_c x_bcn²`.
///
/// # Shapes
/// `x` `[B, C, N]` (positions flattened) → `[B, N]`.
pub fn attention_map(x: Tensor<3>) -> Tensor<2> {
    let [b, _, n] = x.dims();
    let a: Tensor<2> = x.powi_scalar(2).mean_dim(1).reshape([b, n]);
    let norm = a.clone().powi_scalar(2).sum_dim(1).sqrt().clamp_min(1e-12);
    a / norm
}

/// Attention transfer loss: `(1/(B·N)) Σ_{b,n} (at(v)_bn − at(u)_bn)²` between the trained
/// features `v` and the source's detached features `u`.
///
/// # Shapes
/// `u` `[B, C_u, N]`, `v` `[B, C_v, N]` (channel counts may differ) → `[1]`.
pub fn attention_transfer(u: Tensor<3>, v: Tensor<3>) -> Tensor<1> {
    (attention_map(v) - attention_map(u.detach())).powi_scalar(2).mean()
}

impl LossKind for Attention {
    fn name(&self) -> &'static str {
        "Attention"
    }
    fn label(&self) -> String {
        format!("Attention({} -> {})", self.from_tap, self.to_tap)
    }
    fn reads(&self) -> Reads<'_> {
        Reads { targets: Targets::Features, own_taps: std::slice::from_ref(&self.to_tap), source_taps: std::slice::from_ref(&self.from_tap) }
    }
    /// Taps at the same resolution, and feature maps (not flat vectors).
    fn check(&mut self, edge: &mut EdgeCheck) {
        let Some((u, v)) = edge.feature_taps(&self.from_tap, &self.to_tap) else { return };
        if edge.same_positions("attention transfer", (&self.from_tap, &u), (&self.to_tap, &v)) && u.len() < 2 {
            let msg = format!("attention transfer needs feature maps, but `{}` is a flat vector {u:?}", self.from_tap);
            edge.error(Diagnostic::at(edge.loss_path(), msg).hint("use conv taps (`block1`, `stage2`, ...), or `Hint` for flat features"));
        }
    }
    fn loss(&self, i: Inputs) -> Tensor<1> {
        attention_transfer(i.source_taps[0].clone().channels_by_positions(), i.own_tap().channels_by_positions())
    }
}
