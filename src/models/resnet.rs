//! Small CIFAR-style ResNet (He et al. 2016, §4.2): a 3×3 stem, stages of basic blocks, global
//! average pooling.

use std::fmt;

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::norm::{BatchNorm, BatchNormConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::{Device, Tensor, activation::relu};
use serde::{Deserialize, Serialize};

use super::branched::Stages;
use super::conv::{POOL_TAP, STEM_TAP, first_conv, pooled_classify};
use super::tap::{Tap, Taps};
use super::{Architecture, Network, SpecProblem, widths};
use crate::kernels;
use crate::values::Width;

/// The CIFAR ResNets of He et al. 2016 (§4.2) and of the KD tables (RepDistiller's
/// `models/resnet.py`): ResNet-(6n+2) is `ResNet(blocks: [n, n, n], widths: [16, 32, 64])`
/// (ResNet-20, 32, 56, 110: n = 3, 5, 9, 18); ResNet-8x4 and ResNet-32x4 are `blocks: [1, 1, 1]`
/// and `[5, 5, 5]` with `widths: [64, 128, 256], stem: 32`. Shortcuts are identities, or a 1×1
/// convolution + BN where the width or resolution changes (option B).
///
/// `ResNet(blocks: [3, 3, 3], widths: [16, 32, 64])` (ResNet-20): a stem conv, then stages of
/// `blocks` basic blocks with `widths` channels (the first block of every stage after the first
/// has stride 2), global average pool, linear. Taps: `stem`, `stage1`, `stage2`, … (`[C, H, W]`),
/// `stage1_pre`, … (the last block's output before its final ReLU: RepDistiller's `preact`
/// features, which activation-boundary distillation reads) and `pool` (`[C]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename = "ResNet")]
pub struct ResNetSpec {
    /// Basic blocks per stage, e.g. `[3, 3, 3]` (ResNet-20).
    pub blocks: Vec<Width>,
    /// Channels per stage, e.g. `[16, 32, 64]`.
    pub widths: Vec<Width>,
    /// Channels of the stem convolution; default the first stage's. RepDistiller's ResNet-8x4
    /// and ResNet-32x4 have a 32-channel stem before stages of 64, 128, 256 (the first block
    /// then projects 32 → 64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stem: Option<Width>,
}

/// Name of the tap after stage `i` (from 1).
fn tap(i: usize) -> String {
    format!("stage{i}")
}

/// Name of the tap of stage `i`'s pre-activation (from 1): its last block's `bn2(conv2(·)) +
/// shortcut`, before the ReLU.
fn pre_tap(i: usize) -> String {
    format!("stage{i}_pre")
}

impl ResNetSpec {
    /// `[C, H, W]` after each stage for inputs of `shape` `[C, H, W]`.
    fn geometry(&self, shape: &[usize]) -> Vec<[usize; 3]> {
        stage_geometry(&self.widths, shape)
    }
}

/// `[C, H, W]` after each stage of `widths` channels for inputs of `shape` `[C, H, W]` (every
/// stage after the first halves H and W, rounding up: stride 2, padding 1).
pub(super) fn stage_geometry(widths: &[Width], shape: &[usize]) -> Vec<[usize; 3]> {
    let (mut h, mut w) = (shape.get(1).copied().unwrap_or(1), shape.get(2).copied().unwrap_or(1));
    widths
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if i > 0 {
                h = h.div_ceil(2);
                w = w.div_ceil(2);
            }
            [c.get(), h, w]
        })
        .collect()
}

/// Stage `s` (from 0) of `n` basic blocks of `width` channels on `*cin` input channels (the first
/// block of every stage but the first has stride 2); leaves `*cin` = `width`.
pub(super) fn stage(s: usize, n: usize, width: usize, cin: &mut usize, device: &Device) -> Vec<BasicBlock> {
    (0..n)
        .map(|k| {
            let b = BasicBlock::new(*cin, width, if s > 0 && k == 0 { 2 } else { 1 }, device);
            *cin = width;
            b
        })
        .collect()
}

