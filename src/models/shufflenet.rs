//! ShuffleNet V1 (Zhang et al. 2018) and V2 (Ma et al. 2018) in the CIFAR variants of the KD
//! tables: RepDistiller's `models/ShuffleNetv1.py` ("ShuffleV1": widths 240, 480, 960, 4/8/4
//! blocks, 3 groups) and `models/ShuffleNetv2.py` ("ShuffleV2" = net size 1). Both: a 1×1 stem
//! of 24 channels without downsampling, three stages that halve the resolution, global average
//! pool, linear. Both branchable after any stage (each branch has the later stages and the
//! classifier).

use std::fmt;

use burn::module::Module;
use burn::nn::pool::{AvgPool2d, AvgPool2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::{Device, Tensor, activation::relu};
use serde::{Deserialize, Serialize};

use super::branched::Stages;
use super::conv::{ConvBn, POOL_TAP, pooled_classify, stem_maps};
use super::tap::{Tap, Taps};
use super::{Architecture, Network, SpecProblem};
use crate::values::{NonNegative, Width};

/// `ShuffleNetV2(size: 1.0)` (the tables' "ShuffleV2"). Net sizes and their (stage widths,
/// final width; basic blocks per stage), RepDistiller's `configs`: 0.2 (40, 80, 160, 512; 3, 3,
/// 3), 0.3 (40, 80, 160, 512; 3, 7, 3), 0.5 (48, 96, 192, 1024; 3, 7, 3), 1 (116, 232, 464,
/// 1024; 3, 7, 3), 1.5 (176, 352, 704, 1024; 3, 7, 3), 2 (224, 488, 976, 2048; 3, 7, 3).
/// Taps: `stage1`, `stage2`, `stage3` (`[C, H, W]`) and `pool` (`[final width]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename = "ShuffleNetV2")]
pub struct ShuffleNetV2Spec {
    /// Net size: 0.2, 0.3, 0.5, 1, 1.5 or 2.
    pub size: NonNegative,
}

fn tap(i: usize) -> String {
    format!("stage{i}")
}

impl ShuffleNetV2Spec {
    /// (stage widths, final width, basic blocks per stage).
    fn config(&self) -> Option<([usize; 3], usize, [usize; 3])> {
        let s = self.size.get();
        let is = |v: f64| (s - v).abs() < 1e-9;
        Some(if is(0.2) {
            ([40, 80, 160], 512, [3, 3, 3])
        } else if is(0.3) {
            ([40, 80, 160], 512, [3, 7, 3])
        } else if is(0.5) {
            ([48, 96, 192], 1024, [3, 7, 3])
        } else if is(1.0) {
            ([116, 232, 464], 1024, [3, 7, 3])
        } else if is(1.5) {
            ([176, 352, 704], 1024, [3, 7, 3])
        } else if is(2.0) {
            ([224, 488, 976], 2048, [3, 7, 3])
        } else {
            return None;
        })
    }
}

impl Architecture for ShuffleNetV2Spec {
    fn batch_norm(&self) -> bool {
        true
    }
    fn name(&self) -> &'static str {
        "ShuffleNetV2"
    }
    fn input_rank(&self) -> Option<usize> {
        Some(3)
    }
    fn problems(&self, _shape: &[usize]) -> Vec<SpecProblem> {
        match self.config() {
            Some(_) => Vec::new(),
            None => vec![SpecProblem::at("size", format!("no ShuffleNetV2 of size {}", self.size)).hint("sizes: 0.2, 0.3, 0.5, 1, 1.5, 2")],
        }
    }
    fn stages(&self, _shape: &[usize]) -> Vec<String> {
        (1..=3).map(tap).collect()
    }
    fn taps(&self, shape: &[usize]) -> Vec<(String, Vec<usize>)> {
        let Some((widths, last, _)) = self.config() else { return Vec::new() };
        stage_taps(&widths, last, shape)
    }
    fn build(&self, shape: &[usize], classes: usize, device: &Device) -> Network {
        let (widths, last, blocks) = self.config().expect("the resolver checks the size");
        let stem = ConvBn::new(shape[0], 24, 1, 1, 1, device);
        let mut cin = 24;
        let stages = widths
            .iter()
            .zip(blocks)
            .map(|(&c, n)| {
                let down = DownBlock::new(cin, c, device);
                cin = c;
                Stage { down, blocks: (0..n).map(|_| SplitBlock::new(c, device)).collect() }
            })
            .collect();
        Network::ShuffleNetV2(ShuffleNetV2 {
            stem: Some(stem),
            stages,
            head: Some(ConvBn::new(cin, last, 1, 1, 1, device)),
            out: Some(LinearConfig::new(last, classes).init(device)),
            shape: [shape[0], shape[1], shape[2]],
            first: 0,
        })
    }
}

