//! The model zoo: a closed enum of burn modules built from [`ModelSpec`].
//!
//! Every model takes a flat batch `[B, D]` (D = product of the sample shape) and reshapes it
//! itself, returns logits `[B, classes]`, and on request the named intermediate features
//! ("taps") listed by [`ModelSpec::taps`].

use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::conv::{Conv1d, Conv1dConfig, Conv2d, Conv2dConfig};
use burn::nn::norm::{BatchNorm, BatchNormConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig1d, PaddingConfig2d};
use burn::tensor::{Device, Int, Tensor, TensorData, activation::relu};

use crate::config::ModelSpec;
use crate::kernels;

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
fn dropout<const D: usize>(x: Tensor<D>, p: f64, noise: &mut Option<Noise>) -> Tensor<D> {
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
    fn want(&self, name: &str) -> bool {
        self.wanted.iter().any(|w| w == name)
    }
    fn put(&mut self, name: String, f: impl FnOnce() -> Tap) {
        if self.want(&name) {
            self.got.push((name, f()));
        }
    }
}

/// Multi-layer perceptron: Dropout(input) → (Linear → ReLU → Dropout)* → Linear.
#[derive(Module, Debug)]
pub struct Mlp {
    hidden: Vec<Linear>,
    out: Linear,
    dropout: f64,
    input_dropout: f64,
    /// Max-norm bound c of the hidden units' incoming weights; 0 = none.
    max_norm: f64,
}

/// `w_j ← w_j · min(1, c/‖w_j‖)` for every column j of a Linear weight `[in, out]` (the incoming
/// weights of output unit j), outside the autodiff graph; the parameter keeps its id (and so its
/// optimiser state) and its gradient requirement.
pub fn max_norm_columns(layer: Linear, c: f64) -> Linear {
    let weight = layer.weight.map(|w| {
        let (tracked, autodiff) = (w.is_require_grad(), w.is_autodiff());
        let w = w.without_autodiff();
        let norms = w.clone().powi_scalar(2).sum_dim(0).sqrt(); // [1, out]
        let scale = norms.clamp_min(c).recip().mul_scalar(c); // min(1, c/‖w_j‖)
        let w = w * scale;
        if autodiff { w.autodiff().set_require_grad(tracked) } else { w }
    });
    Linear { weight, ..layer }
}

impl Mlp {
    fn constrain(mut self) -> Self {
        if self.max_norm > 0.0 {
            let c = self.max_norm;
            self.hidden = self.hidden.into_iter().map(|l| max_norm_columns(l, c)).collect();
        }
        self
    }
    fn forward(&self, x: Tensor<2>, taps: &mut Taps) -> Tensor<2> {
        let mut h = dropout(x, self.input_dropout, &mut taps.noise);
        for (i, l) in self.hidden.iter().enumerate() {
            h = dropout(relu(kernels::linear(l, h)), self.dropout, &mut taps.noise);
            taps.put(format!("hidden{}", i + 1), || Tap::Flat(h.clone()));
        }
        kernels::linear(&self.out, h)
    }
}

/// 1-D CNN: (Conv1d(kernel, stride 1 for the first block then 2, same padding) → ReLU)*,
/// flatten, Linear.
#[derive(Module, Debug)]
pub struct Cnn1d {
    blocks: Vec<Conv1d>,
    out: Linear,
    length: usize,
}

impl Cnn1d {
    fn forward(&self, x: Tensor<2>, taps: &mut Taps) -> Tensor<2> {
        let [b, _] = x.dims();
        let mut h: Tensor<3> = x.reshape([b, 1, self.length]);
        for (i, c) in self.blocks.iter().enumerate() {
            h = relu(c.forward(h));
            taps.put(format!("block{}", i + 1), || Tap::Seq(h.clone()));
        }
        kernels::linear(&self.out, h.flatten(1, 2))
    }
}

/// 2-D CNN: (Conv 3×3 same → ReLU → MaxPool 2×2)*, flatten, Linear → ReLU → Dropout, Linear.
#[derive(Module, Debug)]
pub struct Cnn2d {
    blocks: Vec<Conv2d>,
    pool: MaxPool2d,
    fc: Linear,
    out: Linear,
    dropout: f64,
    shape: [usize; 3],
}

