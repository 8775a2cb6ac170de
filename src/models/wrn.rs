//! Wide ResNet (Zagoruyko & Komodakis 2016) for CIFAR, as RepDistiller defines it
//! (`models/wrn.py` of HobbitLong/RepDistiller, after Wei Yang's port; the CRD/DKD tables'
//! WRN-16-2, WRN-40-1, WRN-40-2) and as the DML paper uses WRN-28-10: pre-activation basic blocks.

use std::fmt;

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::norm::{BatchNorm, BatchNormConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::{Device, Tensor, activation::relu};
use serde::{Deserialize, Serialize};

use super::branched::Stages;
use super::conv::{POOL_TAP, STEM_TAP, first_conv, pooled_classify};
use super::tap::{Tap, Taps, dropout};
use super::{Architecture, Network, SpecProblem};
use crate::data::spec::zero_fraction;
use crate::kernels;
use crate::values::{Fraction, Width};

/// `Wrn(depth: 40, widen: 2)`: WRN-depth-widen. A 3×3 stem of 16 channels, three groups of
/// n = (depth − 4)/6 pre-activation blocks with 16·widen, 32·widen and 64·widen channels (the
/// first block of the second and third groups has stride 2), BN → ReLU, global average pool,
/// linear. Taps: `group1`, `group2`, `group3` (`[C, H, W]`, each group's output before the next
/// block's activation: RepDistiller's f1–f3), `group1_pre`, `group2_pre`, `group3_pre` (the
/// batch norm that follows each group, before its ReLU: the next group's first `bn1`, or the final
/// `bn`, as RepDistiller's `preact` features, which activation-boundary distillation reads) and
/// `pool` (`[C]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename = "Wrn")]
pub struct WrnSpec {
    /// Layers: 6n + 4, e.g. 16, 28, 40.
    pub depth: Width,
    /// Widening factor k.
    pub widen: Width,
    /// Dropout between a block's two convolutions (0 in the KD tables).
    #[serde(default = "zero_fraction")]
    pub dropout: Fraction,
}

fn tap(i: usize) -> String {
    format!("group{i}")
}

/// Name of the tap of group `i`'s pre-activation (from 1): the batch norm that follows it.
fn pre_tap(i: usize) -> String {
    format!("group{i}_pre")
}

impl WrnSpec {
    fn blocks(&self) -> usize {
        (self.depth.get().saturating_sub(4)) / 6
    }
    fn widths(&self) -> [usize; 3] {
        let k = self.widen.get();
        [16 * k, 32 * k, 64 * k]
    }
}

impl Architecture for WrnSpec {
    fn batch_norm(&self) -> bool {
        true
    }
    fn name(&self) -> &'static str {
        "Wrn"
    }
    fn input_rank(&self) -> Option<usize> {
        Some(3)
    }
    fn problems(&self, _shape: &[usize]) -> Vec<SpecProblem> {
        let d = self.depth.get();
        if d < 10 || !(d - 4).is_multiple_of(6) {
            return vec![SpecProblem::at("depth", format!("a WRN's depth is 6n + 4 with n ≥ 1, not {d}")).hint("e.g. `depth: 16`, `28` or `40`")];
        }
        Vec::new()
    }
    fn stages(&self, _shape: &[usize]) -> Vec<String> {
        (1..=self.widths().len()).map(tap).collect()
    }
    fn taps(&self, shape: &[usize]) -> Vec<(String, Vec<usize>)> {
        let (mut h, mut w) = (shape.get(1).copied().unwrap_or(1), shape.get(2).copied().unwrap_or(1));
        let mut v: Vec<(String, Vec<usize>)> = vec![(STEM_TAP.into(), vec![16, h, w])];
        v.extend(self.widths().iter().enumerate().flat_map(|(i, &c)| {
            if i > 0 {
                h = h.div_ceil(2);
                w = w.div_ceil(2);
            }
            [(tap(i + 1), vec![c, h, w]), (pre_tap(i + 1), vec![c, h, w])]
        }));
        v.push((POOL_TAP.into(), vec![self.widths()[2]]));
        v
    }
    fn build(&self, shape: &[usize], classes: usize, device: &Device) -> Network {
        let stem = conv3x3(shape[0], 16, 1, device);
        let mut cin = 16;
        let groups = self
            .widths()
            .iter()
            .enumerate()
            .map(|(g, &c)| {
                (0..self.blocks())
                    .map(|k| {
                        let stride = if g > 0 && k == 0 { 2 } else { 1 };
                        let b = PreActBlock::new(cin, c, stride, device);
                        cin = c;
                        b
                    })
                    .collect()
            })
            .collect();
        Network::Wrn(Wrn {
            stem: Some(stem),
            groups,
            bn: Some(BatchNormConfig::new(cin).init(device)),
            out: Some(LinearConfig::new(cin, classes).init(device)),
            dropout: self.dropout.get(),
            shape: [shape[0], shape[1], shape[2]],
            first: 0,
        })
    }
}

