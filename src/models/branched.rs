//! Branching any network at a named tap (ONE, Lan et al. 2018, §3.1 and Fig. 2; CL-ILR, Song &
//! Chai 2018; OKDDip, Chen et al. 2020; PCL, Wu & Gong 2021): the network up to the tap — its
//! *trunk* — is shared, the rest — a *tail*: the later stages and the classifier — exists once per
//! branch. ONE's ResNet-32 is `Branched(of: ResNet(blocks: [5, 5, 5], widths: [16, 32, 64]),
//! at: "stage2", branches: 3, gate: true)`: three branches after a shared `layer1` and `layer2`,
//! as in its official code.
//!
//! A network can be branched when its module implements [`Stages`] (a chain of stages with a tap
//! after each, and a classifier) and its spec lists its cut points ([`Architecture::stages`]).

use std::fmt;

use burn::module::Module;
use burn::nn::norm::{BatchNorm, BatchNormConfig};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::tap::{Tap, Taps};
use super::{Architecture, Cnn1d, Cnn2d, Mlp, MobileNetV2, ModelSpec, Network, ResNet, ResNetSpec, ShuffleNetV1, ShuffleNetV2, SpecProblem, Vgg, Wrn};
use crate::kernels;
use crate::values::{Width, is_false};

/// What branching asks of a network's module: the stages it holds, run on a feature, and its
/// classifier; and the cut after stage `k`.
pub(crate) trait Stages: Sized {
    /// The stages this module holds applied to `h` — the flat input batch `[B, D]` when it holds
    /// the network's start (the trunk, or the whole network), else the previous stage's output
    /// (a tail) — putting each stage's tap under its name in the whole network.
    fn stages(&self, h: Tap, taps: &mut Taps) -> Tap;
    /// The classifier on the last stage's output: logits `[B, classes]` and the features `[B, F]`
    /// it classifies (what a fusion classifier concatenates across branches).
    fn classify(&self, h: Tap, taps: &mut Taps) -> (Tensor<2>, Tensor<2>);
    /// `(trunk, tail)`: the first `k` stages with the input part, and the rest with the
    /// classifier.
    fn split(self, k: usize) -> (Self, Self);
}

/// `Branched(of: Cnn1d(channels: [32, 32, 32]), at: "block2", branches: 3, gate: true)`: the
/// network `of` cut at its tap `at` — the trunk up to `at` shared, the rest once per branch.
/// Branch m's logits are the head tap `head{m}` (an edge with `head: m` trains that branch);
/// the node's output is the branches' mean, `log((1/M) Σ_m softmax(z_m))`, or with `gate`
/// ONE's gated ensemble `Σ_m g_m·z_m` with `g = softmax(ReLU(BN(W·pool(h))))`, `h` the trunk's
/// output pooled over its positions (as ONE's code and OKDDip's re-implementation of it,
/// `models/model_cifar/resnet_one.py`), or with `fusion` PCL's peer ensemble teacher
/// `W·[f_1; …; f_M] + b` on the features each branch's classifier reads ([`super::Fusion`]).
/// `backprop_rescale` divides the gradient reaching the trunk by M (CL-ILR). Taps: the trunk's
/// (those of `of` up to `at`). Branchable: `Mlp` (at `hidden{i}`), `Cnn1d` and `Cnn2d`
/// (`block{i}`), `ResNet` (`stage{i}`), `Wrn` (`group{i}`), `Vgg` (`block{i}`), `MobileNetV2`
/// (`group{i}`), `ShuffleNetV1` and `ShuffleNetV2` (`stage{i}`) — every network of the zoo.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename = "Branched")]
pub struct BranchedSpec {
    /// The network to branch.
    pub of: Box<ModelSpec>,
    /// The tap of `of` after which it branches, e.g. `"block2"`.
    pub at: String,
    /// Number of branches M.
    pub branches: Width,
    /// ONE's gate over the branches.
    #[serde(default, skip_serializing_if = "is_false")]
    pub gate: bool,
    /// PCL (Wu & Gong 2021): the node's output is the peer ensemble teacher, a classifier on the
    /// branches' features concatenated (see [`super::Fusion`]). Not with `gate`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub fusion: bool,
    /// CL-ILR's backpropagation rescaling: the trunk's gradient ÷ M.
    #[serde(default, skip_serializing_if = "is_false")]
    pub backprop_rescale: bool,
}