/// A network's first convolution, applied to data (no gradient flows into its input), as
/// patches × weights: `y[b, o, p] = Σ_{c,dy,dx} W[o, c, dy, dx] · x_pad[b, c, p + (dy, dx)] + bias[o]`.
/// Same function as `conv.forward(x)` (tested), but its backward pass only forms
/// `dW = Σ_b δ_b · patches_bᵀ`, which burn-flex does ~3× faster than its convolution's backward
/// (1→32 channels on 128×28×28: 32.5 → 9.7 ms forward + backward, measured here). Only for 3×3
/// kernels, stride 1, dilation 1, one group and "same" padding; other layers use `conv.forward`.
/// On flex, [`Cnn2d`] uses [`kernels::conv`] instead (faster again, ~5 ms); this path serves the
/// ResNet stem (no bias) and the other backends.
pub fn first_conv(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    if !first_conv_applies(conv, &x) {
        return conv.forward(x);
    }
    let [b, c, h, w] = x.dims();
    let padded = x.pad([(1, 1), (1, 1)], burn::tensor::ops::PadMode::Constant(0.0));
    let mut columns = Vec::with_capacity(9 * c);
    for ci in 0..c {
        for dy in 0..3 {
            for dx in 0..3 {
                columns.push(padded.clone().slice([0..b, ci..ci + 1, dy..dy + h, dx..dx + w]).reshape([b, 1, h * w]));
            }
        }
    }
    let patches = Tensor::cat(columns, 1); // [B, C·9, H·W], (c, dy, dx) order as the weight's
    let weight = conv.weight.val(); // [O, C, 3, 3]
    let o = weight.dims()[0];
    let mut y = weight.reshape([1, o, c * 9]).matmul(patches); // [B, O, H·W]
    if let Some(bias) = &conv.bias {
        y = y + bias.val().reshape([1, o, 1]);
    }
    y.reshape([b, o, h, w])
}

/// Whether [`first_conv`] computes `conv` on `x` as patches × weights (else it calls
/// `conv.forward`).
pub fn first_conv_applies(conv: &Conv2d, x: &Tensor<4>) -> bool {
    let plain_3x3 = conv.kernel_size == [3, 3] && conv.stride == [1, 1] && conv.dilation == [1, 1] && conv.groups == 1;
    plain_3x3 && matches!(conv.padding, PaddingConfig2d::Same | PaddingConfig2d::Explicit(1, 1, 1, 1)) && !x.is_require_grad()
}

impl Cnn2d {
    fn forward(&self, x: Tensor<2>, taps: &mut Taps) -> Tensor<2> {
        let [b, _] = x.dims();
        let [c, hh, ww] = self.shape;
        let mut h: Tensor<4> = x.reshape([b, c, hh, ww]);
        for (i, conv) in self.blocks.iter().enumerate() {
            let z = if i == 0 && !kernels::conv_applies(conv, &h) { first_conv(conv, h) } else { kernels::conv(conv, h) };
            h = kernels::relu_pool(&self.pool, z);
            taps.put(format!("block{}", i + 1), || Tap::Map(h.clone()));
        }
        let f = dropout(relu(kernels::linear(&self.fc, h.flatten(1, 3))), self.dropout, &mut taps.noise);
        taps.put("hidden".into(), || Tap::Flat(f.clone()));
        kernels::linear(&self.out, f)
    }
}

/// ResNet basic block: conv3×3 → BN → ReLU → conv3×3 → BN, plus the (projected) input, ReLU.
#[derive(Module, Debug)]
pub struct BasicBlock {
    conv1: Conv2d,
    bn1: BatchNorm,
    conv2: Conv2d,
    bn2: BatchNorm,
    project: Option<Conv2d>,
    project_bn: Option<BatchNorm>,
}

impl BasicBlock {
    fn new(cin: usize, cout: usize, stride: usize, device: &Device) -> Self {
        let conv = |i, o, s| Conv2dConfig::new([i, o], [3, 3]).with_stride([s, s]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)).with_bias(false).init(device);
        let needs_projection = stride != 1 || cin != cout;
        Self {
            conv1: conv(cin, cout, stride),
            bn1: BatchNormConfig::new(cout).init(device),
            conv2: conv(cout, cout, 1),
            bn2: BatchNormConfig::new(cout).init(device),
            project: needs_projection.then(|| Conv2dConfig::new([cin, cout], [1, 1]).with_stride([stride, stride]).with_bias(false).init(device)),
            project_bn: needs_projection.then(|| BatchNormConfig::new(cout).init(device)),
        }
    }
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let h = relu(self.bn1.forward(self.conv1.forward(x.clone())));
        let h = self.bn2.forward(self.conv2.forward(h));
        let skip = match (&self.project, &self.project_bn) {
            (Some(p), Some(bn)) => bn.forward(p.forward(x)),
            _ => x,
        };
        relu(h + skip)
    }
}

