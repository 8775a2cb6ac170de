//! The learned parts a node carries for its terms, beside its network: one [`Adapter`] per term
//! whose kind owns one ([`super::LossKind::adapter`] says which, with its shapes). They are
//! defined here, beside each other, so that a node's list is one burn module; the kinds that
//! use them (`hint.rs`, `peer_attention.rs`, `correlation.rs`, `vid.rs`,
//! `curriculum_temperature.rs`, `activation_boundary.rs`; CRD's, with its memory bank, and ReviewKD's
//! fusion modules and FT's paraphraser and translator and OFD's connector are defined in
//! `contrastive.rs`, `review.rs`, `factor_transfer.rs` and `overhaul.rs`) read them.

use burn::module::{Module, Param};
use burn::nn::conv::{Conv1d, Conv1dConfig, Conv2d, Conv2dConfig};
use burn::nn::norm::{BatchNorm, BatchNormConfig};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use crate::kernels;
use crate::models::tap::Tap;

/// A term's learned part.
// a node holds one per term (a handful): the size of the largest variant costs nothing
#[allow(clippy::large_enum_variant)]
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
    /// An embedding of each side's flat features (CC's authors' form, [`super::correlation`]).
    Embed(EmbedPair),
    /// VID's regressor and variances ([`super::vid`]).
    Variational(Variational),
    /// CTKD's temperature parameter θ ([`super::curriculum_temperature`]).
    Temperature(GlobalT),
    /// A 1×1 convolution and a batch norm: AB's connector ([`super::activation_boundary`]), and
    /// with a ReLU after it RepDistiller's FitNets regressor `ConvReg` ([`super::hint`]).
    Connector(Connector),
    /// CRD's embeddings and memory bank ([`super::contrastive`]).
    Contrast(super::contrastive::Contrast),
    /// ReviewKD's fusion modules ([`super::review`]).
    Review(super::review::Review),
    /// FT's paraphraser and translator ([`super::factor_transfer`]).
    Factor(super::factor_transfer::Factor),
    /// OFD's connector and the source's margin ([`super::overhaul`]).
    Overhaul(super::overhaul::OfdConnector),
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
    /// One embedding `Linear(F, dim)` (with bias, no normalisation: RepDistiller's `LinearEmbed`)
    /// per side: the target's `own` features, the source's `source`.
    Embed {
        /// Flat width of the target's tap.
        own: usize,
        /// Flat width of the source's tap.
        source: usize,
        /// Width of the embeddings.
        dim: usize,
    },
    /// VID's regressor from the target's tap shape `from` to the source's `to` (channels first),
    /// through `mid` channels, and the source's per-channel variances, starting at `init_var`.
    Variational {
        /// The target's tap shape.
        from: Vec<usize>,
        /// The source's tap shape.
        to: Vec<usize>,
        /// Channels of the regressor's hidden layers.
        mid: usize,
        /// The variances' initial value.
        init_var: f64,
    },
    /// CTKD's θ, one parameter starting at 1 (the authors' `Global_T`).
    Temperature,
    /// A connector from the target's tap shape `from` to the source's `to` (channels first, the
    /// same positions): a 1×1 convolution with bias, then a batch norm (AB; RepDistiller's hint).
    Connector {
        /// The target's tap shape.
        from: Vec<usize>,
        /// The source's tap shape.
        to: Vec<usize>,
    },
    /// CRD's embeddings of each side's flat features to `dim` and its memory bank of `samples`
    /// rows per side.
    Contrast {
        /// Flat width of the target's tap.
        own: usize,
        /// Flat width of the source's tap.
        source: usize,
        /// Width of the embeddings.
        dim: usize,
        /// Training samples (rows of the bank).
        samples: usize,
    },
    /// OFD's connector from the target's `own` channels to the source's `source`.
    Overhaul {
        /// The target's channels.
        own: usize,
        /// The source's channels.
        source: usize,
    },
    /// FT's paraphraser of the source's tap shape `source` and translator from the target's
    /// `own` (channels first), at rate `rate`.
    Factor {
        /// The target's tap shape.
        own: Vec<usize>,
        /// The source's tap shape.
        source: Vec<usize>,
        /// The factors' share of the source's channels.
        rate: f64,
    },
    /// ReviewKD's fusion modules from the target's tap shapes `own` to the source's `source`,
    /// level by level (channels first).
    Review {
        /// The target's tap shapes.
        own: Vec<Vec<usize>>,
        /// The source's tap shapes.
        source: Vec<Vec<usize>>,
    },
}

