//! 1-D CNN for sequences (the MNIST-1D paper's CNN: three blocks of 25 channels, kernel 5).

use std::fmt;

use burn::module::Module;
use burn::nn::conv::{Conv1d, Conv1dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig1d};
use burn::tensor::{Device, Tensor, activation::relu};
use serde::{Deserialize, Serialize};

use super::branched::Stages;
use super::tap::{Tap, Taps};
use super::{Architecture, Network, SpecProblem, widths};
use crate::kernels;
use crate::values::Width;

/// `Cnn1d(channels: [25, 25, 25], kernel: 5)`: per block a convolution (odd `kernel`, same
/// padding, stride 1 in the first block and 2 after) → ReLU, then a linear classifier on the
/// flattened maps. Taps: `block1`, `block2`, … (`[C, L]`), each block's convolution output
/// before its ReLU `block1_pre`, … (the pre-activations activation-boundary distillation reads),
/// and `flat` (`[C·L]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename = "Cnn1d")]
pub struct Cnn1dSpec {
    /// Channels of each block, e.g. `[25, 25, 25]` (the MNIST-1D paper's CNN).
    pub channels: Vec<Width>,
    /// Kernel size (odd).
    #[serde(default = "default_kernel")]
    pub kernel: Width,
}

fn default_kernel() -> Width {
    Width::new(5).expect("valid")
}

/// Name of the tap after block `i` (from 1).
fn tap(i: usize) -> String {
    format!("block{i}")
}

/// Name of the tap of block `i`'s pre-activation (its convolution's output, before the ReLU).
fn pre_tap(i: usize) -> String {
    format!("block{i}_pre")
}

/// Name of the tap of the classifier's input, the last block's maps flattened `[B, C·L]` (the
/// features RepDistiller's relational losses read as `feat[-1]`).
const FLAT_TAP: &str = "flat";

/// Stride of block `i` (from 0): 1 for the first, 2 after.
fn stride(i: usize) -> usize {
    if i == 0 { 1 } else { 2 }
}

/// Length after a same-padded convolution of odd kernel `k` with `stride` on `len` positions.
fn out_len(len: usize, k: usize, stride: usize) -> usize {
    (len + 2 * (k / 2) - k) / stride + 1
}

impl Cnn1dSpec {
    /// `(channels, length)` after each block, for inputs of `len` positions.
    fn geometry(&self, len: usize) -> Vec<(usize, usize)> {
        let k = self.kernel.get();
        let mut len = len;
        self.channels
            .iter()
            .enumerate()
            .map(|(i, c)| {
                len = out_len(len, k, stride(i));
                (c.get(), len)
            })
            .collect()
    }
}

impl Architecture for Cnn1dSpec {
    fn name(&self) -> &'static str {
        "Cnn1d"
    }
    fn input_rank(&self) -> Option<usize> {
        Some(1)
    }
    fn problems(&self, _shape: &[usize]) -> Vec<SpecProblem> {
        let mut v = Vec::new();
        if self.channels.is_empty() {
            v.push(SpecProblem::at("channels", "a CNN needs at least one block").hint("e.g. `channels: [32, 64]`"));
        }
        if self.kernel.get().is_multiple_of(2) {
            v.push(SpecProblem::at("kernel", format!("kernel must be odd (for same padding), got {}", self.kernel)));
        }
        v
    }
    fn stages(&self, _shape: &[usize]) -> Vec<String> {
        (1..=self.channels.len()).map(tap).collect()
    }
    fn taps(&self, shape: &[usize]) -> Vec<(String, Vec<usize>)> {
        let len = shape.iter().product();
        let geometry = self.geometry(len);
        let flat = geometry.last().map_or(0, |(c, l)| c * l);
        let mut v: Vec<(String, Vec<usize>)> =
            geometry.into_iter().enumerate().flat_map(|(i, (c, l))| [(pre_tap(i + 1), vec![c, l]), (tap(i + 1), vec![c, l])]).collect();
        v.push((FLAT_TAP.into(), vec![flat]));
        v
    }
    fn build(&self, shape: &[usize], classes: usize, device: &Device) -> Network {
        let k = self.kernel.get();
        let length = shape.iter().product();
        let mut cin = 1;
        let blocks = self
            .channels
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let conv = Conv1dConfig::new(cin, c.get(), k).with_stride(stride(i)).with_padding(PaddingConfig1d::Explicit(k / 2, k / 2)).init(device);
                cin = c.get();
                conv
            })
            .collect();
        let (c, len) = self.geometry(length).last().copied().unwrap_or((1, length));
        Network::Cnn1d(Cnn1d { blocks, out: Some(LinearConfig::new(c * len, classes).init(device)), length, first: 0 })
    }
}

impl fmt::Display for Cnn1dSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cnn1d(channels {}, kernel {})", widths(&self.channels), self.kernel)
    }
}

/// 1-D CNN: (Conv1d → ReLU)*, flatten, Linear. Cut by [`super::Branched`] into a trunk (the
/// first blocks, no classifier) and tails (the later blocks and the classifier).
#[derive(Module, Debug)]
pub struct Cnn1d {
    blocks: Vec<Conv1d>,
    out: Option<Linear>,
    length: usize,
    /// Index of its first block in the whole network (0 unless it is a branch's tail).
    first: usize,
}

impl Cnn1d {
    /// Logits `[B, classes]` of a flat batch `[B, L]` (one channel); tap `block{i}` is
    /// `[B, C_i, L_i]` with `L_i` from the block strides, tap `flat` the last block flattened
    /// `[B, C·L]` (the classifier's input).
    pub(super) fn forward(&self, x: Tensor<2>, taps: &mut Taps) -> Tensor<2> {
        let h = self.stages(Tap::Flat(x), taps);
        self.classify(h, taps).0
    }
}

impl Stages for Cnn1d {
    /// `[B, L]` (the input, when it holds the first block) or `[B, C, L']` → `[B, C_i, L_i]`.
    fn stages(&self, h: Tap, taps: &mut Taps) -> Tap {
        let mut h: Tensor<3> = match h {
            Tap::Flat(x) => {
                let [b, _] = x.dims();
                x.reshape([b, 1, self.length])
            }
            Tap::Seq(h) => h,
            Tap::Map(_) => unreachable!("a 1-D CNN's stages read sequences"),
        };
        for (i, c) in self.blocks.iter().enumerate() {
            let z = kernels::conv1d(c, h);
            taps.put(pre_tap(self.first + i + 1), || Tap::Seq(z.clone()));
            h = relu(z);
            taps.put(tap(self.first + i + 1), || Tap::Seq(h.clone()));
        }
        Tap::Seq(h)
    }
    /// The flattened maps `[B, C·L]` and their logits.
    fn classify(&self, h: Tap, taps: &mut Taps) -> (Tensor<2>, Tensor<2>) {
        let Tap::Seq(h) = h else { unreachable!("a 1-D CNN's last block gives a sequence") };
        let features: Tensor<2> = h.flatten(1, 2);
        taps.put(FLAT_TAP.into(), || Tap::Flat(features.clone()));
        (kernels::linear(self.out.as_ref().expect("the classifier is in the tail"), features.clone()), features)
    }
    fn split(mut self, k: usize) -> (Self, Self) {
        let blocks = self.blocks.split_off(k);
        let tail = Cnn1d { blocks, out: self.out.take(), length: self.length, first: self.first + k };
        (self, tail)
    }
}