/// Small CIFAR-style ResNet: conv3×3 stem → BN → ReLU, stages of basic blocks (the first block
/// of every stage after the first has stride 2), global average pool, Linear.
#[derive(Module, Debug)]
pub struct ResNet {
    stem: Conv2d,
    stem_bn: BatchNorm,
    stages: Vec<Vec<BasicBlock>>,
    out: Linear,
    shape: [usize; 3],
}

impl ResNet {
    fn forward(&self, x: Tensor<2>, taps: &mut Taps) -> Tensor<2> {
        let [b, _] = x.dims();
        let [c, hh, ww] = self.shape;
        let mut h = relu(self.stem_bn.forward(first_conv(&self.stem, x.reshape([b, c, hh, ww]))));
        for (i, stage) in self.stages.iter().enumerate() {
            for block in stage {
                h = block.forward(h);
            }
            taps.put(format!("stage{}", i + 1), || Tap::Map(h.clone()));
        }
        let pooled: Tensor<2> = h.mean_dims(&[2, 3]).flatten(1, 3);
        taps.put("pool".into(), || Tap::Flat(pooled.clone()));
        kernels::linear(&self.out, pooled)
    }
}

/// One light head of a [`Hydra`]: Linear → ReLU → Linear.
#[derive(Module, Debug)]
pub struct HydraHead {
    hidden: Linear,
    out: Linear,
}

/// Hydra (Tran et al. 2020): a shared fully connected body (Linear → ReLU)* and M heads; the
/// output is the head mean `log((1/M) Σ_m softmax(h_m))`, each head's logits are the taps
/// `head1`, … .
#[derive(Module, Debug)]
pub struct Hydra {
    body: Vec<Linear>,
    heads: Vec<HydraHead>,
    gate: Option<Linear>,
}

impl Hydra {
    fn forward(&self, x: Tensor<2>, taps: &mut Taps) -> Tensor<2> {
        let mut h = x;
        for (i, l) in self.body.iter().enumerate() {
            h = relu(kernels::linear(l, h));
            taps.put(format!("hidden{}", i + 1), || Tap::Flat(h.clone()));
        }
        let outs: Vec<Tensor<2>> = self.heads.iter().map(|head| kernels::linear(&head.out, relu(kernels::linear(&head.hidden, h.clone())))).collect();
        for (m, o) in outs.iter().enumerate() {
            taps.put(format!("head{}", m + 1), || Tap::Flat(o.clone()));
        }
        match &self.gate {
            Some(gate) => crate::distill::gated_logits(&outs, burn::tensor::activation::softmax(kernels::linear(gate, h), 1)),
            None => crate::distill::head_mean_log_probs(&outs),
        }
    }
}

/// Any model of the zoo.
#[derive(Module, Debug)]
pub enum Network {
    /// See [`Mlp`].
    Mlp(Mlp),
    /// See [`Cnn1d`].
    Cnn1d(Cnn1d),
    /// See [`Cnn2d`].
    Cnn2d(Cnn2d),
    /// See [`ResNet`].
    ResNet(ResNet),
    /// See [`Hydra`].
    Hydra(Hydra),
}

/// Forces burn's lazily initialised parameters to draw their values now.
struct Materialize;

impl ModuleVisitor for Materialize {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let _ = param.val();
    }
}

impl Network {
    /// Builds the model of `spec` for samples of `shape` and `classes` outputs, with fresh
    /// weights drawn from `device`'s generator *now*: burn initialises parameters lazily, at
    /// first use, which would make a node's weights depend on what other nodes drew before its
    /// first forward pass (and, on parallel threads, on scheduling).
    pub fn init(spec: &ModelSpec, shape: &[usize], classes: usize, device: &Device) -> Self {
        let net = Self::build(spec, shape, classes, device);
        net.visit(&mut Materialize);
        net
    }

