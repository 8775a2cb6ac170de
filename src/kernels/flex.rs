//! cohort's kernels as a burn backend extension on flex (`#[backend_extension(Flex, Autodiff)]`):
//! the forward on flex tensors through [`super::cpu`], the backward as burn-autodiff `Backward`
//! steps that call the matching `cpu` gradients.

use std::sync::Arc;

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, AutodiffBackend, Backend, Dispatch, Flex, backend_extension};
use burn::tensor::{Tensor, TensorData};

use super::cpu;

/// The extension: implemented for `Flex` and `Autodiff<Flex>` only; [`super::conv`],
/// [`super::relu_pool`], [`super::linear`] and [`super::sgd_momentum`] call it only for f32
/// tensors on flex (dispatching a tensor of another backend here would panic).
#[backend_extension(Flex, Autodiff)]
pub trait CohortKernels: Backend {
    /// See [`conv2d`] (the kernel's size from `weight`; strides and paddings down and across).
    #[allow(clippy::too_many_arguments)]
    fn conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        stride_h: usize,
        stride_w: usize,
        padding_h: usize,
        padding_w: usize,
    ) -> FloatTensor<Self>;
    /// See [`depthwise2d`] (the kernel's size from `weight`).
    #[allow(clippy::too_many_arguments)]
    fn depthwise2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        stride_h: usize,
        stride_w: usize,
        padding_h: usize,
        padding_w: usize,
    ) -> FloatTensor<Self>;
    /// See [`conv1d_batched`] (the kernel's size from `weight`).
    fn conv1d(x: FloatTensor<Self>, weight: FloatTensor<Self>, bias: FloatTensor<Self>, stride: usize, padding: usize) -> FloatTensor<Self>;
    /// See [`relu_max_pool2x2`].
    fn relu_max_pool2x2(x: FloatTensor<Self>) -> FloatTensor<Self>;
    /// See [`linear2d`].
    fn linear2d(x: FloatTensor<Self>, weight: FloatTensor<Self>, bias: FloatTensor<Self>) -> FloatTensor<Self>;
    /// See [`batch_norm_train`]: `(y, μ, σ²)`, the statistics untracked; a ReLU on `y` when
    /// `relu`.
    fn batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
    /// See [`batch_norm_add_relu_train`]: `(y, μ, σ²)`, the statistics untracked.
    fn batch_norm_add_relu_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        residual: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
    /// See [`super::sgd_momentum`]; `decay` is used when `has_decay`.
    #[allow(clippy::too_many_arguments)]
    fn sgd_momentum(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        velocity: FloatTensor<Self>,
        lr: f32,
        momentum: f32,
        keep: f32,
        nesterov: bool,
        decay: f32,
        has_decay: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);
}

/// Depthwise convolution with bias (groups = channels, one `kh`×`kw` filter per channel; module
/// docs): `x` `[B, C, H, W]`, `weight` `[C, 1, kh, kw]`, `bias` `[C]`, the geometry `g` →
/// `[B, C, OH, OW]` ([`cpu::depthwise_forward`]). Flex devices and f32 only.
pub fn depthwise2d(x: Tensor<4>, weight: Tensor<4>, bias: Tensor<1>, g: super::ConvGeom) -> Tensor<4> {
    assert_eq!(weight.dims()[2..], g.kernel, "depthwise2d: the weight's kernel is not the geometry's {:?}", g.kernel);
    let ([sh, sw], [ph, pw]) = (g.stride, g.padding);
    Tensor::from_dispatch(<Dispatch as CohortKernels>::depthwise2d(x.into_dispatch(), weight.into_dispatch(), bias.into_dispatch(), sh, sw, ph, pw))
}

