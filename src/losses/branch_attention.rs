//! OKDDip on the branches of one network, as its authors' code runs it: every peer branch learns
//! from an attention-weighted aggregate of the peer branches, with one query/key pair shared by
//! all of them.

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use super::adapter::{Adapter, AdapterSpec, QueryKey};
use super::check::EdgeCheck;
use super::common::kl_tracked_target;
use super::kind::{Arity, Diagnostics, Inputs, LossKind, Reads, Targets};
use super::peer_attention::{attended_logits, attention_weights};
use crate::diagnostics::Diagnostic;
use crate::values::{Temperature, is_false};

/// `BranchAttention`: "Online Knowledge Distillation with Diverse Peers" (Chen et al., AAAI
/// 2020), eqs. (3)–(5), on the peer branches P of a branched node (`Branched`): one term for all
/// of them, `Σ_{m∈P} T²·KL(softmax(t_m/T) ‖ softmax(z_m/T))` with `t_m = Σ_j α_mj z_j` and
/// `α_mj = softmax_j(⟨W_q f_m, W_k f_j⟩)`, z_j branch j's logits and f_j its last stage's output
/// averaged over positions (the `branch<j>` tap), j over the other peers (`include_self: false`,
/// the paper's wording, the default) or over all of P (`include_self: true`, the authors' code,
/// `models/model_cifar/resnet_GL.py`). One W_q and one W_k (`F → dim`, no bias) serve every
/// branch, as in the authors' network, learned with the node through this term. Nothing is
/// detached, as in the authors' `train_GL.py` — each KL also pulls the other branches' logits
/// towards branch m's, and the gradient reaches every branch's features through α — unless
/// `detach_members: true` detaches the logits z_j inside the targets (the peer-node form's
/// choice, `PeerAttention`). The sum over branches is the authors' (not a mean), and so is the KL
/// (`utils.KL_Loss`: T²·batchmean, their +1e-7 on the target's probabilities left out). The group
/// leader, a branch outside P, is taught by an `OtherHeads(combine: MeanLogits)` edge with its
/// `head` — the peers' mean logits, detached there, where the authors' `criterion_T(x_stu,
/// mean(output_batch))` also pulls the peers towards the leader; the mean α_mm (with `include_self`) and the attention's entropy are recorded per
/// epoch, and a run warns once when α_mm passes 0.95.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BranchAttention {
    /// Temperature T (3 in the paper).
    #[serde(default = "okddip_temperature")]
    pub temperature: Temperature,
    /// The peer branches, from 1 (e.g. `[1, 2, 3]`, the leader being branch 4).
    pub peers: Vec<usize>,
    /// Width of the query and key projections (the authors': 64 channels / 8).
    #[serde(default = "okddip_dim")]
    pub dim: usize,
    /// Whether branch m is a member of its own target (the authors' code) or only the other
    /// peers are (the paper's wording, the default).
    #[serde(default, skip_serializing_if = "is_false")]
    pub include_self: bool,
    /// Whether the members' logits inside the targets are detached (the authors detach nothing).
    #[serde(default, skip_serializing_if = "is_false")]
    pub detach_members: bool,
}

fn okddip_temperature() -> Temperature {
    Temperature::new(3.0).expect("valid")
}
fn okddip_dim() -> usize {
    8
}

/// The term for logits `z[j]` and features `f[j]` of every branch (index j = branch j + 1),
/// the shared projections, the peers `peers` (indices), over the
/// other peers or all of them: `(loss, mean α_mm when included, mean entropy of α)`.
///
/// # Shapes
/// each `z[j]` `[B, C]`, each `f[j]` `[B, F]` → `[1]`.
pub fn branch_attention_loss(
    z: &[Tensor<2>],
    f: &[Tensor<2>],
    projections: &QueryKey,
    peers: &[usize],
    include_self: bool,
    detach_members: bool,
    t: f64,
) -> (Tensor<1>, Option<f64>, f64) {
    let (mut total, mut self_sum, mut entropy_sum) = (None::<Tensor<1>>, 0.0, 0.0);
    for &m in peers {
        let members: Vec<usize> = peers.iter().copied().filter(|&j| include_self || j != m).collect();
        let features: Vec<Tensor<2>> = members.iter().map(|&j| f[j].clone()).collect();
        let logits: Vec<Tensor<2>> = members.iter().map(|&j| if detach_members { z[j].clone().detach() } else { z[j].clone() }).collect();
        let (q, keys) = projections.project(f[m].clone(), &features);
        let alpha = attention_weights(q, &keys);
        let term = kl_tracked_target(attended_logits(alpha.clone(), &logits), z[m].clone(), t);
        total = Some(match total {
            Some(s) => s + term,
            None => term,
        });
        let a = alpha.detach();
        entropy_sum += (a.clone() * a.clone().clamp_min(1e-30).log()).sum_dim(1).mean().neg().into_scalar::<f32>() as f64;
        if let Some(k) = members.iter().position(|&j| j == m) {
            let [b, _] = a.dims();
            self_sum += a.slice([0..b, k..k + 1]).mean().into_scalar::<f32>() as f64;
        }
    }
    let n = peers.len().max(1) as f64;
    (total.expect("at least one peer branch (checked)"), include_self.then_some(self_sum / n), entropy_sum / n)
}

