//! Every loss an edge can carry, one file per family, each behind the one trait [`LossKind`].
//!
//! A kind's file holds its spec (the struct written in experiment files), its paper's equation,
//! what it reads ([`Reads`]), its checks ([`EdgeCheck`]), the adapter it owns and its arithmetic
//! on plain tensors. The resolver, the exchange and the step ask [`LossSpec::kind`]; nothing
//! outside this folder lists the variants. Exact definitions and the authors' choices:
//! `docs/losses.md`. Adding one: `docs/architecture.md`, "Add a loss".
//!
//! | file | kinds |
//! |---|---|
//! | `cross_entropy.rs` | `CrossEntropy` |
//! | `soft_target.rs` | `SoftTarget` (Hinton et al. 2015, one teacher or a mixture) |
//! | `mutual.rs` | `MutualKl` (DML) |
//! | `ensemble.rs` | `Ensemble` (DML_e, KDCL) and [`Combine`] |
//! | `heads.rs` | `OwnOutput` (ONE), `OtherHeads` (CL-ILR) |
//! | `hint.rs` | `Hint` (FitNets: the paper's form and RepDistiller's) and its regressor |
//! | `attention.rs` | `Attention` (AT) |
//! | `peer_attention.rs` | `PeerAttention` (OKDDip between peer nodes) and its projections |
//! | `branch_attention.rs` | `BranchAttention` (OKDDip between the branches of one node) |
//! | `lfme.rs` | `Lfme` |
//! | `dkd.rs` | `Dkd` |
//! | `dist.rs` | `Dist` |
//! | `similarity.rs` | `Similarity` (SP) |
//! | `pkt.rs` | `Pkt` (PKT) |
//! | `rkd.rs` | `Rkd` (RKD: distance and angle) |
//! | `nst.rs` | `Nst` (NST: polynomial-kernel MMD of the channels) |
//! | `fsp.rs` | `Fsp` (FSP: Gram matrices between consecutive taps) |
//! | `activation_boundary.rs` | `ActivationBoundary` (AB: pre-activations on the source's side of zero) and its connector |
//! | `correlation.rs` | `Correlation` (CC: the paper's Taylor kernel, or the authors' code) |
//! | `contrastive.rs` | `Crd` (CRD: NCE against a memory bank of the training split) and its embeddings and bank |
//! | `review.rs` | `ReviewKd` (ReviewKD: attention-based fusion across levels, hierarchical context loss) and its fusion modules |
//! | `factor_transfer.rs` | `FactorTransfer` (FT: a paraphraser trained first, then the translator) and its modules |
//! | `overhaul.rs` | `Ofd` (OFD: partial L2 of pre-activations above the source's batch-norm margin) and its connector |
//! | `kdsvd.rs` | `Kdsvd` (KDSVD: radial kernels between the leading singular vectors of consecutive taps) |
//! | `vid.rs` | `Vid` (VID: a learned Gaussian likelihood) and its regressor |
//! | `teacher_free.rs` | `TeacherFree` (Tf-KD_reg: a virtual teacher) |
//! | `curriculum_temperature.rs` | `CurriculumTemperature` (CTKD: a learned, adversarial temperature) |
//! | `common.rs` | the arithmetic several share (softened targets, KL, standardisation) |
//! | `kind.rs`, `check.rs`, `adapter.rs` | the trait, the checks' view of an edge, the learned parts |

pub mod activation_boundary;
pub mod adapter;
pub mod attention;
pub mod branch_attention;
pub mod check;
pub mod common;
pub mod contrastive;
pub mod correlation;
pub mod cross_entropy;
pub mod curriculum_temperature;
pub mod dist;
pub mod dkd;
pub mod ensemble;
pub mod factor_transfer;
pub mod fsp;
pub mod heads;
pub mod hint;
pub mod kdsvd;
pub mod kind;
pub mod label_smoothing;
pub mod lfme;
pub mod mutual;
pub mod nst;
pub mod overhaul;
pub mod peer_attention;
pub mod pkt;
pub mod review;
pub mod rkd;
pub mod similarity;
pub mod soft_target;
pub mod teacher_free;
pub mod vid;

use serde::{Deserialize, Serialize};