/// Convolution with bias and one group (module docs): `x` `[B, C, H, W]`, `weight`
/// `[O, C, kh, kw]`, `bias` `[O]`, the geometry `g` (its `kernel` must be the weight's) →
/// `[B, O, OH, OW]`. Flex devices and f32 only.
pub fn conv2d(x: Tensor<4>, weight: Tensor<4>, bias: Tensor<1>, g: super::ConvGeom) -> Tensor<4> {
    assert_eq!(weight.dims()[2..], g.kernel, "conv2d: the weight's kernel is not the geometry's {:?}", g.kernel);
    let ([sh, sw], [ph, pw]) = (g.stride, g.padding);
    Tensor::from_dispatch(<Dispatch as CohortKernels>::conv2d(x.into_dispatch(), weight.into_dispatch(), bias.into_dispatch(), sh, sw, ph, pw))
}

/// 1-D convolution with bias and one group: `x` `[B, C, L]`, `weight` `[O, C, k]`, `bias`
/// `[O]`, `stride`, `padding` on both sides → `[B, O, (L + 2p − k)/s + 1]`, the whole batch in k
/// products ([`cpu::conv1d_forward`]). Flex devices and f32 only.
pub fn conv1d_batched(x: Tensor<3>, weight: Tensor<3>, bias: Tensor<1>, stride: usize, padding: usize) -> Tensor<3> {
    Tensor::from_dispatch(<Dispatch as CohortKernels>::conv1d(x.into_dispatch(), weight.into_dispatch(), bias.into_dispatch(), stride, padding))
}

/// 3×3 "same" convolution with bias (stride 1, padding 1): `x` `[B, C, H, W]`, `weight`
/// `[O, C, 3, 3]`, `bias` `[O]` → `[B, O, H, W]`. Flex devices and f32 only.
pub fn conv3x3(x: Tensor<4>, weight: Tensor<4>, bias: Tensor<1>) -> Tensor<4> {
    conv2d(x, weight, bias, super::ConvGeom::SAME_3X3)
}

/// `x·W + bias`: `x` `[B, I]`, `weight` `[I, O]` (burn's `Linear` layout), `bias` `[O]` →
/// `[B, O]`; the backward pass forms `δ·Wᵀ` and `xᵀ·δ` with strides, no transposed copies.
/// Flex devices and f32 only.
pub fn linear2d(x: Tensor<2>, weight: Tensor<2>, bias: Tensor<1>) -> Tensor<2> {
    Tensor::from_dispatch(<Dispatch as CohortKernels>::linear2d(x.into_dispatch(), weight.into_dispatch(), bias.into_dispatch()))
}

/// `max_pool2x2(relu(x))` (module docs): `[B, C, H, W]` → `[B, C, H/2, W/2]`. Flex devices
/// and f32 only.
pub fn relu_max_pool2x2(x: Tensor<4>) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as CohortKernels>::relu_max_pool2x2(x.into_dispatch()))
}

/// Batch normalisation in training mode (module docs): `x` `[B, C, …]`, `gamma` and `beta` `[C]`
/// → `(y, μ, σ²)`: the output (`max(0, ·)` of it when `relu`, in the same pass), and the batch
/// mean and biased variance per channel (detached: what the running statistics are fed). Flex
/// devices and f32 only.
pub fn batch_norm_train<const D: usize>(x: Tensor<D>, gamma: Tensor<1>, beta: Tensor<1>, epsilon: f64, relu: bool) -> (Tensor<D>, Tensor<1>, Tensor<1>) {
    let (y, mean, var) = <Dispatch as CohortKernels>::batch_norm_train(x.into_dispatch(), gamma.into_dispatch(), beta.into_dispatch(), epsilon, relu);
    (Tensor::from_dispatch(y), Tensor::from_dispatch(mean), Tensor::from_dispatch(var))
}

/// [`batch_norm_train`] with a residual added before the ReLU, in the same pass:
/// `y = max(0, γ·x̂ + β + residual)` (the end of a ResNet block), `residual` shaped as `x`.
/// Flex devices and f32 only.
pub fn batch_norm_add_relu_train<const D: usize>(
    x: Tensor<D>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    residual: Tensor<D>,
    epsilon: f64,
) -> (Tensor<D>, Tensor<1>, Tensor<1>) {
    assert_eq!(x.dims(), residual.dims(), "batch_norm_add_relu_train: the residual must have the shape of x");
    let (y, mean, var) = <Dispatch as CohortKernels>::batch_norm_add_relu_train(
        x.into_dispatch(),
        gamma.into_dispatch(),
        beta.into_dispatch(),
        residual.into_dispatch(),
        epsilon,
    );
    (Tensor::from_dispatch(y), Tensor::from_dispatch(mean), Tensor::from_dispatch(var))
}

