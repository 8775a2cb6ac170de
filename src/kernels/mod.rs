//! Cohort's own CPU kernels on the flex backend for the hot layers of the small CNN and of the
//! CIFAR networks, with hand-written backward passes, and for the SGD update (a burn backend
//! extension for `Flex` and `Autodiff<Flex>`).
//!
//! - [`conv2d`]: convolution with a kh×kw kernel, strides and zero padding per axis ([`ConvGeom`];
//!   written below for the square case k, s, p), one group, with bias (a constant zero for layers
//!   without one); [`conv1d`] is its 1×k case on a one-row image (the 1-D CNN's layers):
//!   `y[b,o,i,j] = bias[o] + Σ_{c,u,v} W[o,c,u,v] · x[b,c,i·s+u−p,j·s+v−p]` (x = 0 outside),
//!   `OH = (H + 2p − k)/s + 1`. Per image the patches `P_b[(c,u,v), (i,j)] = x[b,c,i·s+u−p,j·s+v−p]`
//!   (`[C·k², OH·OW]`, small enough to stay in cache; for a 1×1 kernel with stride 1 the image
//!   itself) give `Y_b = W·P_b`, one matrix product. Backward: `dW = Σ_b δ_b·P_bᵀ`,
//!   `dbias[o] = Σ_{b,i,j} δ[b,o,i,j]`, `dx_b = Pᵀ(Wᵀ·δ_b)` (the adjoint of the patch gather adds
//!   each patch entry back where it was read). [`conv3x3`] is its 3×3 "same" case (stride 1,
//!   padding 1), the layers of the small CNN and of the CIFAR networks, whose patches are formed
//!   row by row and whose backward pass uses the patches `P_δ` of the output gradient instead:
//!   `dx_b = W'·P_δ` (a "same" convolution of δ with the flipped, transposed kernel
//!   `W'[c,o,u,v] = W[o,c,2−u,2−v]`) and `dW[o,c,2−u,2−v] = Σ_b (X_b·P_δᵀ)[c,(o,u,v)]`, one patch
//!   matrix per image for both products (see `cpu::conv3x3_backward`).
//! - [`depthwise2d`]: a depthwise convolution (groups = channels, one kh×kw filter per channel,
//!   MobileNetV2's and ShuffleNetV2's), `y[b,c,i,j] = bias[c] + Σ_{u,v} W[c,u,v]·x[b,c,i·s+u−p,j·s+v−p]`,
//!   as direct loops, one (image, channel) plane per task: a product per output would be a 1×k²
//!   by k²×OH·OW gemm, too thin to gain. A window tap at a time is added across a row (or, for a
//!   "same" stride-1 convolution, where a tap is a constant offset of the flat index, across the
//!   whole plane, the edge columns recomputed), so that the additions run in vector lanes while
//!   each output keeps its order. Backward `dx` plane by plane in the order of the outputs that
//!   read each input (gathered tap by tap for stride 1); `dW` per channel, over images then
//!   positions in order — for a "same" stride-1 convolution in 16 lanes over zero-padded planes,
//!   every tap in one pass, the lanes summed at the end — and `dbias` in order.
//! - [`relu_max_pool2x2`]: `y[b,c,i,j] = max(0, max_{u,v∈{0,1}} x[b,c,2i+u,2j+v])`, which is
//!   `max_pool2x2(relu(x))` (relu is monotone) in one pass over `x`. The gradient goes to the
//!   window's first maximum when it is positive, else nowhere — what burn's relu followed by its
//!   max-pool gives. A NaN in a window wins it, so divergence still shows in the output.
//! - [`linear`]: `y = x·W + bias` with the bias as the product's starting value; backward
//!   `dx = δ·Wᵀ`, `dW = xᵀ·δ` with the transposes as strides of one matrix product each (in
//!   burn's matmul backward a profile shows a copy and a zero-fill besides the products), and
//!   `dbias = Σ_b δ_b`.
//! - [`batch_norm`] (training mode): per channel `μ = mean x`, `σ² = mean (x − μ)²` over the
//!   batch and the feature map, `y = γ·(x − μ)/√(σ² + ε) + β`; backward
//!   `dβ = Σ δ`, `dγ = Σ δ·x̂`, `dx = γ/√(σ² + ε)·(δ − dβ/N − x̂·dγ/N)`. Two passes over memory
//!   forward (the statistics, each image's channel read twice while in cache; the output) and
//!   two back (both sums at once; `dx`), where burn's default (no flex override in 0.22)
//!   transposes the activation to `[C, B·H·W]` for each reduction and makes a dozen elementwise
//!   passes. [`batch_norm_relu`] and [`batch_norm_add_relu`] apply a ReLU (after adding a
//!   residual) in the same passes, the backward gating δ by `y > 0` as burn's ReLU does.
//! - [`sgd_momentum`]: one SGD-with-momentum update of a parameter in a single pass, in place
//!   when the buffers are not shared, with burn_optim's order of operations (so the results are
//!   the same bits as burn's `Sgd`): `g ← p·λ + g` (weight decay λ), `v ← g·(1−τ) + v·μ`,
//!   `d ← v·μ + g` (Nesterov) or `v`, `p ← p − d·lr`, where burn's `Sgd` makes five to seven
//!   passes over the parameter.
//!
//! Why: burn-flex 0.22 has no convolution backward of its own; burn's default computes the
//! weight gradient as a convolution whose kernel is the output gradient, and flex's max-pool is a
//! generic 3-D kernel. `cargo bench --bench kernels` times each kernel against burn's op (batch
//! 128, forward + backward); when they landed, the 32→64-channel convolution on 14×14 took 23 ms
//! against burn's 42, ReLU + max-pool on 32×28×28 8 ms against 19, the MLP's SGD update 1.7 ms
//! against 2.8.
//!
//! Results are deterministic for any thread count (tested): images are processed independently,
//! the convolution's weight gradient is summed over fixed chunks of images in chunk order, and the
//! matrix products split their output, never a sum.
//! Other backends, dtypes and layer shapes use burn's own ops (see [`conv`], [`relu_pool`],
//! [`linear`] and [`sgd_momentum`]).

