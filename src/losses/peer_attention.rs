//! OKDDip's first-level distillation: each peer learns from an attention-weighted aggregate of
//! the peers.

use burn::tensor::Tensor;
use burn::tensor::activation::softmax;
use serde::{Deserialize, Serialize};

use super::adapter::{Adapter, AdapterSpec};
use super::check::EdgeCheck;
use super::common::{kl_tracked_target, pooled};
use super::kind::{Inputs, LossKind, Reads, Targets};
use crate::diagnostics::Diagnostic;
use crate::values::Temperature;

/// `PeerAttention`: "Online Knowledge Distillation with Diverse Peers" (Chen, Mei, Wang, Feng &
/// Chen, AAAI 2020), eqs. (3)–(5): peer i learns from `T²·KL(softmax(t_i/T) ‖ softmax(z_i/T))`
/// with `t_i = Σ_j α_ij z_j` over j ∈ {i} ∪ sources (logits detached) and `α_ij =
/// softmax_j(⟨W_q f_i, W_k f_j⟩)`, f the peers' features at `tap` (globally averaged over
/// positions). The projections W_q, W_k (`F → dim`, no bias) are learned with the node through
/// this term: the target is not detached from them (nor from the node's own f_i), as in the
/// authors' code, whose query and key are shared by all peers (here each peer has its own). The
/// group leader of OKDDip is an `Ensemble(combine: MeanLogits)` edge from the peers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerAttention {
    /// Temperature T (3 in the paper).
    #[serde(default = "okddip_temperature")]
    pub temperature: Temperature,
    /// The feature tap f of the target and of every source (same number of channels).
    pub tap: String,
    /// Width of the query and key projections (the authors': 64 channels / 8).
    #[serde(default = "okddip_dim")]
    pub dim: usize,
}

fn okddip_temperature() -> Temperature {
    Temperature::new(3.0).expect("valid")
}
fn okddip_dim() -> usize {
    8
}

/// OKDDip's attention-weighted target logits (eqs. (3)–(4)): for each sample, `α_j =
/// softmax_j(⟨q, k_j⟩)` over the members j and `t = Σ_j α_j·z_j`. The gradient flows through α
/// into the query and the keys (the logits should come detached).
///
/// # Shapes
/// `q` `[B, d]`, `keys[j]` `[B, d]`, `logits[j]` `[B, C]` → `[B, C]`.
pub fn attention_logits(q: Tensor<2>, keys: &[Tensor<2>], logits: &[Tensor<2>]) -> Tensor<2> {
    assert_eq!(keys.len(), logits.len(), "one key per member");
    let energy = Tensor::cat(keys.iter().map(|k| (q.clone() * k.clone()).sum_dim(1)).collect(), 1);
    let alpha = softmax(energy, 1);
    logits.iter().enumerate().map(|(j, z)| z.clone() * alpha.clone().narrow(1, j, 1)).reduce(|a, b| a + b).expect("at least one member")
}

impl LossKind for PeerAttention {
    fn name(&self) -> &'static str {
        "PeerAttention"
    }
    fn label(&self) -> String {
        format!("PeerAttention({}, dim {}, T={})", self.tap, self.dim, self.temperature)
    }
    fn reads(&self) -> Reads<'_> {
        Reads { targets: Targets::SourceLogits, own_tap: Some(&self.tap), source_tap: Some(&self.tap) }
    }
    /// The tap exists on the target and on every source with the same number of channels (one
    /// pair of projections reads them all), and the projection has a width.
    fn check(&mut self, edge: &mut EdgeCheck) {
        if self.dim == 0 {
            let d = Diagnostic::at(edge.loss_path().field("dim"), "the projection width must be at least 1");
            edge.error(d.hint("the OKDDip authors use channels / 8"));
        }
        let tap = &self.tap;
        let Some(own) = edge.tap_shape(edge.to, tap, "tap") else { return };
        for i in edge.from.clone() {
            let Some(other) = edge.tap_shape(Some(i), tap, "tap") else { continue };
            if other[0] != own[0] {
                let msg = format!("`{tap}` has {} channels on `{}` but {} on `{}`", own[0], edge.to_id, other[0], edge.nodes[i].id);
                let hint = "the peers' features go through the same projections: pick a tap with as many channels on every peer";
                edge.error(Diagnostic::at(edge.loss_path().field("tap"), msg).hint(hint));
            }
        }
    }
    fn adapter(&self, own: &dyn Fn(&str) -> Vec<usize>, _source: &dyn Fn(&str) -> Vec<usize>) -> Option<AdapterSpec> {
        Some(AdapterSpec::Attention { features: own(&self.tap)[0], dim: self.dim })
    }
    /// `t = Σ_j α_j z_j` over the node itself and the sources (their logits detached), α from
    /// the node's query and every member's key (the node's own features tracked, the sources'
    /// detached), so the gradient reaches the projections.
    fn loss(&self, i: Inputs) -> Tensor<1> {
        let Some(Adapter::Attention(projections)) = i.adapter else { panic!("a PeerAttention term has an attention adapter") };
        let own = pooled(i.own_tap());
        let mut features = vec![own.clone()];
        let mut logits = vec![i.z.clone().detach()];
        for (tap, z) in i.source_taps.into_iter().zip(i.targets) {
            features.push(pooled(tap));
            logits.push(z);
        }
        let (q, keys) = projections.project(own, &features);
        let target = attention_logits(q, &keys, &logits);
        kl_tracked_target(target, i.z, self.temperature.get())
    }
}