/// See [`super::sgd_momentum`] (flex f32 tensors).
pub(super) fn sgd_momentum_flex<const D: usize>(param: Tensor<D>, grad: Tensor<D>, velocity: Tensor<D>, s: super::SgdStep) -> (Tensor<D>, Tensor<D>) {
    let (p, v) = <Dispatch as CohortKernels>::sgd_momentum(
        param.into_dispatch(),
        grad.into_dispatch(),
        velocity.into_dispatch(),
        s.lr,
        s.momentum,
        s.keep,
        s.nesterov,
        s.decay.unwrap_or(0.0),
        s.decay.is_some(),
    );
    (Tensor::from_dispatch(p), Tensor::from_dispatch(v))
}

/// `t` as a contiguous tensor at offset 0 that owns its whole buffer (copied if it was a
/// view), so that its storage can be written in place (copy-on-write if shared).
fn whole(t: FlexTensor) -> FlexTensor {
    let t = t.to_contiguous();
    let whole = t.layout().contiguous_offsets().is_some_and(|(start, end)| start == 0 && end == t.storage::<f32>().len());
    if whole { t } else { FlexTensor::from_data(TensorData::new(slice(&t).to_vec(), t.layout().shape().clone())) }
}

#[allow(clippy::too_many_arguments)]
fn sgd_flex(
    param: FlexTensor,
    grad: FlexTensor,
    velocity: FlexTensor,
    lr: f32,
    momentum: f32,
    keep: f32,
    nesterov: bool,
    decay: f32,
    has_decay: bool,
) -> (FlexTensor, FlexTensor) {
    let grad = values(&grad);
    let (mut p, mut v) = (whole(param), whole(velocity));
    let s = super::SgdStep { lr, momentum, keep, nesterov, decay: has_decay.then_some(decay) };
    cpu::sgd_momentum(p.storage_mut::<f32>(), slice(&grad), v.storage_mut::<f32>(), s);
    (p, v)
}

fn dims3(t: &FlexTensor) -> [usize; 3] {
    let s = t.layout().shape();
    assert_eq!(s.num_dims(), 3, "cohort's 1-D convolution takes [B, C, L] inputs and [O, C, k] weights");
    [s[0], s[1], s[2]]
}

fn conv1d_forward(x: FlexTensor, weight: FlexTensor, bias: FlexTensor, stride: usize, padding: usize) -> FlexTensor {
    let (x, weight, bias) = (values(&x), values(&weight), values(&bias));
    let ([b, c, l], [o, wc, k]) = (dims3(&x), dims3(&weight));
    assert!(wc == c && slice(&bias).len() == o, "conv1d: weight must be [O, C, k] and bias [O]");
    let y = cpu::conv1d_forward(slice(&x), [b, c, l], slice(&weight), slice(&bias), k, stride, padding);
    let lo = y.len() / (b * o).max(1);
    FlexTensor::from_data(TensorData::new(y, [b, o, lo]))
}

fn dims4(t: &FlexTensor) -> [usize; 4] {
    let s = t.layout().shape();
    assert_eq!(s.num_dims(), 4, "cohort kernels take [B, C, H, W] tensors");
    [s[0], s[1], s[2], s[3]]
}

/// The tensor's f32 values in row-major order (copied only when not contiguous).
fn values(t: &FlexTensor) -> FlexTensor {
    t.to_contiguous()
}

fn slice(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>().expect("a contiguous f32 tensor")
}

