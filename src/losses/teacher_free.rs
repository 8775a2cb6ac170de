//! Teacher-free distillation: a hand-made "virtual teacher" in place of a trained one.

use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::{Int, Tensor};
use serde::{Deserialize, Serialize};

use super::check::EdgeCheck;
use super::common::one_hot;
use super::kind::{Arity, Inputs, LossKind, Reads, Targets};
use crate::diagnostics::Diagnostic;
use crate::values::Temperature;

/// `TeacherFree` (Tf-KD_reg): "Revisiting Knowledge Distillation via Label Smoothing
/// Regularization" (Yuan et al., CVPR 2020), eq. (9), as the authors' `loss_kd_regularization`
/// (`my_loss_function.py`, vendored under `third_party/Teacher-free-KD/`) computes it: the
/// virtual teacher `p^d_k = a` for the label, `(1 − a)/(C − 1)` for every other class, softened
/// as the code does — `p̃ = softmax(p^d / T)`, a softmax *of the probabilities* — and
/// `multiplier · (1/(B·C)) Σ_{b,c} p̃_bc (log p̃_bc − log softmax(z_b)_c)`: the KL divergence to the
/// student's unsoftened output, averaged over all `B·C` entries (PyTorch's `KLDivLoss()` default
/// reduction, not a batch mean). The code's `(1 − α)·CE + α·this` is two edges in cohort: a
/// `CrossEntropy` edge of weight `1 − α` and this one of weight `α`. The authors' CIFAR-100 settings:
/// a = 0.99, T = 20, multiplier 100, α = 0.1 (`experiments/base_experiments/*/params.json`). No
/// sources.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeacherFree {
    /// The virtual teacher's probability of the correct class, a (0.99).
    pub correct: f64,
    /// T, dividing the virtual teacher's probabilities before the softmax (20).
    pub temperature: Temperature,
    /// The factor on the divergence (100).
    pub multiplier: f64,
}

/// The softened virtual teacher `softmax(p^d / T)`.
///
/// # Shapes
/// `y` `[B]` → `[B, classes]`.
pub fn virtual_teacher(y: Tensor<1, Int>, classes: usize, correct: f64, t: f64) -> Tensor<2> {
    let hot = one_hot(y, classes);
    let other = (1.0 - correct) / (classes as f64 - 1.0);
    softmax(hot.mul_scalar(correct - other).add_scalar(other).div_scalar(t), 1)
}

/// `multiplier · mean_{b,c} p̃ (log p̃ − log softmax(z))`.
///
/// # Shapes
/// `z` `[B, C]`, `y` `[B]` → `[1]`.
pub fn teacher_free(z: Tensor<2>, y: Tensor<1, Int>, correct: f64, t: f64, multiplier: f64) -> Tensor<1> {
    let [_, c] = z.dims();
    let p = virtual_teacher(y, c, correct, t);
    (p.clone() * (p.log() - log_softmax(z, 1))).mean().mul_scalar(multiplier)
}

impl LossKind for TeacherFree {
    fn name(&self) -> &'static str {
        "TeacherFree"
    }
    fn label(&self) -> String {
        format!("TeacherFree(a={}, T={})", self.correct, self.temperature)
    }
    fn reads(&self) -> Reads<'_> {
        Reads::logits(Targets::Labels)
    }
    fn arity(&self) -> Arity {
        Arity::None
    }
    /// No sources; a in (0, 1), a finite multiplier ≥ 0.
    fn check(&mut self, edge: &mut EdgeCheck) {
        edge.no_sources("TeacherFree", "a virtual teacher made from the labels", "remove `from`, or use `SoftTarget` to learn from a trained teacher");
        if !(self.correct > 0.0 && self.correct < 1.0) {
            let msg = format!("the virtual teacher's probability of the correct class must lie in (0, 1), not {}", self.correct);
            edge.error(Diagnostic::at(edge.loss_path().field("correct"), msg).hint("the authors use correct: 0.99"));
        }
        if !(self.multiplier.is_finite() && self.multiplier >= 0.0) {
            let msg = format!("the multiplier must be a finite number ≥ 0, not {}", self.multiplier);
            edge.error(Diagnostic::at(edge.loss_path().field("multiplier"), msg).hint("the authors use multiplier: 100.0"));
        }
    }
    fn loss(&self, i: Inputs) -> Tensor<1> {
        teacher_free(i.z, i.y, self.correct, self.temperature.get(), self.multiplier)
    }
}
