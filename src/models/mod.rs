//! The model zoo: a closed enum of architectures, **one file per architecture** holding its
//! spec (the experiment file's `model:` value), its init, its forward pass (shapes in the doc
//! comment) and its taps (names and shapes, defined once: the resolver asks the model).
//!
//! Every network takes a flat batch `[B, D]` (D = product of the sample shape) and reshapes it
//! itself, returns logits `[B, classes]`, and on request the named intermediate features
//! ("taps") listed by [`ModelSpec::tap_shapes`].
//!
//! Adding an architecture: a new file with its spec type implementing [`Architecture`] and its
//! burn module; then a variant in [`ModelSpec`] with its arm in [`ModelSpec::architecture`], and
//! a variant in [`Network`] with its arm in [`Network::forward_taps`].

pub mod branched;
pub mod cnn1d;
pub mod cnn2d;
pub mod conv;
pub mod ema;
pub mod fusion;
pub mod heads;
pub mod hydra;
pub mod mlp;
pub mod mobilenet;
pub mod pytorch;
pub mod resnet;
pub mod shufflenet;
pub mod tap;
pub mod vgg;
pub mod wrn;

use std::fmt;
use std::path::PathBuf;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

pub use branched::{Branched, BranchedResNetSpec, BranchedSpec, branch_tap};
pub use cnn1d::{Cnn1d, Cnn1dSpec};
pub use cnn2d::{Cnn2d, Cnn2dSpec};
pub use conv::{first_conv, first_conv_applies};
pub use ema::ema_step;
pub use fusion::Fusion;
pub use heads::{gated_logits, head_mean_log_probs, head_tap};
pub use hydra::{Hydra, HydraSpec};
pub use mlp::{Mlp, MlpSpec, max_norm_columns};
pub use mobilenet::{MobileNetV2, MobileNetV2Spec};
pub use resnet::{ResNet, ResNetSpec};
pub use shufflenet::{ShuffleNetV1, ShuffleNetV1Spec, ShuffleNetV2, ShuffleNetV2Spec};
pub use tap::{Noise, Tap, Taps};
pub use vgg::{Vgg, VggSpec};
pub use wrn::{Wrn, WrnSpec};

use crate::values::{Decay, NodeId, Width};

/// What every architecture's spec provides; [`ModelSpec`] dispatches to it.
pub trait Architecture: fmt::Display {
    /// The variant's name in experiment files, e.g. `Mlp`.
    fn name(&self) -> &'static str;
    /// Rank of the sample shape the architecture reads (`Some(3)` for `[C, H, W]` images,
    /// `Some(1)` for sequences); `None` for networks on flattened inputs of any shape.
    fn input_rank(&self) -> Option<usize>;
    /// Problems with its own parameters for samples of `shape` (empty when valid).
    fn problems(&self, shape: &[usize]) -> Vec<SpecProblem>;
    /// Every tap `(name, shape without the batch dimension)` for samples of `shape`: `[F]` for
    /// flat features, `[C, L]` for 1-D maps, `[C, H, W]` for 2-D maps.
    fn taps(&self, shape: &[usize]) -> Vec<(String, Vec<usize>)>;
    /// The network for samples of `shape` and `classes` outputs, parameters not yet drawn (see
    /// [`Network::init`]).
    fn build(&self, shape: &[usize], classes: usize, device: &Device) -> Network;
    /// Number of heads whose logits are taps ([`head_tap`]) and can be trained alone; 0 for
    /// single-head networks.
    fn heads(&self) -> usize {
        0
    }
    /// The taps it can be cut at by [`BranchedSpec`], in forward order (a tap after each stage);
    /// empty when it cannot be branched.
    fn stages(&self, _shape: &[usize]) -> Vec<String> {
        Vec::new()
    }
    /// Whether it normalises with batch norm (then SGD without weight decay lets the weights'
    /// scale drift: `cohort check` warns).
    fn batch_norm(&self) -> bool {
        false
    }
}

