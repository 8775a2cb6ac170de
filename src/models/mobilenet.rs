//! MobileNetV2 (Sandler et al. 2018) in the CIFAR variant of the KD tables: RepDistiller's
//! `models/mobilenetv2.py` ("MobileNetV2" = `mobile_half`: expansion 6, width 0.5), from
//! *Knowledge Distillation via Route Constrained Optimization*.

use std::fmt;

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::branched::Stages;
use super::conv::{ConvBn, POOL_TAP, pooled_classify, stem_maps};
use super::tap::{Tap, Taps};
use super::{Architecture, Network, SpecProblem};
use crate::values::{NonNegative, Width};

/// Inverted-residual settings (expansion placeholder `t`, channels, blocks, first stride) of
/// RepDistiller's `interverted_residual_setting`; the first row's expansion is always 1.
const SETTING: [(usize, usize, usize); 7] = [(16, 1, 1), (24, 2, 1), (32, 3, 2), (64, 4, 2), (96, 3, 1), (160, 3, 2), (320, 1, 1)];

/// `MobileNetV2(expansion: 6, width: 0.5)` (the tables' "MobileNetV2"): a 3×3 stem of
/// ⌊32·width⌋ channels with stride 2, seven groups of inverted residual blocks (1×1 expansion →
/// 3×3 depthwise → 1×1 projection, each with BN; ReLU after the first two; a residual when the
/// stride is 1 and the width unchanged) with ⌊c·width⌋ channels for c in 16, 24, 32, 64, 96,
/// 160, 320, a 1×1 convolution to 1280 channels (⌊1280·width⌋ when width > 1), global average
/// pool, linear. Taps: `group1` … `group7` (`[C, H, W]`) and `pool` (`[1280]`). Branchable
/// after any group (each branch has the later groups, the 1×1 head and the classifier).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename = "MobileNetV2")]
pub struct MobileNetV2Spec {
    /// Expansion factor t of the inverted residuals (6).
    pub expansion: Width,
    /// Width multiplier (0.5 in the KD tables).
    pub width: NonNegative,
}

fn tap(i: usize) -> String {
    format!("group{i}")
}

impl MobileNetV2Spec {
    /// ⌊c·width⌋, as Python's `int(c * width_mult)`.
    fn scaled(&self, c: usize) -> usize {
        (c as f64 * self.width.get()) as usize
    }
    fn last_channels(&self) -> usize {
        if self.width.get() > 1.0 { self.scaled(1280) } else { 1280 }
    }
}

impl Architecture for MobileNetV2Spec {
    fn batch_norm(&self) -> bool {
        true
    }
    fn name(&self) -> &'static str {
        "MobileNetV2"
    }
    fn input_rank(&self) -> Option<usize> {
        Some(3)
    }
    fn problems(&self, shape: &[usize]) -> Vec<SpecProblem> {
        let mut v = Vec::new();
        if self.scaled(16) == 0 {
            v.push(SpecProblem::at("width", format!("width {} leaves a group without channels", self.width)).hint("the KD tables use `width: 0.5`"));
        }
        if shape.len() == 3 && !shape[1].is_multiple_of(32) {
            v.push(SpecProblem::at("", format!("MobileNetV2 downsamples by 16; its inputs are a multiple of 32 pixels, not {}", shape[1])));
        }
        v
    }
    fn stages(&self, _shape: &[usize]) -> Vec<String> {
        (1..=SETTING.len()).map(tap).collect()
    }
    fn taps(&self, shape: &[usize]) -> Vec<(String, Vec<usize>)> {
        let (mut h, mut w) = (shape.get(1).copied().unwrap_or(1).div_ceil(2), shape.get(2).copied().unwrap_or(1).div_ceil(2));
        let mut v: Vec<(String, Vec<usize>)> = SETTING
            .iter()
            .enumerate()
            .map(|(i, &(c, _, s))| {
                if s == 2 {
                    h = h.div_ceil(2);
                    w = w.div_ceil(2);
                }
                (tap(i + 1), vec![self.scaled(c), h, w])
            })
            .collect();
        v.push((POOL_TAP.into(), vec![self.last_channels()]));
        v
    }
    fn build(&self, shape: &[usize], classes: usize, device: &Device) -> Network {
        let mut cin = self.scaled(32);
        let stem = ConvBn::new(shape[0], cin, 3, 2, 1, device);
        let groups = SETTING
            .iter()
            .enumerate()
            .map(|(g, &(c, n, s))| {
                let t = if g == 0 { 1 } else { self.expansion.get() };
                let cout = self.scaled(c);
                (0..n)
                    .map(|k| {
                        let b = InvertedResidual::new(cin, cout, if k == 0 { s } else { 1 }, t, device);
                        cin = cout;
                        b
                    })
                    .collect()
            })
            .collect();
        let last = self.last_channels();
        Network::MobileNetV2(MobileNetV2 {
            stem: Some(stem),
            groups,
            head: Some(ConvBn::new(cin, last, 1, 1, 1, device)),
            out: Some(LinearConfig::new(last, classes).init(device)),
            shape: [shape[0], shape[1], shape[2]],
            first: 0,
        })
    }
}

