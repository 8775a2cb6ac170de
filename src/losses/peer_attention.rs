//! OKDDip's first-level distillation: each peer learns from an attention-weighted aggregate of
//! the peers.

use burn::tensor::Tensor;
use burn::tensor::activation::softmax;
use serde::{Deserialize, Serialize};

use super::adapter::{Adapter, AdapterSpec};
use super::check::EdgeCheck;
use super::common::{kl_tracked_target, pooled};
use super::kind::{Diagnostics, Inputs, LossKind, Reads, Targets};
use crate::diagnostics::Diagnostic;
use crate::values::{Temperature, is_false};

/// `PeerAttention`: "Online Knowledge Distillation with Diverse Peers" (Chen, Mei, Wang, Feng &
/// Chen, AAAI 2020), eqs. (3)–(5): peer i learns from `T²·KL(softmax(t_i/T) ‖ softmax(z_i/T))`
/// with `t_i = Σ_j α_ij z_j` and `α_ij = softmax_j(⟨W_q f_i, W_k f_j⟩)`, f the peers' features at
/// `tap` (globally averaged over positions), j over the sources — the paper's targets "from
/// predictions of other auxiliary peers" (`include_self: false`, the default) — or over the node
/// itself and the sources (`include_self: true`, the authors' code). With the node itself, the
/// KL is 0 at `α_ii = 1` and α is trained only by this term, so the attention can collapse onto
/// the peer itself: the mean `α_ii` is recorded per epoch (`self_attention:<term>` rows, beside
/// `attention_entropy:<term>`) and a run warns once when it passes 0.95.
///
/// The projections W_q, W_k (`F → dim`, no bias) are learned with the node through this term:
/// the target is not detached from them, nor from the node's own features f_i. The sources'
/// logits and features arrive detached (they are other nodes); the node's own logits in `t_i`
/// are detached by default (`detach_own: true`) and tracked with `detach_own: false`, as the
/// authors' code, which detaches nothing. The authors' peers are branches of one network
/// sharing one query/key pair; cohort's peers are separate nodes, each with its own pair. The
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
    /// Whether the node itself is a member of its own target (the authors' code) or only the
    /// other peers are (the paper's wording, the default).
    #[serde(default, skip_serializing_if = "is_false")]
    pub include_self: bool,
    /// With `include_self`, whether the node's own logits in the target are detached (the
    /// default) or tracked (the authors' code).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub detach_own: bool,
}

fn yes() -> bool {
    true
}
fn is_true(b: &bool) -> bool {
    *b
}

fn okddip_temperature() -> Temperature {
    Temperature::new(3.0).expect("valid")
}
fn okddip_dim() -> usize {
    8
}

/// OKDDip's attention weights (eq. (3)): for each sample, `α_j = softmax_j(⟨q, k_j⟩)` over the
/// members j.
///
/// # Shapes
/// `q` `[B, d]`, `keys[j]` `[B, d]` → `[B, members]`.
pub fn attention_weights(q: Tensor<2>, keys: &[Tensor<2>]) -> Tensor<2> {
    let energy = Tensor::cat(keys.iter().map(|k| (q.clone() * k.clone()).sum_dim(1)).collect(), 1);
    softmax(energy, 1)
}

/// OKDDip's attention-weighted target logits (eq. (4)), `t = Σ_j α_j·z_j`. The gradient flows
/// through α into the query and the keys.
///
/// # Shapes
/// `alpha` `[B, members]`, `logits[j]` `[B, C]` → `[B, C]`.
pub fn attended_logits(alpha: Tensor<2>, logits: &[Tensor<2>]) -> Tensor<2> {
    logits.iter().enumerate().map(|(j, z)| z.clone() * alpha.clone().narrow(1, j, 1)).reduce(|a, b| a + b).expect("at least one member")
}

/// [`attended_logits`] of [`attention_weights`].
pub fn attention_logits(q: Tensor<2>, keys: &[Tensor<2>], logits: &[Tensor<2>]) -> Tensor<2> {
    assert_eq!(keys.len(), logits.len(), "one key per member");
    attended_logits(attention_weights(q, keys), logits)
}

impl LossKind for PeerAttention {
    fn name(&self) -> &'static str {
        "PeerAttention"
    }
    fn label(&self) -> String {
        let own = match (self.include_self, self.detach_own) {
            (false, _) => "",
            (true, true) => ", incl. self",
            (true, false) => ", incl. self tracked",
        };
        format!("PeerAttention({}, dim {}, T={}{own})", self.tap, self.dim, self.temperature)
    }
    fn reads(&self) -> Reads<'_> {
        Reads { targets: Targets::SourceLogits, own_taps: std::slice::from_ref(&self.tap), source_taps: std::slice::from_ref(&self.tap) }
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
    fn adapter(&self, own: &dyn Fn(&str) -> Vec<usize>, _source: &dyn Fn(&str) -> Vec<usize>, _samples: usize) -> Option<AdapterSpec> {
        Some(AdapterSpec::Attention { features: own(&self.tap)[0], dim: self.dim })
    }
    fn loss(&self, i: Inputs) -> Tensor<1> {
        self.loss_and_diagnostics(i).0
    }
    /// `t = Σ_j α_j z_j` over the members (the node itself first when it is one), α from the
    /// node's query and every member's key (the node's own features tracked, the sources'
    /// detached), so the gradient reaches the projections. Reports the mean `α_ii` (with
    /// `include_self`) and the mean entropy of α.
    fn loss_and_diagnostics(&self, i: Inputs) -> (Tensor<1>, Diagnostics) {
        let Some(Adapter::Attention(projections)) = i.adapter else { panic!("a PeerAttention term has an attention adapter") };
        let own = pooled(i.own_tap());
        let (mut features, mut logits) = (Vec::new(), Vec::new());
        if self.include_self {
            features.push(own.clone());
            logits.push(if self.detach_own { i.z.clone().detach() } else { i.z.clone() });
        }
        for (tap, z) in i.source_taps.into_iter().zip(i.targets) {
            features.push(pooled(tap));
            logits.push(z);
        }
        let (q, keys) = projections.project(own, &features);
        let alpha = attention_weights(q, &keys);
        let target = attended_logits(alpha.clone(), &logits);
        let loss = kl_tracked_target(target, i.z, self.temperature.get());
        let a = alpha.detach();
        let entropy = (a.clone() * a.clone().clamp_min(1e-30).log()).sum_dim(1).mean().neg().into_scalar::<f32>() as f64;
        let mut diagnostics = vec![("attention_entropy", entropy)];
        if self.include_self {
            let [b, _] = a.dims();
            diagnostics.insert(0, ("self_attention", a.slice([0..b, 0..1]).mean().into_scalar::<f32>() as f64));
        }
        (loss, diagnostics)
    }
}
