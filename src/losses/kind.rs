//! The one trait every loss kind implements ([`LossKind`]), and the shapes of what a term reads
//! ([`Reads`]) and is given ([`Inputs`]).

use burn::tensor::{Int, Tensor};

use super::adapter::{Adapter, AdapterSpec};
use super::check::EdgeCheck;
use crate::models::tap::Tap;

/// Which logits, besides the labels, a term's loss is computed from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Targets {
    /// Nothing but the labels (cross-entropy).
    Labels,
    /// The sources' logits (or head `from_head` of each), detached, in `from` order.
    SourceLogits,
    /// The node's own output, detached (ONE's gated ensemble teaching a head).
    OwnOutput,
    /// The node's other heads, detached (CL-ILR).
    OtherHeads,
    /// Row by row, the logits of the sample's own-domain expert among the sources (LFME).
    RoutedExperts,
    /// No logits: the sources' feature taps only (FitNets, attention transfer).
    Features,
    /// The node's branches: every head's logits, tracked, head 1 first (in `targets`), and each
    /// branch's last stage output pooled over its positions (in `branches`) — OKDDip's attention
    /// over the branches of one network.
    Branches,
}

/// How many sources a loss takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arity {
    /// None: it learns from the labels or from the node itself.
    None,
    /// One or more.
    AtLeastOne,
}

/// What a term reads, asked by the exchange (which taps to collect and share) and by the step
/// (which tensors to hand to [`LossKind::loss`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reads<'a> {
    /// The logits it is computed from.
    pub targets: Targets,
    /// Taps of the trained node (tracked), in the order the kind reads them.
    pub own_taps: &'a [String],
    /// Taps of every source (detached), in the order the kind reads them.
    pub source_taps: &'a [String],
}

impl Reads<'_> {
    /// Logits only, from `targets`.
    pub const fn logits(targets: Targets) -> Reads<'static> {
        Reads { targets, own_taps: &[], source_taps: &[] }
    }

    /// Whether the term may train one head of a multi-head node (`head: m`): it reads the
    /// trained logits, not a tap, and no routed experts.
    pub fn takes_head(&self) -> bool {
        self.own_taps.is_empty() && matches!(self.targets, Targets::Labels | Targets::SourceLogits | Targets::OwnOutput | Targets::OtherHeads)
    }

    /// Whether the term may read a head of its sources (`from_head: m`): it reads the sources'
    /// logits.
    pub fn takes_from_head(&self) -> bool {
        self.own_taps.is_empty() && self.targets == Targets::SourceLogits
    }
}

/// The tensors of one term in one step, gathered by the step as [`LossKind::reads`] says.
///
/// # Shapes
/// - `z`: `[B, C]`, tracked: the node's output, or head `m` for `head: m` terms.
/// - `y`: `[B]`, the labels.
/// - `targets`: each `[B, C]`, detached, as [`Targets`] names them (in `from` order).
/// - `own_taps`: the node's taps [`Reads::own_taps`], tracked; `source_taps`: each source's taps
///   [`Reads::source_taps`], detached, source by source in `from` order (source `s`'s tap `k` at
///   `s · source_taps.len() + k`): `[B, F]`, `[B, C, L]` or `[B, C, H, W]`.
pub struct Inputs<'a> {
    /// The trained logits.
    pub z: Tensor<2>,
    /// The labels.
    pub y: Tensor<1, Int>,
    /// The detached target logits.
    pub targets: Vec<Tensor<2>>,
    /// The trained node's taps.
    pub own_taps: Vec<Tap>,
    /// The sources' taps.
    pub source_taps: Vec<Tap>,
    /// Each branch's features `[B, F]`, tracked, branch 1 first ([`Targets::Branches`] only).
    pub branches: Vec<Tensor<2>>,
    /// The term's adapter ([`LossKind::adapter`]), learned with the node.
    pub adapter: Option<&'a Adapter>,
    /// The epoch of the stage (from 0), for a kind's own schedule (DKD's warm-up).
    pub epoch: usize,
    /// The batch's samples as the training split knows them (CRD's memory bank).
    pub lookup: Lookup<'a>,
}