/// A problem with a model's parameters: the field of the spec it concerns, what is wrong, and
/// how to fix it. The resolver turns it into a positioned diagnostic.
#[derive(Clone, Debug, PartialEq)]
pub struct SpecProblem {
    /// Field of the model spec, e.g. `channels`.
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

impl SpecProblem {
    /// A problem with `field`.
    pub fn at(field: &'static str, message: impl Into<String>) -> Self {
        Self { field, message: message.into(), hint: None }
    }
    /// With a hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// `a-b-c` for a list of widths.
pub(crate) fn widths(v: &[Width]) -> String {
    v.iter().map(|w| w.to_string()).collect::<Vec<_>>().join("-")
}

/// Architectures (a closed set: a typo is a parse error). Each wraps its spec, written
/// `Mlp(hidden: [800, 800])` in experiment files.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename = "Model")]
pub enum ModelSpec {
    /// See [`MlpSpec`].
    Mlp(MlpSpec),
    /// See [`Cnn2dSpec`].
    Cnn2d(Cnn2dSpec),
    /// See [`Cnn1dSpec`].
    Cnn1d(Cnn1dSpec),
    /// See [`ResNetSpec`].
    ResNet(ResNetSpec),
    /// See [`HydraSpec`].
    Hydra(HydraSpec),
    /// See [`BranchedResNetSpec`].
    BranchedResNet(BranchedResNetSpec),
    /// See [`BranchedSpec`].
    Branched(BranchedSpec),
    /// See [`WrnSpec`].
    Wrn(WrnSpec),
    /// See [`VggSpec`].
    Vgg(VggSpec),
    /// See [`MobileNetV2Spec`].
    MobileNetV2(MobileNetV2Spec),
    /// See [`ShuffleNetV1Spec`].
    ShuffleNetV1(ShuffleNetV1Spec),
    /// See [`ShuffleNetV2Spec`].
    ShuffleNetV2(ShuffleNetV2Spec),
    /// Not a network: a teacher's outputs on the training split, written by `cohort
    /// export-logits` (offline / business-to-business transfer). The node is a fixed source
    /// with no weights; the file's fingerprint of the training split must match this
    /// experiment's. No taps.
    Recorded {
        /// The `.logits.json` file.
        file: PathBuf,
    },
    /// Not trained by gradients: the exponential moving average of another node's weights,
    /// `θ ← decay·θ + (1 − decay)·θ_of` after each of `of`'s optimiser steps (batch-norm running
    /// statistics averaged alike), starting as a copy of `of`'s initial weights. Mean Teacher
    /// (Tarvainen & Valpola 2017); PCL's temporal mean networks (Wu & Gong 2021). Same
    /// architecture and taps as `of`; evaluated every epoch; a source like any fixed node.
    Ema {
        /// The tracked node (a trained network).
        of: NodeId,
        /// Decay per step.
        decay: Decay,
        /// Mean Teacher's warm-up (Tarvainen & Valpola's `update_ema_variables`): after the n-th
        /// step of the stage (from 1) the decay is `min(1 − 1/(n + 1), decay)`, so that the early
        /// average is not dominated by the initial weights. Default off.
        #[serde(default, skip_serializing_if = "crate::values::is_false")]
        warmup: bool,
        /// Its outputs as a source computed in training mode — batch norm with the batch's own
        /// statistics, not the running ones —, as Mean Teacher's code runs its average
        /// (`ema_model.train()` in `train()` of CuriousAI/mean-teacher's `pytorch/main.py`) and
        /// PCL's temporal mean follows it. The running statistics stay the averaged ones, which
        /// the epoch's evaluation uses. Default off: the average teaches in eval mode.
        #[serde(default, skip_serializing_if = "crate::values::is_false")]
        batch_stats: bool,
    },
}

impl ModelSpec {
    /// The architecture, or `None` for a recorded source (no network).
    pub fn architecture(&self) -> Option<&dyn Architecture> {
        match self {
            ModelSpec::Mlp(m) => Some(m),
            ModelSpec::Cnn2d(m) => Some(m),
            ModelSpec::Cnn1d(m) => Some(m),
            ModelSpec::ResNet(m) => Some(m),
            ModelSpec::Hydra(m) => Some(m),
            ModelSpec::BranchedResNet(m) => Some(m),
            ModelSpec::Branched(m) => Some(m),
            ModelSpec::Wrn(m) => Some(m),
            ModelSpec::Vgg(m) => Some(m),
            ModelSpec::MobileNetV2(m) => Some(m),
            ModelSpec::ShuffleNetV1(m) => Some(m),
            ModelSpec::ShuffleNetV2(m) => Some(m),
            ModelSpec::Recorded { .. } | ModelSpec::Ema { .. } => None,
        }
    }

