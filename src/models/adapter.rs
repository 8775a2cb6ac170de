//! What a trained node carries besides its network: the learned adapters of its FitNets hints.

use burn::module::Module;
use burn::nn::conv::{Conv1d, Conv1dConfig, Conv2d, Conv2dConfig};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor};

use super::tap::Tap;
use super::{Materialize, Network};
use crate::kernels;

/// A learned FitNets adapter r (Romero et al. 2015) from a target's tap to a source's tap
/// shape: a linear map for flat features, a 1×1 convolution for feature maps (channels
/// `C_to → C_from`, positions unchanged).
#[derive(Module, Debug)]
pub enum Adapter {
    /// `[B, F] → [B, F']`.
    Linear(Linear),
    /// `[B, C, L] → [B, C', L]`.
    Conv1d(Conv1d),
    /// `[B, C, H, W] → [B, C', H, W]`.
    Conv2d(Conv2d),
    /// OKDDip's query and key projections of a `PeerAttention` term.
    Attention(QueryKey),
}

/// OKDDip's projections `F → d`, no bias.
#[derive(Module, Debug)]
pub struct QueryKey {
    /// W_q.
    query: Linear,
    /// W_k.
    key: Linear,
}

/// What a node learns besides its network for one of its terms.
#[derive(Clone, Debug, PartialEq)]
pub enum AdapterSpec {
    /// A hint's adapter from the target's tap shape `from` to the source's `to` (channels first,
    /// no batch dimension).
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
    /// The adapter of `spec`.
    pub fn new(spec: &AdapterSpec, device: &Device) -> Self {
        match spec {
            AdapterSpec::Hint { from, to } => match from.len() {
                1 => Adapter::Linear(LinearConfig::new(from[0], to[0]).init(device)),
                2 => Adapter::Conv1d(Conv1dConfig::new(from[0], to[0], 1).init(device)),
                _ => Adapter::Conv2d(Conv2dConfig::new([from[0], to[0]], [1, 1]).init(device)),
            },
            AdapterSpec::Attention { features, dim } => Adapter::Attention(QueryKey {
                query: LinearConfig::new(*features, *dim).with_bias(false).init(device),
                key: LinearConfig::new(*features, *dim).with_bias(false).init(device),
            }),
        }
    }

    /// `(W_q·f_query, [W_k·f_j])` of an attention adapter, features `[B, F]`.
    pub fn query_keys(&self, query: Tensor<2>, members: &[Tensor<2>]) -> (Tensor<2>, Vec<Tensor<2>>) {
        match self {
            Adapter::Attention(p) => (kernels::linear(&p.query, query), members.iter().map(|f| kernels::linear(&p.key, f.clone())).collect()),
            _ => panic!("a PeerAttention term has an attention adapter"),
        }
    }
    /// `r(v)`.
    pub fn forward(&self, v: Tap) -> Tap {
        match (self, v) {
            (Adapter::Linear(l), Tap::Flat(t)) => Tap::Flat(kernels::linear(l, t)),
            (Adapter::Conv1d(c), Tap::Seq(t)) => Tap::Seq(c.forward(t)),
            (Adapter::Conv2d(c), Tap::Map(t)) => Tap::Map(c.forward(t)),
            _ => panic!("adapter and tap ranks differ, or not a hint adapter (the resolver checks tap shapes)"),
        }
    }
}

/// A trained node: its network plus the adapters its hint terms learn with it (in the order
/// of [`crate::engine::exchange::adapter_slots`]). Checkpoints hold the network alone.
#[derive(Module, Debug)]
pub struct Trainee {
    /// The network.
    pub net: Network,
    /// One adapter per hint term of this node.
    pub adapters: Vec<Adapter>,
}

impl Trainee {
    /// `net` with freshly drawn adapters for `(from shape, to shape)` pairs, drawn now (see
    /// [`Network::init`]).
    pub fn new(net: Network, adapters: &[AdapterSpec], device: &Device) -> Self {
        let adapters: Vec<Adapter> = adapters.iter().map(|a| Adapter::new(a, device)).collect();
        for a in &adapters {
            a.visit(&mut Materialize);
        }
        Self { net, adapters }
    }
}
