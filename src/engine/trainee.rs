//! What the engine trains for a node: its network plus the adapters its terms learn with it.

use burn::module::Module;
use burn::tensor::Device;

use crate::losses::adapter::{Adapter, AdapterSpec};
use crate::models::{Materialize, Network};

/// A trained node: its network plus one adapter per term of it whose loss kind owns one (in
/// the order of [`crate::engine::exchange::adapter_slots`]). Checkpoints hold the network alone.
#[derive(Module, Debug)]
pub struct Trainee {
    /// The network.
    pub net: Network,
    /// The adapters of its terms.
    pub adapters: Vec<Adapter>,
}

impl Trainee {
    /// `net` with freshly drawn adapters of `adapters`, drawn now (see [`Network::init`]).
    pub fn new(net: Network, adapters: &[AdapterSpec], device: &Device) -> Self {
        let adapters: Vec<Adapter> = adapters.iter().map(|a| Adapter::new(a, device)).collect();
        for a in &adapters {
            a.visit(&mut Materialize);
        }
        Self { net, adapters }
    }
}