use burn::nn::BatchNorm;
use burn::nn::conv::{Conv1d, Conv2d};
use burn::nn::pool::MaxPool2d;
use burn::nn::{Linear, PaddingConfig1d, PaddingConfig2d};
use burn::tensor::Tensor;
use burn::tensor::activation::relu;

/// `conv.forward(x)` — through [`conv2d`] when it applies (flex, f32, and a geometry the kernel
/// computes: [`geometry`]), through [`depthwise2d`] for a depthwise convolution of such a
/// geometry (groups = input channels = output channels: [`depthwise_geometry`]; MobileNetV2's and
/// ShuffleNetV2's); a layer without bias (the CIFAR ResNets' and WRNs') gets a constant zero
/// bias, which receives no gradient; else burn's convolution (other grouped convolutions).
pub fn conv(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    #[cfg(feature = "flex")]
    if on_flex_f32(&x) {
        let bias = || match conv.bias.as_ref() {
            Some(b) => b.val(),
            None => Tensor::zeros([conv.weight.dims()[0]], &x.device()),
        };
        if let Some(g) = geometry(conv) {
            return conv2d(x.clone(), conv.weight.val(), bias(), g);
        }
        if let Some(g) = depthwise_geometry(conv, x.dims()[1]) {
            return depthwise2d(x.clone(), conv.weight.val(), bias(), g);
        }
    }
    conv.forward(x)
}

/// The geometry of a convolution as cohort's kernel computes it: a `kernel[0]`×`kernel[1]`
/// window moved by `stride[0]` down and `stride[1]` across, `padding[0]` zeros above and below
/// and `padding[1]` left and right, dilation 1. A 1-D convolution is the 1×k case on a one-row
/// image ([`conv1d`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeom {
    /// Kernel height and width.
    pub kernel: [usize; 2],
    /// Stride down and across.
    pub stride: [usize; 2],
    /// Zero padding above and below, left and right.
    pub padding: [usize; 2],
}

impl ConvGeom {
    /// 3×3, stride 1, padding 1: "same" (the small CNN's and the CIFAR networks' layers).
    pub const SAME_3X3: ConvGeom = ConvGeom::square(3, 1, 1);

    /// A k×k kernel, the same stride and padding in both directions.
    pub const fn square(kernel: usize, stride: usize, padding: usize) -> Self {
        ConvGeom { kernel: [kernel, kernel], stride: [stride, stride], padding: [padding, padding] }
    }