impl BranchedSpec {
    /// The architecture branched (`None` for a recorded or `Ema` node, which cannot be).
    fn inner(&self) -> Option<&dyn Architecture> {
        self.of.architecture()
    }

    /// The trunk's taps, as `of` names them.
    fn trunk_taps(&self, shape: &[usize]) -> Vec<(String, Vec<usize>)> {
        let (Some(inner), Some(k)) = (self.inner(), self.cut(shape)) else { return Vec::new() };
        let stages = inner.stages(shape);
        inner.taps(shape).into_iter().filter(|(name, _)| stages[..k].contains(name)).collect()
    }

    /// Number of stages in the trunk: the position of `at` among the cut points (from 1).
    fn cut(&self, shape: &[usize]) -> Option<usize> {
        self.inner()?.stages(shape).iter().position(|s| *s == self.at).map(|i| i + 1)
    }
}

impl Architecture for BranchedSpec {
    fn name(&self) -> &'static str {
        "Branched"
    }
    fn batch_norm(&self) -> bool {
        self.gate || self.inner().is_some_and(|a| a.batch_norm())
    }
    fn input_rank(&self) -> Option<usize> {
        self.inner().and_then(|a| a.input_rank())
    }
    fn problems(&self, shape: &[usize]) -> Vec<SpecProblem> {
        let branchable = "Mlp, Cnn1d, Cnn2d, ResNet, Wrn, Vgg, MobileNetV2, ShuffleNetV1 or ShuffleNetV2";
        let Some(inner) = self.inner() else {
            return vec![
                SpecProblem::at("of", format!("a `{}` node cannot be branched: it has no network of its own", self.of.variant()))
                    .hint(format!("branch a {branchable}")),
            ];
        };
        let stages = inner.stages(shape);
        if stages.is_empty() {
            return vec![SpecProblem::at("of", format!("`{}` cannot be branched (yet)", inner.name())).hint(format!("branch a {branchable}"))];
        }
        let mut v: Vec<SpecProblem> =
            inner.problems(shape).into_iter().map(|p| SpecProblem { field: "of", message: format!("`{}`: {}", p.field, p.message), hint: p.hint }).collect();
        if !v.is_empty() {
            return v;
        }
        if !stages.contains(&self.at) {
            v.push(
                SpecProblem::at("at", format!("`{}` has no stage `{}` to branch after", inner.name(), self.at)).hint(format!("one of: {}", stages.join(", "))),
            );
        }
        v.extend(super::hydra::ensemble_problems(self.gate, self.fusion));
        v
    }
    /// The trunk's taps as `of` names them, then `branch1`, `branch2`, …: each branch's last
    /// stage output (what its classifier reads, before pooling or flattening).
    fn taps(&self, shape: &[usize]) -> Vec<(String, Vec<usize>)> {
        let Some(inner) = self.inner() else { return Vec::new() };
        let stages = inner.stages(shape);
        let last = inner.taps(shape).into_iter().rev().find(|(name, _)| stages.contains(name)).map(|(_, s)| s);
        let mut taps = self.trunk_taps(shape);
        if let Some(last) = last.filter(|_| self.cut(shape).is_some()) {
            taps.extend((1..=self.branches.get()).map(|m| (branch_tap(m), last.clone())));
        }
        taps
    }
    fn build(&self, shape: &[usize], classes: usize, device: &Device) -> Network {
        let inner = self.inner().expect("checked: a network");
        let k = self.cut(shape).expect("checked: a cut point");
        // burn draws parameters lazily (`Network::init` materialises them after the build, in
        // module order): the halves thrown away here draw nothing
        let part = || Part::of(inner.build(shape, classes, device)).expect("checked: branchable");
        let (trunk, _) = part().split(k);
        let branches: Vec<Part> = (0..self.branches.get()).map(|_| part().split(k).1).collect();
        let m = branches.len();
        let trunk_width = self.trunk_taps(shape).last().map_or(0, |(_, s)| s[0]);
        // what a tail's classifier reads: the last tap of `of` (a conv net's pooled features, a
        // 1-D CNN's flattened maps, an MLP's last hidden layer)
        let features = inner.taps(shape).last().map_or(0, |(_, s)| s.iter().product());
        Network::Branched(Branched {
            trunk,
            branches,
            gate: self.gate.then(|| Gate { fc: LinearConfig::new(trunk_width, m).init(device), bn: BatchNormConfig::new(m).init(device) }),
            fusion: self.fusion.then(|| super::Fusion::new(m, features, classes, device)),
            rescale: self.backprop_rescale,
        })
    }
    fn heads(&self) -> usize {
        self.branches.get()
    }
}

