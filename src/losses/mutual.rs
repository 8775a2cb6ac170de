//! Deep Mutual Learning's term of one peer.

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use super::common::{soft_target_kl, standardized, z_label};
use super::kind::{Inputs, LossKind, Reads, Targets};
use crate::values::{Temperature, is_false, unit_temperature};

/// `MutualKl`: `(1/|S|) Σ_{l∈S} T²·KL(p_l^T ‖ q^T)` — "Deep Mutual Learning" (Zhang, Xiang,
/// Hospedales & Lu, CVPR 2018), eq. (10) for K peers (S = the K−1 others). Written in experiment
/// files through `Mutual(peers: …)`, which makes one term per peer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MutualKl {
    /// Temperature T (1 in the paper).
    #[serde(default = "unit_temperature")]
    pub temperature: Temperature,
    /// Logit standardisation (see [`super::SoftTarget`]).
    #[serde(default, skip_serializing_if = "is_false")]
    pub standardize: bool,
}

/// Deep Mutual Learning term for one peer: `(1/|S|) Σ_{l∈S} T²·KL(p_l^T ‖ q^T)`.
///
/// # Shapes
/// each source `[B, C]`, `z` `[B, C]` → `[1]`.
pub fn mutual_kl(sources: &[Tensor<2>], z: Tensor<2>, t: f64) -> Tensor<1> {
    assert!(!sources.is_empty(), "mutual learning needs at least one other peer");
    let n = sources.len() as f64;
    sources.iter().map(|v| soft_target_kl(v.clone(), z.clone(), t)).reduce(|a, b| a + b).expect("non-empty").div_scalar(n)
}

impl LossKind for MutualKl {
    fn name(&self) -> &'static str {
        "MutualKl"
    }
    fn label(&self) -> String {
        format!("MutualKl(T={}{})", self.temperature, z_label(self.standardize))
    }
    fn reads(&self) -> Reads<'_> {
        Reads::logits(Targets::SourceLogits)
    }
    fn loss(&self, i: Inputs) -> Tensor<1> {
        let (z, sources) = standardized(self.standardize, i.z, i.targets);
        mutual_kl(&sources, z, self.temperature.get())
    }
}
