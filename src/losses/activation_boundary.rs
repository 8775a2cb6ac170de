//! Activation-boundary distillation: the target's pre-activations pushed to the side of zero the
//! source's are on, with a margin.

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use super::adapter::{Adapter, AdapterSpec};
use super::check::EdgeCheck;
use super::kind::{Inputs, LossKind, Reads, Targets};
use crate::diagnostics::Diagnostic;
use crate::models::tap::Tap;

/// `ActivationBoundary` (AB): "Knowledge Transfer via Distillation of Activation Boundaries
/// Formed by Hidden Neurons" (Heo et al., AAAI 2019), eq. (6), the alternative L2 loss, as
/// RepDistiller's `distiller_zoo/AB.py` (vendored under `third_party/RepDistiller/`) computes it:
/// with `s = r(v)` the target's pre-activation `v` through the connector `r` and `t` the
/// source's (detached) pre-activation at the taps named,
///
/// `(3/1000)·(1/B)·Σ [ (s + m)²·1(s > −m ∧ t ≤ 0) + (s − m)²·1(s ≤ m ∧ t > 0) ]`
///
/// summed over channels and positions, the margin m = 1 by default: a target neuron is pushed
/// below −m where the source's is off and above m where it is on. The connector `r` is
/// RepDistiller's `Connector`: nothing when the two taps have the same shape, else a 1×1
/// convolution (with bias) and a batch norm to the source's channels (`ConvReg(…,
/// use_relu=False)`); the taps must have the same positions. RepDistiller sums the term over the
/// last block of every stage (`feat[1:-1]` with `preact=True`: the `*_pre` taps of cohort's
/// networks) with weights 2^(i−n+1) (¼, ½, 1 for three stages: one edge per tap pair, its weight
/// that factor), and trains it alone in an initialisation stage (30 epochs) before the
/// classification stage, where its weight is 0 (`-a 0 -b 0`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivationBoundary {
    /// Tap of the source (a pre-activation, e.g. `stage1_pre`).
    pub from_tap: String,
    /// Tap of the target (a pre-activation).
    pub to_tap: String,
    /// The margin m.
    #[serde(default = "default_margin")]
    pub margin: f64,
}

fn default_margin() -> f64 {
    1.0
}

/// The alternative L2 of activation boundaries, `(3/1000)·(1/B)·Σ [(s + m)²·1(s > −m ∧ t ≤ 0) +
/// (s − m)²·1(s ≤ m ∧ t > 0)]`, for the connected target pre-activations `s` and the source's
/// detached `t` (the indicators are constants: no gradient through them).
///
/// # Shapes
/// `s`, `t` `[B, N]` (channels and positions flattened) → `[1]`.
pub fn activation_boundary_loss(s: Tensor<2>, t: Tensor<2>, margin: f64) -> Tensor<1> {
    let [b, _] = s.dims();
    let t = t.detach();
    let off = s.clone().detach().greater_elem(-margin).bool_and(t.clone().lower_equal_elem(0.0)).float();
    let on = s.clone().detach().lower_equal_elem(margin).bool_and(t.greater_elem(0.0)).float();
    let loss = s.clone().add_scalar(margin).powi_scalar(2) * off + s.sub_scalar(margin).powi_scalar(2) * on;
    loss.sum().div_scalar(b as f64).mul_scalar(3.0 / 1000.0)
}

/// `r(v)`: the connector on the target's pre-activation (nothing without one).
pub fn connect(r: Option<&Adapter>, v: Tap) -> Tap {
    match (r, v) {
        (None, v) => v,
        (Some(Adapter::Connector(c)), v) => c.forward(v),
        _ => panic!("an activation-boundary term's adapter is its connector"),
    }
}

impl LossKind for ActivationBoundary {
    fn name(&self) -> &'static str {
        "ActivationBoundary"
    }
    fn label(&self) -> String {
        format!("ActivationBoundary({} -> {})", self.from_tap, self.to_tap)
    }
    fn reads(&self) -> Reads<'_> {
        Reads { targets: Targets::Features, own_taps: std::slice::from_ref(&self.to_tap), source_taps: std::slice::from_ref(&self.from_tap) }
    }
    /// One source; maps or sequences at the same positions on both sides; a margin above 0.
    fn check(&mut self, edge: &mut EdgeCheck) {
        if !(self.margin.is_finite() && self.margin > 0.0) {
            let d = Diagnostic::at(edge.loss_path().field("margin"), format!("the margin must be a number above 0, got {}", self.margin));
            edge.error(d.hint("the paper's and RepDistiller's margin is `margin: 1.0`"));
        }
        let Some((u, v)) = edge.feature_taps(&self.from_tap, &self.to_tap) else { return };
        if u.len() < 2 || v.len() < 2 {
            let msg = format!("activation boundaries are read on feature maps or sequences: `{}` is {u:?}, `{}` is {v:?}", self.from_tap, self.to_tap);
            let d = Diagnostic::at(edge.loss_path(), msg);
            edge.error(
                d.hint("use the pre-activation taps of a convolutional network, e.g. `stage1_pre` (ResNet), `group1_pre` (WRN) or `block1_pre` (Cnn1d)"),
            );
            return;
        }
        edge.same_positions("activation-boundary distillation (its connector maps channels, not positions)", (&self.from_tap, &u), (&self.to_tap, &v));
    }
    /// The connector, where the target's channels differ from the source's.
    fn adapter(&self, own: &dyn Fn(&str) -> Vec<usize>, source: &dyn Fn(&str) -> Vec<usize>, _samples: usize) -> Option<AdapterSpec> {
        let (from, to) = (own(&self.to_tap), source(&self.from_tap));
        (from != to).then_some(AdapterSpec::Connector { from, to })
    }
    fn loss(&self, i: Inputs) -> Tensor<1> {
        let s = connect(i.adapter, i.own_tap()).channels_by_positions().flatten(1, 2);
        let t = i.source_taps[0].clone().channels_by_positions().flatten(1, 2);
        activation_boundary_loss(s, t, self.margin)
    }
}