impl fmt::Display for WrnSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WRN-{}-{}", self.depth, self.widen)?;
        if self.dropout.get() > 0.0 { write!(f, " (dropout {})", self.dropout) } else { Ok(()) }
    }
}

fn conv3x3(cin: usize, cout: usize, stride: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([cin, cout], [3, 3]).with_stride([stride, stride]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)).with_bias(false).init(device)
}

/// `relu(bn(x))`, fused; or, when the pass asks for the tap `pre` (a group's pre-activation),
/// `bn(x)` collected under it and its ReLU applied apart.
fn batch_norm_relu_tapped(bn: &BatchNorm, x: Tensor<4>, pre: Option<String>, taps: &mut Taps) -> Tensor<4> {
    match pre.filter(|name| taps.want(name)) {
        Some(name) => {
            let z = kernels::batch_norm(bn, x);
            taps.put(name, || Tap::Map(z.clone()));
            relu(z)
        }
        None => kernels::batch_norm_relu(bn, x),
    }
}

/// Pre-activation basic block: BN → ReLU → conv3×3 (stride) → BN → ReLU → (dropout) → conv3×3,
/// plus the input; when the width or resolution changes, the shortcut is a 1×1 convolution of
/// the *activated* input (RepDistiller's `convShortcut`).
#[derive(Module, Debug)]
pub struct PreActBlock {
    bn1: BatchNorm,
    conv1: Conv2d,
    bn2: BatchNorm,
    conv2: Conv2d,
    shortcut: Option<Conv2d>,
}

impl PreActBlock {
    fn new(cin: usize, cout: usize, stride: usize, device: &Device) -> Self {
        Self {
            bn1: BatchNormConfig::new(cin).init(device),
            conv1: conv3x3(cin, cout, stride, device),
            bn2: BatchNormConfig::new(cout).init(device),
            conv2: conv3x3(cout, cout, 1, device),
            shortcut: (cin != cout).then(|| Conv2dConfig::new([cin, cout], [1, 1]).with_stride([stride, stride]).with_bias(false).init(device)),
        }
    }

    /// `[B, C_in, H, W]` → `[B, C_out, H/stride, W/stride]`; the tap `pre`, when given and asked
    /// for, is `bn1(x)` (the previous group's pre-activation), its ReLU then applied apart.
    fn forward(&self, x: Tensor<4>, p: f64, taps: &mut Taps, pre: Option<String>) -> Tensor<4> {
        let a = batch_norm_relu_tapped(&self.bn1, x.clone(), pre, taps);
        let h = kernels::batch_norm_relu(&self.bn2, kernels::conv(&self.conv1, a.clone()));
        let h = kernels::conv(&self.conv2, dropout(h, p, &mut taps.noise));
        match &self.shortcut {
            Some(s) => kernels::conv(s, a) + h,
            None => x + h,
        }
    }
}

/// WRN: stem conv → groups of pre-activation blocks → BN → ReLU → global average pool → linear.
#[derive(Module, Debug)]
pub struct Wrn {
    /// The stem (absent in a branch's tail, [`super::Branched`]).
    stem: Option<Conv2d>,
    groups: Vec<Vec<PreActBlock>>,
    /// The final BN → ReLU and the classifier (absent in a branched network's trunk).
    bn: Option<BatchNorm>,
    out: Option<Linear>,
    dropout: f64,
    shape: [usize; 3],
    /// Index of its first group in the whole network (0 unless it is a branch's tail).
    first: usize,
}