    /// A 1-D convolution of `kernel` taps, `stride` and `padding` on each side, as a 1×k
    /// convolution of a one-row image.
    pub const fn row(kernel: usize, stride: usize, padding: usize) -> Self {
        ConvGeom { kernel: [1, kernel], stride: [1, stride], padding: [0, padding] }
    }

    /// Output length `(n + 2p − k)/s + 1` along axis `axis` (0 down, 1 across) of an input side
    /// of `n` (0 when the kernel does not fit).
    pub fn out(&self, axis: usize, n: usize) -> usize {
        (n + 2 * self.padding[axis]).checked_sub(self.kernel[axis]).map_or(0, |d| d / self.stride[axis].max(1) + 1)
    }

    /// `[OH, OW]` for an input of `[H, W]`.
    pub fn out_size(&self, [h, w]: [usize; 2]) -> [usize; 2] {
        [self.out(0, h), self.out(1, w)]
    }

    /// Kernel taps per input channel, `kh·kw`.
    pub fn taps(&self) -> usize {
        self.kernel[0] * self.kernel[1]
    }

    /// 1×1, stride 1, no padding: the patches are the image itself.
    pub fn is_identity(&self) -> bool {
        *self == ConvGeom::square(1, 1, 0)
    }
}

/// The [`ConvGeom`] of `conv` when cohort's kernel computes it: a square kernel, the same
/// stride in both directions, dilation 1, one group, and padding that is the same on all four
/// sides (`Explicit(p, p, p, p)`, `Valid`, or `Same` with stride 1 and an odd kernel).
pub fn geometry(conv: &Conv2d) -> Option<ConvGeom> {
    if conv.groups != 1 {
        return None;
    }
    square_geometry(conv)
}

/// The [`ConvGeom`] of a depthwise `conv` on inputs of `channels` channels when cohort's
/// depthwise kernel computes it: groups = `channels` = output channels (one filter per channel),
/// and the geometry [`geometry`] asks for.
pub fn depthwise_geometry(conv: &Conv2d, channels: usize) -> Option<ConvGeom> {
    let [o, per_group, _, _] = conv.weight.dims();
    if channels < 2 || conv.groups != channels || o != channels || per_group != 1 {
        return None;
    }
    square_geometry(conv)
}

/// A square kernel, the same stride both ways, dilation 1, the same padding on all sides.
fn square_geometry(conv: &Conv2d) -> Option<ConvGeom> {
    let ([kh, kw], [sh, sw]) = (conv.kernel_size, conv.stride);
    if kh != kw || sh != sw || sh == 0 || kh == 0 || conv.dilation != [1, 1] {
        return None;
    }
    let padding = match conv.padding {
        PaddingConfig2d::Valid => 0,
        PaddingConfig2d::Explicit(t, l, b, r) if t == l && l == b && b == r => t,
        PaddingConfig2d::Same if sh == 1 && kh % 2 == 1 => kh / 2,
        _ => return None,
    };
    Some(ConvGeom::square(kh, sh, padding))
}

/// The [`ConvGeom`] of a 1-D convolution when cohort's kernel computes it: dilation 1, one
/// group, the same padding on both sides (`Explicit(p, p)`, `Valid`, or `Same` with stride 1 and
/// an odd kernel).
pub fn geometry1d(conv: &Conv1d) -> Option<ConvGeom> {
    let (k, s) = (conv.kernel_size, conv.stride);
    if k == 0 || s == 0 || conv.dilation != 1 || conv.groups != 1 {
        return None;
    }
    let padding = match conv.padding {
        PaddingConfig1d::Valid => 0,
        PaddingConfig1d::Explicit(l, r) if l == r => l,
        PaddingConfig1d::Same if s == 1 && k % 2 == 1 => k / 2,
        _ => return None,
    };
    Some(ConvGeom::row(k, s, padding))
}

/// `conv.forward(x)` of a 1-D convolution, `x` `[B, C, L]` → `[B, O, L']` — through
/// [`conv1d_batched`] (the whole batch in k products, no patches) when it applies (flex, f32,
/// [`geometry1d`]), else burn's.
pub fn conv1d(conv: &Conv1d, x: Tensor<3>) -> Tensor<3> {
    #[cfg(feature = "flex")]
    if let Some(g) = geometry1d(conv).filter(|_| on_flex_f32(&x)) {
        let o = conv.weight.dims()[0];
        let bias = match conv.bias.as_ref() {
            Some(b) => b.val(),
            None => Tensor::zeros([o], &x.device()),
        };
        return conv1d_batched(x, conv.weight.val(), bias, g.stride[1], g.padding[1]);
    }
    conv.forward(x)
}

