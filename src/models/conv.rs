//! Building blocks shared by the convolutional architectures: a network's first convolution on
//! data ([`first_conv`]), a bias-free convolution with its batch norm ([`ConvBn`]) and the
//! global-average-pool classifier that ends the CIFAR networks ([`pooled_classify`], tap
//! [`POOL_TAP`]).

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::norm::{BatchNorm, BatchNormConfig};
use burn::nn::{Linear, PaddingConfig2d};
use burn::tensor::{Device, Tensor};

use super::tap::{Tap, Taps};
use crate::kernels;

/// Name of the tap of the globally pooled features (`[C]`).
pub const POOL_TAP: &str = "pool";

/// Name of the tap after a CIFAR network's first convolution (RepDistiller's `feat[0]`): the
/// stem's output, as the network passes it to its first stage.
pub const STEM_TAP: &str = "stem";

/// Global average pool of `h` `[B, C, H, W]` → `[B, C]` (collected as the [`POOL_TAP`] tap),
/// then `out`'s logits `[B, classes]`, with the pooled features it classified (a branch's
/// features, for a fusion classifier).
pub fn pooled_classify(h: Tensor<4>, out: &Linear, taps: &mut Taps) -> (Tensor<2>, Tensor<2>) {
    let pooled: Tensor<2> = h.mean_dims(&[2, 3]).flatten(1, 3);
    taps.put(POOL_TAP.into(), || Tap::Flat(pooled.clone()));
    (kernels::linear(out, pooled.clone()), pooled)
}

/// A convolution without bias and its batch norm.
#[derive(Module, Debug)]
pub struct ConvBn {
    conv: Conv2d,
    bn: BatchNorm,
}

impl ConvBn {
    /// `k`×`k` convolution with `stride`, padding k/2, `groups` groups, then BN.
    pub fn new(cin: usize, cout: usize, k: usize, stride: usize, groups: usize, device: &Device) -> Self {
        let p = k / 2;
        let conv = Conv2dConfig::new([cin, cout], [k, k])
            .with_stride([stride, stride])
            .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
            .with_groups(groups)
            .with_bias(false)
            .init(device);
        Self { conv, bn: BatchNormConfig::new(cout).init(device) }
    }
    /// `[B, C_in, H, W]` → `[B, C_out, H/stride, W/stride]`, normalised (no activation).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        kernels::batch_norm(&self.bn, kernels::conv(&self.conv, x))
    }
    /// [`ConvBn::forward`] then a ReLU (fused with the batch norm, [`kernels::batch_norm_relu`]).
    pub fn forward_relu(&self, x: Tensor<4>) -> Tensor<4> {
        kernels::batch_norm_relu(&self.bn, kernels::conv(&self.conv, x))
    }
}

/// A part's first maps, for a network whose stem is a [`ConvBn`] and a ReLU (MobileNetV2, the
/// ShuffleNets): the flat input `[B, C·H·W]` (of samples `shape`) through the stem when the part
/// holds it, else a previous stage's maps as they are (a branch's tail).
pub fn stem_maps(h: Tap, stem: Option<&ConvBn>, shape: [usize; 3]) -> Tensor<4> {
    match (h, stem) {
        (Tap::Flat(x), Some(stem)) => {
            let [b, _] = x.dims();
            let [c, hh, ww] = shape;
            stem.forward_relu(x.reshape([b, c, hh, ww]))
        }
        (Tap::Map(h), None) => h,
        _ => unreachable!("a network with its stem reads the input, a tail a stage's maps"),
    }
}

/// A network's first convolution, applied to data (no gradient flows into its input), as
/// patches × weights: `y[b, o, p] = Σ_{c,dy,dx} W[o, c, dy, dx] · x_pad[b, c, p + (dy, dx)] + bias[o]`.
/// Same function as `conv.forward(x)` (tested), but its backward pass only forms
/// `dW = Σ_b δ_b · patches_bᵀ`, which burn-flex does ~3× faster than its convolution's backward
/// (1→32 channels on 128×28×28: 32.5 → 9.7 ms forward + backward, measured here). Only for 3×3
/// kernels, stride 1, dilation 1, one group and "same" padding; other layers use `conv.forward`.
/// On flex f32 tensors cohort's kernel ([`kernels::conv`], faster again, ~5 ms) computes it
/// instead; this path serves the other backends.
///
/// Shapes: `x` `[B, C, H, W]` → `[B, O, H, W]`.
pub fn first_conv(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    if kernels::conv_applies(conv, &x) {
        return kernels::conv(conv, x);
    }
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
/// `conv.forward`): a same-padded 3×3 layer ([`kernels::is_same_3x3`]) on an input that needs
/// no gradient.
pub fn first_conv_applies(conv: &Conv2d, x: &Tensor<4>) -> bool {
    kernels::is_same_3x3(conv) && !x.is_require_grad()
}