impl Wrn {
    /// The module of RepDistiller's `models/wrn.py` that holds the tensors of burn module
    /// `module`: `stem` = `conv1`, `groups.i.j.*` = `block{i+1}.layer.j.*` (the projection
    /// `shortcut` = `convShortcut`), the final `bn` = `bn1`, `out` = `fc`.
    pub(super) fn torch_module(module: &str) -> Option<String> {
        let parts: Vec<&str> = module.split('.').collect();
        Some(match parts[..] {
            ["stem"] => "conv1".into(),
            ["bn"] => "bn1".into(),
            ["out"] => "fc".into(),
            ["groups", group, block, m] => {
                let m = match m {
                    "bn1" | "conv1" | "bn2" | "conv2" => m,
                    "shortcut" => "convShortcut",
                    _ => return None,
                };
                format!("block{}.layer.{block}.{m}", group.parse::<usize>().ok()? + 1)
            }
            _ => return None,
        })
    }

    /// The batch norm that the pre-activation tap `tap` (`group<i>_pre`) is the output of: the
    /// next group's first, or the final one after the last group (mdistiller's
    /// `get_bn_before_relu`, OFD's margin).
    pub(super) fn bn_before(&self, tap: &str) -> Option<&BatchNorm> {
        let g = (1..=self.groups.len()).find(|&g| pre_tap(self.first + g) == tap)?;
        if g < self.groups.len() { self.groups[g].first().map(|b| &b.bn1) } else { self.bn.as_ref() }
    }

    /// Logits `[B, classes]` of a flat batch `[B, C·H·W]`; tap `stem` is the first convolution's
    /// output `[B, 16, H, W]`, tap `group{i}` group i's output `[B, C_i, H_i, W_i]` (the residual
    /// sum, before the next batch norm and ReLU; halved, rounding up, from the second group on) —
    /// RepDistiller's `feat[0..=3]` —, `group{i}_pre` the batch norm that follows it, `pool` is
    /// `[B, 64·widen]`.
    pub(super) fn forward(&self, x: Tensor<2>, taps: &mut Taps) -> Tensor<2> {
        let h = self.stages(Tap::Flat(x), taps);
        self.classify(h, taps).0
    }
}

impl Stages for Wrn {
    /// `[B, C·H·W]` (the input, when it holds the stem) or `[B, C, H, W]` → `[B, C_i, H_i, W_i]`.
    fn stages(&self, h: Tap, taps: &mut Taps) -> Tap {
        let mut h = match (h, &self.stem) {
            (Tap::Flat(x), Some(stem)) => {
                let [b, _] = x.dims();
                let [c, hh, ww] = self.shape;
                let h = first_conv(stem, x.reshape([b, c, hh, ww]));
                taps.put(STEM_TAP.into(), || Tap::Map(h.clone()));
                h
            }
            (Tap::Map(h), None) => h,
            _ => unreachable!("a WRN with its stem reads the input, a tail a group's maps"),
        };
        for (i, group) in self.groups.iter().enumerate() {
            for (k, block) in group.iter().enumerate() {
                // the previous group's pre-activation is this group's first batch norm
                let g = self.first + i;
                let pre = (k == 0 && g > 0).then(|| pre_tap(g));
                h = block.forward(h, self.dropout, taps, pre);
            }
            // RepDistiller's feat[1..=3]: the group's output as it is, the residual sum before the
            // next batch norm and ReLU (wrn.py: `f1 = out` after `self.block1`)
            taps.put(tap(self.first + i + 1), || Tap::Map(h.clone()));
        }
        Tap::Map(h)
    }
    /// BN → ReLU, the pooled features `[B, 64·widen]` and their logits.
    fn classify(&self, h: Tap, taps: &mut Taps) -> (Tensor<2>, Tensor<2>) {
        let Tap::Map(h) = h else { unreachable!("a WRN's groups give maps") };
        let (Some(bn), Some(out)) = (&self.bn, &self.out) else { unreachable!("the classifier is in the tail") };
        let h = batch_norm_relu_tapped(bn, h, Some(pre_tap(self.first + self.groups.len())), taps);
        pooled_classify(h, out, taps)
    }
    fn split(mut self, k: usize) -> (Self, Self) {
        let groups = self.groups.split_off(k);
        let tail = Wrn { stem: None, groups, bn: self.bn.take(), out: self.out.take(), dropout: self.dropout, shape: self.shape, first: self.first + k };
        (self, tail)
    }
}