/// Whether [`conv1d`] uses cohort's kernel for `conv` on `x`.
pub fn conv1d_applies(conv: &Conv1d, x: &Tensor<3>) -> bool {
    geometry1d(conv).is_some() && on_flex_f32(x)
}

/// `pool.forward(relu(x))` — through [`relu_max_pool2x2`] when it applies (flex, f32, 2×2 window,
/// stride 2, no padding, dilation 1, floor mode), else burn's relu and max-pool.
pub fn relu_pool(pool: &MaxPool2d, x: Tensor<4>) -> Tensor<4> {
    #[cfg(feature = "flex")]
    if pool_applies(pool, &x) {
        return relu_max_pool2x2(x);
    }
    pool.forward(relu(x))
}

/// `layer.forward(x)` for a batch `x` `[B, I]` — through [`linear2d`] when it applies (flex, f32,
/// with bias), else burn's `Linear`.
pub fn linear(layer: &Linear, x: Tensor<2>) -> Tensor<2> {
    #[cfg(feature = "flex")]
    if let Some(bias) = layer.bias.as_ref().filter(|_| on_flex_f32(&x)) {
        return linear2d(x, layer.weight.val(), bias.val());
    }
    layer.forward(x)
}

/// `bn.forward(x)` — in training mode (an autodiff device and the layer not frozen, burn's
/// rule) through [`batch_norm_train`] on flex f32 tensors, with the running statistics updated
/// as burn's `BatchNorm` updates them (`r ← r·(1 − momentum) + batch·momentum`, the biased
/// batch variance); otherwise (evaluation, other backends) burn's `BatchNorm`.
pub fn batch_norm<const D: usize>(bn: &BatchNorm, x: Tensor<D>) -> Tensor<D> {
    #[cfg(feature = "flex")]
    if trains_on_flex(bn, &x) {
        return bn_train(bn, x, |x, g, b, eps| batch_norm_train(x, g, b, eps, false));
    }
    bn.forward(x)
}

/// `relu(bn.forward(x))`, in one pass over memory forward and two back on flex f32 tensors in
/// training mode (see [`batch_norm`]; [`batch_norm_train`] with its ReLU), else burn's ops.
pub fn batch_norm_relu<const D: usize>(bn: &BatchNorm, x: Tensor<D>) -> Tensor<D> {
    #[cfg(feature = "flex")]
    if trains_on_flex(bn, &x) {
        return bn_train(bn, x, |x, g, b, eps| batch_norm_train(x, g, b, eps, true));
    }
    relu(bn.forward(x))
}

/// `relu(bn.forward(x) + residual)` (the end of a ResNet block), fused as [`batch_norm_relu`] on
/// flex f32 tensors in training mode ([`batch_norm_add_relu_train`]), else burn's ops.
pub fn batch_norm_add_relu<const D: usize>(bn: &BatchNorm, x: Tensor<D>, residual: Tensor<D>) -> Tensor<D> {
    #[cfg(feature = "flex")]
    if trains_on_flex(bn, &x) && on_flex_f32(&residual) {
        return bn_train(bn, x, |x, g, b, eps| batch_norm_add_relu_train(x, g, b, residual, eps));
    }
    relu(bn.forward(x) + residual)
}

/// Whether a batch norm of `bn` on `x` runs through cohort's training kernels: flex f32, an
/// autodiff device, the layer not frozen (burn's rule for training mode).
#[cfg(feature = "flex")]
fn trains_on_flex<const D: usize>(bn: &BatchNorm, x: &Tensor<D>) -> bool {
    on_flex_f32(x) && x.device().is_autodiff() && bn.training.is_enabled()
}

