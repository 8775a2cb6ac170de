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
//! | `hint.rs` | `Hint` (FitNets) and its regressor |
//! | `attention.rs` | `Attention` (AT) |
//! | `peer_attention.rs` | `PeerAttention` (OKDDip) and its projections |
//! | `lfme.rs` | `Lfme` |
//! | `dkd.rs` | `Dkd` |
//! | `dist.rs` | `Dist` |
//! | `common.rs` | the arithmetic several share (softened targets, KL, standardisation) |
//! | `kind.rs`, `check.rs`, `adapter.rs` | the trait, the checks' view of an edge, the learned parts |

pub mod adapter;
pub mod attention;
pub mod check;
pub mod common;
pub mod cross_entropy;
pub mod dist;
pub mod dkd;
pub mod ensemble;
pub mod heads;
pub mod hint;
pub mod kind;
pub mod lfme;
pub mod mutual;
pub mod peer_attention;
pub mod soft_target;

use serde::{Deserialize, Serialize};

pub use adapter::{Adapter, AdapterSpec};
pub use attention::{Attention, attention_map, attention_transfer};
pub use check::{EdgeCheck, NodeFacts};
pub use common::{kl_to_target, kl_tracked_target, soft_target, soft_target_kl, standardize_logits};
pub use cross_entropy::{CrossEntropy, cross_entropy};
pub use dist::{Dist, dist};
pub use dkd::{Dkd, dkd};
pub use ensemble::{Combine, Ensemble, mean_logits_target, min_logit_target};
pub use heads::{OtherHeads, OwnOutput};
pub use hint::{Hint, hint};
pub use kind::{Arity, Inputs, LossKind, Reads, Targets};
pub use lfme::{Lfme, lfme};
pub use mutual::{MutualKl, mutual_kl};
pub use peer_attention::{PeerAttention, attention_logits};
pub use soft_target::{SoftTarget, mixture_target};

/// Loss kinds (a closed set: a typo is a parse error). Each wraps its spec, written
/// `SoftTarget(temperature: 4.0)` in experiment files; see each spec for its definition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename = "Loss")]
pub enum LossSpec {
    /// See [`CrossEntropy`].
    CrossEntropy,
    /// See [`SoftTarget`].
    SoftTarget(SoftTarget),
    /// See [`MutualKl`].
    MutualKl(MutualKl),
    /// See [`Ensemble`].
    Ensemble(Ensemble),
    /// See [`Hint`].
    Hint(Hint),
    /// See [`Attention`].
    Attention(Attention),
    /// See [`OwnOutput`].
    OwnOutput(OwnOutput),
    /// See [`OtherHeads`].
    OtherHeads(OtherHeads),
    /// See [`PeerAttention`].
    PeerAttention(PeerAttention),
    /// See [`Lfme`].
    Lfme,
    /// See [`Dkd`].
    Dkd(Dkd),
    /// See [`Dist`].
    Dist(Dist),
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

macro_rules! into_spec {
    ($($kind:ident),*) => {$(
        impl From<$kind> for LossSpec {
            fn from(l: $kind) -> LossSpec {
                LossSpec::$kind(l)
            }
        }
    )*};
}
into_spec!(SoftTarget, MutualKl, Ensemble, Hint, Attention, OwnOutput, OtherHeads, PeerAttention, Dkd, Dist);

impl From<CrossEntropy> for LossSpec {
    fn from(_: CrossEntropy) -> LossSpec {
        LossSpec::CrossEntropy
    }
}

/// One loss of each kind with its default options (taps named `tap`), in the enum's order: for
/// messages that list the kinds with some property, and for tests over every kind.
pub fn examples() -> Vec<LossSpec> {
    let t = crate::values::unit_temperature();
    let w = crate::values::unit_weight();
    let tap = || "tap".to_string();
    vec![
        LossSpec::CrossEntropy,
        SoftTarget { temperature: t, source_weights: Vec::new(), standardize: false }.into(),
        MutualKl { temperature: t, standardize: false }.into(),
        Ensemble { temperature: t, combine: Combine::default(), include_self: false, standardize: false }.into(),
        Hint { from_tap: tap(), to_tap: tap() }.into(),
        Attention { from_tap: tap(), to_tap: tap() }.into(),
        OwnOutput { temperature: t }.into(),
        OtherHeads { temperature: t, combine: Combine::MeanLogits }.into(),
        PeerAttention { temperature: t, tap: tap(), dim: 8 }.into(),
        LossSpec::Lfme,
        Dkd { alpha: w, beta: w, temperature: t }.into(),
        Dist { beta: w, gamma: w, temperature: t }.into(),
    ]
}