    fn build(spec: &ModelSpec, shape: &[usize], classes: usize, device: &Device) -> Self {
        let d: usize = shape.iter().product();
        match spec {
            ModelSpec::Mlp { hidden, dropout, input_dropout, max_norm } => {
                let mut layers = Vec::new();
                let mut width = d;
                for w in hidden {
                    layers.push(LinearConfig::new(width, w.get()).init(device));
                    width = w.get();
                }
                Network::Mlp(Mlp {
                    hidden: layers,
                    out: LinearConfig::new(width, classes).init(device),
                    dropout: dropout.get(),
                    input_dropout: input_dropout.get(),
                    max_norm: max_norm.map_or(0.0, |c| c.get()),
                })
            }
            ModelSpec::Cnn1d { channels, kernel } => {
                let k = kernel.get();
                let (mut cin, mut len) = (1, d);
                let mut blocks = Vec::new();
                for (i, c) in channels.iter().enumerate() {
                    let stride = if i == 0 { 1 } else { 2 };
                    blocks.push(
                        Conv1dConfig::new(cin, c.get(), k).with_stride(stride).with_padding(PaddingConfig1d::Explicit(k / 2, k / 2)).init(device),
                    );
                    len = (len + 2 * (k / 2) - k) / stride + 1;
                    cin = c.get();
                }
                Network::Cnn1d(Cnn1d { blocks, out: LinearConfig::new(cin * len, classes).init(device), length: d })
            }
            ModelSpec::Cnn2d { channels, hidden, dropout } => {
                let [c0, mut h, mut w] = [shape[0], shape[1], shape[2]];
                let mut cin = c0;
                let mut blocks = Vec::new();
                for c in channels {
                    blocks.push(Conv2dConfig::new([cin, c.get()], [3, 3]).with_padding(PaddingConfig2d::Same).init(device));
                    cin = c.get();
                    h /= 2;
                    w /= 2;
                }
                Network::Cnn2d(Cnn2d {
                    blocks,
                    pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
                    fc: LinearConfig::new(cin * h * w, hidden.get()).init(device),
                    out: LinearConfig::new(hidden.get(), classes).init(device),
                    dropout: dropout.get(),
                    shape: [shape[0], shape[1], shape[2]],
                })
            }
            ModelSpec::ResNet { blocks, widths } => {
                let w0 = widths[0].get();
                let stem = Conv2dConfig::new([shape[0], w0], [3, 3]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)).with_bias(false).init(device);
                let mut cin = w0;
                let stages = blocks
                    .iter()
                    .zip(widths)
                    .enumerate()
                    .map(|(s, (n, w))| {
                        (0..n.get())
                            .map(|k| {
                                let stride = if s > 0 && k == 0 { 2 } else { 1 };
                                let b = BasicBlock::new(cin, w.get(), stride, device);
                                cin = w.get();
                                b
                            })
                            .collect()
                    })
                    .collect();
                Network::ResNet(ResNet {
                    stem,
                    stem_bn: BatchNormConfig::new(w0).init(device),
                    stages,
                    out: LinearConfig::new(cin, classes).init(device),
                    shape: [shape[0], shape[1], shape[2]],
                })
            }
            ModelSpec::Hydra { body, heads, head_hidden, gate } => {
                let mut layers = Vec::new();
                let mut width = d;
                for w in body {
                    layers.push(LinearConfig::new(width, w.get()).init(device));
                    width = w.get();
                }
                let heads: Vec<HydraHead> = (0..heads.get())
                    .map(|_| HydraHead { hidden: LinearConfig::new(width, head_hidden.get()).init(device), out: LinearConfig::new(head_hidden.get(), classes).init(device) })
                    .collect();
                let gate = gate.then(|| LinearConfig::new(width, heads.len()).init(device));
                Network::Hydra(Hydra { body: layers, heads, gate })
            }
            ModelSpec::Recorded { .. } => panic!("a recorded source has no network (the engine reads its file instead)"),
        }
    }

    /// The network after its weight constraints (an Mlp's `max_norm`); applied after every
    /// optimiser step. Networks without constraints are returned as they are.
    pub fn constrain(self) -> Self {
        match self {
            Network::Mlp(m) => Network::Mlp(m.constrain()),
            other => other,
        }
    }

    /// Logits `[B, classes]` of a flat batch `[B, D]`, without dropout (evaluation, or training
    /// a model without dropout).
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.forward_taps(x, &mut Taps::default())
    }

    /// Logits, collecting the taps asked for in `taps`.
    pub fn forward_taps(&self, x: Tensor<2>, taps: &mut Taps) -> Tensor<2> {
        match self {
            Network::Mlp(m) => m.forward(x, taps),
            Network::Cnn1d(m) => m.forward(x, taps),
            Network::Cnn2d(m) => m.forward(x, taps),
            Network::ResNet(m) => m.forward(x, taps),
            Network::Hydra(m) => m.forward(x, taps),
        }
    }
}