impl Architecture for ResNetSpec {
    fn batch_norm(&self) -> bool {
        true
    }
    fn name(&self) -> &'static str {
        "ResNet"
    }
    fn input_rank(&self) -> Option<usize> {
        Some(3)
    }
    fn problems(&self, _shape: &[usize]) -> Vec<SpecProblem> {
        if self.blocks.len() != self.widths.len() || self.blocks.is_empty() {
            let msg = format!("`blocks` has {} stages but `widths` has {}", self.blocks.len(), self.widths.len());
            return vec![SpecProblem::at("widths", msg).hint("give one width per stage, e.g. `blocks: [3, 3, 3], widths: [16, 32, 64]`")];
        }
        Vec::new()
    }
    fn stages(&self, _shape: &[usize]) -> Vec<String> {
        (1..=self.widths.len()).map(tap).collect()
    }
    fn taps(&self, shape: &[usize]) -> Vec<(String, Vec<usize>)> {
        let geometry = self.geometry(shape);
        let stem = [self.stem.unwrap_or(self.widths[0]).get(), geometry[0][1], geometry[0][2]];
        let mut v: Vec<(String, Vec<usize>)> = vec![(STEM_TAP.into(), stem.to_vec())];
        v.extend(geometry.into_iter().enumerate().flat_map(|(i, s)| [(pre_tap(i + 1), s.to_vec()), (tap(i + 1), s.to_vec())]));
        v.push((POOL_TAP.into(), vec![self.widths.last().map_or(0, |w| w.get())]));
        v
    }
    fn build(&self, shape: &[usize], classes: usize, device: &Device) -> Network {
        let w0 = self.stem.unwrap_or(self.widths[0]).get();
        let stem = Conv2dConfig::new([shape[0], w0], [3, 3]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)).with_bias(false).init(device);
        let mut cin = w0;
        let stages = self.blocks.iter().zip(&self.widths).enumerate().map(|(s, (n, w))| stage(s, n.get(), w.get(), &mut cin, device)).collect();
        Network::ResNet(ResNet {
            stem: Some(stem),
            stem_bn: Some(BatchNormConfig::new(w0).init(device)),
            stages,
            out: Some(LinearConfig::new(cin, classes).init(device)),
            shape: [shape[0], shape[1], shape[2]],
            first: 0,
        })
    }
}

impl fmt::Display for ResNetSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ResNet(blocks {}, widths {}", widths(&self.blocks), widths(&self.widths))?;
        match self.stem {
            Some(s) => write!(f, ", stem {s})"),
            None => write!(f, ")"),
        }
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
    pub(super) fn new(cin: usize, cout: usize, stride: usize, device: &Device) -> Self {
        let conv =
            |i, o, s| Conv2dConfig::new([i, o], [3, 3]).with_stride([s, s]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)).with_bias(false).init(device);
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

    /// `[B, C_in, H, W]` → `[B, C_out, H/stride, W/stride]`.
    pub(super) fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let (z, skip) = self.residual(x);
        // relu(bn2(conv2(h)) + skip)
        kernels::batch_norm_add_relu(&self.bn2, z, skip)
    }

    /// [`BasicBlock::forward`] and its pre-activation `bn2(conv2(h)) + skip` (the sum before the
    /// last ReLU), computed apart instead of fused.
    pub(super) fn forward_preact(&self, x: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let (z, skip) = self.residual(x);
        let pre = kernels::batch_norm(&self.bn2, z) + skip;
        (relu(pre.clone()), pre)
    }

    /// `conv2(relu(bn1(conv1(x))))` and the shortcut (`x`, or its projection).
    fn residual(&self, x: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let h = kernels::batch_norm_relu(&self.bn1, kernels::conv(&self.conv1, x.clone()));
        let skip = match (&self.project, &self.project_bn) {
            (Some(p), Some(bn)) => kernels::batch_norm(bn, kernels::conv(p, x)),
            _ => x,
        };
        (kernels::conv(&self.conv2, h), skip)
    }
}

/// Small CIFAR-style ResNet: conv3×3 stem → BN → ReLU, stages of basic blocks, global average
/// pool, Linear.
#[derive(Module, Debug)]
pub struct ResNet {
    /// The stem (absent in a branch's tail, [`super::Branched`]).
    stem: Option<Conv2d>,
    stem_bn: Option<BatchNorm>,
    stages: Vec<Vec<BasicBlock>>,
    /// The classifier (absent in a branched network's trunk).
    out: Option<Linear>,
    shape: [usize; 3],
    /// Index of its first stage in the whole network (0 unless it is a branch's tail).
    first: usize,
}

