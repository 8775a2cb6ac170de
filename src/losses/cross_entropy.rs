//! Cross-entropy with the labels.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor};

use super::check::EdgeCheck;
use super::kind::{Arity, Inputs, LossKind, Reads, Targets};

/// `CrossEntropy`: `−(1/B) Σ_b log softmax(z_b)[y_b]`, batch mean. No sources.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CrossEntropy;

/// Cross-entropy with integer labels, batch mean: `−(1/B) Σ_b log softmax(z_b)[y_b]`.
///
/// # Shapes
/// `z` `[B, C]`, `y` `[B]` → `[1]`.
pub fn cross_entropy(z: Tensor<2>, y: Tensor<1, Int>) -> Tensor<1> {
    let [b, _] = z.dims();
    let logp = log_softmax(z, 1);
    logp.gather(1, y.reshape([b, 1])).mean().neg()
}

impl LossKind for CrossEntropy {
    fn name(&self) -> &'static str {
        "CrossEntropy"
    }
    fn label(&self) -> String {
        "CrossEntropy".into()
    }
    fn reads(&self) -> Reads<'_> {
        Reads::logits(Targets::Labels)
    }
    fn arity(&self) -> Arity {
        Arity::None
    }
    fn check(&mut self, edge: &mut EdgeCheck) {
        edge.no_sources("CrossEntropy", "the labels", "remove `from`, or use `SoftTarget` to learn from another node");
    }
    fn loss(&self, i: Inputs) -> Tensor<1> {
        cross_entropy(i.z, i.y)
    }
}
