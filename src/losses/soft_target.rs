//! Hinton et al. 2015's soft targets, from one teacher or a weighted mixture of several.

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use super::check::EdgeCheck;
use super::common::{kl_to_target, soft_target, standardized, z_label};
use super::kind::{Inputs, LossKind, Reads, Targets};
use crate::diagnostics::Diagnostic;
use crate::values::{Temperature, Weight, is_false};

/// `SoftTarget`: `T²·KL(p^T ‖ q^T)`, batchmean, where p^T is the weighted mean of the sources'
/// softened probabilities (one source: the teacher's) — "Distilling the Knowledge in a Neural
/// Network" (Hinton, Vinyals & Dean 2015), eq. (2) with the T² of §2.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SoftTarget {
    /// Temperature T.
    pub temperature: Temperature,
    /// Weights of the sources in the mixture (default: equal); normalised to sum to 1.
    #[serde(default)]
    pub source_weights: Vec<Weight>,
    /// Logit standardisation (Sun et al., CVPR 2024): z-score each sample's logits, the
    /// target's and the sources', before the temperature softmax.
    #[serde(default, skip_serializing_if = "is_false")]
    pub standardize: bool,
}

/// Multi-teacher target: `Σ_i w_i softmax(v_i/T)` with `Σ w_i = 1` (empty `weights` = equal).
///
/// # Shapes
/// each `v_i` `[B, C]` → `[B, C]`.
pub fn mixture_target(vs: &[Tensor<2>], weights: &[f64], t: f64) -> Tensor<2> {
    assert!(!vs.is_empty(), "a mixture needs at least one source");
    let equal = 1.0 / vs.len() as f64;
    vs.iter().enumerate().map(|(i, v)| soft_target(v.clone(), t).mul_scalar(weights.get(i).copied().unwrap_or(equal))).reduce(|a, b| a + b).expect("non-empty")
}

impl LossKind for SoftTarget {
    fn name(&self) -> &'static str {
        "SoftTarget"
    }
    fn label(&self) -> String {
        format!("SoftTarget(T={}{})", self.temperature, z_label(self.standardize))
    }
    fn reads(&self) -> Reads<'_> {
        Reads::logits(Targets::SourceLogits)
    }
    /// One weight per source, normalised to sum to 1.
    fn check(&mut self, edge: &mut EdgeCheck) {
        let path = edge.loss_path().field("source_weights");
        let weights = &mut self.source_weights;
        if weights.is_empty() {
            return;
        }
        if weights.len() != edge.written_sources {
            let msg = format!("{} source weights for {} sources", weights.len(), edge.written_sources);
            edge.error(Diagnostic::at(path, msg).hint("give one weight per node in `from`, or none for equal weights"));
            return;
        }
        let total: f64 = weights.iter().map(|w| w.get()).sum();
        if total <= 0.0 {
            edge.error(Diagnostic::at(path, "source weights sum to 0"));
            return;
        }
        for w in weights.iter_mut() {
            *w = Weight::new(w.get() / total).expect("a normalised weight is valid");
        }
    }
    fn loss(&self, i: Inputs) -> Tensor<1> {
        let (z, sources) = standardized(self.standardize, i.z, i.targets);
        let w: Vec<f64> = self.source_weights.iter().map(|w| w.get()).collect();
        let t = self.temperature.get();
        kl_to_target(mixture_target(&sources, &w, t), z, t)
    }
}