impl ResNet {
    /// The module of RepDistiller's `models/resnet.py` that holds the tensors of burn module
    /// `module`: `stem` = `conv1`, `stem_bn` = `bn1`, `stages.i.j.*` = `layer{i+1}.j.*` with the
    /// projection shortcut `project`/`project_bn` = `downsample.0`/`downsample.1`, `out` = `fc`.
    pub(super) fn torch_module(module: &str) -> Option<String> {
        let parts: Vec<&str> = module.split('.').collect();
        Some(match parts[..] {
            ["stem"] => "conv1".into(),
            ["stem_bn"] => "bn1".into(),
            ["out"] => "fc".into(),
            ["stages", stage, block, m] => {
                let m = match m {
                    "conv1" | "bn1" | "conv2" | "bn2" => m,
                    "project" => "downsample.0",
                    "project_bn" => "downsample.1",
                    _ => return None,
                };
                format!("layer{}.{block}.{m}", stage.parse::<usize>().ok()? + 1)
            }
            _ => return None,
        })
    }

    /// The batch norm whose output the pre-activation tap `tap` (`stage<i>_pre`) adds the shortcut
    /// to: the last block's second (mdistiller's `get_bn_before_relu`, OFD's margin).
    pub(super) fn bn_before(&self, tap: &str) -> Option<&BatchNorm> {
        let i = (0..self.stages.len()).find(|&i| pre_tap(self.first + i + 1) == tap)?;
        self.stages[i].last().map(|b| &b.bn2)
    }

    /// Logits `[B, classes]` of a flat batch `[B, C·H·W]`; tap `stem` is the stem's output (conv →
    /// BN → ReLU, RepDistiller's `feat[0]`), tap `stage{i}` is `[B, C_i, H_i, W_i]`
    /// (halved, rounding up, from the second stage on), `pool` is `[B, C_last]`.
    pub(super) fn forward(&self, x: Tensor<2>, taps: &mut Taps) -> Tensor<2> {
        let h = self.stages(Tap::Flat(x), taps);
        self.classify(h, taps).0
    }
}

impl Stages for ResNet {
    /// `[B, C·H·W]` (the input, when it holds the stem) or `[B, C, H, W]` → `[B, C_i, H_i, W_i]`.
    fn stages(&self, h: Tap, taps: &mut Taps) -> Tap {
        let mut h = match (h, &self.stem, &self.stem_bn) {
            (Tap::Flat(x), Some(stem), Some(bn)) => {
                let [b, _] = x.dims();
                let [c, hh, ww] = self.shape;
                let h = kernels::batch_norm_relu(bn, first_conv(stem, x.reshape([b, c, hh, ww])));
                taps.put(STEM_TAP.into(), || Tap::Map(h.clone()));
                h
            }
            (Tap::Map(h), None, None) => h,
            _ => unreachable!("a ResNet with its stem reads the input, a tail a stage's maps"),
        };
        for (i, stage) in self.stages.iter().enumerate() {
            let pre = pre_tap(self.first + i + 1);
            for (k, block) in stage.iter().enumerate() {
                // the last block's pre-activation, when asked for: computed apart (its ReLU
                // unfused), so that a pass without the tap runs the fused kernel as ever
                if k + 1 == stage.len() && taps.want(&pre) {
                    let (out, z) = block.forward_preact(h);
                    taps.put(pre.clone(), || Tap::Map(z));
                    h = out;
                } else {
                    h = block.forward(h);
                }
            }
            taps.put(tap(self.first + i + 1), || Tap::Map(h.clone()));
        }
        Tap::Map(h)
    }
    /// The pooled features `[B, C_last]` and their logits.
    fn classify(&self, h: Tap, taps: &mut Taps) -> (Tensor<2>, Tensor<2>) {
        let Tap::Map(h) = h else { unreachable!("a ResNet's stages give maps") };
        pooled_classify(h, self.out.as_ref().expect("the classifier is in the tail"), taps)
    }
    fn split(mut self, k: usize) -> (Self, Self) {
        let stages = self.stages.split_off(k);
        let tail = ResNet { stem: None, stem_bn: None, stages, out: self.out.take(), shape: self.shape, first: self.first + k };
        (self, tail)
    }
}
