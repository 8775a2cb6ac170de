//! `cargo bench --bench kernels`: cohort's own flex kernels (src/kernels/) against burn's ops
//! for the same computation, at the small CNN's shapes (batch 128) and the MLP's parameters:
//! `ours` vs `burn` per layer, forward + backward (the layer's input requires a gradient, as
//! between layers): the CNN's convolutions and ReLU + max-pools, the 1-D CNN's convolutions,
//! MobileNetV2's depthwise convolutions, the MLP 784-1200-1200-10's
//! first two linear layers, one SGD-with-momentum update of that MLP, and the batch norm + ReLU
//! (fused or not, with a residual or not) at the CIFAR ResNet-32 first stage.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, ModuleOptimizer, SgdConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Distribution, Tensor};
use cohort::kernels;
use divan::Bencher;

/// The allocator of the `cohort` binary (src/main.rs), so that the figures agree.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    divan::main();
}

fn device() -> Device {
    Device::flex().autodiff()
}

/// `[input channels, output channels, side]` of the CNN's two convolutions.
const CONVS: [[usize; 3]; 2] = [[1, 32, 28], [32, 64, 14]];

fn conv_case(i: usize) -> (Conv2d, Tensor<4>) {
    let [c, o, side] = CONVS[i];
    let d = device();
    let conv = Conv2dConfig::new([c, o], [3, 3]).with_padding(PaddingConfig2d::Same).init(&d);
    let x = Tensor::<4>::random([128, c, side, side], Distribution::Normal(0.0, 1.0), &d);
    (conv, x)
}

#[divan::bench(args = [0, 1], sample_count = 10)]
fn conv_ours(bencher: Bencher, i: usize) {
    let (conv, x) = conv_case(i);
    bencher.bench_local(|| kernels::conv(&conv, x.clone().require_grad()).sum().backward());
}

#[divan::bench(args = [0, 1], sample_count = 10)]
fn conv_burn(bencher: Bencher, i: usize) {
    let (conv, x) = conv_case(i);
    bencher.bench_local(|| conv.forward(x.clone().require_grad()).sum().backward());
}

/// `[input channels, stride, length]` of the 1-D CNN's three convolutions (32 outputs, kernel
/// 5, padding 2) on MNIST-1D's 40-long sequences.
const CONV1DS: [[usize; 3]; 3] = [[1, 1, 40], [32, 2, 40], [32, 2, 20]];

fn conv1d_case(i: usize) -> (burn::nn::conv::Conv1d, Tensor<3>) {
    let [c, s, l] = CONV1DS[i];
    let d = device();
    let conv = burn::nn::conv::Conv1dConfig::new(c, 32, 5).with_stride(s).with_padding(burn::nn::PaddingConfig1d::Explicit(2, 2)).init(&d);
    let x = Tensor::<3>::random([128, c, l], Distribution::Normal(0.0, 1.0), &d);
    (conv, x)
}

#[divan::bench(args = [0, 1, 2], sample_count = 20)]
fn conv1d_ours(bencher: Bencher, i: usize) {
    let (conv, x) = conv1d_case(i);
    bencher.bench_local(|| kernels::conv1d(&conv, x.clone().require_grad()).sum().backward());
}

#[divan::bench(args = [0, 1, 2], sample_count = 20)]
fn conv1d_burn(bencher: Bencher, i: usize) {
    let (conv, x) = conv1d_case(i);
    bencher.bench_local(|| conv.forward(x.clone().require_grad()).sum().backward());
}

/// `[channels, side, stride]` of MobileNetV2's depthwise 3×3 convolutions on CIFAR (expansion 6):
/// 96 channels at 32×32, 144 at 16×16, and 144 at 16×16 with stride 2.
const DEPTHWISE: [[usize; 3]; 3] = [[96, 32, 1], [144, 16, 1], [144, 16, 2]];

fn depthwise_case(i: usize) -> (Conv2d, Tensor<4>) {
    let [c, side, stride] = DEPTHWISE[i];
    let d = device();
    let conv = Conv2dConfig::new([c, c], [3, 3])
        .with_groups(c)
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .with_bias(false)
        .init(&d);
    let x = Tensor::<4>::random([128, c, side, side], Distribution::Normal(0.0, 1.0), &d);
    (conv, x)
}

#[divan::bench(args = [0, 1, 2], sample_count = 5)]
fn depthwise_ours(bencher: Bencher, i: usize) {
    let (conv, x) = depthwise_case(i);
    bencher.bench_local(|| kernels::conv(&conv, x.clone().require_grad()).sum().backward());
}

#[divan::bench(args = [0, 1, 2], sample_count = 5)]
fn depthwise_burn(bencher: Bencher, i: usize) {
    let (conv, x) = depthwise_case(i);
    bencher.bench_local(|| conv.forward(x.clone().require_grad()).sum().backward());
}

/// `[channels, side]` of the CNN's two ReLU + max-pool layers.
const POOLS: [[usize; 2]; 2] = [[32, 28], [64, 14]];

fn pool_case(i: usize) -> (MaxPool2d, Tensor<4>) {
    let [c, side] = POOLS[i];
    let x = Tensor::<4>::random([128, c, side, side], Distribution::Normal(0.0, 1.0), &device());
    (MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(), x)
}