impl fmt::Display for MobileNetV2Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MobileNetV2(expansion {}, width {})", self.expansion, self.width)
    }
}

/// Inverted residual: 1×1 expansion to t·C_in → BN → ReLU → 3×3 depthwise (stride) → BN → ReLU →
/// 1×1 projection → BN, plus the input when the stride is 1 and the width unchanged.
#[derive(Module, Debug)]
pub struct InvertedResidual {
    expand: ConvBn,
    depthwise: ConvBn,
    project: ConvBn,
    residual: bool,
}

impl InvertedResidual {
    fn new(cin: usize, cout: usize, stride: usize, t: usize, device: &Device) -> Self {
        let hidden = cin * t;
        Self {
            expand: ConvBn::new(cin, hidden, 1, 1, 1, device),
            depthwise: ConvBn::new(hidden, hidden, 3, stride, hidden, device),
            project: ConvBn::new(hidden, cout, 1, 1, 1, device),
            residual: stride == 1 && cin == cout,
        }
    }

    /// `[B, C_in, H, W]` → `[B, C_out, H/stride, W/stride]`.
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let h = self.project.forward(self.depthwise.forward_relu(self.expand.forward_relu(x.clone())));
        if self.residual { x + h } else { h }
    }
}

/// MobileNetV2: stem → groups of inverted residuals → 1×1 conv + BN + ReLU → global average pool
/// → linear.
#[derive(Module, Debug)]
pub struct MobileNetV2 {
    /// The stem (`None` in a branch's tail).
    stem: Option<ConvBn>,
    groups: Vec<Vec<InvertedResidual>>,
    /// The 1×1 convolution to the last width and the classifier (`None` in a trunk).
    head: Option<ConvBn>,
    out: Option<Linear>,
    shape: [usize; 3],
    /// Index of its first group in the whole network (0 unless it is a branch's tail).
    first: usize,
}

impl MobileNetV2 {
    /// The module of RepDistiller's `models/mobilenetv2.py` that holds the tensors of burn
    /// module `module`: `stem` = `conv1.{0,1}` (conv, bn), block j of group i = `blocks.i.j.conv`
    /// with the expansion at `0`/`1`, the depthwise convolution at `3`/`4` and the projection at
    /// `6`/`7`, `head` = `conv2.{0,1}`, `out` = `classifier.0`.
    pub(super) fn torch_module(module: &str) -> Option<String> {
        let parts: Vec<&str> = module.split('.').collect();
        let conv_bn = |m: &str, base: usize| match m {
            "conv" => Some(base),
            "bn" => Some(base + 1),
            _ => None,
        };
        Some(match parts[..] {
            ["stem", m] => format!("conv1.{}", conv_bn(m, 0)?),
            ["head", m] => format!("conv2.{}", conv_bn(m, 0)?),
            ["out"] => "classifier.0".into(),
            ["groups", group, block, part, m] => {
                let base = match part {
                    "expand" => 0,
                    "depthwise" => 3,
                    "project" => 6,
                    _ => return None,
                };
                format!("blocks.{group}.{block}.conv.{}", conv_bn(m, base)?)
            }
            _ => return None,
        })
    }

    /// Logits `[B, classes]` of a flat batch `[B, C·H·W]`; tap `group{i}` is `[B, C_i, H_i, W_i]`
    /// (H/2 after the stem, halved again at each stride-2 group), `pool` is `[B, 1280]`.
    pub(super) fn forward(&self, x: Tensor<2>, taps: &mut Taps) -> Tensor<2> {
        let h = self.stages(Tap::Flat(x), taps);
        self.classify(h, taps).0
    }
}

impl Stages for MobileNetV2 {
    /// `[B, C·H·W]` (the input, when it holds the stem) or `[B, C, H, W]` → `[B, C_i, H_i, W_i]`.
    fn stages(&self, h: Tap, taps: &mut Taps) -> Tap {
        let mut h = stem_maps(h, self.stem.as_ref(), self.shape);
        for (i, group) in self.groups.iter().enumerate() {
            for block in group {
                h = block.forward(h);
            }
            taps.put(tap(self.first + i + 1), || Tap::Map(h.clone()));
        }
        Tap::Map(h)
    }
    /// The 1×1 head (BN, ReLU), the pooled features `[B, 1280]` and their logits.
    fn classify(&self, h: Tap, taps: &mut Taps) -> (Tensor<2>, Tensor<2>) {
        let Tap::Map(h) = h else { unreachable!("a MobileNetV2's groups give maps") };
        let (Some(head), Some(out)) = (&self.head, &self.out) else { unreachable!("the classifier is in the tail") };
        pooled_classify(head.forward_relu(h), out, taps)
    }
    fn split(mut self, k: usize) -> (Self, Self) {
        let groups = self.groups.split_off(k);
        let tail = MobileNetV2 { stem: None, groups, head: self.head.take(), out: self.out.take(), shape: self.shape, first: self.first + k };
        (self, tail)
    }
}