fn tensor(values: Vec<f32>, shape: [usize; 4]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// The geometry of a convolution with `weight` `[O, C, kh, kw]`, strides and paddings (down,
/// across).
fn geom(weight: &FlexTensor, stride: [usize; 2], padding: [usize; 2]) -> super::ConvGeom {
    let [_, _, kh, kw] = dims4(weight);
    super::ConvGeom { kernel: [kh, kw], stride, padding }
}

fn conv_forward(x: FlexTensor, weight: FlexTensor, bias: FlexTensor, stride: [usize; 2], padding: [usize; 2]) -> FlexTensor {
    let (x, weight, bias) = (values(&x), values(&weight), values(&bias));
    let [b, c, h, w] = dims4(&x);
    let [o, wc, _, _] = dims4(&weight);
    assert!(wc == c && slice(&bias).len() == o, "conv2d: weight must be [O, C, kh, kw] and bias [O]");
    let g = geom(&weight, stride, padding);
    let [oh, ow] = g.out_size([h, w]);
    tensor(cpu::conv2d_forward(slice(&x), [b, c, h, w], slice(&weight), slice(&bias), g), [b, o, oh, ow])
}

fn depthwise_forward(x: FlexTensor, weight: FlexTensor, bias: FlexTensor, stride: [usize; 2], padding: [usize; 2]) -> FlexTensor {
    let (x, weight, bias) = (values(&x), values(&weight), values(&bias));
    let [b, c, h, w] = dims4(&x);
    let [o, wc, _, _] = dims4(&weight);
    assert!(o == c && wc == 1 && slice(&bias).len() == c, "depthwise2d: weight must be [C, 1, kh, kw] and bias [C]");
    let g = geom(&weight, stride, padding);
    let [oh, ow] = g.out_size([h, w]);
    tensor(cpu::depthwise_forward(slice(&x), [b, c, h, w], slice(&weight), slice(&bias), g), [b, c, oh, ow])
}

/// `[B, C, S]` of a `[B, C, …]` tensor (S the product of the rest, 1 for `[B, C]`).
fn dims_bcs(t: &FlexTensor) -> [usize; 3] {
    let s = t.layout().shape();
    assert!(s.num_dims() >= 2, "batch_norm_train takes [B, C, …] tensors");
    [s[0], s[1], (2..s.num_dims()).map(|d| s[d]).product()]
}

fn vector(values: Vec<f32>) -> FlexTensor {
    let n = values.len();
    FlexTensor::from_data(TensorData::new(values, [n]))
}

/// `(y, μ, σ²)` of [`cpu::batch_norm_forward`] with the tail given by `residual` and `relu` (a
/// residual implies the ReLU).
fn bn_forward(
    x: FlexTensor,
    gamma: FlexTensor,
    beta: FlexTensor,
    residual: Option<FlexTensor>,
    relu: bool,
    epsilon: f64,
) -> (FlexTensor, FlexTensor, FlexTensor) {
    let (x, gamma, beta) = (values(&x), values(&gamma), values(&beta));
    let residual = residual.map(|r| values(&r));
    let tail = match &residual {
        Some(r) => cpu::BnTail::AddRelu(slice(r)),
        None if relu => cpu::BnTail::Relu,
        None => cpu::BnTail::Plain,
    };
    let (y, mean, var) = cpu::batch_norm_forward(slice(&x), dims_bcs(&x), slice(&gamma), slice(&beta), epsilon, tail);
    (FlexTensor::from_data(TensorData::new(y, x.layout().shape().clone())), vector(mean), vector(var))
}

fn dims2(t: &FlexTensor) -> [usize; 2] {
    let s = t.layout().shape();
    assert_eq!(s.num_dims(), 2, "linear2d takes [B, I] inputs and [I, O] weights");
    [s[0], s[1]]
}

fn linear_forward(x: FlexTensor, weight: FlexTensor, bias: FlexTensor) -> FlexTensor {
    let (x, weight, bias) = (values(&x), values(&weight), values(&bias));
    let ([b, i], [wi, o]) = (dims2(&x), dims2(&weight));
    assert!(wi == i && slice(&bias).len() == o, "linear2d: weight must be [I, O] and bias [O]");
    FlexTensor::from_data(TensorData::new(cpu::linear_forward(slice(&x), slice(&weight), slice(&bias)), [b, o]))
}

fn pool_forward(x: FlexTensor) -> (FlexTensor, Vec<u8>, [usize; 4]) {
    let x = values(&x);
    let dims @ [b, c, h, w] = dims4(&x);
    let (y, arg) = cpu::relu_max_pool2x2_forward(slice(&x), dims);
    (tensor(y, [b, c, h / 2, w / 2]), arg, dims)
}

impl CohortKernels for Flex {
    fn conv2d(x: FlexTensor, weight: FlexTensor, bias: FlexTensor, stride_h: usize, stride_w: usize, padding_h: usize, padding_w: usize) -> FlexTensor {
        conv_forward(x, weight, bias, [stride_h, stride_w], [padding_h, padding_w])
    }
    fn depthwise2d(x: FlexTensor, weight: FlexTensor, bias: FlexTensor, stride_h: usize, stride_w: usize, padding_h: usize, padding_w: usize) -> FlexTensor {
        depthwise_forward(x, weight, bias, [stride_h, stride_w], [padding_h, padding_w])
    }
    fn conv1d(x: FlexTensor, weight: FlexTensor, bias: FlexTensor, stride: usize, padding: usize) -> FlexTensor {
        conv1d_forward(x, weight, bias, stride, padding)
    }
    fn relu_max_pool2x2(x: FlexTensor) -> FlexTensor {
        pool_forward(x).0
    }
    fn linear2d(x: FlexTensor, weight: FlexTensor, bias: FlexTensor) -> FlexTensor {
        linear_forward(x, weight, bias)
    }
    fn batch_norm_train(x: FlexTensor, gamma: FlexTensor, beta: FlexTensor, epsilon: f64, relu: bool) -> (FlexTensor, FlexTensor, FlexTensor) {
        bn_forward(x, gamma, beta, None, relu, epsilon)
    }
    fn batch_norm_add_relu_train(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        residual: FlexTensor,
        epsilon: f64,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        bn_forward(x, gamma, beta, Some(residual), true, epsilon)
    }
    fn sgd_momentum(
        param: FlexTensor,
        grad: FlexTensor,
        velocity: FlexTensor,
        lr: f32,
        momentum: f32,
        keep: f32,
        nesterov: bool,
        decay: f32,
        has_decay: bool,
    ) -> (FlexTensor, FlexTensor) {
        sgd_flex(param, grad, velocity, lr, momentum, keep, nesterov, decay, has_decay)
    }
}

/// The two affine ops, `y = f(x, W) + bias`, whose backward passes are written here.
#[derive(Clone, Copy, Debug)]
enum Affine {
    /// A convolution with these strides and paddings, down and across (the kernel's size from
    /// the weight).
    Conv {
        stride: [usize; 2],
        padding: [usize; 2],
    },
    /// A depthwise convolution (one filter per channel) with these strides and paddings.
    Depthwise {
        stride: [usize; 2],
        padding: [usize; 2],
    },
    /// A 1-D convolution with this stride and padding (on both sides).
    Conv1d {
        stride: usize,
        padding: usize,
    },
    Linear,
}

impl Affine {
    fn forward(self, x: FlexTensor, weight: FlexTensor, bias: FlexTensor) -> FlexTensor {
        match self {
            Affine::Conv { stride, padding } => conv_forward(x, weight, bias, stride, padding),
            Affine::Depthwise { stride, padding } => depthwise_forward(x, weight, bias, stride, padding),
            Affine::Conv1d { stride, padding } => conv1d_forward(x, weight, bias, stride, padding),
            Affine::Linear => linear_forward(x, weight, bias),
        }
    }

    /// `(dx, dW, dbias)` for the output gradient `grad`, `dx` only when `want_x`.
    fn backward(self, x: &FlexTensor, weight: &FlexTensor, grad: &FlexTensor, want_x: bool) -> (Option<FlexTensor>, FlexTensor, FlexTensor) {
        let shaped = |values: Vec<f32>, shape: &[usize]| FlexTensor::from_data(TensorData::new(values, shape.to_vec()));
        let (dx, dw, db, x_shape, w_shape) = match self {
            Affine::Conv { stride, padding } => {
                let dims = dims4(x);
                let g = geom(weight, stride, padding);
                let (dx, dw, db) = cpu::conv2d_backward(slice(x), dims, slice(weight), slice(grad), g, want_x);
                (dx, dw, db, dims.to_vec(), dims4(weight).to_vec())
            }
            Affine::Depthwise { stride, padding } => {
                let dims = dims4(x);
                let g = geom(weight, stride, padding);
                let (dx, dw, db) = cpu::depthwise_backward(slice(x), dims, slice(weight), slice(grad), g, want_x);
                (dx, dw, db, dims.to_vec(), dims4(weight).to_vec())
            }
            Affine::Conv1d { stride, padding } => {
                let (dims, w_dims) = (dims3(x), dims3(weight));
                let (dx, dw, db) = cpu::conv1d_backward(slice(x), dims, slice(weight), slice(grad), w_dims[2], stride, padding, want_x);
                (dx, dw, db, dims.to_vec(), w_dims.to_vec())
            }
            Affine::Linear => {
                let w_dims = dims2(weight);
                let (dx, dw, db) = cpu::linear_backward(slice(x), slice(weight), slice(grad), w_dims[1], want_x);
                (dx, dw, db, dims2(x).to_vec(), w_dims.to_vec())
            }
        };
        let outputs = db.len();
        (dx.map(|dx| shaped(dx, &x_shape)), shaped(dw, &w_shape), shaped(db, &[outputs]))
    }
}

#[derive(Debug)]
struct AffineBackward;

impl Backward<Flex, 3> for AffineBackward {
    /// The checkpointed input and weight, and which op.
    type State = (NodeId, NodeId, Affine);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let [node_x, node_weight, node_bias] = ops.parents;
        let grad = values(&grads.consume::<Flex>(&ops.node));
        let (x, weight, op) = ops.state;
        let x = values(&checkpointer.retrieve_node_output::<FlexTensor>(x));
        let weight = values(&checkpointer.retrieve_node_output::<FlexTensor>(weight));
        let (dx, dw, db) = op.backward(&x, &weight, &grad, node_x.is_some());
        if let (Some(node), Some(dx)) = (node_x, dx) {
            grads.register::<Flex>(node.id, dx);
        }
        if let Some(node) = node_weight {
            grads.register::<Flex>(node.id, dw);
        }
        if let Some(node) = node_bias {
            grads.register::<Flex>(node.id, db);
        }
    }
}

