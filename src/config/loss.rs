//! The loss kinds of an experiment file's edges, their options and the gates on their weights.
//! Exact definitions, papers and equations: `docs/losses.md` and the functions in
//! `src/distill/mod.rs`.

use serde::{Deserialize, Serialize};

use super::schema::{unit_temperature, unit_weight};
use crate::values::{Temperature, Weight, is_false};

/// Loss kinds (exact definitions: `docs/losses.md`; all targets are detached).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename = "Loss")]
pub enum LossSpec {
    /// Cross-entropy with the labels, batch mean. No sources.
    CrossEntropy,
    /// Hinton soft targets: `T²·KL(p^T ‖ q^T)`, batchmean, where p^T is the weighted mean of the
    /// sources' softened probabilities (one source: the teacher's).
    SoftTarget {
        /// Temperature T.
        temperature: Temperature,
        /// Weights of the sources in the mixture (default: equal); normalised to sum to 1.
        #[serde(default)]
        source_weights: Vec<Weight>,
        /// Logit standardisation (Sun et al., CVPR 2024): z-score each sample's logits, the
        /// target's and the sources', before the temperature softmax.
        #[serde(default, skip_serializing_if = "is_false")]
        standardize: bool,
    },
    /// Mutual learning: `(1/|S|) Σ_{l∈S} T²·KL(p_l^T ‖ q^T)` (Zhang et al. 2018).
    MutualKl {
        /// Temperature T (1 in the paper).
        #[serde(default = "unit_temperature")]
        temperature: Temperature,
        /// Logit standardisation (see `SoftTarget`).
        #[serde(default, skip_serializing_if = "is_false")]
        standardize: bool,
    },
    /// Distil from an ensemble of the sources: `T²·KL(e^T ‖ q^T)` where the ensemble e is built
    /// by `combine` (DML_e: mean of the other peers' probabilities; KDCL: mean of all peers' logits).
    Ensemble {
        /// Temperature T.
        #[serde(default = "unit_temperature")]
        temperature: Temperature,
        /// How the sources are merged.
        #[serde(default)]
        combine: Combine,
        /// Also put the target node's own (detached) output into the ensemble (KDCL).
        #[serde(default)]
        include_self: bool,
        /// Logit standardisation (see `SoftTarget`): every member's logits and the target's are
        /// z-scored before the ensemble is formed.
        #[serde(default, skip_serializing_if = "is_false")]
        standardize: bool,
    },
    /// FitNets hint: `½‖u − r(v)‖²` (mean over the batch) between the source's tap `from_tap` (u,
    /// detached) and the target's tap `to_tap` (v) through a learned adapter r (Romero et al. 2015).
    Hint {
        /// Tap of the source (the hint).
        from_tap: String,
        /// Tap of the target (the guided layer).
        to_tap: String,
    },
    /// Attention transfer: mean of `(at(v) − at(u))²` with `at(x) = normalize(mean_c x²)`
    /// (Zagoruyko & Komodakis 2017).
    Attention {
        /// Tap of the source.
        from_tap: String,
        /// Tap of the target.
        to_tap: String,
    },
    /// Distil a node's own (detached) output into one of its heads: `T²·KL(softmax(z/T) ‖
    /// softmax(h_m/T))`, batchmean — ONE's gated ensemble teaching each branch. Needs `head` and
    /// no sources.
    OwnOutput {
        /// Temperature T (3 in ONE).
        temperature: Temperature,
    },
    /// CL-ILR's peer target (Song & Chai, NeurIPS 2018, §3.2): head m of a multi-head node
    /// learns from the ensemble of the node's *other* heads, detached: `T²·KL(e^T ‖
    /// softmax(h_m/T))` with e built from `{h_j : j ≠ m}` by `combine` (default the mean of their
    /// logits, as the OKDDip authors' CL-ILR code). Needs `head` and no sources.
    OtherHeads {
        /// Temperature T.
        #[serde(default = "unit_temperature")]
        temperature: Temperature,
        /// How the other heads are merged.
        #[serde(default = "mean_logits")]
        combine: Combine,
    },
    /// OKDDip's first-level distillation (Chen et al., AAAI 2020, eqs. (3)–(5)): peer i learns
    /// from an attention-weighted aggregate of the peers' logits, `T²·KL(softmax(t_i/T) ‖
    /// softmax(z_i/T))` with `t_i = Σ_j α_ij z_j` over j ∈ {i} ∪ sources (logits detached) and
    /// `α_ij = softmax_j(⟨W_q f_i, W_k f_j⟩)`, f the peers' features at `tap` (globally averaged
    /// over positions). The projections W_q, W_k (`F → dim`, no bias) are learned with the node
    /// through this term: the target is not detached from them (nor from the node's own f_i), as
    /// in the authors' code, whose query and key are shared by all peers (here each peer has its
    /// own). The group leader of OKDDip is an `Ensemble(combine: MeanLogits)` edge from the peers.
    PeerAttention {
        /// Temperature T (3 in the paper).
        #[serde(default = "okddip_temperature")]
        temperature: Temperature,
        /// The feature tap f of the target and of every source (same number of channels).
        tap: String,
        /// Width of the query and key projections (the authors': 64 channels / 8).
        #[serde(default = "okddip_dim")]
        dim: usize,
    },
    /// LFME logit regularisation (Chen et al. 2024): `mean_{b,c} (z_bc − softmax(v_{d(b)})_bc)²`
    /// where `v_{d(b)}` are the logits of the expert of sample b's domain. The sources are the
    /// experts, each with `train_on: Subset(domains: [d])`.
    Lfme,
    /// Decoupled KD (Zhao et al., CVPR 2022, eq. (7)): `α·TCKD + β·NCKD` with
    /// `TCKD = T²·KL(b^p ‖ b^q)` over the binary (target class, rest) probabilities and
    /// `NCKD = T²·KL(p̂ ‖ q̂)` over the non-target classes renormalised; batch mean. One source.
    /// mdistiller's CIFAR defaults: α = 1, β = 8, T = 4 (with the weight ramped over 20 epochs).
    Dkd {
        /// Weight α of the target-class term.
        #[serde(default = "unit_weight")]
        alpha: Weight,
        /// Weight β of the non-target term.
        #[serde(default = "dkd_beta")]
        beta: Weight,
        /// Temperature T.
        #[serde(default = "dkd_temperature")]
        temperature: Temperature,
    },
    /// DIST (Huang et al., NeurIPS 2022, eq. (9)): `τ²·(β·inter + γ·intra)` with
    /// `inter = 1 − mean_b ρ(Y_s[b,:], Y_t[b,:])`, `intra = 1 − mean_c ρ(Y_s[:,c], Y_t[:,c])`,
    /// ρ the Pearson correlation and `Y = softmax(logits/τ)`. One source.
    Dist {
        /// Weight β of the inter-class relation.
        #[serde(default = "unit_weight")]
        beta: Weight,
        /// Weight γ of the intra-class relation.
        #[serde(default = "unit_weight")]
        gamma: Weight,
        /// Temperature τ.
        #[serde(default = "unit_temperature")]
        temperature: Temperature,
    },
}