/// Where a term's rows sit in the training split, and its draws of this step (for kinds that
/// look samples up beyond the batch: CRD's memory bank and its negatives).
#[derive(Clone, Debug, Default)]
pub struct Lookup<'a> {
    /// Each row's index in the training split.
    pub indices: Vec<usize>,
    /// The training split's labels, by index.
    pub labels: &'a [u8],
    /// Seed of the term's draws in this step (keyed by run seed, epoch, step, node and term).
    pub seed: u64,
}

impl Inputs<'_> {
    /// The same inputs on the batch rows `rows` only (KTG's correct gate).
    pub fn select(self, rows: Tensor<1, Int>) -> Self {
        Inputs {
            z: self.z.select(0, rows.clone()),
            y: self.y.select(0, rows.clone()),
            targets: self.targets.into_iter().map(|t| t.select(0, rows.clone())).collect(),
            own_taps: self.own_taps.into_iter().map(|t| t.select(rows.clone())).collect(),
            source_taps: self.source_taps.into_iter().map(|t| t.select(rows.clone())).collect(),
            branches: self.branches.into_iter().map(|t| t.select(0, rows.clone())).collect(),
            lookup: Lookup { indices: rows.clone().into_data().iter::<i64>().map(|r| self.lookup.indices[r as usize]).collect(), ..self.lookup },
            ..self
        }
    }
    /// The trained node's first tap (for kinds that read one, [`Reads::own_taps`]).
    pub fn own_tap(&self) -> Tap {
        self.own_taps.first().cloned().expect("the step collects the taps the kind reads")
    }
}

/// What a kind reports of one step beside its loss: `(name, value)` pairs.
pub type Diagnostics = Vec<(&'static str, f64)>;

/// One kind of loss: its spec (the struct that implements this) and everything the resolver,
/// the exchange and the step need to know of it. Each lives in its own file of `src/losses/`
/// with its paper's equation in the doc comment.
pub trait LossKind {
    /// Its variant name in experiment files (`SoftTarget`).
    fn name(&self) -> &'static str;

    /// A short label with its options, for plans, charts and metric names (`SoftTarget(T=4)`).
    fn label(&self) -> String;

    /// What it reads.
    fn reads(&self) -> Reads<'_>;

    /// How many sources it takes (the resolver reports a missing source for
    /// [`Arity::AtLeastOne`] before [`LossKind::check`] runs).
    fn arity(&self) -> Arity {
        Arity::AtLeastOne
    }

    /// Its own checks of the edge it sits on (positioned diagnostics through `edge`); may
    /// normalise its options (source weights).
    fn check(&mut self, _edge: &mut EdgeCheck) {}

    /// The learned part it owns, given the shapes of the target's taps (`own`) and of its
    /// first source's (`source`), channels first without the batch, and the number of training
    /// samples (CRD's memory bank holds one row per sample).
    fn adapter(&self, _own: &dyn Fn(&str) -> Vec<usize>, _source: &dyn Fn(&str) -> Vec<usize>, _samples: usize) -> Option<AdapterSpec> {
        None
    }

    /// The key under which terms share one adapter (FT's paraphraser, trained by one term and
    /// read by another): terms of one node with the same key and sources hold one slot. `None`:
    /// the term's own.
    fn adapter_key(&self) -> Option<String> {
        None
    }

    /// Reads what it needs of its source's weights at the start of each stage it acts in (OFD's
    /// margin from the source's batch norm), into its adapter; `source_trains`: whether the
    /// source trains in that stage. The problem and its fix otherwise (exit 2).
    fn prepare(&self, _adapter: Option<&Adapter>, _source: &crate::models::Network, _source_trains: bool) -> Result<(), (String, String)> {
        Ok(())
    }

    /// Its checks against the training split's labels, once the data is loaded (CRD's negatives
    /// against the classes' sizes): the problem and its fix. The run refuses to start (exit 2).
    fn check_data(&self, _labels: &[u8]) -> Option<(String, String)> {
        None
    }

    /// The unweighted loss of one term (a one-element tensor); the step multiplies it by the
    /// edge's weight, ramp-up and gate.
    fn loss(&self, inputs: Inputs) -> Tensor<1>;

    /// The loss and what the kind reports of this step beside it, `(name, value)` (OKDDip's
    /// self-attention, recorded per epoch as `<name>:<term>` rows of `metrics.csv`).
    fn loss_and_diagnostics(&self, inputs: Inputs) -> (Tensor<1>, Diagnostics) {
        (self.loss(inputs), Vec::new())
    }
}