/// `op` on autodiff tensors: tracked with [`AffineBackward`] when any input needs a gradient.
fn affine<C: CheckpointStrategy>(
    op: Affine,
    x: FloatTensor<Autodiff<Flex, C>>,
    weight: FloatTensor<Autodiff<Flex, C>>,
    bias: FloatTensor<Autodiff<Flex, C>>,
) -> FloatTensor<Autodiff<Flex, C>> {
    match AffineBackward.prepare::<C>([x.node(), weight.node(), bias.node()]).compute_bound().stateful() {
        OpsKind::Tracked(mut prep) => {
            let state = (prep.checkpoint(&x), prep.checkpoint(&weight), op);
            prep.finish(state, op.forward(x.into_primitive(), weight.into_primitive(), bias.into_primitive()))
        }
        OpsKind::UnTracked(prep) => prep.finish(op.forward(x.into_primitive(), weight.into_primitive(), bias.into_primitive())),
    }
}

/// Each output's window position of its maximum (see [`cpu::relu_max_pool2x2_forward`]).
#[derive(Clone)]
struct Argmax(Arc<Vec<u8>>);

impl std::fmt::Debug for Argmax {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Argmax({} windows)", self.0.len())
    }
}

#[derive(Debug)]
struct ReluMaxPoolBackward;