    /// The variant's name in experiment files.
    pub fn variant(&self) -> &'static str {
        match self {
            ModelSpec::Recorded { .. } => "Recorded",
            ModelSpec::Ema { .. } => "Ema",
            _ => self.architecture().map_or("", |a| a.name()),
        }
    }

    /// Whether it is a recorded source (outputs from a file, no network).
    pub fn is_recorded(&self) -> bool {
        matches!(self, ModelSpec::Recorded { .. })
    }

    /// Every tap and its shape for samples of `shape` ([`Architecture::taps`]; none for a
    /// recorded source).
    pub fn tap_shapes(&self, shape: &[usize]) -> Vec<(String, Vec<usize>)> {
        self.architecture().map_or_else(Vec::new, |a| a.taps(shape))
    }

    /// Names of the taps for samples of `shape`.
    pub fn taps(&self, shape: &[usize]) -> Vec<String> {
        self.tap_shapes(shape).into_iter().map(|(n, _)| n).collect()
    }

    /// Whether the network uses batch norm ([`Architecture::batch_norm`]).
    pub fn batch_norm(&self) -> bool {
        self.architecture().is_some_and(|a| a.batch_norm())
    }

    /// Number of separately trainable heads ([`Architecture::heads`]).
    pub fn heads(&self) -> usize {
        self.architecture().map_or(0, |a| a.heads())
    }

    /// Number of learned parameters of the network for samples of `shape` and `classes` outputs
    /// (see [`Network::parameters`]), without drawing its weights; `None` for a recorded source.
    pub fn parameters(&self, shape: &[usize], classes: usize, device: &Device) -> Option<usize> {
        self.architecture().map(|a| a.build(shape, classes, device).parameters())
    }

    /// Problems with the model for samples of `shape`: the input rank it needs, then its own
    /// parameters.
    pub fn problems(&self, shape: &[usize]) -> Vec<SpecProblem> {
        let Some(arch) = self.architecture() else { return Vec::new() };
        if let Some(rank) = arch.input_rank().filter(|&r| r != shape.len()) {
            let fit =
                if shape.len() == 1 { "Mlp, Cnn1d or Branched" } else { "Mlp, Cnn2d, ResNet, Branched, Wrn, Vgg, MobileNetV2, ShuffleNetV1 or ShuffleNetV2" };
            let msg = format!("`{}` needs {}-D inputs but the data set gives shape {shape:?}", self.variant(), if rank == 3 { 2 } else { 1 });
            return vec![SpecProblem { field: "", message: msg, hint: Some(format!("for this data set use {fit}")) }];
        }
        arch.problems(shape)
    }
}

impl fmt::Display for ModelSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self, self.architecture()) {
            (_, Some(a)) => a.fmt(f),
            (ModelSpec::Recorded { file }, None) => write!(f, "Recorded({})", file.display()),
            (ModelSpec::Ema { of, decay, warmup, batch_stats }, None) => write!(
                f,
                "Ema(of {of}, decay {decay}{}{})",
                if *warmup { ", warm-up" } else { "" },
                if *batch_stats { ", teaching with batch statistics" } else { "" }
            ),
            _ => unreachable!("only a recorded source and an Ema node have no architecture"),
        }
    }
}

/// CL-ILR's backpropagation rescaling (Song & Chai 2018, §3.3) of a shared body's output `h`
/// feeding `heads` heads: the identity forward (`h − h.detach()` is exactly 0), the gradient
/// divided by `heads` backward.
pub(crate) fn rescale_gradient<const D: usize>(h: Tensor<D>, heads: usize) -> Tensor<D> {
    let fixed = h.clone().detach();
    fixed.clone() + (h - fixed).div_scalar(heads as f64)
}

