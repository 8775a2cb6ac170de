//! FitNets hints: a target's intermediate features regressed onto a source's.

use burn::tensor::Tensor;
use burn::tensor::activation::relu;
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
///
/// `form: RepDistiller` is the form of the KD tables (RepDistiller's `distiller_zoo/FitNet.py`
/// and `ConvReg`, vendored under `third_party/RepDistiller/`): the mean squared error over every
/// element, `(1/(B·N)) Σ (u − r(v))²` — not ½ the squared norm per sample: the two differ by a
/// factor N/2, N the tap's size, so RepDistiller's weight (β = 100) means its form —, through
/// `r` = a 1×1 convolution with bias, a batch norm and a ReLU (ConvReg between taps at the same
/// positions; maps or sequences).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hint {
    /// Tap of the source (the hint).
    pub from_tap: String,
    /// Tap of the target (the guided layer).
    pub to_tap: String,
    /// The paper's form (default) or RepDistiller's.
    #[serde(default, skip_serializing_if = "HintForm::is_paper")]
    pub form: HintForm,
}

/// How a hint is regressed and reduced ([`Hint`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum HintForm {
    /// `½‖u − r(v)‖²` averaged over the batch, r linear or a 1×1 convolution (FitNets, eq. 3).
    #[default]
    Paper,
    /// The mean squared error over every element, r = 1×1 convolution → BN → ReLU (RepDistiller).
    RepDistiller,
}

impl HintForm {
    fn is_paper(&self) -> bool {
        *self == HintForm::Paper
    }
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

/// RepDistiller's hint, `(1/(B·N)) Σ (u − r(v))²` (PyTorch's `MSELoss`, a mean over every
/// element) for the source's detached hint `u` and the regressed features `r(v)`.
///
/// # Shapes
/// `u`, `rv` `[B, N]` → `[1]`.
pub fn hint_mse(u: Tensor<2>, rv: Tensor<2>) -> Tensor<1> {
    (rv - u.detach()).powi_scalar(2).mean()
}

/// `r(v)`: the paper's regressor, or RepDistiller's ConvReg (a connector — convolution and batch
/// norm — then a ReLU).
pub fn regress(r: &Adapter, v: Tap) -> Tap {
    match (r, v) {
        (Adapter::Connector(c), v) => match c.forward(v) {
            Tap::Seq(t) => Tap::Seq(relu(t)),
            Tap::Map(t) => Tap::Map(relu(t)),
            Tap::Flat(t) => Tap::Flat(relu(t)),
        },
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
        match self.form {
            HintForm::Paper => format!("Hint({} -> {})", self.from_tap, self.to_tap),
            HintForm::RepDistiller => format!("Hint({} -> {}, RepDistiller)", self.from_tap, self.to_tap),
        }
    }
    fn reads(&self) -> Reads<'_> {
        Reads { targets: Targets::Features, own_taps: std::slice::from_ref(&self.to_tap), source_taps: std::slice::from_ref(&self.from_tap) }
    }
    fn check(&mut self, edge: &mut EdgeCheck) {
        if let Some((u, v)) = edge.feature_taps(&self.from_tap, &self.to_tap) {
            edge.same_positions("a hint (its adapter maps channels, not positions)", (&self.from_tap, &u), (&self.to_tap, &v));
            if self.form == HintForm::RepDistiller && (u.len() < 2 || v.len() < 2) {
                let msg =
                    format!("RepDistiller's hint regresses feature maps or sequences (ConvReg): `{}` is {u:?}, `{}` is {v:?}", self.from_tap, self.to_tap);
                let d = crate::diagnostics::Diagnostic::at(edge.loss_path().field("form"), msg);
                edge.error(d.hint("use the paper's form (the default) on flat features, or taps of a convolutional network"));
            }
        }
    }
    fn adapter(&self, own: &dyn Fn(&str) -> Vec<usize>, source: &dyn Fn(&str) -> Vec<usize>, _samples: usize) -> Option<AdapterSpec> {
        let (from, to) = (own(&self.to_tap), source(&self.from_tap));
        Some(match self.form {
            HintForm::Paper => AdapterSpec::Hint { from, to },
            HintForm::RepDistiller => AdapterSpec::Connector { from, to },
        })
    }
    fn loss(&self, i: Inputs) -> Tensor<1> {
        let rv = regress(i.adapter.expect("every hint term has an adapter"), i.own_tap()).channels_by_positions().flatten(1, 2);
        let u = i.source_taps[0].clone().channels_by_positions().flatten(1, 2);
        match self.form {
            HintForm::Paper => hint(u, rv),
            HintForm::RepDistiller => hint_mse(u, rv),
        }
    }
}