impl Backward<Flex, 1> for ReluMaxPoolBackward {
    /// The argmax and the input's shape.
    type State = (Argmax, [usize; 4]);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node] = ops.parents;
        let grad = values(&grads.consume::<Flex>(&ops.node));
        if let Some(node) = node {
            let (Argmax(arg), dims) = ops.state;
            grads.register::<Flex>(node.id, tensor(cpu::relu_max_pool2x2_backward(slice(&grad), &arg, dims), dims));
        }
    }
}

/// A batch's per-channel mean and biased variance, kept for the backward pass.
#[derive(Clone)]
struct Stats(Arc<(Vec<f32>, Vec<f32>)>);

impl std::fmt::Debug for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Stats({} channels)", self.0.0.len())
    }
}

/// The backward pass shared by both batch-norm ops, given the output gradient: registers `dx`,
/// `dγ`, `dβ` (and `dr` for a residual tail) for the parents (x, γ, β, residual) that need them.
#[allow(clippy::too_many_arguments)]
fn bn_backward(
    grad: FlexTensor,
    [node_x, node_gamma, node_beta, node_residual]: [Option<NodeId>; 4],
    grads: &mut Gradients,
    x: &FlexTensor,
    gamma: &FlexTensor,
    stats: &(Vec<f32>, Vec<f32>),
    epsilon: f64,
    tail: cpu::BnTailGrad,
) {
    let grad = values(&grad);
    let (dx, dgamma, dbeta, dres) = cpu::batch_norm_backward(slice(x), dims_bcs(x), slice(gamma), &stats.0, &stats.1, epsilon, slice(&grad), tail);
    let shaped = |v: Vec<f32>| FlexTensor::from_data(TensorData::new(v, x.layout().shape().clone()));
    if let Some(id) = node_x {
        grads.register::<Flex>(id, shaped(dx));
    }
    if let Some(id) = node_gamma {
        grads.register::<Flex>(id, vector(dgamma));
    }
    if let Some(id) = node_beta {
        grads.register::<Flex>(id, vector(dbeta));
    }
    if let (Some(id), Some(dres)) = (node_residual, dres) {
        grads.register::<Flex>(id, shaped(dres));
    }
}