fn okddip_temperature() -> Temperature {
    Temperature::new(3.0).expect("valid")
}
fn okddip_dim() -> usize {
    8
}
fn mean_logits() -> Combine {
    Combine::MeanLogits
}
fn dkd_beta() -> Weight {
    Weight::new(8.0).expect("valid")
}
fn dkd_temperature() -> Temperature {
    Temperature::new(4.0).expect("valid")
}

/// A Knowledge Transfer Graph gate (Minami et al., ACCV 2020, §3.2): the factor g(e) on an
/// edge's weight in epoch e (from 0) of a stage of E epochs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Gate {
    /// g = 1.
    #[default]
    Through,
    /// g = 0 (the edge is off).
    Cutoff,
    /// g = e/E (grows from 0).
    PositiveLinear,
    /// g = 1 − e/E (fades out).
    NegativeLinear,
}

impl Gate {
    /// g(e) in epoch `epoch` (from 0) of `epochs`.
    pub fn factor(self, epoch: usize, epochs: usize) -> f64 {
        let progress = epoch as f64 / epochs.max(1) as f64;
        match self {
            Gate::Through => 1.0,
            Gate::Cutoff => 0.0,
            Gate::PositiveLinear => progress,
            Gate::NegativeLinear => 1.0 - progress,
        }
    }

    /// Whether it is the default (left out of written plans).
    pub fn is_through(&self) -> bool {
        *self == Gate::Through
    }
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