impl fmt::Display for ShuffleNetV2Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ShuffleNetV2(size {})", self.size)
    }
}

/// The taps of both ShuffleNets for samples of `shape`: `stage{i}` `[C_i, H/2^i, W/2^i]` (each
/// stage halves the resolution, rounding up) and the pooled `[last]`.
fn stage_taps(widths: &[usize; 3], last: usize, shape: &[usize]) -> Vec<(String, Vec<usize>)> {
    let (mut h, mut w) = (shape.get(1).copied().unwrap_or(1), shape.get(2).copied().unwrap_or(1));
    let mut v: Vec<(String, Vec<usize>)> = widths
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            h = h.div_ceil(2);
            w = w.div_ceil(2);
            (tap(i + 1), vec![c, h, w])
        })
        .collect();
    v.push((POOL_TAP.into(), vec![last]));
    v
}

/// Channel shuffle with 2 groups (ShuffleNetV2).
fn shuffle(x: Tensor<4>) -> Tensor<4> {
    shuffle_groups(x, 2)
}

/// Channel shuffle with `g` groups: `[N, C, H, W]` → `[N, g, C/g, H, W]` → swap the two channel
/// axes → `[N, C, H, W]`.
fn shuffle_groups(x: Tensor<4>, g: usize) -> Tensor<4> {
    let [n, c, h, w] = x.dims();
    x.reshape([n, g, c / g, h, w]).swap_dims(1, 2).reshape([n, c, h, w])
}

/// Basic block: the channels split in two halves; the second goes through 1×1 → BN → ReLU →
/// 3×3 depthwise → BN → 1×1 → BN → ReLU; the halves are concatenated and shuffled.
#[derive(Module, Debug)]
pub struct SplitBlock {
    conv1: ConvBn,
    conv2: ConvBn,
    conv3: ConvBn,
}

impl SplitBlock {
    fn new(channels: usize, device: &Device) -> Self {
        let c = channels / 2;
        Self { conv1: ConvBn::new(c, c, 1, 1, 1, device), conv2: ConvBn::new(c, c, 3, 1, c, device), conv3: ConvBn::new(c, c, 1, 1, 1, device) }
    }
    /// `[B, C, H, W]` → `[B, C, H, W]`.
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, c, h, w] = x.dims();
        let half = c / 2;
        let x1 = x.clone().slice([0..b, 0..half, 0..h, 0..w]);
        let x2 = x.slice([0..b, half..c, 0..h, 0..w]);
        let out = self.conv3.forward_relu(self.conv2.forward(self.conv1.forward_relu(x2)));
        shuffle(Tensor::cat(vec![x1, out], 1))
    }
}

/// Down-sampling block: left 3×3 depthwise (stride 2) → BN → 1×1 → BN → ReLU; right 1×1 → BN →
/// ReLU → 3×3 depthwise (stride 2) → BN → 1×1 → BN → ReLU; concatenated (C_out/2 each) and
/// shuffled.
#[derive(Module, Debug)]
pub struct DownBlock {
    left_dw: ConvBn,
    left_pw: ConvBn,
    right_pw1: ConvBn,
    right_dw: ConvBn,
    right_pw2: ConvBn,
}