#[derive(Debug)]
struct BatchNormBackward;

impl Backward<Flex, 3> for BatchNormBackward {
    /// The checkpointed input and γ, β when a ReLU follows (its input is recomputed from them),
    /// the batch statistics and ε.
    type State = (NodeId, NodeId, Option<NodeId>, Stats, f64);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let (x, gamma, beta, Stats(stats), epsilon) = ops.state;
        let x = values(&checkpointer.retrieve_node_output::<FlexTensor>(x));
        let gamma = values(&checkpointer.retrieve_node_output::<FlexTensor>(gamma));
        let beta = beta.map(|b| values(&checkpointer.retrieve_node_output::<FlexTensor>(b)));
        let tail = match &beta {
            Some(b) => cpu::BnTailGrad::Relu(slice(b)),
            None => cpu::BnTailGrad::Plain,
        };
        let [px, pgamma, pbeta] = ops.parents.map(|p| p.map(|node| node.id));
        let grad = grads.consume::<Flex>(&ops.node);
        bn_backward(grad, [px, pgamma, pbeta, None], grads, &x, &gamma, &stats, epsilon, tail);
    }
}

/// The forward output of a batch norm with a residual tail, kept for the ReLU's gate.
#[derive(Clone, Debug)]
struct Output(FlexTensor);

#[derive(Debug)]
struct BatchNormAddReluBackward;

impl Backward<Flex, 4> for BatchNormAddReluBackward {
    /// The checkpointed input and γ, the batch statistics, ε and the output.
    type State = (NodeId, NodeId, Stats, f64, Output);

    fn backward(self, ops: Ops<Self::State, 4>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let parents = ops.parents.map(|p| p.map(|node| node.id));
        let (x, gamma, Stats(stats), epsilon, Output(y)) = ops.state;
        let x = values(&checkpointer.retrieve_node_output::<FlexTensor>(x));
        let gamma = values(&checkpointer.retrieve_node_output::<FlexTensor>(gamma));
        let grad = grads.consume::<Flex>(&ops.node);
        bn_backward(grad, parents, grads, &x, &gamma, &stats, epsilon, cpu::BnTailGrad::AddRelu(slice(&y)));
    }
}

/// The statistics of a batch-norm forward pass as kept for its backward pass.
fn stats(mean: &FlexTensor, var: &FlexTensor) -> Stats {
    Stats(Arc::new((slice(mean).to_vec(), slice(var).to_vec())))
}