/// Any network of the zoo.
// one value per node, moved whole only between optimiser steps: the size difference between
// variants costs nothing measurable, and boxing them would hide the module tree from burn's derive
#[allow(clippy::large_enum_variant)]
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
    /// See [`Branched`].
    Branched(Branched),
    /// See [`Wrn`].
    Wrn(Wrn),
    /// See [`Vgg`].
    Vgg(Vgg),
    /// See [`MobileNetV2`].
    MobileNetV2(MobileNetV2),
    /// See [`ShuffleNetV1`].
    ShuffleNetV1(ShuffleNetV1),
    /// See [`ShuffleNetV2`].
    ShuffleNetV2(ShuffleNetV2),
}

/// Counts the learned parameters of a module: every float tensor except batch-norm running
/// statistics (buffers, not parameters: PyTorch's `sum(p.numel() for p in m.parameters())`).
struct CountParams {
    path: Vec<String>,
    count: usize,
}

impl ModuleVisitor for CountParams {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let buffer = matches!(self.path.last().map(String::as_str), Some("running_mean" | "running_var"));
        if !buffer {
            self.count += param.shape().num_elements();
        }
    }
}

/// Forces burn's lazily initialised parameters to draw their values now.
pub(crate) struct Materialize;

impl ModuleVisitor for Materialize {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let _ = param.val();
    }
}

impl Network {
    /// The batch norm right before the pre-activation tap `tap` (ResNet's `stage<i>_pre`, WRN's
    /// `group<i>_pre`): its scale γ and shift β, as OFD reads a teacher's margin from them; `None`
    /// for a tap without one (other taps and architectures).
    pub fn bn_before(&self, tap: &str) -> Option<(Vec<f32>, Vec<f32>)> {
        let bn = match self {
            Network::ResNet(m) => m.bn_before(tap),
            Network::Wrn(m) => m.bn_before(tap),
            _ => None,
        }?;
        let host = |t: burn::tensor::Tensor<1>| t.into_data().convert::<f32>().try_to_vec::<f32>().expect("floats");
        Some((host(bn.gamma.val()), host(bn.beta.val())))
    }

    /// Builds the model of `spec` for samples of `shape` and `classes` outputs, with fresh
    /// weights drawn from `device`'s generator *now*: burn initialises parameters lazily, at
    /// first use, which would make a node's weights depend on what other nodes drew before its
    /// first forward pass (and, on parallel threads, on scheduling).
    ///
    /// Panics for a recorded source, which has no network (the engine reads its file instead).
    pub fn init(spec: &ModelSpec, shape: &[usize], classes: usize, device: &Device) -> Self {
        let arch = spec.architecture().expect("a recorded source has no network, an Ema node takes its tracked node's (the resolver substitutes it)");
        let net = arch.build(shape, classes, device);
        net.visit(&mut Materialize);
        net
    }

    /// Number of learned parameters (batch-norm running statistics excluded), as PyTorch counts
    /// them.
    pub fn parameters(&self) -> usize {
        let mut c = CountParams { path: Vec::new(), count: 0 };
        self.visit(&mut c);
        c.count
    }

    /// The network after its weight constraints (an Mlp's `max_norm`); applied after every
    /// optimiser step. Networks without constraints are returned as they are.
    pub fn constrain(self) -> Self {
        match self {
            Network::Mlp(m) => Network::Mlp(m.constrain()),
            Network::Branched(m) => Network::Branched(m.constrain()),
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
            Network::Branched(m) => m.forward(x, taps),
            Network::Wrn(m) => m.forward(x, taps),
            Network::Vgg(m) => m.forward(x, taps),
            Network::MobileNetV2(m) => m.forward(x, taps),
            Network::ShuffleNetV1(m) => m.forward(x, taps),
            Network::ShuffleNetV2(m) => m.forward(x, taps),
        }
    }
}
