//! The gate on an edge's weight (Knowledge Transfer Graph).

use serde::{Deserialize, Serialize};

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
