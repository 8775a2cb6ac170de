//! VGG with batch normalisation for CIFAR, as RepDistiller defines it (`models/vgg.py` of
//! HobbitLong/RepDistiller, after Wei Yang's port; the CRD/DKD tables' VGG-8/11/13): five blocks
//! of 3×3 convolutions, max-pooling after the first three, global average pooling, one linear
//! classifier (no hidden fully connected layers).

use std::fmt;

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::norm::{BatchNorm, BatchNormConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::branched::Stages;
use super::conv::{POOL_TAP, pooled_classify};
use super::tap::{Tap, Taps};
use super::{Architecture, Network, SpecProblem};
use crate::kernels;
use crate::values::Width;

/// `Vgg(depth: 13)`: VGG-depth with BN. Channels per block (RepDistiller's `cfg`): 8 `[64],
/// [128], [256], [512], [512]`; 11 `[64], [128], [256, 256], [512, 512], [512, 512]`; 13 two of
/// each; 16 three in the last three blocks; 19 four. Each convolution (with bias) is followed by
/// BN and ReLU; max-pool 2×2 after blocks 1–3 (and after block 4 for 64×64 inputs), global
/// average pool, linear. Taps: `block1` … `block5` (`[C, H, W]`, after the block's ReLU) and
/// `pool` (`[512]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename = "Vgg")]
pub struct VggSpec {
    /// 8, 11, 13, 16 or 19.
    pub depth: Width,
}

fn tap(i: usize) -> String {
    format!("block{i}")
}

impl VggSpec {
    /// Channels of each convolution, per block: RepDistiller's `cfg` 'S', 'A', 'B', 'D', 'E'.
    fn config(&self) -> Option<[Vec<usize>; 5]> {
        let v = |c: usize, n: usize| vec![c; n];
        Some(match self.depth.get() {
            8 => [v(64, 1), v(128, 1), v(256, 1), v(512, 1), v(512, 1)],
            11 => [v(64, 1), v(128, 1), v(256, 2), v(512, 2), v(512, 2)],
            13 => [v(64, 2), v(128, 2), v(256, 2), v(512, 2), v(512, 2)],
            16 => [v(64, 2), v(128, 2), v(256, 3), v(512, 3), v(512, 3)],
            19 => [v(64, 2), v(128, 2), v(256, 4), v(512, 4), v(512, 4)],
            _ => return None,
        })
    }

    /// Whether a max-pool follows block `i` (from 0) for images of height `h`.
    fn pools_after(i: usize, h: usize) -> bool {
        i < 3 || (i == 3 && h == 64)
    }
}

impl Architecture for VggSpec {
    fn batch_norm(&self) -> bool {
        true
    }
    fn name(&self) -> &'static str {
        "Vgg"
    }
    fn input_rank(&self) -> Option<usize> {
        Some(3)
    }
    fn problems(&self, _shape: &[usize]) -> Vec<SpecProblem> {
        match self.config() {
            Some(_) => Vec::new(),
            None => vec![SpecProblem::at("depth", format!("no VGG-{}", self.depth)).hint("VGG has depths 8, 11, 13, 16 and 19")],
        }
    }
    fn taps(&self, shape: &[usize]) -> Vec<(String, Vec<usize>)> {
        let Some(cfg) = self.config() else { return Vec::new() };
        let (mut h, mut w) = (shape.get(1).copied().unwrap_or(1), shape.get(2).copied().unwrap_or(1));
        let h0 = h;
        let mut v: Vec<(String, Vec<usize>)> = Vec::new();
        for (i, block) in cfg.iter().enumerate() {
            v.push((tap(i + 1), vec![*block.last().expect("non-empty"), h, w]));
            if Self::pools_after(i, h0) {
                h /= 2;
                w /= 2;
            }
        }
        v.push((POOL_TAP.into(), vec![512]));
        v
    }
    fn stages(&self, _shape: &[usize]) -> Vec<String> {
        self.config().map_or(Vec::new(), |cfg| (1..=cfg.len()).map(tap).collect())
    }
    fn build(&self, shape: &[usize], classes: usize, device: &Device) -> Network {
        let cfg = self.config().expect("the resolver checks the depth");
        let mut cin = shape[0];
        let blocks = cfg
            .iter()
            .map(|block| {
                block
                    .iter()
                    .map(|&c| {
                        let conv = Conv2dConfig::new([cin, c], [3, 3]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)).init(device);
                        cin = c;
                        ConvBn { conv, bn: BatchNormConfig::new(c).init(device) }
                    })
                    .collect()
            })
            .collect();
        Network::Vgg(Vgg {
            blocks,
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            out: Some(LinearConfig::new(512, classes).init(device)),
            shape: [shape[0], shape[1], shape[2]],
            first: 0,
        })
    }
}

