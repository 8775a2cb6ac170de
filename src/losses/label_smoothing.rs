//! Label smoothing: cross-entropy with softened one-hot targets.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor};
use serde::{Deserialize, Serialize};

use super::check::EdgeCheck;
use super::common::one_hot;
use super::kind::{Arity, Inputs, LossKind, Reads, Targets};
use crate::values::Fraction;

/// `LabelSmoothing`: cross-entropy against `(1 − ε)·onehot(y) + ε/C` — "Rethinking the Inception
/// Architecture for Computer Vision" (Szegedy et al., CVPR 2016), §7 — batch mean:
/// `−(1/B) Σ_b Σ_c ((1 − ε)·[c = y_b] + ε/C) log softmax(z_b)_c`, which is
/// `(1 − ε)·CE + ε·(1/B) Σ_b (1/C) Σ_c −log softmax(z_b)_c`; PyTorch's
/// `CrossEntropyLoss(label_smoothing=ε)`. No sources.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelSmoothing {
    /// The mass ε spread evenly over the classes (0.1 in the paper).
    pub epsilon: Fraction,
}

/// Label-smoothed cross-entropy.
///
/// # Shapes
/// `z` `[B, C]`, `y` `[B]` → `[1]`.
pub fn label_smoothing(z: Tensor<2>, y: Tensor<1, Int>, epsilon: f64) -> Tensor<1> {
    let [b, c] = z.dims();
    let target = one_hot(y, c).mul_scalar(1.0 - epsilon).add_scalar(epsilon / c as f64);
    (target * log_softmax(z, 1)).sum().div_scalar(b as f64).neg()
}

impl LossKind for LabelSmoothing {
    fn name(&self) -> &'static str {
        "LabelSmoothing"
    }
    fn label(&self) -> String {
        format!("LabelSmoothing(ε={})", self.epsilon)
    }
    fn reads(&self) -> Reads<'_> {
        Reads::logits(Targets::Labels)
    }
    fn arity(&self) -> Arity {
        Arity::None
    }
    fn check(&mut self, edge: &mut EdgeCheck) {
        edge.no_sources("LabelSmoothing", "the labels", "remove `from`, or use `SoftTarget` to learn from another node");
    }
    fn loss(&self, i: Inputs) -> Tensor<1> {
        label_smoothing(i.z, i.y, self.epsilon.get())
    }
}
