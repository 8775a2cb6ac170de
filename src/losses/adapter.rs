//! The learned parts a node carries for its terms, beside its network: one [`Adapter`] per term
//! whose kind owns one ([`super::LossKind::adapter`] says which, with its shapes). They are
//! defined here, beside each other, so that a node's list is one burn module; the kinds that
//! use them (`hint.rs`, `peer_attention.rs`, `correlation.rs`, `vid.rs`,
//! `curriculum_temperature.rs`, `activation_boundary.rs`, `contrastive.rs`, `review.rs`,
//! `factor_transfer.rs`, `overhaul.rs`) read them and re-export theirs. The arithmetic of a learned
//! part's own forward pass lives here with it (CRD's bank update and NCE, ReviewKD's fusion, FT's
//! paraphraser, OFD's connector), so that this file imports no loss file (no import circle).

use burn::module::{Module, Param, RunningState};
use burn::nn::conv::{Conv1d, Conv1dConfig, Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::norm::{BatchNorm, BatchNormConfig};
use burn::nn::{Initializer, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::{leaky_relu, relu, sigmoid};
use burn::tensor::{Device, Distribution, IndexingUpdateOp, Int, Tensor, TensorData};

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
    Contrast(Contrast),
    /// ReviewKD's fusion modules ([`super::review`]).
    Review(Review),
    /// FT's paraphraser and translator ([`super::factor_transfer`]).
    Factor(Factor),
    /// OFD's connector and the source's margin ([`super::overhaul`]).
    Overhaul(OfdConnector),
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
            AdapterSpec::Overhaul { own, source } => Adapter::Overhaul(OfdConnector::new(*own, *source, device)),
            AdapterSpec::Factor { own, source, rate } => {
                let kernel = if source.len() == 2 { [3, 1] } else { [3, 3] };
                Adapter::Factor(Factor::new(own[0], source[0], *rate, kernel, device))
            }
            AdapterSpec::Review { own, source } => Adapter::Review(Review::new(own, source, device)),
            AdapterSpec::Contrast { own, source, dim, samples } => Adapter::Contrast(Contrast::new(*own, *source, *dim, *samples, device)),
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

// CRD's learned part (`contrastive.rs`)
/// RepDistiller's ε in the NCE ratios.
const EPS: f64 = 1e-7;

/// CRD's learned part and memory: the two embeddings (trained with the target) and the bank of
/// the training split with its normalisation constants (running state: saved with the run, no
/// gradient).
#[derive(Module, Debug)]
pub struct Contrast {
    /// `g_s`, the target's embedding.
    pub embed_own: Linear,
    /// `g_t`, the source's embedding.
    pub embed_source: Linear,
    /// `M_s` `[N, dim]`: the target's embedding of every training sample (RepDistiller's `memory_v1`).
    pub memory_own: RunningState<Tensor<2>>,
    /// `M_t` `[N, dim]`: the source's (`memory_v2`).
    pub memory_source: RunningState<Tensor<2>>,
    /// `[Z_s, Z_t]`, −1 until the first step sets them.
    pub normalizers: RunningState<Tensor<1>>,
}

impl Contrast {
    /// The embeddings from `own` and `source` features to `dim`, and the bank of `samples` rows
    /// drawn uniform in ±1/√(dim/3), drawn now (in that order).
    pub fn new(own: usize, source: usize, dim: usize, samples: usize, device: &Device) -> Self {
        let embed_own = LinearConfig::new(own, dim).init(device);
        let embed_source = LinearConfig::new(source, dim).init(device);
        let stdv = 1.0 / (dim as f64 / 3.0).sqrt();
        let bank = || RunningState::new(Tensor::<2>::random([samples, dim], Distribution::Uniform(-stdv, stdv), device));
        let memory_own = bank();
        let memory_source = bank();
        Contrast { embed_own, embed_source, memory_own, memory_source, normalizers: RunningState::new(Tensor::full([2], -1.0, device)) }
    }

    /// The loss `L_s + L_t` of one step for the embeddings `s` (target) and `t` (source) of the
    /// batch's samples `rows` (their indices in the training split), scored against the bank rows
    /// `contrast` (each row's positive, then its K negatives); then the bank's update (and, at the
    /// first step, the normalisation constants').
    ///
    /// # Shapes
    /// `s`, `t` `[B, dim]` (L2-normalised), `rows` `[B]`, `contrast` `[B·(K+1)]` → `[1]`.
    pub fn step(&self, s: Tensor<2>, t: Tensor<2>, rows: Tensor<1, Int>, contrast: Tensor<1, Int>, temperature: f64, momentum: f64) -> Tensor<1> {
        let [b, d] = s.dims();
        let k1 = contrast.dims()[0] / b;
        let (m_own, m_source) = (self.memory_own.value(), self.memory_source.value());
        let n = m_own.dims()[0];
        let score = |bank: &Tensor<2>, e: Tensor<2>| {
            let w = bank.clone().select(0, contrast.clone()).reshape([b, k1, d]);
            w.matmul(e.reshape([b, d, 1])).reshape([b, k1]).div_scalar(temperature).exp()
        };
        // RepDistiller: out_v1 = exp(M_v2 · v1 / T) with v1 the student's embedding
        let out_own = score(&m_source, s.clone());
        let out_source = score(&m_own, t.clone());
        let mut z: Vec<f32> = self.normalizers.value().into_data().try_to_vec().expect("two floats");
        if z[0] < 0.0 {
            let mean = |o: &Tensor<2>| o.clone().detach().mean().into_scalar::<f32>() * n as f32;
            z = vec![mean(&out_own), mean(&out_source)];
            self.normalizers.update(Tensor::from_data(TensorData::new(z.clone(), [2]), &s.device()));
            self.normalizers.value_sync();
        }
        let loss = nce_loss(out_own.div_scalar(z[0]), n) + nce_loss(out_source.div_scalar(z[1]), n);
        update_bank(&self.memory_own, m_own, rows.clone(), s, momentum);
        update_bank(&self.memory_source, m_source, rows, t, momentum);
        loss
    }
}

/// `M[rows] ← normalise(m·M[rows] + (1 − m)·e)`, no gradient.
fn update_bank(bank: &RunningState<Tensor<2>>, m: Tensor<2>, rows: Tensor<1, Int>, e: Tensor<2>, momentum: f64) {
    let pos = m.clone().select(0, rows.clone()).mul_scalar(momentum) + e.detach().mul_scalar(1.0 - momentum);
    let norm = pos.clone().powi_scalar(2).sum_dim(1).sqrt();
    bank.update(m.select_assign(0, rows, pos / norm, IndexingUpdateOp::Assign));
    // one thread updates a node's bank in a step: syncing now keeps exactly this value
    bank.value_sync();
}

/// An embedding: `g(f)` L2-normalised (RepDistiller's `Embed`: `Linear`, then `x / ‖x‖`).
///
/// # Shapes
/// `f` `[B, F]` → `[B, dim]`.
pub fn embed(g: &Linear, f: Tensor<2>) -> Tensor<2> {
    let x = kernels::linear(g, f);
    let norm = x.clone().powi_scalar(2).sum_dim(1).sqrt();
    x / norm
}

/// The NCE loss of eq. (18) (RepDistiller's `ContrastLoss`) on the normalised scores `x`, the
/// positive first, for a training split of `n` samples: `−(1/B)·Σ [log(x₀/(x₀ + c + ε)) +
/// Σ_{j≥1} log(c/(x_j + c + ε))]`, `c = K/n`.
///
/// # Shapes
/// `x` `[B, K+1]` → `[1]`.
pub fn nce_loss(x: Tensor<2>, n: usize) -> Tensor<1> {
    let [b, k1] = x.dims();
    let c = (k1 - 1) as f64 / n as f64;
    let pos = x.clone().slice([0..b, 0..1]);
    let neg = x.slice([0..b, 1..k1]);
    let log_d1 = (pos.clone() / pos.add_scalar(c + EPS)).log();
    let log_d0 = neg.add_scalar(c + EPS).recip().mul_scalar(c).log();
    (log_d1.sum() + log_d0.sum()).neg().div_scalar(b as f64)
}

// ReviewKD's learned part (`review.rs`)
/// A tap as a map `[B, C, H, W]`: a sequence as width 1, flat features as 1×1.
pub fn as_map(t: Tap) -> Tensor<4> {
    match t {
        Tap::Flat(t) => t.unsqueeze_dim::<3>(2).unsqueeze_dim(3),
        Tap::Seq(t) => t.unsqueeze_dim(3),
        Tap::Map(t) => t,
    }
}

/// `[C, H, W]` of a tap shape (channels first, no batch): see [`as_map`].
fn map_shape(s: &[usize]) -> [usize; 3] {
    match s {
        [c] => [*c, 1, 1],
        [c, l] => [*c, *l, 1],
        [c, h, w, ..] => [*c, *h, *w],
        [] => [0, 1, 1],
    }
}

/// PyTorch's `F.interpolate(x, size, mode="nearest")`: output row i reads input row
/// `⌊i·H/H'⌋` (exact here for the sizes a network's levels have).
///
/// # Shapes
/// `[B, C, H, W]` → `[B, C, H', W']`.
pub fn nearest(x: Tensor<4>, [h2, w2]: [usize; 2]) -> Tensor<4> {
    let [_, _, h, w] = x.dims();
    let device = x.device();
    let index = |n: usize, m: usize| {
        let v: Vec<i64> = (0..m).map(|i| (i * n / m) as i64).collect();
        Tensor::<1, Int>::from_data(TensorData::new(v, [m]), &device)
    };
    let x = if h2 == h { x } else { x.select(2, index(h, h2)) };
    if w2 == w { x } else { x.select(3, index(w, w2)) }
}

/// One attention-based fusion module (mdistiller's `ABF`).
#[derive(Module, Debug)]
pub struct Abf {
    /// 1×1 convolution (no bias) to the middle width, and its batch norm.
    pub conv1: Conv2d,
    /// Its batch norm.
    pub bn1: BatchNorm,
    /// 3×3 (3×1 on sequences) convolution (no bias) to the source's channels, padding 1.
    pub conv2: Conv2d,
    /// Its batch norm.
    pub bn2: BatchNorm,
    /// The attention's 1×1 convolution (with bias) from both inputs to two maps (not on the
    /// deepest level).
    pub att: Option<Conv2d>,
}

impl Abf {
    /// `in_c` → `mid` → `out_c` channels, the second kernel `k` (3×3, or 3×1 for sequences);
    /// both convolutions drawn as mdistiller's (`kaiming_uniform_(a=1)`: ±√(3/fan_in)), the
    /// attention as PyTorch's default.
    pub fn new(in_c: usize, mid: usize, out_c: usize, k: [usize; 2], fuse: bool, device: &Device) -> Self {
        let kaiming = Initializer::KaimingUniform { gain: 1.0, fan_out_only: false };
        let conv1 = Conv2dConfig::new([in_c, mid], [1, 1]).with_bias(false).with_initializer(kaiming.clone()).init(device);
        let pad = PaddingConfig2d::Explicit(k[0] / 2, k[1] / 2, k[0] / 2, k[1] / 2);
        let conv2 = Conv2dConfig::new([mid, out_c], k).with_padding(pad).with_bias(false).with_initializer(kaiming).init(device);
        let att = fuse.then(|| Conv2dConfig::new([2 * mid, 2], [1, 1]).init(device));
        Abf { conv1, bn1: BatchNormConfig::new(mid).init(device), conv2, bn2: BatchNormConfig::new(out_c).init(device), att }
    }

    /// The level's output and its residual for the level above: `x` fused with the residual
    /// `below` (upsampled to x's size) where the module has an attention, brought to `out` size.
    ///
    /// # Shapes
    /// `x` `[B, C_in, H, W]`, `below` `[B, mid, H'', W'']` → (`[B, C_out, H', W']`, `[B, mid, H', W']`)
    /// with `out = [H', W']`.
    pub fn forward(&self, x: Tensor<4>, below: Option<Tensor<4>>, out: [usize; 2]) -> (Tensor<4>, Tensor<4>) {
        let [_, _, h, w] = x.dims();
        let mut m = kernels::batch_norm(&self.bn1, kernels::conv(&self.conv1, x));
        if let (Some(att), Some(r)) = (&self.att, below) {
            let r = nearest(r, [h, w]);
            let z = sigmoid(kernels::conv(att, Tensor::cat(vec![m.clone(), r.clone()], 1)));
            let [b, _, _, _] = z.dims();
            m = m * z.clone().slice([0..b, 0..1]) + r * z.slice([0..b, 1..2]);
        }
        if [h, w] != out {
            m = nearest(m, out);
        }
        (kernels::batch_norm(&self.bn2, kernels::conv(&self.conv2, m.clone())), m)
    }
}

/// ReviewKD's learned part: one ABF per level, shallow to deep (the deepest without attention).
#[derive(Module, Debug)]
pub struct Review {
    /// The modules, level by level.
    pub abfs: Vec<Abf>,
}

impl Review {
    /// The modules from the target's tap shapes `own` to the source's `source` (channels first),
    /// drawn now, shallow first (mdistiller's order).
    pub fn new(own: &[Vec<usize>], source: &[Vec<usize>], device: &Device) -> Self {
        let n = own.len();
        let mid = map_shape(&own[n - 1])[0].min(512);
        // a 3×1 kernel where the target's levels are sequences
        let k = if own.iter().any(|s| s.len() == 2) { [3, 1] } else { [3, 3] };
        Review { abfs: (0..n).map(|i| Abf::new(map_shape(&own[i])[0], mid, map_shape(&source[i])[0], k, i + 1 < n, device)).collect() }
    }

    /// Every level's output, shallow to deep, each at the source's size `out[i]`.
    ///
    /// # Shapes
    /// `x[i]` `[B, C_i, H_i, W_i]` → `[B, C'_i, out[i]]`.
    pub fn forward(&self, x: Vec<Tensor<4>>, out: &[[usize; 2]]) -> Vec<Tensor<4>> {
        let mut results = Vec::with_capacity(x.len());
        let mut below = None;
        for (i, x) in x.into_iter().enumerate().rev() {
            let (o, r) = self.abfs[i].forward(x, below, out[i]);
            results.push(o);
            below = Some(r);
        }
        results.reverse();
        results
    }
}

// FT's learned part (`factor_transfer.rs`)
/// A 3×3 (3×1 on sequences) convolution with bias, padding 1, as PyTorch draws one.
fn conv(i: usize, o: usize, k: [usize; 2], device: &Device) -> Conv2d {
    Conv2dConfig::new([i, o], k).with_padding(PaddingConfig2d::Explicit(k[0] / 2, k[1] / 2, k[0] / 2, k[1] / 2)).init(device)
}

/// FT's learned part: the paraphraser (trained by the `Paraphrase` term) and the translator
/// (trained by the `Translate` term).
#[derive(Module, Debug)]
pub struct Factor {
    /// The paraphraser's encoder: `C → C → ⌊kC⌋ → ⌊kC⌋`.
    pub encoder: Vec<Conv2d>,
    /// Its decoder: `⌊kC⌋ → ⌊kC⌋ → C → C` (transposed convolutions, stride 1, padding 1).
    pub decoder: Vec<ConvTranspose2d>,
    /// The translator: `C_s → C_s → ⌊kC⌋ → ⌊kC⌋`.
    pub translator: Vec<Conv2d>,
    /// The translator's batch norms.
    pub translator_bn: Vec<BatchNorm>,
}

impl Factor {
    /// From the target's channels `own` to the source's `source` at rate `k` with kernels `k2`
    /// (3×3, or 3×1 on sequences), drawn now: encoder, decoder, translator.
    pub fn new(own: usize, source: usize, rate: f64, kernel: [usize; 2], device: &Device) -> Self {
        let f = (source as f64 * rate) as usize;
        let encoder = [(source, source), (source, f), (f, f)].into_iter().map(|(i, o)| conv(i, o, kernel, device)).collect();
        let pad = [kernel[0] / 2, kernel[1] / 2];
        let decoder = [(f, f), (f, source), (source, source)]
            .into_iter()
            .map(|(i, o)| ConvTranspose2dConfig::new([i, o], kernel).with_padding(pad).init(device))
            .collect();
        let translator = [(own, own), (own, f), (f, f)].into_iter().map(|(i, o)| conv(i, o, kernel, device)).collect();
        let translator_bn = [own, f, f].into_iter().map(|c| BatchNormConfig::new(c).init(device)).collect();
        Factor { encoder, decoder, translator, translator_bn }
    }

    /// The paraphraser's factors `P(t)`.
    ///
    /// # Shapes
    /// `[B, C, H, W]` → `[B, ⌊kC⌋, H, W]`.
    pub fn encode(&self, t: Tensor<4>) -> Tensor<4> {
        self.encoder.iter().fold(t, |h, c| leaky_relu(kernels::conv(c, h), 0.1))
    }

    /// The paraphraser's reconstruction `dec(P(t))`.
    ///
    /// # Shapes
    /// `[B, C, H, W]` → `[B, C, H, W]`.
    pub fn reconstruct(&self, t: Tensor<4>) -> Tensor<4> {
        self.decoder.iter().fold(self.encode(t), |h, c| leaky_relu(c.forward(h), 0.1))
    }

    /// The translator's factors `T(s)`.
    ///
    /// # Shapes
    /// `[B, C_s, H, W]` → `[B, ⌊kC⌋, H, W]`.
    pub fn translate(&self, s: Tensor<4>) -> Tensor<4> {
        self.translator.iter().zip(&self.translator_bn).fold(s, |h, (c, bn)| leaky_relu(kernels::batch_norm(bn, kernels::conv(c, h)), 0.1))
    }
}

// OFD's learned part (`overhaul.rs`)
/// OFD's learned part: the connector, and the source's margin (running state: set at each stage's
/// start, no gradient).
#[derive(Module, Debug)]
pub struct OfdConnector {
    /// The 1×1 convolution (no bias) to the source's channels.
    pub conv: Conv2d,
    /// Its batch norm.
    pub bn: BatchNorm,
    /// The source's margin per channel.
    pub margin: RunningState<Tensor<1>>,
}

impl OfdConnector {
    /// From `own` channels to `source`'s, drawn now (mdistiller's `ConnectorConvBN`: normal with
    /// σ = √(2/(1·1·C_out)), batch norm at γ = 1, β = 0); the margin at 0 until a stage sets it.
    pub fn new(own: usize, source: usize, device: &Device) -> Self {
        let std = (2.0 / source as f64).sqrt();
        let conv = Conv2dConfig::new([own, source], [1, 1]).with_bias(false).with_initializer(Initializer::Normal { mean: 0.0, std }).init(device);
        OfdConnector { conv, bn: BatchNormConfig::new(source).init(device), margin: RunningState::new(Tensor::zeros([source], device)) }
    }

    /// `r(v)`.
    ///
    /// # Shapes
    /// `[B, C_s, H, W]` → `[B, C_t, H, W]`.
    pub fn forward(&self, v: Tensor<4>) -> Tensor<4> {
        kernels::batch_norm(&self.bn, kernels::conv(&self.conv, v))
    }
}