impl Adapter {
    /// The adapter of `spec`, drawn now.
    pub fn new(spec: &AdapterSpec, device: &Device) -> Self {
        match spec {
            AdapterSpec::Hint { from, to } => regressor(from, to, device),
            AdapterSpec::Attention { features, dim } => Adapter::Attention(QueryKey::new(*features, *dim, device)),
            AdapterSpec::Embed { own, source, dim } => {
                Adapter::Embed(EmbedPair { own: LinearConfig::new(*own, *dim).init(device), source: LinearConfig::new(*source, *dim).init(device) })
            }
            AdapterSpec::Variational { from, to, mid, init_var } => Adapter::Variational(Variational::new(from, to, *mid, *init_var, device)),
            AdapterSpec::Temperature => Adapter::Temperature(GlobalT { theta: Param::from_tensor(Tensor::<1>::ones([1], device)) }),
            AdapterSpec::Connector { from, to } => {
                let conv = match regressor(from, to, device) {
                    Adapter::Conv1d(c) => ConnectorConv::Seq(c),
                    Adapter::Conv2d(c) => ConnectorConv::Map(c),
                    _ => unreachable!("the resolver admits maps and sequences only"),
                };
                Adapter::Connector(Connector { conv, bn: BatchNormConfig::new(to[0]).init(device) })
            }
            AdapterSpec::Overhaul { own, source } => Adapter::Overhaul(super::overhaul::OfdConnector::new(*own, *source, device)),
            AdapterSpec::Factor { own, source, rate } => {
                let kernel = if source.len() == 2 { [3, 1] } else { [3, 3] };
                Adapter::Factor(super::factor_transfer::Factor::new(own[0], source[0], *rate, kernel, device))
            }
            AdapterSpec::Review { own, source } => Adapter::Review(super::review::Review::new(own, source, device)),
            AdapterSpec::Contrast { own, source, dim, samples } => Adapter::Contrast(super::contrastive::Contrast::new(*own, *source, *dim, *samples, device)),
        }
    }
}

/// The regressor r from the target's tap shape `from` to the source's `to` (channels first).
fn regressor(from: &[usize], to: &[usize], device: &Device) -> Adapter {
    match from.len() {
        1 => Adapter::Linear(LinearConfig::new(from[0], to[0]).init(device)),
        2 => Adapter::Conv1d(Conv1dConfig::new(from[0], to[0], 1).init(device)),
        _ => Adapter::Conv2d(Conv2dConfig::new([from[0], to[0]], [1, 1]).init(device)),
    }
}

/// AB's connector (RepDistiller's `ConvReg(s, t, use_relu=False)` between taps at the same
/// positions): a 1×1 convolution with bias to the source's channels, then a batch norm.
#[derive(Module, Debug)]
pub struct Connector {
    /// The convolution, on sequences or maps.
    pub conv: ConnectorConv,
    /// Its batch norm.
    pub bn: BatchNorm,
}

/// A connector's convolution.
#[derive(Module, Debug)]
pub enum ConnectorConv {
    /// On sequences `[B, C, L]`.
    Seq(Conv1d),
    /// On maps `[B, C, H, W]`.
    Map(Conv2d),
}

impl Connector {
    /// `bn(conv(v))`.
    ///
    /// # Shapes
    /// `[B, C_s, …]` → `[B, C_t, …]`, positions unchanged.
    pub fn forward(&self, v: Tap) -> Tap {
        match (&self.conv, v) {
            (ConnectorConv::Seq(c), Tap::Seq(t)) => Tap::Seq(kernels::batch_norm(&self.bn, c.forward(t))),
            (ConnectorConv::Map(c), Tap::Map(t)) => Tap::Map(kernels::batch_norm(&self.bn, c.forward(t))),
            _ => panic!("connector and tap ranks differ (the resolver checks tap shapes)"),
        }
    }
}