pub use activation_boundary::{ActivationBoundary, activation_boundary_loss};
pub use adapter::{Adapter, AdapterSpec};
pub use attention::{Attention, attention_map, attention_transfer};
pub use branch_attention::{BranchAttention, branch_attention_loss};
pub use check::{EdgeCheck, NodeFacts};
pub use common::{kl_to_target, kl_tracked_target, soft_target, soft_target_kl, standardize_logits};
pub use contrastive::{Crd, nce_loss};
pub use correlation::{CcForm, Correlation, cc_authors_loss, cc_taylor_loss};
pub use cross_entropy::{CrossEntropy, cross_entropy};
pub use curriculum_temperature::{CurriculumTemperature, curriculum_kd, reversal_weight};
pub use dist::{Dist, dist};
pub use dkd::{Dkd, dkd};
pub use ensemble::{Combine, Ensemble, mean_logits_target, min_logit_target};
pub use factor_transfer::{FactorPart, FactorTransfer, factor_loss};
pub use fsp::{Fsp, fsp_loss, fsp_matrix};
pub use heads::{OtherHeads, OwnOutput};
pub use hint::{Hint, HintForm, hint, hint_mse};
pub use kdsvd::{Kdsvd, kdsvd_loss};
pub use kind::{Arity, Diagnostics, Inputs, Lookup, LossKind, Reads, Targets};
pub use lfme::{Lfme, lfme};
pub use mutual::{MutualKl, mutual_kl};
pub use nst::{Nst, nst_loss};
pub use overhaul::{Ofd, ofd_loss};
pub use peer_attention::{PeerAttention, attention_logits};
pub use pkt::{Pkt, pkt_loss};
pub use review::{ReviewKd, hcl_loss};
pub use rkd::{Rkd, rkd_loss};
pub use similarity::{Similarity, similarity_loss};
pub use soft_target::{SoftTarget, mixture_target};
pub use teacher_free::{TeacherFree, teacher_free};
pub use vid::{Vid, vid_loss};

/// Loss kinds (a closed set: a typo is a parse error). Each variant wraps the spec of the same
/// name, written `SoftTarget(temperature: 4.0)` in experiment files and documented in its file
/// (`CrossEntropy` and `Lfme` have no options: written bare). Adding one: its file, `pub mod`,
/// a variant here and its arm in [`LossSpec::kind`]'s dispatch.
#[allow(missing_docs)] // every variant is its spec, documented there
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename = "Loss")]
pub enum LossSpec {
    CrossEntropy,
    SoftTarget(SoftTarget),
    MutualKl(MutualKl),
    Ensemble(Ensemble),
    Hint(Hint),
    Attention(Attention),
    OwnOutput(OwnOutput),
    OtherHeads(OtherHeads),
    PeerAttention(PeerAttention),
    Lfme,
    Dkd(Dkd),
    Dist(Dist),
    LabelSmoothing(label_smoothing::LabelSmoothing),
    Similarity(Similarity),
    Pkt(Pkt),
    Rkd(Rkd),
    Nst(Nst),
    Correlation(Correlation),
    Vid(Vid),
    TeacherFree(TeacherFree),
    BranchAttention(BranchAttention),
    CurriculumTemperature(CurriculumTemperature),
    Fsp(Fsp),
    ActivationBoundary(ActivationBoundary),
    Crd(Crd),
    ReviewKd(ReviewKd),
    FactorTransfer(FactorTransfer),
    Ofd(Ofd),
    Kdsvd(Kdsvd),
}

/// A kind without options as a `'static` reference: it is zero-sized, so leaking one allocates
/// nothing.
fn unit<K: LossKind + 'static>(k: K) -> &'static mut K {
    Box::leak(Box::new(k))
}

/// The one dispatch over the variants: `$spec` (`&LossSpec` or `&mut LossSpec`) as its kind.
macro_rules! dispatch {
    ($spec:expr) => {
        match $spec {
            LossSpec::CrossEntropy => unit(CrossEntropy),
            LossSpec::Lfme => unit(Lfme),
            LossSpec::SoftTarget(l) => l,
            LossSpec::MutualKl(l) => l,
            LossSpec::Ensemble(l) => l,
            LossSpec::Hint(l) => l,
            LossSpec::Attention(l) => l,
            LossSpec::OwnOutput(l) => l,
            LossSpec::OtherHeads(l) => l,
            LossSpec::PeerAttention(l) => l,
            LossSpec::Dkd(l) => l,
            LossSpec::Dist(l) => l,
            LossSpec::LabelSmoothing(l) => l,
            LossSpec::Similarity(l) => l,
            LossSpec::Pkt(l) => l,
            LossSpec::Rkd(l) => l,
            LossSpec::Nst(l) => l,
            LossSpec::Correlation(l) => l,
            LossSpec::Vid(l) => l,
            LossSpec::TeacherFree(l) => l,
            LossSpec::BranchAttention(l) => l,
            LossSpec::CurriculumTemperature(l) => l,
            LossSpec::Fsp(l) => l,
            LossSpec::ActivationBoundary(l) => l,
            LossSpec::Crd(l) => l,
            LossSpec::ReviewKd(l) => l,
            LossSpec::FactorTransfer(l) => l,
            LossSpec::Ofd(l) => l,
            LossSpec::Kdsvd(l) => l,
        }
    };
}

impl LossSpec {
    /// The kind: everything the resolver, the exchange and the step need of it.
    pub fn kind(&self) -> &dyn LossKind {
        dispatch!(self)
    }

    /// The kind, to check (and normalise) its options.
    pub fn kind_mut(&mut self) -> &mut dyn LossKind {
        dispatch!(self)
    }

    /// A short label with its options (`SoftTarget(T=4)`).
    pub fn label(&self) -> String {
        self.kind().label()
    }
}

impl From<MutualKl> for LossSpec {
    fn from(l: MutualKl) -> LossSpec {
        LossSpec::MutualKl(l)
    }
}

impl From<CrossEntropy> for LossSpec {
    fn from(_: CrossEntropy) -> LossSpec {
        LossSpec::CrossEntropy
    }
}