impl LossKind for BranchAttention {
    fn name(&self) -> &'static str {
        "BranchAttention"
    }
    fn label(&self) -> String {
        let peers = self.peers.iter().map(ToString::to_string).collect::<Vec<_>>().join(" ");
        let own = if self.include_self { ", incl. self" } else { "" };
        let detach = if self.detach_members { ", members detached" } else { "" };
        format!("BranchAttention(branches {peers}, dim {}, T={}{own}{detach})", self.dim, self.temperature)
    }
    fn reads(&self) -> Reads<'_> {
        Reads::logits(Targets::Branches)
    }
    fn arity(&self) -> Arity {
        Arity::None
    }
    /// No sources and no `head` (one term for all the peer branches); a branched node with
    /// every branch named; at least two peers (or one with itself included); a projection width.
    fn check(&mut self, edge: &mut EdgeCheck) {
        edge.no_sources("BranchAttention", "the branches of its own node", "remove `from`; between separate peer nodes use `PeerAttention`");
        let path = edge.loss_path();
        if self.dim == 0 {
            edge.error(Diagnostic::at(path.field("dim"), "the projection width must be at least 1").hint("the OKDDip authors use channels / 8"));
        }
        let heads = edge.target_heads();
        let mut seen = Vec::new();
        for &m in &self.peers {
            if m == 0 || m > heads || seen.contains(&m) {
                let msg = if seen.contains(&m) {
                    format!("branch {m} is listed twice")
                } else {
                    format!("branch {m} does not exist: the node has {heads} branch(es), numbered from 1")
                };
                edge.error(
                    Diagnostic::at(path.field("peers"), msg).hint("list the peer branches once each, e.g. peers: [1, 2, 3] on a Branched(.., branches: 4)"),
                );
                return;
            }
            seen.push(m);
        }
        if self.peers.len() < if self.include_self { 1 } else { 2 } {
            let msg = "OKDDip's attention needs at least two peer branches (one attends to the others)";
            edge.error(Diagnostic::at(path.field("peers"), msg).hint("list two or more branches, e.g. peers: [1, 2, 3]"));
            return;
        }
        if let Some(&m) = self.peers.first() {
            edge.tap_shape(edge.to, &crate::models::branch_tap(m), "peers");
        }
    }
    fn adapter(&self, own: &dyn Fn(&str) -> Vec<usize>, _source: &dyn Fn(&str) -> Vec<usize>, _samples: usize) -> Option<AdapterSpec> {
        Some(AdapterSpec::Attention { features: own(&crate::models::branch_tap(self.peers[0]))[0], dim: self.dim })
    }
    fn loss(&self, i: Inputs) -> Tensor<1> {
        self.loss_and_diagnostics(i).0
    }
    fn loss_and_diagnostics(&self, i: Inputs) -> (Tensor<1>, Diagnostics) {
        let Some(Adapter::Attention(projections)) = i.adapter else { panic!("a BranchAttention term has an attention adapter") };
        let peers: Vec<usize> = self.peers.iter().map(|m| m - 1).collect();
        let (loss, alpha_self, entropy) =
            branch_attention_loss(&i.targets, &i.branches, projections, &peers, self.include_self, self.detach_members, self.temperature.get());
        let mut diagnostics = vec![("attention_entropy", entropy)];
        if let Some(a) = alpha_self {
            diagnostics.insert(0, ("self_attention", a));
        }
        (loss, diagnostics)
    }
}