impl fmt::Display for BranchedSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tail = super::hydra::ensemble_label(self.gate, self.fusion, self.backprop_rescale);
        write!(f, "{} branched at {} into {}{tail}", self.of, self.at, self.branches)
    }
}

/// `BranchedResNet(blocks: [5, 5, 5], widths: [16, 32, 64], branches: 3, gate: true)`: ONE's
/// ResNet-32 — a CIFAR ResNet ([`super::ResNetSpec`], the same blocks) whose last stage, global
/// average pool and classifier exist once per branch on a shared stem and shared earlier stages:
/// the same network as [`BranchedSpec`] `(of: ResNet(blocks, widths, stem), at: "stage<n−1>", …)`,
/// which builds it (the same parameters, drawn in the same order).
/// Branch m's logits are the head tap `head{m}` (an edge with `head: m` trains that branch, as
/// for a [`super::HydraSpec`]); the node's output is the branches' mean,
/// `log((1/M) Σ_m softmax(z_m))`, or with `gate` ONE's gated ensemble `Σ_m g_m·z_m` with
/// `g = softmax(ReLU(BN(W·pool(h))))`, `h` the shared features (as the ONE/CL-ILR
/// re-implementation in OKDDip's official code, `models/model_cifar/resnet_one.py`, does), or
/// with `fusion` PCL's peer ensemble teacher `W·[f_1; …; f_M] + b` on the branches' pooled
/// features ([`super::Fusion`]). `backprop_rescale` divides the gradient reaching the shared part by the number of branches
/// (CL-ILR). Taps: `stage1`, … of the shared stages (`[C, H, W]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename = "BranchedResNet")]
pub struct BranchedResNetSpec {
    /// Basic blocks per stage, e.g. `[5, 5, 5]` (ResNet-32); the last stage is branched.
    pub blocks: Vec<Width>,
    /// Channels per stage, e.g. `[16, 32, 64]`.
    pub widths: Vec<Width>,
    /// Channels of the stem; default the first stage's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stem: Option<Width>,
    /// Number of branches M.
    pub branches: Width,
    /// ONE's gate over the branches.
    #[serde(default)]
    pub gate: bool,
    /// PCL (Wu & Gong 2021): the node's output is the peer ensemble teacher, a classifier on the
    /// branches' pooled features concatenated (see [`super::Fusion`]). Not with `gate`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub fusion: bool,
    /// CL-ILR's backpropagation rescaling: the shared part's gradient ÷ M.
    #[serde(default, skip_serializing_if = "is_false")]
    pub backprop_rescale: bool,
}

impl BranchedResNetSpec {
    /// The same network as a [`BranchedSpec`]: the ResNet cut after its second-to-last stage.
    fn generic(&self) -> BranchedSpec {
        BranchedSpec {
            of: Box::new(ModelSpec::ResNet(ResNetSpec { blocks: self.blocks.clone(), widths: self.widths.clone(), stem: self.stem })),
            at: format!("stage{}", self.widths.len().saturating_sub(1)),
            branches: self.branches,
            gate: self.gate,
            fusion: self.fusion,
            backprop_rescale: self.backprop_rescale,
        }
    }
}