impl DownBlock {
    fn new(cin: usize, cout: usize, device: &Device) -> Self {
        let mid = cout / 2;
        Self {
            left_dw: ConvBn::new(cin, cin, 3, 2, cin, device),
            left_pw: ConvBn::new(cin, mid, 1, 1, 1, device),
            right_pw1: ConvBn::new(cin, mid, 1, 1, 1, device),
            right_dw: ConvBn::new(mid, mid, 3, 2, mid, device),
            right_pw2: ConvBn::new(mid, mid, 1, 1, 1, device),
        }
    }
    /// `[B, C_in, H, W]` → `[B, C_out, H/2, W/2]`.
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let left = self.left_pw.forward_relu(self.left_dw.forward(x.clone()));
        let right = self.right_pw2.forward_relu(self.right_dw.forward(self.right_pw1.forward_relu(x)));
        shuffle(Tensor::cat(vec![left, right], 1))
    }
}

/// `conv{k}` or `bn{k}` for the convolution or the batch norm of a [`ConvBn`] (RepDistiller's
/// ShuffleNets name the pair so).
fn conv_or_bn(m: &str, k: usize) -> Option<String> {
    match m {
        "conv" => Some(format!("conv{k}")),
        "bn" => Some(format!("bn{k}")),
        _ => None,
    }
}

/// One stage: a down-sampling block and basic blocks.
#[derive(Module, Debug)]
pub struct Stage {
    down: DownBlock,
    blocks: Vec<SplitBlock>,
}

/// ShuffleNetV2: 1×1 stem + BN + ReLU → three stages → 1×1 conv + BN + ReLU → global average
/// pool → linear.
#[derive(Module, Debug)]
pub struct ShuffleNetV2 {
    /// The stem (`None` in a branch's tail).
    stem: Option<ConvBn>,
    stages: Vec<Stage>,
    /// The 1×1 convolution to the final width and the classifier (`None` in a trunk).
    head: Option<ConvBn>,
    out: Option<Linear>,
    shape: [usize; 3],
    /// Index of its first stage in the whole network (0 unless it is a branch's tail).
    first: usize,
}

impl ShuffleNetV2 {
    /// The module of RepDistiller's `models/ShuffleNetv2.py` that holds the tensors of burn
    /// module `module`: `stem` = `conv1`/`bn1`, stage i's down-sampling block = `layer{i+1}.0`
    /// (`left_dw`, `left_pw`, `right_pw1`, `right_dw`, `right_pw2` = `conv1`…`conv5` with `bn1`…
    /// `bn5`), its basic block j = `layer{i+1}.{j+1}` (`conv1`…`conv3`), `head` = `conv2`/`bn2`,
    /// `out` = `linear`.
    pub(super) fn torch_module(module: &str) -> Option<String> {
        let parts: Vec<&str> = module.split('.').collect();
        Some(match parts[..] {
            ["stem", m] => conv_or_bn(m, 1)?,
            ["head", m] => conv_or_bn(m, 2)?,
            ["out"] => "linear".into(),
            ["stages", stage, "down", part, m] => {
                let k = ["left_dw", "left_pw", "right_pw1", "right_dw", "right_pw2"].iter().position(|p| *p == part)? + 1;
                format!("layer{}.0.{}", stage.parse::<usize>().ok()? + 1, conv_or_bn(m, k)?)
            }
            ["stages", stage, "blocks", block, part, m] => {
                let k = ["conv1", "conv2", "conv3"].iter().position(|p| *p == part)? + 1;
                format!("layer{}.{}.{}", stage.parse::<usize>().ok()? + 1, block.parse::<usize>().ok()? + 1, conv_or_bn(m, k)?)
            }
            _ => return None,
        })
    }

    /// Logits `[B, classes]` of a flat batch `[B, C·H·W]`; tap `stage{i}` is
    /// `[B, C_i, H/2^i, W/2^i]`, `pool` is `[B, final width]`.
    pub(super) fn forward(&self, x: Tensor<2>, taps: &mut Taps) -> Tensor<2> {
        let h = self.stages(Tap::Flat(x), taps);
        self.classify(h, taps).0
    }
}

