//! Distillation from an ensemble of the sources: DML_e (mean of the peers' probabilities) and
//! KDCL (mean or minimum of the logits, the node itself included).

use burn::tensor::{Int, Tensor};
use serde::{Deserialize, Serialize};

use super::common::{kl_to_target, soft_target, standardized, z_label};
use super::kind::{Inputs, LossKind, Reads, Targets};
use super::soft_target::mixture_target;
use crate::values::{Temperature, is_false, unit_temperature};

/// `Ensemble`: `T²·KL(e^T ‖ q^T)` where the ensemble e is built by `combine` — DML_e (Zhang et
/// al. 2018, §3.3: the mean of the other peers' probabilities) and KDCL (Guo et al., CVPR 2020,
/// eqs. (4)–(6): the mean or the minimum of all peers' logits, the node's own included).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ensemble {
    /// Temperature T.
    #[serde(default = "unit_temperature")]
    pub temperature: Temperature,
    /// How the sources are merged.
    #[serde(default)]
    pub combine: Combine,
    /// Also put the target node's own (detached) output into the ensemble (KDCL).
    #[serde(default)]
    pub include_self: bool,
    /// Logit standardisation (see [`super::SoftTarget`]): every member's logits and the
    /// target's are z-scored before the ensemble is formed.
    #[serde(default, skip_serializing_if = "is_false")]
    pub standardize: bool,
}

/// How an ensemble target is formed from its members.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Combine {
    /// Mean of the members' softened probabilities.
    #[default]
    MeanProbs,
    /// Softmax of the mean of the members' logits (KDCL-MinLogit's sibling "naive" ensemble).
    MeanLogits,
    /// KDCL "min-logit": per sample, each member's logits minus its true-class logit, then the
    /// element-wise minimum across members.
    MinLogit,
}

/// Ensemble target from the mean of logits: `softmax(((1/M) Σ_m v_m)/T)` (KDCL's naive
/// ensemble of logits), detached.
///
/// # Shapes
/// each `v_m` `[B, C]` → `[B, C]`.
pub fn mean_logits_target(vs: &[Tensor<2>], t: f64) -> Tensor<2> {
    let n = vs.len() as f64;
    let mean = vs.iter().cloned().reduce(|a, b| a + b).expect("non-empty").div_scalar(n);
    soft_target(mean, t)
}

/// KDCL-MinLogit ensemble (Guo et al. 2020): for each member, its logits minus its logit of the
/// true class (so the true class is 0 for everyone), then the element-wise minimum across
/// members; the target is `softmax(min/T)`, detached.
///
/// # Shapes
/// each `v_m` `[B, C]`, `y` `[B]` → `[B, C]`.
pub fn min_logit_target(vs: &[Tensor<2>], y: Tensor<1, Int>, t: f64) -> Tensor<2> {
    let [b, c] = vs[0].dims();
    let yy = y.reshape([b, 1]);
    let shifted = vs.iter().map(|v| {
        let v = v.clone().detach();
        let true_logit = v.clone().gather(1, yy.clone()).expand([b, c]);
        v - true_logit
    });
    let min = shifted.reduce(|a, b| a.min_pair(b)).expect("non-empty");
    soft_target(min, t)
}

/// The softened ensemble of `members` (detached logits) formed by `combine` at temperature `t`.
pub fn ensemble_target(combine: Combine, members: &[Tensor<2>], y: Tensor<1, Int>, t: f64) -> Tensor<2> {
    match combine {
        Combine::MeanProbs => mixture_target(members, &[], t),
        Combine::MeanLogits => mean_logits_target(members, t),
        Combine::MinLogit => min_logit_target(members, y, t),
    }
}

impl LossKind for Ensemble {
    fn name(&self) -> &'static str {
        "Ensemble"
    }
    fn label(&self) -> String {
        let own = if self.include_self { ", incl. self" } else { "" };
        format!("Ensemble({:?}, T={}{own}{})", self.combine, self.temperature, z_label(self.standardize))
    }
    fn reads(&self) -> Reads<'_> {
        Reads::logits(Targets::SourceLogits)
    }
    fn loss(&self, i: Inputs) -> Tensor<1> {
        let (z, mut members) = standardized(self.standardize, i.z, i.targets);
        if self.include_self {
            members.push(z.clone().detach());
        }
        let t = self.temperature.get();
        kl_to_target(ensemble_target(self.combine, &members, i.y, t), z, t)
    }
}