/// An embedding per side (RepDistiller's `embed_s`, `embed_t`), both learned with the target.
#[derive(Module, Debug)]
pub struct EmbedPair {
    /// The target's.
    pub own: Linear,
    /// The source's.
    pub source: Linear,
}

/// OKDDip's projections `F → d`, no bias.
#[derive(Module, Debug)]
pub struct QueryKey {
    /// W_q.
    query: Linear,
    /// W_k.
    key: Linear,
}

impl QueryKey {
    /// Projections of `features` channels to `dim`, drawn now.
    pub fn new(features: usize, dim: usize, device: &Device) -> Self {
        QueryKey { query: LinearConfig::new(features, dim).with_bias(false).init(device), key: LinearConfig::new(features, dim).with_bias(false).init(device) }
    }

    /// `(W_q·f_query, [W_k·f_j])`.
    ///
    /// # Shapes
    /// features `[B, F]` → `[B, d]`.
    pub fn project(&self, query: Tensor<2>, members: &[Tensor<2>]) -> (Tensor<2>, Vec<Tensor<2>>) {
        (kernels::linear(&self.query, query), members.iter().map(|f| kernels::linear(&self.key, f.clone())).collect())
    }
}

/// CTKD's global temperature parameter θ (`T = t_start + t_end·sigmoid(θ)`).
#[derive(Module, Debug)]
pub struct GlobalT {
    /// θ, `[1]`.
    pub theta: Param<Tensor<1>>,
}

impl GlobalT {
    /// θ as a tensor.
    pub fn val(&self) -> Tensor<1> {
        self.theta.val()
    }
}

/// VID's ε: its variances are `softplus(α) + ε` ([`super::vid`]).
pub const VID_EPS: f64 = 1e-5;

/// VID's learned part: the regressor's three 1×1 layers (as `Linear` without bias on the
/// channels, position by position) and α, one per channel of the source.
#[derive(Module, Debug)]
pub struct Variational {
    /// `C_s → mid`, `mid → mid`, `mid → C_t`.
    pub layers: Vec<Linear>,
    /// α (`σ² = softplus(α) + 1e-5`).
    pub log_scale: Param<Tensor<1>>,
}

impl Variational {
    /// Drawn now: the layers as PyTorch draws a 1×1 convolution's weights (uniform in
    /// ±1/√fan_in), α at `log(exp(init_var − 1e-5) − 1)`.
    pub fn new(from: &[usize], to: &[usize], mid: usize, init_var: f64, device: &Device) -> Self {
        let (c_in, c_out) = (from[0], to[0]);
        let layers = [(c_in, mid), (mid, mid), (mid, c_out)].into_iter().map(|(i, o)| LinearConfig::new(i, o).with_bias(false).init(device)).collect();
        let alpha = ((init_var - VID_EPS).exp() - 1.0).ln();
        Variational { layers, log_scale: Param::from_tensor(Tensor::<1>::full([c_out], alpha, device)) }
    }

    /// μ(s): the regressor on every position of `s`.
    ///
    /// # Shapes
    /// `s` `[B, C_s, N]` → `[B, C_t, N]`.
    pub fn mean(&self, s: Tensor<3>) -> Tensor<3> {
        let [b, _, n] = s.dims();
        let mut x = s.swap_dims(1, 2).flatten(0, 1);
        for (k, layer) in self.layers.iter().enumerate() {
            x = kernels::linear(layer, x);
            if k + 1 < self.layers.len() {
                x = relu(x);
            }
        }
        let [_, c] = x.dims();
        x.reshape([b, n, c]).swap_dims(1, 2)
    }

    /// `σ²_c = softplus(α_c) + 1e-5`.
    pub fn variance(&self) -> Tensor<1> {
        self.log_scale.val().exp().add_scalar(1.0).log().add_scalar(VID_EPS)
    }
}