impl Stages for ShuffleNetV2 {
    /// `[B, C·H·W]` (the input, when it holds the stem) or `[B, C, H, W]` → `[B, C_i, H_i, W_i]`.
    fn stages(&self, h: Tap, taps: &mut Taps) -> Tap {
        let mut h = stem_maps(h, self.stem.as_ref(), self.shape);
        for (i, stage) in self.stages.iter().enumerate() {
            h = stage.down.forward(h);
            for block in &stage.blocks {
                h = block.forward(h);
            }
            taps.put(tap(self.first + i + 1), || Tap::Map(h.clone()));
        }
        Tap::Map(h)
    }
    /// The 1×1 head (BN, ReLU), the pooled features `[B, final width]` and their logits.
    fn classify(&self, h: Tap, taps: &mut Taps) -> (Tensor<2>, Tensor<2>) {
        let Tap::Map(h) = h else { unreachable!("a ShuffleNet's stages give maps") };
        let (Some(head), Some(out)) = (&self.head, &self.out) else { unreachable!("the classifier is in the tail") };
        pooled_classify(head.forward_relu(h), out, taps)
    }
    fn split(mut self, k: usize) -> (Self, Self) {
        let stages = self.stages.split_off(k);
        let tail = ShuffleNetV2 { stem: None, stages, head: self.head.take(), out: self.out.take(), shape: self.shape, first: self.first + k };
        (self, tail)
    }
}

/// `ShuffleNetV1(groups: 3)` (the tables' "ShuffleV1"): stages of 240, 480 and 960 channels with
/// 4, 8 and 4 bottlenecks and 3 groups in the 1×1 convolutions (RepDistiller's only
/// configuration). Taps: `stage1`, `stage2`, `stage3` (`[C, H, W]`) and `pool` (`[960]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename = "ShuffleNetV1")]
pub struct ShuffleNetV1Spec {
    /// Groups of the 1×1 convolutions: 3 (the tables' configuration).
    pub groups: Width,
}

const V1_WIDTHS: [usize; 3] = [240, 480, 960];
const V1_BLOCKS: [usize; 3] = [4, 8, 4];

impl Architecture for ShuffleNetV1Spec {
    fn batch_norm(&self) -> bool {
        true
    }
    fn name(&self) -> &'static str {
        "ShuffleNetV1"
    }
    fn input_rank(&self) -> Option<usize> {
        Some(3)
    }
    fn problems(&self, _shape: &[usize]) -> Vec<SpecProblem> {
        if self.groups.get() != 3 {
            return vec![
                SpecProblem::at("groups", format!("only the 3-group ShuffleNetV1 of the KD tables is defined, not {}", self.groups)).hint("`groups: 3`"),
            ];
        }
        Vec::new()
    }
    fn stages(&self, _shape: &[usize]) -> Vec<String> {
        (1..=3).map(tap).collect()
    }
    fn taps(&self, shape: &[usize]) -> Vec<(String, Vec<usize>)> {
        stage_taps(&V1_WIDTHS, V1_WIDTHS[2], shape)
    }
    fn build(&self, shape: &[usize], classes: usize, device: &Device) -> Network {
        let g = self.groups.get();
        let stem = ConvBn::new(shape[0], 24, 1, 1, 1, device);
        let mut cin = 24;
        let stages = V1_WIDTHS
            .iter()
            .zip(V1_BLOCKS)
            .map(|(&c, n)| {
                (0..n)
                    .map(|k| {
                        // the first bottleneck concatenates its (pooled) input: it makes c − c_in channels
                        let b = if k == 0 { Bottleneck::new(cin, c - cin, 2, g, device) } else { Bottleneck::new(cin, c, 1, g, device) };
                        cin = c;
                        b
                    })
                    .collect()
            })
            .collect();
        Network::ShuffleNetV1(ShuffleNetV1 {
            stem: Some(stem),
            stages,
            out: Some(LinearConfig::new(cin, classes).init(device)),
            shape: [shape[0], shape[1], shape[2]],
            first: 0,
        })
    }
}

impl fmt::Display for ShuffleNetV1Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ShuffleNetV1(groups {})", self.groups)
    }
}

/// ShuffleNetV1 bottleneck: grouped 1×1 (to a quarter of the output width; not grouped after
/// the 24-channel stem) → BN → ReLU → channel shuffle → 3×3 depthwise (stride) → BN → ReLU →
/// grouped 1×1 → BN; plus the input (stride 1), or concatenated with the input average-pooled
/// 3×3 / 2 (stride 2); ReLU.
#[derive(Module, Debug)]
pub struct Bottleneck {
    conv1: ConvBn,
    conv2: ConvBn,
    conv3: ConvBn,
    pool: Option<AvgPool2d>,
    shuffle_groups: usize,
}