impl Architecture for BranchedResNetSpec {
    fn batch_norm(&self) -> bool {
        true
    }
    fn name(&self) -> &'static str {
        "BranchedResNet"
    }
    fn input_rank(&self) -> Option<usize> {
        Some(3)
    }
    fn problems(&self, shape: &[usize]) -> Vec<SpecProblem> {
        if self.blocks.len() != self.widths.len() || self.blocks.len() < 2 {
            let msg =
                format!("`blocks` has {} stages and `widths` {}: a branched ResNet needs the same number, at least 2", self.blocks.len(), self.widths.len());
            return vec![SpecProblem::at("widths", msg).hint("e.g. ONE's ResNet-32: `blocks: [5, 5, 5], widths: [16, 32, 64], branches: 3`")];
        }
        self.generic().problems(shape)
    }
    fn taps(&self, shape: &[usize]) -> Vec<(String, Vec<usize>)> {
        self.generic().taps(shape)
    }
    fn build(&self, shape: &[usize], classes: usize, device: &Device) -> Network {
        self.generic().build(shape, classes, device)
    }
    fn heads(&self) -> usize {
        self.branches.get()
    }
}

impl fmt::Display for BranchedResNetSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BranchedResNet(blocks {}, widths {}", super::widths(&self.blocks), super::widths(&self.widths))?;
        if let Some(s) = self.stem {
            write!(f, ", stem {s}")?;
        }
        write!(f, ", {} branches{})", self.branches, super::hydra::ensemble_label(self.gate, self.fusion, self.backprop_rescale))
    }
}

/// A branchable network's module: the trunk, or one branch's tail.
#[derive(Module, Debug)]
pub enum Part {
    /// See [`Mlp`].
    Mlp(Mlp),
    /// See [`Cnn1d`].
    Cnn1d(Cnn1d),
    /// See [`ResNet`].
    ResNet(ResNet),
    /// See [`Wrn`].
    Wrn(Wrn),
    /// See [`Vgg`].
    Vgg(Vgg),
    /// See [`Cnn2d`].
    Cnn2d(Cnn2d),
    /// See [`MobileNetV2`].
    MobileNetV2(MobileNetV2),
    /// See [`ShuffleNetV1`].
    ShuffleNetV1(ShuffleNetV1),
    /// See [`ShuffleNetV2`].
    ShuffleNetV2(ShuffleNetV2),
}

impl Part {
    /// The whole network `net` as a part to cut, when it is branchable.
    fn of(net: Network) -> Option<Part> {
        match net {
            Network::Mlp(m) => Some(Part::Mlp(m)),
            Network::Cnn1d(m) => Some(Part::Cnn1d(m)),
            Network::ResNet(m) => Some(Part::ResNet(m)),
            Network::Wrn(m) => Some(Part::Wrn(m)),
            Network::Vgg(m) => Some(Part::Vgg(m)),
            Network::Cnn2d(m) => Some(Part::Cnn2d(m)),
            Network::MobileNetV2(m) => Some(Part::MobileNetV2(m)),
            Network::ShuffleNetV1(m) => Some(Part::ShuffleNetV1(m)),
            Network::ShuffleNetV2(m) => Some(Part::ShuffleNetV2(m)),
            _ => None,
        }
    }

    /// After its weight constraints (an Mlp's `max_norm`).
    fn constrain(self) -> Self {
        match self {
            Part::Mlp(m) => Part::Mlp(m.constrain()),
            other => other,
        }
    }
}

impl Stages for Part {
    fn stages(&self, h: Tap, taps: &mut Taps) -> Tap {
        match self {
            Part::Mlp(m) => m.stages(h, taps),
            Part::Cnn1d(m) => m.stages(h, taps),
            Part::ResNet(m) => m.stages(h, taps),
            Part::Wrn(m) => m.stages(h, taps),
            Part::Vgg(m) => m.stages(h, taps),
            Part::Cnn2d(m) => m.stages(h, taps),
            Part::MobileNetV2(m) => m.stages(h, taps),
            Part::ShuffleNetV1(m) => m.stages(h, taps),
            Part::ShuffleNetV2(m) => m.stages(h, taps),
        }
    }
    fn classify(&self, h: Tap, taps: &mut Taps) -> (Tensor<2>, Tensor<2>) {
        match self {
            Part::Mlp(m) => m.classify(h, taps),
            Part::Cnn1d(m) => m.classify(h, taps),
            Part::ResNet(m) => m.classify(h, taps),
            Part::Wrn(m) => m.classify(h, taps),
            Part::Vgg(m) => m.classify(h, taps),
            Part::Cnn2d(m) => m.classify(h, taps),
            Part::MobileNetV2(m) => m.classify(h, taps),
            Part::ShuffleNetV1(m) => m.classify(h, taps),
            Part::ShuffleNetV2(m) => m.classify(h, taps),
        }
    }
    fn split(self, k: usize) -> (Self, Self) {
        match self {
            Part::Mlp(m) => m.split(k).map2(Part::Mlp),
            Part::Cnn1d(m) => m.split(k).map2(Part::Cnn1d),
            Part::ResNet(m) => m.split(k).map2(Part::ResNet),
            Part::Wrn(m) => m.split(k).map2(Part::Wrn),
            Part::Vgg(m) => m.split(k).map2(Part::Vgg),
            Part::Cnn2d(m) => m.split(k).map2(Part::Cnn2d),
            Part::MobileNetV2(m) => m.split(k).map2(Part::MobileNetV2),
            Part::ShuffleNetV1(m) => m.split(k).map2(Part::ShuffleNetV1),
            Part::ShuffleNetV2(m) => m.split(k).map2(Part::ShuffleNetV2),
        }
    }
}