#[divan::bench(args = [0, 1], sample_count = 10)]
fn relu_pool_ours(bencher: Bencher, i: usize) {
    let (pool, x) = pool_case(i);
    bencher.bench_local(|| kernels::relu_pool(&pool, x.clone().require_grad()).sum().backward());
}

#[divan::bench(args = [0, 1], sample_count = 10)]
fn relu_pool_burn(bencher: Bencher, i: usize) {
    let (pool, x) = pool_case(i);
    bencher.bench_local(|| pool.forward(relu(x.clone().require_grad())).sum().backward());
}

/// `[inputs, outputs]` of the MLP's first two layers.
const LINEARS: [[usize; 2]; 2] = [[784, 1200], [1200, 1200]];

fn linear_case(i: usize) -> (Linear, Tensor<2>) {
    let [n_in, n_out] = LINEARS[i];
    let d = device();
    (LinearConfig::new(n_in, n_out).init(&d), Tensor::<2>::random([128, n_in], Distribution::Normal(0.0, 1.0), &d))
}

#[divan::bench(args = [0, 1], sample_count = 10)]
fn linear_ours(bencher: Bencher, i: usize) {
    let (layer, x) = linear_case(i);
    bencher.bench_local(|| kernels::linear(&layer, x.clone().require_grad()).sum().backward());
}

#[divan::bench(args = [0, 1], sample_count = 10)]
fn linear_burn(bencher: Bencher, i: usize) {
    let (layer, x) = linear_case(i);
    bencher.bench_local(|| layer.forward(x.clone().require_grad()).sum().backward());
}

#[derive(Module, Debug)]
struct Mlp {
    layers: Vec<Linear>,
}

/// SGD steps (momentum 0.9, after the first) on the MLP's 2.4 M parameters, with `optimizer`.
fn sgd(bencher: Bencher, mut optimizer: ModuleOptimizer) {
    let d = device();
    let mlp = Mlp { layers: vec![LinearConfig::new(784, 1200).init(&d), LinearConfig::new(1200, 1200).init(&d), LinearConfig::new(1200, 10).init(&d)] };
    let x = Tensor::<2>::random([128, 784], Distribution::Normal(0.0, 1.0), &d);
    let grads_of = |m: &Mlp| {
        let y = m.layers.iter().fold(x.clone(), |h, l| l.forward(h));
        GradientsParams::from_grads(y.sum().backward(), m)
    };
    let grads = grads_of(&mlp);
    let mlp = optimizer.step(0.01, mlp, grads); // creates the velocities
    // the module moves into each step (no clone: a shared buffer would be copied, not updated)
    let slot = std::cell::RefCell::new(Some(mlp));
    bencher.with_inputs(|| grads_of(slot.borrow().as_ref().expect("module"))).bench_local_values(|grads| {
        let m = slot.borrow_mut().take().expect("module");
        *slot.borrow_mut() = Some(optimizer.step(0.01, m, grads));
    });
}

#[divan::bench(sample_count = 10)]
fn sgd_ours(bencher: Bencher) {
    sgd(bencher, cohort::engine::optim::build(&cohort::config::ron_options().from_str("Sgd(lr: 0.01, momentum: 0.9)").unwrap()));
}

#[divan::bench(sample_count = 10)]
fn sgd_burn(bencher: Bencher) {
    sgd(bencher, SgdConfig::new().with_momentum(Some(MomentumConfig::new().with_momentum(0.9).with_dampening(0.0))).init());
}

/// A ResNet block's end at CIFAR ResNet-32's first stage (batch 128, 16 channels, 32×32): the
/// batch norm (+ residual) + ReLU, fused or as separate ops; the loss `Σ y·q` (so that the
/// gradient arriving is a plain tensor, as from the next convolution, not a broadcast one).
fn bn_case() -> (burn::nn::BatchNorm, Tensor<4>, Tensor<4>, Tensor<4>) {
    let d = device();
    let dims = [128, 16, 32, 32];
    let random = || Tensor::<4>::random(dims, Distribution::Normal(0.0, 1.0), &d);
    (burn::nn::BatchNormConfig::new(16).init(&d), random(), random(), random())
}

/// `relu(bn(x))`: 0 cohort's fused kernel, 1 cohort's batch norm then burn's ReLU, 2 burn's ops.
#[divan::bench(args = [0, 1, 2], sample_count = 10)]
fn batch_norm_relu(bencher: Bencher, variant: usize) {
    let (bn, x, _, q) = bn_case();
    bencher.bench_local(|| {
        let x = x.clone().require_grad();
        let y = match variant {
            0 => kernels::batch_norm_relu(&bn, x),
            1 => relu(kernels::batch_norm(&bn, x)),
            _ => relu(bn.forward(x)),
        };
        (y * q.clone()).sum().backward()
    });
}

/// `relu(bn(x) + r)`: 0 cohort's fused kernel, 1 cohort's batch norm then burn's add and ReLU,
/// 2 burn's ops.
#[divan::bench(args = [0, 1, 2], sample_count = 10)]
fn batch_norm_add_relu(bencher: Bencher, variant: usize) {
    let (bn, x, r, q) = bn_case();
    bencher.bench_local(|| {
        let (x, r) = (x.clone().require_grad(), r.clone().require_grad());
        let y = match variant {
            0 => kernels::batch_norm_add_relu(&bn, x, r),
            1 => relu(kernels::batch_norm(&bn, x) + r),
            _ => relu(bn.forward(x) + r),
        };
        (y * q.clone()).sum().backward()
    });
}
