//! Small 2-D CNN for images (MNIST-scale): 3×3 conv blocks with max-pooling, one hidden layer.

use std::fmt;

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::{Device, Tensor, activation::relu};
use serde::{Deserialize, Serialize};

use super::branched::Stages;
use super::conv::first_conv;
use super::tap::{Tap, Taps, dropout};
use super::{Architecture, Network, SpecProblem, widths};
use crate::data::spec::zero_fraction;
use crate::kernels;
use crate::values::{Fraction, Width};

/// `Cnn2d(channels: [32, 64], hidden: 128)`: per block conv 3×3 (same) → ReLU → max-pool 2×2,
/// then a hidden fully connected layer and the classifier. Taps: `block1`, `block2`, …
/// (`[C, H, W]`) and `hidden` (`[F]`). Branchable after any block (`Branched(of: Cnn2d(…),
/// at: "block1", …)`: each branch has its later blocks, hidden layer and classifier).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename = "Cnn2d")]
pub struct Cnn2dSpec {
    /// Channels of each block, e.g. `[32, 64]`.
    pub channels: Vec<Width>,
    /// Width of the fully connected layer before the classifier.
    #[serde(default = "default_fc")]
    pub hidden: Width,
    /// Dropout probability before the classifier.
    #[serde(default = "zero_fraction")]
    pub dropout: Fraction,
}

fn default_fc() -> Width {
    Width::new(128).expect("valid")
}

/// Name of the tap after block `i` (from 1).
fn tap(i: usize) -> String {
    format!("block{i}")
}

/// Name of the tap after the hidden layer.
const HIDDEN: &str = "hidden";

impl Cnn2dSpec {
    /// `[C, H, W]` after each block for inputs of `shape` `[C, H, W]` (every block halves H
    /// and W, rounding down).
    fn geometry(&self, shape: &[usize]) -> Vec<[usize; 3]> {
        let (mut h, mut w) = (shape.get(1).copied().unwrap_or(1), shape.get(2).copied().unwrap_or(1));
        self.channels
            .iter()
            .map(|c| {
                h /= 2;
                w /= 2;
                [c.get(), h, w]
            })
            .collect()
    }
}

impl Architecture for Cnn2dSpec {
    fn name(&self) -> &'static str {
        "Cnn2d"
    }
    fn input_rank(&self) -> Option<usize> {
        Some(3)
    }
    fn problems(&self, shape: &[usize]) -> Vec<SpecProblem> {
        if self.channels.is_empty() {
            return vec![SpecProblem::at("channels", "a CNN needs at least one block").hint("e.g. `channels: [32, 64]`")];
        }
        if shape.len() == 3 && shape[1] >> self.channels.len() == 0 {
            let msg = format!("{} pooling blocks would shrink a {}×{} input to nothing", self.channels.len(), shape[1], shape[2]);
            return vec![SpecProblem::at("channels", msg)];
        }
        Vec::new()
    }
    fn stages(&self, _shape: &[usize]) -> Vec<String> {
        (1..=self.channels.len()).map(tap).collect()
    }
    fn taps(&self, shape: &[usize]) -> Vec<(String, Vec<usize>)> {
        let mut v: Vec<(String, Vec<usize>)> = self.geometry(shape).into_iter().enumerate().map(|(i, s)| (tap(i + 1), s.to_vec())).collect();
        v.push((HIDDEN.into(), vec![self.hidden.get()]));
        v
    }
    fn build(&self, shape: &[usize], classes: usize, device: &Device) -> Network {
        let mut cin = shape[0];
        let blocks = self
            .channels
            .iter()
            .map(|c| {
                let conv = Conv2dConfig::new([cin, c.get()], [3, 3]).with_padding(PaddingConfig2d::Same).init(device);
                cin = c.get();
                conv
            })
            .collect();
        let [c, h, w] = self.geometry(shape).last().copied().unwrap_or([shape[0], shape[1], shape[2]]);
        Network::Cnn2d(Cnn2d {
            blocks,
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            fc: Some(LinearConfig::new(c * h * w, self.hidden.get()).init(device)),
            out: Some(LinearConfig::new(self.hidden.get(), classes).init(device)),
            dropout: self.dropout.get(),
            shape: [shape[0], shape[1], shape[2]],
            first: 0,
        })
    }
}

impl fmt::Display for Cnn2dSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cnn2d(channels {}, fc {}, dropout {})", widths(&self.channels), self.hidden, self.dropout)
    }
}

/// 2-D CNN: (Conv 3×3 same → ReLU → MaxPool 2×2)*, flatten, Linear → ReLU → Dropout, Linear.
#[derive(Module, Debug)]
pub struct Cnn2d {
    blocks: Vec<Conv2d>,
    pool: MaxPool2d,
    /// The hidden layer and the classifier (`None` in a trunk).
    fc: Option<Linear>,
    out: Option<Linear>,
    dropout: f64,
    shape: [usize; 3],
    /// Index of its first block in the whole network (0 unless it is a branch's tail).
    first: usize,
}

impl Cnn2d {
    /// Logits `[B, classes]` of a flat batch `[B, C·H·W]`; tap `block{i}` is `[B, C_i, H/2^i,
    /// W/2^i]`, `hidden` is `[B, F]`.
    pub(super) fn forward(&self, x: Tensor<2>, taps: &mut Taps) -> Tensor<2> {
        let h = self.stages(Tap::Flat(x), taps);
        self.classify(h, taps).0
    }
}

impl Stages for Cnn2d {
    /// `[B, C·H·W]` (the input, when it holds the first block) or `[B, C, H, W]` → the last
    /// block's pooled maps `[B, C_i, H/2^i, W/2^i]`.
    fn stages(&self, h: Tap, taps: &mut Taps) -> Tap {
        let mut h: Tensor<4> = match h {
            Tap::Flat(x) => {
                let [b, _] = x.dims();
                let [c, hh, ww] = self.shape;
                x.reshape([b, c, hh, ww])
            }
            Tap::Map(h) => h,
            Tap::Seq(_) => unreachable!("a 2-D CNN's blocks read images"),
        };
        for (i, conv) in self.blocks.iter().enumerate() {
            let z = if self.first + i == 0 && !kernels::conv_applies(conv, &h) { first_conv(conv, h) } else { kernels::conv(conv, h) };
            h = kernels::relu_pool(&self.pool, z);
            taps.put(tap(self.first + i + 1), || Tap::Map(h.clone()));
        }
        Tap::Map(h)
    }
    /// The hidden layer's output `[B, F]` (after ReLU and dropout) and the logits on it.
    fn classify(&self, h: Tap, taps: &mut Taps) -> (Tensor<2>, Tensor<2>) {
        let Tap::Map(h) = h else { unreachable!("a 2-D CNN's blocks give maps") };
        let (Some(fc), Some(out)) = (&self.fc, &self.out) else { unreachable!("the classifier is in the tail") };
        let f = dropout(relu(kernels::linear(fc, h.flatten(1, 3))), self.dropout, &mut taps.noise);
        taps.put(HIDDEN.into(), || Tap::Flat(f.clone()));
        (kernels::linear(out, f.clone()), f)
    }
    fn split(mut self, k: usize) -> (Self, Self) {
        let blocks = self.blocks.split_off(k);
        let tail = Cnn2d {
            blocks,
            pool: self.pool.clone(),
            fc: self.fc.take(),
            out: self.out.take(),
            dropout: self.dropout,
            shape: self.shape,
            first: self.first + k,
        };
        (self, tail)
    }
}