impl<C: CheckpointStrategy> CohortKernels for Autodiff<Flex, C> {
    fn batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let untracked = <Self as AutodiffBackend>::from_inner;
        match BatchNormBackward.prepare::<C>([x.node(), gamma.node(), beta.node()]).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let (cx, cgamma) = (prep.checkpoint(&x), prep.checkpoint(&gamma));
                let cbeta = relu.then(|| prep.checkpoint(&beta));
                let (y, mean, var) = bn_forward(x.into_primitive(), gamma.into_primitive(), beta.into_primitive(), None, relu, epsilon);
                let stats = stats(&mean, &var);
                (prep.finish((cx, cgamma, cbeta, stats, epsilon), y), untracked(mean), untracked(var))
            }
            OpsKind::UnTracked(prep) => {
                let (y, mean, var) = bn_forward(x.into_primitive(), gamma.into_primitive(), beta.into_primitive(), None, relu, epsilon);
                (prep.finish(y), untracked(mean), untracked(var))
            }
        }
    }

    fn batch_norm_add_relu_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        residual: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let untracked = <Self as AutodiffBackend>::from_inner;
        match BatchNormAddReluBackward.prepare::<C>([x.node(), gamma.node(), beta.node(), residual.node()]).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let (cx, cgamma) = (prep.checkpoint(&x), prep.checkpoint(&gamma));
                let (y, mean, var) =
                    bn_forward(x.into_primitive(), gamma.into_primitive(), beta.into_primitive(), Some(residual.into_primitive()), true, epsilon);
                let stats = stats(&mean, &var);
                (prep.finish((cx, cgamma, stats, epsilon, Output(y.clone())), y), untracked(mean), untracked(var))
            }
            OpsKind::UnTracked(prep) => {
                let (y, mean, var) =
                    bn_forward(x.into_primitive(), gamma.into_primitive(), beta.into_primitive(), Some(residual.into_primitive()), true, epsilon);
                (prep.finish(y), untracked(mean), untracked(var))
            }
        }
    }

    fn conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        stride_h: usize,
        stride_w: usize,
        padding_h: usize,
        padding_w: usize,
    ) -> FloatTensor<Self> {
        affine::<C>(Affine::Conv { stride: [stride_h, stride_w], padding: [padding_h, padding_w] }, x, weight, bias)
    }

    fn depthwise2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        stride_h: usize,
        stride_w: usize,
        padding_h: usize,
        padding_w: usize,
    ) -> FloatTensor<Self> {
        affine::<C>(Affine::Depthwise { stride: [stride_h, stride_w], padding: [padding_h, padding_w] }, x, weight, bias)
    }

    fn conv1d(x: FloatTensor<Self>, weight: FloatTensor<Self>, bias: FloatTensor<Self>, stride: usize, padding: usize) -> FloatTensor<Self> {
        affine::<C>(Affine::Conv1d { stride, padding }, x, weight, bias)
    }

    fn relu_max_pool2x2(x: FloatTensor<Self>) -> FloatTensor<Self> {
        match ReluMaxPoolBackward.prepare::<C>([x.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let (y, arg, dims) = pool_forward(x.into_primitive());
                prep.finish((Argmax(Arc::new(arg)), dims), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(pool_forward(x.into_primitive()).0),
        }
    }

    fn linear2d(x: FloatTensor<Self>, weight: FloatTensor<Self>, bias: FloatTensor<Self>) -> FloatTensor<Self> {
        affine::<C>(Affine::Linear, x, weight, bias)
    }

    /// An update, not a differentiable op: computed on the inner tensors, untracked.
    fn sgd_momentum(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        velocity: FloatTensor<Self>,
        lr: f32,
        momentum: f32,
        keep: f32,
        nesterov: bool,
        decay: f32,
        has_decay: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let inner = <Self as AutodiffBackend>::inner;
        let (p, v) = sgd_flex(inner(param), inner(grad), inner(velocity), lr, momentum, keep, nesterov, decay, has_decay);
        (<Self as AutodiffBackend>::from_inner(p), <Self as AutodiffBackend>::from_inner(v))
    }
}
