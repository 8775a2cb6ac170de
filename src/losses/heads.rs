//! Self-distillation inside one multi-head node: ONE's gated ensemble teaching each branch
//! (`OwnOutput`) and CL-ILR's peer ensemble of the other branches (`OtherHeads`).

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use super::check::EdgeCheck;
use super::common::{kl_to_target, soft_target_kl};
use super::ensemble::{Combine, ensemble_target};
use super::kind::{Arity, Inputs, LossKind, Reads, Targets};
use crate::diagnostics::Diagnostic;
use crate::values::{Temperature, unit_temperature};

/// `OwnOutput`: distil a node's own (detached) output into one of its heads, `T²·KL(softmax(z/T)
/// ‖ softmax(h_m/T))`, batchmean — "Knowledge Distillation by On-the-Fly Native Ensemble" (Lan,
/// Zhu & Gong, NeurIPS 2018), eq. (6): the gated ensemble teaching each branch. Needs `head` and
/// no sources.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnOutput {
    /// Temperature T (3 in ONE).
    pub temperature: Temperature,
}

/// `OtherHeads`: CL-ILR's peer target (Song & Chai, NeurIPS 2018, §3.2): head m of a multi-head
/// node learns from the ensemble of the node's *other* heads, detached, `T²·KL(e^T ‖
/// softmax(h_m/T))` with e built from `{h_j : j ≠ m}` by `combine` (default the mean of their
/// logits, as the OKDDip authors' CL-ILR code). Needs `head` and no sources.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtherHeads {
    /// Temperature T.
    #[serde(default = "unit_temperature")]
    pub temperature: Temperature,
    /// How the other heads are merged.
    #[serde(default = "mean_logits")]
    pub combine: Combine,
}

fn mean_logits() -> Combine {
    Combine::MeanLogits
}

impl LossKind for OwnOutput {
    fn name(&self) -> &'static str {
        "OwnOutput"
    }
    fn label(&self) -> String {
        format!("OwnOutput(T={})", self.temperature)
    }
    fn reads(&self) -> Reads<'_> {
        Reads::logits(Targets::OwnOutput)
    }
    fn arity(&self) -> Arity {
        Arity::None
    }
    fn check(&mut self, edge: &mut EdgeCheck) {
        edge.no_sources("OwnOutput", "the node's output", "remove `from`");
        edge.needs_head("OwnOutput", "the node's output");
    }
    /// `targets` holds the node's own output, detached.
    fn loss(&self, i: Inputs) -> Tensor<1> {
        soft_target_kl(i.targets[0].clone(), i.z, self.temperature.get())
    }
}

impl LossKind for OtherHeads {
    fn name(&self) -> &'static str {
        "OtherHeads"
    }
    fn label(&self) -> String {
        format!("OtherHeads({:?}, T={})", self.combine, self.temperature)
    }
    fn reads(&self) -> Reads<'_> {
        Reads::logits(Targets::OtherHeads)
    }
    fn arity(&self) -> Arity {
        Arity::None
    }
    fn check(&mut self, edge: &mut EdgeCheck) {
        edge.no_sources("OtherHeads", "the node's other heads", "remove `from`");
        edge.needs_head("OtherHeads", "the node's other heads");
        if edge.head == Some(1) && edge.target_heads() == 1 {
            let d = Diagnostic::at(edge.path.field("head"), format!("`{}` has one head: `OtherHeads` needs others to learn from", edge.to_id));
            edge.error(d.hint("give the node 2 or more heads (`branches: 2` of a `Branched` or `BranchedResNet`, `heads: 2` of a `Hydra`)"));
        }
    }
    /// `targets` holds the node's other heads, detached.
    fn loss(&self, i: Inputs) -> Tensor<1> {
        let t = self.temperature.get();
        kl_to_target(ensemble_target(self.combine, &i.targets, i.y, t), i.z, t)
    }
}
