//! What one forward pass collects and draws: named intermediate features ("taps") for feature
//! losses and for other nodes, and the seeded noise of its dropout masks.

use burn::tensor::{Device, Int, Tensor, TensorData};

/// An intermediate feature, by rank.
#[derive(Clone, Debug)]
pub enum Tap {
    /// `[B, F]` (fully connected layers, pooled features).
    Flat(Tensor<2>),
    /// `[B, C, L]` (1-D conv blocks).
    Seq(Tensor<3>),
    /// `[B, C, H, W]` (2-D conv blocks).
    Map(Tensor<4>),
}

impl Tap {
    /// The same feature cut off from the graph.
    pub fn detach(self) -> Tap {
        match self {
            Tap::Flat(t) => Tap::Flat(t.detach()),
            Tap::Seq(t) => Tap::Seq(t.detach()),
            Tap::Map(t) => Tap::Map(t.detach()),
        }
    }
    /// `[B, C, N]` with the positions flattened (`N = 1` for flat features, `C` = features).
    pub fn channels_by_positions(self) -> Tensor<3> {
        match self {
            Tap::Flat(t) => t.unsqueeze_dim(2),
            Tap::Seq(t) => t,
            Tap::Map(t) => t.flatten(2, 3),
        }
    }
    /// The same feature on the autodiff device (a fixed source's output as a target).
    pub fn autodiff(self) -> Tap {
        match self {
            Tap::Flat(t) => Tap::Flat(t.autodiff()),
            Tap::Seq(t) => Tap::Seq(t.autodiff()),
            Tap::Map(t) => Tap::Map(t.autodiff()),
        }
    }
    /// The rows `rows` of the batch.
    pub fn select(self, rows: Tensor<1, Int>) -> Tap {
        match self {
            Tap::Flat(t) => Tap::Flat(t.select(0, rows)),
            Tap::Seq(t) => Tap::Seq(t.select(0, rows)),
            Tap::Map(t) => Tap::Map(t.select(0, rows)),
        }
    }
    /// Plain data, to cross between threads.
    pub fn into_data(self) -> TensorData {
        match self {
            Tap::Flat(t) => t.into_data(),
            Tap::Seq(t) => t.into_data(),
            Tap::Map(t) => t.into_data(),
        }
    }
    /// Back from [`Tap::into_data`] (the rank picks the variant).
    pub fn from_data(d: TensorData, device: &Device) -> Tap {
        match d.shape().len() {
            2 => Tap::Flat(Tensor::from_data(d, device)),
            3 => Tap::Seq(Tensor::from_data(d, device)),
            _ => Tap::Map(Tensor::from_data(d, device)),
        }
    }
    /// The device it is on.
    pub fn device(&self) -> Device {
        match self {
            Tap::Flat(t) => t.device(),
            Tap::Seq(t) => t.device(),
            Tap::Map(t) => t.device(),
        }
    }
    /// On `device`: itself when it is there already, else a detached copy through host memory.
    pub fn on_device(self, device: &Device) -> Tap {
        if self.device() == *device { self } else { Tap::from_data(self.into_data(), device) }
    }
}

/// A seeded stream of uniform numbers for dropout masks (SplitMix64). Masks come from here, not
/// from the backend's global generator, so nodes trained on different threads draw reproducible
/// masks whatever the scheduling.
#[derive(Clone, Debug)]
pub struct Noise {
    state: u64,
}

impl Noise {
    /// A stream for `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }
    /// Uniform in [0, 1) with 24 random bits.
    pub fn next_f32(&mut self) -> f32 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// Inverted dropout: zero each element with probability `p`, scale the rest by 1/(1−p). Only
/// acts when the pass carries [`Noise`] (training); evaluation passes none.
pub(crate) fn dropout<const D: usize>(x: Tensor<D>, p: f64, noise: &mut Option<Noise>) -> Tensor<D> {
    let Some(n) = noise.as_mut().filter(|_| p > 0.0) else { return x };
    let dims = x.dims();
    let keep = (1.0 - p) as f32;
    let count: usize = dims.iter().product();
    let mask: Vec<f32> = (0..count).map(|_| if n.next_f32() < keep { 1.0 / keep } else { 0.0 }).collect();
    let mask = Tensor::<D>::from_data(TensorData::new(mask, dims), &x.device());
    x * mask
}

/// What one forward pass collects (taps) and which noise it uses (dropout).
#[derive(Debug, Default)]
pub struct Taps {
    wanted: Vec<String>,
    /// The collected `(name, feature)` pairs, in forward order.
    pub got: Vec<(String, Tap)>,
    /// Dropout masks' source; `None` = no dropout (evaluation).
    pub noise: Option<Noise>,
}

impl Taps {
    /// Asks for the taps `names`.
    pub fn new(names: &[String]) -> Self {
        Self { wanted: names.to_vec(), got: Vec::new(), noise: None }
    }
    /// A training pass: dropout masks drawn from `noise`, no taps.
    pub fn training(noise: Noise) -> Self {
        Self { wanted: Vec::new(), got: Vec::new(), noise: Some(noise) }
    }
    /// Also collect the taps `names`.
    pub fn wanting(mut self, names: &[String]) -> Self {
        self.wanted = names.to_vec();
        self
    }
    /// Takes the collected tap `name`.
    pub fn take(&mut self, name: &str) -> Option<Tap> {
        let k = self.got.iter().position(|(n, _)| n == name)?;
        Some(self.got.swap_remove(k).1)
    }
    /// The collected tap `name`, left in place.
    pub fn get(&self, name: &str) -> Option<&Tap> {
        self.got.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }
    /// Whether the pass asked for the tap `name` (a network computes a feature it otherwise
    /// fuses away — a pre-activation — only then).
    pub(crate) fn want(&self, name: &str) -> bool {
        self.wanted.iter().any(|w| w == name)
    }
    /// `f` run on this pass with no taps collected (its noise still drawn from this pass's
    /// stream): a branch's tail, whose features would clash with its sister branches'.
    pub(crate) fn muted<R>(&mut self, f: impl FnOnce(&mut Taps) -> R) -> R {
        let wanted = std::mem::take(&mut self.wanted);
        let r = f(self);
        self.wanted = wanted;
        r
    }
    /// Records the feature `f()` under `name` when the pass asked for it (`f` runs only then).
    pub(crate) fn put(&mut self, name: String, f: impl FnOnce() -> Tap) {
        if self.want(&name) {
            self.got.push((name, f()));
        }
    }
}
