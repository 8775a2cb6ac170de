//! The learned parts a node carries for its terms, beside its network: one [`Adapter`] per term
//! whose kind owns one ([`super::LossKind::adapter`]). The kinds define them (`hint.rs`,
//! `peer_attention.rs`); this enum holds them so a node's list is one burn module.

use burn::module::Module;
use burn::nn::Linear;
use burn::nn::conv::{Conv1d, Conv2d};
use burn::tensor::Device;

use super::peer_attention::QueryKey;

/// A term's learned part.
#[derive(Module, Debug)]
pub enum Adapter {
    /// A FitNets regressor on flat features, `[B, F] → [B, F']` ([`super::hint`]).
    Linear(Linear),
    /// A FitNets regressor on sequences, `[B, C, L] → [B, C', L]`.
    Conv1d(Conv1d),
    /// A FitNets regressor on maps, `[B, C, H, W] → [B, C', H, W]`.
    Conv2d(Conv2d),
    /// OKDDip's query and key projections ([`super::peer_attention`]).
    Attention(QueryKey),
}

/// What a term learns besides the network, as planned (before any weight is drawn).
#[derive(Clone, Debug, PartialEq)]
pub enum AdapterSpec {
    /// A hint's regressor from the target's tap shape `from` to the source's `to` (channels
    /// first, no batch dimension).
    Hint {
        /// The target's tap shape.
        from: Vec<usize>,
        /// The source's tap shape.
        to: Vec<usize>,
    },
    /// A `PeerAttention` term's projections of `features` channels to `dim`.
    Attention {
        /// Channels F of the tap.
        features: usize,
        /// Width d of the query and the key.
        dim: usize,
    },
}

impl Adapter {
    /// The adapter of `spec`, drawn now.
    pub fn new(spec: &AdapterSpec, device: &Device) -> Self {
        match spec {
            AdapterSpec::Hint { from, to } => super::hint::regressor(from, to, device),
            AdapterSpec::Attention { features, dim } => Adapter::Attention(QueryKey::new(*features, *dim, device)),
        }
    }
}