/// `kernel(x, γ, β, ε)` → `(y, μ, σ²)`, with `bn`'s running statistics updated from `μ`, `σ²`
/// as burn's `BatchNorm` updates them.
#[cfg(feature = "flex")]
fn bn_train<const D: usize>(
    bn: &BatchNorm,
    x: Tensor<D>,
    kernel: impl FnOnce(Tensor<D>, Tensor<1>, Tensor<1>, f64) -> (Tensor<D>, Tensor<1>, Tensor<1>),
) -> Tensor<D> {
    let device = x.device();
    let (y, mean, var) = kernel(x, bn.gamma.val(), bn.beta.val(), bn.epsilon);
    let m = bn.momentum;
    let running = |r: Tensor<1>, batch: Tensor<1>| r.to_device(&device).mul_scalar(1.0 - m).add(batch.mul_scalar(m)).detach();
    bn.running_mean.update(running(bn.running_mean.value_sync(), mean));
    bn.running_var.update(running(bn.running_var.value_sync(), var));
    y
}

/// Whether `conv` is a 3×3 convolution with stride 1, dilation 1, one group and "same" padding
/// (the layers cohort's 3×3 kernels and [`crate::models::conv::first_conv`] compute).
pub fn is_same_3x3(conv: &Conv2d) -> bool {
    let plain_3x3 = conv.kernel_size == [3, 3] && conv.stride == [1, 1] && conv.dilation == [1, 1] && conv.groups == 1;
    plain_3x3 && matches!(conv.padding, PaddingConfig2d::Same | PaddingConfig2d::Explicit(1, 1, 1, 1))
}

/// Whether [`conv`] uses cohort's kernel for `conv` on `x`.
pub fn conv_applies(conv: &Conv2d, x: &Tensor<4>) -> bool {
    (geometry(conv).is_some() || depthwise_geometry(conv, x.dims()[1]).is_some()) && on_flex_f32(x)
}

/// Whether [`relu_pool`] uses cohort's kernel for `pool` on `x`.
pub fn pool_applies(pool: &MaxPool2d, x: &Tensor<4>) -> bool {
    let plain_2x2 = pool.kernel_size == [2, 2] && pool.stride == [2, 2] && pool.dilation == [1, 1] && !pool.ceil_mode;
    plain_2x2 && matches!(pool.padding, PaddingConfig2d::Valid | PaddingConfig2d::Explicit(0, 0, 0, 0)) && on_flex_f32(x)
}

#[cfg(feature = "flex")]
fn on_flex_f32<const D: usize>(x: &Tensor<D>) -> bool {
    x.dtype() == burn::tensor::DType::F32 && x.device() == burn::tensor::Device::flex()
}

#[cfg(not(feature = "flex"))]
fn on_flex_f32<const D: usize>(_: &Tensor<D>) -> bool {
    false
}

/// `(param, velocity)` after one SGD-with-momentum step (module docs; `velocity` is the state
/// from the previous step) — through cohort's kernel on flex f32 tensors, else burn's ops in the
/// same order.
pub fn sgd_momentum<const D: usize>(param: Tensor<D>, grad: Tensor<D>, velocity: Tensor<D>, s: SgdStep) -> (Tensor<D>, Tensor<D>) {
    #[cfg(feature = "flex")]
    if on_flex_f32(&param) && on_flex_f32(&grad) && on_flex_f32(&velocity) {
        return flex::sgd_momentum_flex(param, grad, velocity, s);
    }
    let grad = match s.decay {
        Some(penalty) => param.clone().mul_scalar(penalty).add(grad),
        None => grad,
    };
    let velocity = grad.clone().mul_scalar(s.keep).add(velocity.mul_scalar(s.momentum));
    let direction = if s.nesterov { velocity.clone().mul_scalar(s.momentum).add(grad) } else { velocity.clone() };
    (param - direction.mul_scalar(s.lr), velocity)
}

/// The scalars of one SGD step, as burn_optim's `Sgd`, `Momentum` and `WeightDecay` hold them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdStep {
    /// Learning rate (burn converts its f64 to f32 in the multiplication).
    pub lr: f32,
    /// Momentum μ.
    pub momentum: f32,
    /// `1 − dampening`.
    pub keep: f32,
    /// Nesterov momentum.
    pub nesterov: bool,
    /// L2 penalty λ of the weight decay, if any.
    pub decay: Option<f32>,
}

#[cfg(feature = "flex")]
pub use flex::{batch_norm_add_relu_train, batch_norm_train, conv1d_batched, conv2d, conv3x3, depthwise2d, linear2d, relu_max_pool2x2};

#[cfg(feature = "flex")]
pub mod cpu;

#[cfg(feature = "flex")]
mod flex;