impl Bottleneck {
    fn new(cin: usize, cout: usize, stride: usize, groups: usize, device: &Device) -> Self {
        let mid = cout / 4;
        let g1 = if cin == 24 { 1 } else { groups };
        Self {
            conv1: ConvBn::new(cin, mid, 1, 1, g1, device),
            conv2: ConvBn::new(mid, mid, 3, stride, mid, device),
            conv3: ConvBn::new(mid, cout, 1, 1, groups, device),
            pool: (stride == 2).then(|| AvgPool2dConfig::new([3, 3]).with_strides([2, 2]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)).init()),
            shuffle_groups: g1,
        }
    }
    /// `[B, C_in, H, W]` → `[B, C_out (+ C_in when downsampling), H/stride, W/stride]`.
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let h = shuffle_groups(self.conv1.forward_relu(x.clone()), self.shuffle_groups);
        let h = self.conv3.forward(self.conv2.forward_relu(h));
        relu(match &self.pool {
            Some(pool) => Tensor::cat(vec![h, pool.forward(x)], 1),
            None => h + x,
        })
    }
}

/// ShuffleNetV1: 1×1 stem + BN + ReLU → three stages of bottlenecks → global average pool →
/// linear.
#[derive(Module, Debug)]
pub struct ShuffleNetV1 {
    /// The stem (`None` in a branch's tail).
    stem: Option<ConvBn>,
    stages: Vec<Vec<Bottleneck>>,
    /// The classifier (`None` in a trunk).
    out: Option<Linear>,
    shape: [usize; 3],
    /// Index of its first stage in the whole network (0 unless it is a branch's tail).
    first: usize,
}

impl ShuffleNetV1 {
    /// The module of RepDistiller's `models/ShuffleNetv1.py` that holds the tensors of burn
    /// module `module`: `stem` = `conv1`/`bn1`, block j of stage i = `layer{i+1}.j` with
    /// `conv1`…`conv3` and `bn1`…`bn3`, `out` = `linear`.
    pub(super) fn torch_module(module: &str) -> Option<String> {
        let parts: Vec<&str> = module.split('.').collect();
        Some(match parts[..] {
            ["stem", m] => conv_or_bn(m, 1)?,
            ["out"] => "linear".into(),
            ["stages", stage, block, part, m] => {
                let k = ["conv1", "conv2", "conv3"].iter().position(|p| *p == part)? + 1;
                format!("layer{}.{block}.{}", stage.parse::<usize>().ok()? + 1, conv_or_bn(m, k)?)
            }
            _ => return None,
        })
    }

    /// Logits `[B, classes]` of a flat batch `[B, C·H·W]`; tap `stage{i}` is
    /// `[B, C_i, H/2^i, W/2^i]`, `pool` is `[B, 960]`.
    pub(super) fn forward(&self, x: Tensor<2>, taps: &mut Taps) -> Tensor<2> {
        let h = self.stages(Tap::Flat(x), taps);
        self.classify(h, taps).0
    }
}

impl Stages for ShuffleNetV1 {
    /// `[B, C·H·W]` (the input, when it holds the stem) or `[B, C, H, W]` → `[B, C_i, H_i, W_i]`.
    fn stages(&self, h: Tap, taps: &mut Taps) -> Tap {
        let mut h = stem_maps(h, self.stem.as_ref(), self.shape);
        for (i, stage) in self.stages.iter().enumerate() {
            for block in stage {
                h = block.forward(h);
            }
            taps.put(tap(self.first + i + 1), || Tap::Map(h.clone()));
        }
        Tap::Map(h)
    }
    /// The pooled features `[B, 960]` and their logits.
    fn classify(&self, h: Tap, taps: &mut Taps) -> (Tensor<2>, Tensor<2>) {
        let Tap::Map(h) = h else { unreachable!("a ShuffleNet's stages give maps") };
        pooled_classify(h, self.out.as_ref().expect("the classifier is in the tail"), taps)
    }
    fn split(mut self, k: usize) -> (Self, Self) {
        let stages = self.stages.split_off(k);
        let tail = ShuffleNetV1 { stem: None, stages, out: self.out.take(), shape: self.shape, first: self.first + k };
        (self, tail)
    }
}
