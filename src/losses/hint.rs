//! FitNets hints: a target's intermediate features regressed onto a source's.

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use super::adapter::{Adapter, AdapterSpec};
use super::check::EdgeCheck;
use super::kind::{Inputs, LossKind, Reads, Targets};
use crate::kernels;
use crate::models::tap::Tap;

/// `Hint`: `½‖u − r(v)‖²` (mean over the batch) between the source's tap `from_tap` (u,
/// detached) and the target's tap `to_tap` (v) through a learned regressor r — "FitNets: Hints
/// for Thin Deep Nets" (Romero et al., ICLR 2015), eq. (3). r is a linear map for flat features
/// and a 1×1 convolution for feature maps (channels `C_to → C_from`, positions unchanged).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hint {
    /// Tap of the source (the hint).
    pub from_tap: String,
    /// Tap of the target (the guided layer).
    pub to_tap: String,
}

/// FitNets hint: `½·(1/B) Σ_b ‖u_b − r(v)_b‖²` for the source's detached hint `u` and the
/// adapted guided features `r(v)`; the squared norm sums over features, the mean is over the
/// batch.
///
/// # Shapes
/// `u`, `rv` `[B, N]` (features flattened) → `[1]`.
pub fn hint(u: Tensor<2>, rv: Tensor<2>) -> Tensor<1> {
    let [b, _] = rv.dims();
    (rv - u.detach()).powi_scalar(2).sum().div_scalar(2.0 * b as f64)
}

/// `r(v)`.
pub fn regress(r: &Adapter, v: Tap) -> Tap {
    match (r, v) {
        (Adapter::Linear(l), Tap::Flat(t)) => Tap::Flat(kernels::linear(l, t)),
        (Adapter::Conv1d(c), Tap::Seq(t)) => Tap::Seq(c.forward(t)),
        (Adapter::Conv2d(c), Tap::Map(t)) => Tap::Map(c.forward(t)),
        _ => panic!("adapter and tap ranks differ, or not a hint adapter (the resolver checks tap shapes)"),
    }
}

impl LossKind for Hint {
    fn name(&self) -> &'static str {
        "Hint"
    }
    fn label(&self) -> String {
        format!("Hint({} -> {})", self.from_tap, self.to_tap)
    }
    fn reads(&self) -> Reads<'_> {
        Reads { targets: Targets::Features, own_taps: std::slice::from_ref(&self.to_tap), source_taps: std::slice::from_ref(&self.from_tap) }
    }
    fn check(&mut self, edge: &mut EdgeCheck) {
        if let Some((u, v)) = edge.feature_taps(&self.from_tap, &self.to_tap) {
            edge.same_positions("a hint (its adapter maps channels, not positions)", (&self.from_tap, &u), (&self.to_tap, &v));
        }
    }
    fn adapter(&self, own: &dyn Fn(&str) -> Vec<usize>, source: &dyn Fn(&str) -> Vec<usize>) -> Option<AdapterSpec> {
        Some(AdapterSpec::Hint { from: own(&self.to_tap), to: source(&self.from_tap) })
    }
    fn loss(&self, i: Inputs) -> Tensor<1> {
        let rv = regress(i.adapter.expect("every hint term has an adapter"), i.own_tap());
        hint(i.source_taps[0].clone().channels_by_positions().flatten(1, 2), rv.channels_by_positions().flatten(1, 2))
    }
}
