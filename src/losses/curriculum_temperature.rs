//! Curriculum temperature: soft targets at a temperature learned adversarially, through a
//! gradient reversal whose strength grows epoch by epoch.

use burn::tensor::Tensor;
use burn::tensor::activation::{log_softmax, sigmoid};
use serde::{Deserialize, Serialize};

use super::adapter::{Adapter, AdapterSpec};
use super::check::EdgeCheck;
use super::kind::{Diagnostics, Inputs, LossKind, Reads, Targets};
use crate::diagnostics::Diagnostic;

/// `CurriculumTemperature` (CTKD, global temperature): "Curriculum Temperature for Knowledge
/// Distillation" (Li et al., AAAI 2023), as the authors' code computes it (`models/temp_global.py`,
/// `distiller_zoo/KD.py`, vendored under `third_party/CTKD/`): Hinton's
/// `T²·KL(softmax(v/T) ‖ softmax(z/T))` (batchmean; the source's logits v detached, T in both
/// softmaxes and in the T²) at a learned temperature `T = t_start + t_end·sigmoid(θ)`, θ one
/// parameter starting at 1 and learned with the target by its optimiser — through a gradient
/// reversal: θ's gradient is multiplied by `λ(e) = ((cos(min(e, L)·π/L) + 1)/2)·(max − min) + min`
/// in epoch e (from 1; `CosineDecay` of `train_student.py`), which goes from `decay_max` (0) to
/// `decay_min` (−1) over L = `decay_loops` (10) epochs, so T is pushed to *raise* the loss the
/// student lowers, harder and harder. The temperature is recorded per epoch (its mean over the
/// epoch's steps, `temperature:<term>` rows). One source.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CurriculumTemperature {
    /// The lowest temperature (the authors' `--t_start`, 1).
    #[serde(default = "one")]
    pub t_start: f64,
    /// The temperature's range above it (`--t_end`, 20: T ∈ (t_start, t_start + t_end)).
    #[serde(default = "twenty")]
    pub t_end: f64,
    /// λ in the first epoch's limit (`--decay_max`, 0).
    #[serde(default)]
    pub decay_max: f64,
    /// λ from epoch `decay_loops` on (`--decay_min`, −1).
    #[serde(default = "minus_one")]
    pub decay_min: f64,
    /// Epochs of the cosine from `decay_max` to `decay_min` (`--decay_loops`, 10).
    #[serde(default = "ten")]
    pub decay_loops: usize,
}

fn one() -> f64 {
    1.0
}
fn twenty() -> f64 {
    20.0
}
fn minus_one() -> f64 {
    -1.0
}
fn ten() -> usize {
    10
}

/// The gradient reversal's weight λ in epoch `e` (from 1).
pub fn reversal_weight(e: usize, max: f64, min: f64, loops: usize) -> f64 {
    let i = e.min(loops) as f64;
    ((i * std::f64::consts::PI / loops as f64).cos() + 1.0) * 0.5 * (max - min) + min
}

/// `θ` forward, `λ·∂L/∂θ` backward: `θ·λ + sg(θ)·(1 − λ)`.
fn reversed(theta: Tensor<1>, lambda: f64) -> Tensor<1> {
    theta.clone().detach().mul_scalar(1.0 - lambda) + theta.mul_scalar(lambda)
}

/// CTKD's term and its temperature: `T = t_start + t_end·sigmoid(θ)` (θ's gradient × λ),
/// `T²·(1/B) Σ_b Σ_c p_bc (log p_bc − log softmax(z_b/T)_c)` with `p = softmax(v/T)`, v detached.
///
/// # Shapes
/// `z`, `v` `[B, C]`, `theta` `[1]` → (`[1]`, T).
pub fn curriculum_kd(z: Tensor<2>, v: Tensor<2>, theta: Tensor<1>, lambda: f64, t_start: f64, t_end: f64) -> (Tensor<1>, f64) {
    let [b, _] = z.dims();
    let t = sigmoid(reversed(theta, lambda)).mul_scalar(t_end).add_scalar(t_start);
    let value = t.clone().into_scalar::<f32>() as f64;
    let t2 = t.clone().reshape([1, 1]);
    let logp = log_softmax(v.detach() / t2.clone(), 1);
    let logq = log_softmax(z / t2, 1);
    let kl = (logp.clone().exp() * (logp - logq)).sum().div_scalar(b as f64);
    (kl * t.clone() * t, value)
}

impl LossKind for CurriculumTemperature {
    fn name(&self) -> &'static str {
        "CurriculumTemperature"
    }
    fn label(&self) -> String {
        format!("CurriculumTemperature(T in ({}, {}))", self.t_start, self.t_start + self.t_end)
    }
    fn reads(&self) -> Reads<'_> {
        Reads::logits(Targets::SourceLogits)
    }
    /// One source; a positive temperature range; a schedule of at least one epoch.
    fn check(&mut self, edge: &mut EdgeCheck) {
        edge.one_source("CTKD learns its temperature against one teacher's logits", Some("one `from` per CurriculumTemperature edge"));
        let path = edge.loss_path();
        if !(self.t_start.is_finite() && self.t_start > 0.0) {
            let msg = format!("the lowest temperature must be a positive number, not {}", self.t_start);
            edge.error(Diagnostic::at(path.field("t_start"), msg).hint("the authors use t_start: 1.0"));
        }
        if !(self.t_end.is_finite() && self.t_end >= 0.0) {
            let msg = format!("the temperature's range must be a finite number ≥ 0, not {}", self.t_end);
            edge.error(Diagnostic::at(path.field("t_end"), msg).hint("the authors use t_end: 20.0"));
        }
        if self.decay_loops == 0 {
            edge.error(Diagnostic::at(path.field("decay_loops"), "the reversal's schedule needs at least one epoch").hint("the authors use decay_loops: 10"));
        }
        if !(self.decay_max.is_finite() && self.decay_min.is_finite()) {
            edge.error(
                Diagnostic::at(path.field("decay_min"), "λ's bounds must be finite numbers").hint("the authors go from decay_max: 0.0 to decay_min: -1.0"),
            );
        }
    }
    fn adapter(&self, _own: &dyn Fn(&str) -> Vec<usize>, _source: &dyn Fn(&str) -> Vec<usize>, _samples: usize) -> Option<AdapterSpec> {
        Some(AdapterSpec::Temperature)
    }
    fn loss(&self, i: Inputs) -> Tensor<1> {
        self.loss_and_diagnostics(i).0
    }
    fn loss_and_diagnostics(&self, i: Inputs) -> (Tensor<1>, Diagnostics) {
        let Some(Adapter::Temperature(theta)) = i.adapter else { panic!("a CurriculumTemperature term has its temperature") };
        let lambda = reversal_weight(i.epoch + 1, self.decay_max, self.decay_min, self.decay_loops);
        let (loss, t) = curriculum_kd(i.z, i.targets[0].clone(), theta.val(), lambda, self.t_start, self.t_end);
        (loss, vec![("temperature", t)])
    }
}
