//! The gate on an edge's weight (Knowledge Transfer Graph).

use serde::{Deserialize, Serialize};

/// A Knowledge Transfer Graph gate (Minami et al., ACCV 2020, §3.2): a factor on an edge's
/// loss as a function of training progress, or (`Correct`) of each sample. Any edge can be gated,
/// the cross-entropy edges with the labels too, as in the paper's graphs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Gate {
    /// g = 1.
    #[default]
    Through,
    /// g = 0 (the edge is off).
    Cutoff,
    /// The paper's linear gate, g = k/k_end with k the iteration from the stage's start (from 0)
    /// and k_end its iterations: grows within every epoch.
    Linear,
    /// g = e/E in epoch e (from 0) of E: the linear gate stepped per epoch, as the
    /// re-implementation yukiharada1228/KnowledgeTransferGraph (`ktg/gates.py`,
    /// `PositiveLinearGate`) computes it.
    PositiveLinear,
    /// g = 1 − e/E (fades out). Not in the paper: the re-implementation's replacement of the
    /// correct gate (its `NegativeLinearGate`).
    NegativeLinear,
    /// The paper's correct gate: each sample's loss passes only when the edge's source
    /// classifies it correctly (argmax of its logits = the label), else 0; the term is the mean
    /// over the whole batch, `(1/B) Σ_b [argmax s_b = y_b] ℓ_b`. Needs one source with logits.
    Correct,
}

/// Where training is, for a gate: epoch `epoch` (from 0) of `epochs`, step `step` (from 0) of
/// `steps` per epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Epoch within the stage, from 0.
    pub epoch: usize,
    /// Epochs of the stage.
    pub epochs: usize,
    /// Step within the epoch, from 0.
    pub step: usize,
    /// Steps per epoch.
    pub steps: usize,
}

impl Gate {
    /// g at `at` (1 for `Correct`, whose factor is per sample: [`Gate::is_per_sample`]).
    pub fn factor(self, at: Progress) -> f64 {
        let per_epoch = at.epoch as f64 / at.epochs.max(1) as f64;
        match self {
            Gate::Through | Gate::Correct => 1.0,
            Gate::Cutoff => 0.0,
            Gate::Linear => (at.epoch * at.steps + at.step) as f64 / (at.epochs * at.steps).max(1) as f64,
            Gate::PositiveLinear => per_epoch,
            Gate::NegativeLinear => 1.0 - per_epoch,
        }
    }

    /// Whether it gates each sample (`Correct`) rather than the whole term.
    pub fn is_per_sample(self) -> bool {
        self == Gate::Correct
    }

    /// Whether it is the default (left out of written plans).
    pub fn is_through(&self) -> bool {
        *self == Gate::Through
    }
}