impl fmt::Display for VggSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VGG-{} (BN)", self.depth)
    }
}

/// A 3×3 convolution (with bias) and its batch norm.
#[derive(Module, Debug)]
pub struct ConvBn {
    conv: Conv2d,
    bn: BatchNorm,
}

/// VGG: blocks of (conv → BN → ReLU), max-pools, global average pool, linear.
#[derive(Module, Debug)]
pub struct Vgg {
    blocks: Vec<Vec<ConvBn>>,
    pool: MaxPool2d,
    out: Option<Linear>,
    shape: [usize; 3],
    /// Index of its first block in the whole network (0 unless it is a branch's tail).
    first: usize,
}

impl Vgg {
    /// The module of RepDistiller's `models/vgg.py` that holds the tensors of burn module
    /// `module`: the j-th convolution of block i and its batch norm are `block{i}.{3j}` and
    /// `block{i}.{3j+1}` (each followed by a ReLU in the `nn.Sequential`), `out` = `classifier`.
    pub(super) fn torch_module(module: &str) -> Option<String> {
        let parts: Vec<&str> = module.split('.').collect();
        Some(match parts[..] {
            ["out"] => "classifier".into(),
            ["blocks", block, j, m] => {
                let j: usize = j.parse().ok()?;
                let k = match m {
                    "conv" => 3 * j,
                    "bn" => 3 * j + 1,
                    _ => return None,
                };
                format!("block{block}.{k}")
            }
            _ => return None,
        })
    }

    /// Logits `[B, classes]` of a flat batch `[B, C·H·W]`; tap `block{i}` is `[B, C_i, H_i, W_i]`
    /// (H halved after blocks 1–3), `pool` is `[B, 512]`.
    pub(super) fn forward(&self, x: Tensor<2>, taps: &mut Taps) -> Tensor<2> {
        let h = self.stages(Tap::Flat(x), taps);
        self.classify(h, taps).0
    }
}

impl Stages for Vgg {
    /// `[B, C·H·W]` (the input, when it holds the first block) or `[B, C, H, W]` → the last
    /// block's maps, max-pooled after it where the whole network pools (blocks 1–3; block 4 on
    /// 64-pixel inputs).
    fn stages(&self, h: Tap, taps: &mut Taps) -> Tap {
        let [c, hh, ww] = self.shape;
        let mut h: Tensor<4> = match h {
            Tap::Flat(x) => {
                let [b, _] = x.dims();
                x.reshape([b, c, hh, ww])
            }
            Tap::Map(h) => h,
            Tap::Seq(_) => unreachable!("a VGG's blocks read images"),
        };
        for (i, block) in self.blocks.iter().enumerate() {
            for layer in block {
                h = kernels::batch_norm_relu(&layer.bn, kernels::conv(&layer.conv, h));
            }
            taps.put(tap(self.first + i + 1), || Tap::Map(h.clone()));
            if VggSpec::pools_after(self.first + i, hh) {
                // `h` is a ReLU's output, so max-pooling its ReLU is max-pooling it: cohort's
                // fused kernel on flex, one pass instead of burn's generic pool
                h = kernels::relu_pool(&self.pool, h);
            }
        }
        Tap::Map(h)
    }
    /// The pooled features `[B, 512]` and their logits.
    fn classify(&self, h: Tap, taps: &mut Taps) -> (Tensor<2>, Tensor<2>) {
        let Tap::Map(h) = h else { unreachable!("a VGG's blocks give maps") };
        pooled_classify(h, self.out.as_ref().expect("the classifier is in the tail"), taps)
    }
    fn split(mut self, k: usize) -> (Self, Self) {
        let blocks = self.blocks.split_off(k);
        let tail = Vgg { blocks, pool: self.pool.clone(), out: self.out.take(), shape: self.shape, first: self.first + k };
        (self, tail)
    }
}