/// Maps both halves of a split.
trait Map2<T> {
    fn map2<U>(self, f: impl Fn(T) -> U) -> (U, U);
}

impl<T> Map2<T> for (T, T) {
    fn map2<U>(self, f: impl Fn(T) -> U) -> (U, U) {
        (f(self.0), f(self.1))
    }
}

/// ONE's gate: linear map of the pooled trunk features → batch norm → ReLU (→ softmax).
#[derive(Module, Debug)]
pub struct Gate {
    fc: Linear,
    bn: BatchNorm,
}

/// A network with a shared trunk and branched tails (see [`BranchedSpec`]).
#[derive(Module, Debug)]
pub struct Branched {
    trunk: Part,
    branches: Vec<Part>,
    gate: Option<Gate>,
    fusion: Option<super::Fusion>,
    rescale: bool,
}

impl Branched {
    /// Log-probabilities `[B, classes]` of the branch mean (or the gated ensemble's, or the
    /// fusion classifier's logits) of a flat batch `[B, D]`; the trunk's taps as the network
    /// `of` names them, `head{m}` branch m's logits `[B, classes]`.
    pub(super) fn forward(&self, x: Tensor<2>, taps: &mut Taps) -> Tensor<2> {
        let mut h = self.trunk.stages(Tap::Flat(x), taps);
        if self.rescale {
            h = rescale(h, self.branches.len());
        }
        let (outs, features): (Vec<Tensor<2>>, Vec<Tensor<2>>) = self
            .branches
            .iter()
            .enumerate()
            .map(|(m, branch)| {
                let z = taps.muted(|t| branch.stages(h.clone(), t));
                taps.put(branch_tap(m + 1), || z.clone());
                taps.muted(|t| branch.classify(z, t))
            })
            .unzip();
        let gate_scores = self.gate.as_ref().map(|gate| kernels::batch_norm_relu(&gate.bn, kernels::linear(&gate.fc, pooled(h))));
        super::heads::multi_head_output(outs, features, gate_scores, self.fusion.as_ref(), taps)
    }

    /// After its parts' weight constraints.
    pub(super) fn constrain(self) -> Self {
        Branched { trunk: self.trunk.constrain(), branches: self.branches.into_iter().map(Part::constrain).collect(), ..self }
    }
}

/// Name of branch m's last stage output (from 1): the features OKDDip's attention over branches
/// reads ([`crate::losses::BranchAttention`]).
pub fn branch_tap(m: usize) -> String {
    format!("branch{m}")
}

/// CL-ILR's rescaling ([`super::rescale_gradient`]) of the trunk's output `h` feeding `m` branches.
fn rescale(h: Tap, m: usize) -> Tap {
    match h {
        Tap::Flat(t) => Tap::Flat(super::rescale_gradient(t, m)),
        Tap::Seq(t) => Tap::Seq(super::rescale_gradient(t, m)),
        Tap::Map(t) => Tap::Map(super::rescale_gradient(t, m)),
    }
}

/// `[B, C]`: a feature averaged over its positions (flat features as they are).
fn pooled(h: Tap) -> Tensor<2> {
    match h {
        Tap::Flat(t) => t,
        Tap::Seq(t) => t.mean_dim(2).flatten(1, 2),
        Tap::Map(t) => t.mean_dims(&[2, 3]).flatten(1, 3),
    }
}
