//! What a trained node carries besides its network: the learned adapters of its FitNets hints.

use burn::module::Module;
use burn::nn::conv::{Conv1d, Conv1dConfig, Conv2d, Conv2dConfig};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::Device;

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
}

impl Adapter {
    /// An adapter from a tap of shape `from` (no batch dimension) to one of `to` channels.
    pub fn new(from: &[usize], to: &[usize], device: &Device) -> Self {
        match from.len() {
            1 => Adapter::Linear(LinearConfig::new(from[0], to[0]).init(device)),
            2 => Adapter::Conv1d(Conv1dConfig::new(from[0], to[0], 1).init(device)),
            _ => Adapter::Conv2d(Conv2dConfig::new([from[0], to[0]], [1, 1]).init(device)),
        }
    }
    /// `r(v)`.
    pub fn forward(&self, v: Tap) -> Tap {
        match (self, v) {
            (Adapter::Linear(l), Tap::Flat(t)) => Tap::Flat(kernels::linear(l, t)),
            (Adapter::Conv1d(c), Tap::Seq(t)) => Tap::Seq(c.forward(t)),
            (Adapter::Conv2d(c), Tap::Map(t)) => Tap::Map(c.forward(t)),
            _ => panic!("adapter and tap ranks differ (the resolver checks tap shapes)"),
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
    pub fn new(net: Network, adapters: &[(Vec<usize>, Vec<usize>)], device: &Device) -> Self {
        let adapters: Vec<Adapter> = adapters.iter().map(|(f, t)| Adapter::new(f, t, device)).collect();
        for a in &adapters {
            a.visit(&mut Materialize);
        }
        Self { net, adapters }
    }
}
