//! cohort's own flex kernels (src/kernels/) against burn's ops and against loops written
//! out here: the convolution's output and its gradients for the input, weight and bias (the 3×3
//! "same" layers and every other geometry the model zoo uses: 1×1 projections, strided and
//! unpadded 3×3, 5×5, and the 1-D CNN's 1-D convolutions as 1×k kernels); ReLU +
//! max-pool's output and input gradient; batch norm's output, gradients and running statistics;
//! NaN propagation; the same bits for any thread count;
//! and a whole CNN on flex (cohort's kernels) against the same CNN on ndarray (burn's ops).

#![cfg(all(feature = "flex", feature = "ndarray"))]
#![allow(deprecated)] // Device::ndarray: the second CPU backend, for the cross-check

use burn::module::Module;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Distribution, Gradients, Tensor, TensorData};
use cohort::kernels;

fn vals<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_into_vec::<f32>().unwrap()
}

fn close(what: &str, got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol * (1.0 + w.abs()), "{what}[{i}]: {g} vs {w}");
    }
}

fn conv_layer(cin: usize, cout: usize, d: &Device) -> Conv2d {
    Conv2dConfig::new([cin, cout], [3, 3]).with_padding(PaddingConfig2d::Same).init(d)
}

/// Output, and the gradients of `Σ y·r` for x, W and bias (empty for a layer without bias).
fn conv_run(conv: &Conv2d, x: &Tensor<4>, r: &Tensor<4>, ours: bool) -> [Vec<f32>; 4] {
    let x = x.clone().require_grad();
    let y = if ours { kernels::conv(conv, x.clone()) } else { conv.forward(x.clone()) };
    let g: Gradients = (y.clone() * r.clone()).sum().backward();
    let dw = vals(conv.weight.grad(&g).unwrap());
    let db = conv.bias.as_ref().map(|b| vals(b.grad(&g).unwrap())).unwrap_or_default();
    [vals(y), vals(x.grad(&g).unwrap()), dw, db]
}

#[test]
fn conv3x3_matches_burns_convolution_and_its_gradients() {
    let _rng = crate::common::rng();
    let d = Device::flex().autodiff();
    d.seed(11);
    // batches that are not a multiple of the kernel's chunk of 8 images, one input channel,
    // odd and 1-pixel images
    for [b, c, o, h, w] in [[9, 1, 4, 5, 7], [3, 3, 6, 6, 6], [17, 4, 5, 2, 3], [2, 2, 3, 1, 1]] {
        let conv = conv_layer(c, o, &d);
        let x = Tensor::<4>::random([b, c, h, w], Distribution::Normal(0.0, 1.0), &d);
        assert!(kernels::conv_applies(&conv, &x));
        let r = Tensor::<4>::random([b, o, h, w], Distribution::Normal(0.0, 1.0), &d);
        let (ours, burn) = (conv_run(&conv, &x, &r, true), conv_run(&conv, &x, &r, false));
        for (name, (p, q)) in ["y", "dx", "dW", "dbias"].iter().zip(ours.iter().zip(&burn)) {
            close(&format!("{name} for {:?}", [b, c, o, h, w]), p, q, 1e-4);
        }
    }
}

/// A 3×3 convolution without bias (the CIFAR ResNets', WRNs') through cohort's kernel with its
/// constant zero bias: the output and the input and weight gradients of burn's convolution.
#[test]
fn conv3x3_without_bias_matches_burns_convolution() {
    let _rng = crate::common::rng();
    let d = Device::flex().autodiff();
    d.seed(12);
    for [b, c, o, h, w] in [[5, 3, 4, 6, 6], [2, 16, 16, 8, 8]] {
        let conv = Conv2dConfig::new([c, o], [3, 3]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)).with_bias(false).init(&d);
        let x = Tensor::<4>::random([b, c, h, w], Distribution::Normal(0.0, 1.0), &d);
        assert!(kernels::conv_applies(&conv, &x));
        let r = Tensor::<4>::random([b, o, h, w], Distribution::Normal(0.0, 1.0), &d);
        let run = |ours: bool| {
            let x = x.clone().require_grad();
            let y = if ours { kernels::conv(&conv, x.clone()) } else { conv.forward(x.clone()) };
            let g: Gradients = (y.clone() * r.clone()).sum().backward();
            [vals(y), vals(x.grad(&g).unwrap()), vals(conv.weight.grad(&g).unwrap())]
        };
        let (ours, burn) = (run(true), run(false));
        for (name, (p, q)) in ["y", "dx", "dW"].iter().zip(ours.iter().zip(&burn)) {
            close(&format!("{name} without bias for {:?}", [b, c, o, h, w]), p, q, 1e-4);
        }
    }
}

/// `y[b,o,i,j] = bias[o] + Σ_{c,u,v} W[o,c,u,v]·x[b,c,i·s_h+u−p_h,j·s_w+v−p_w]` (zero outside)
/// as plain loops: `x` `[B, C, H, W]`, `w` `[O, C, kh, kw]` → `[B, O, OH, OW]`,
/// `OH = (H + 2p_h − kh)/s_h + 1`, `OW` alike.
fn conv_written_out(xs: &[f32], [b, c, h, w]: [usize; 4], ws: &[f32], bias: &[f32], g: kernels::ConvGeom) -> Vec<f32> {
    let ([kh, kw], [sh, sw], [ph, pw], o) = (g.kernel, g.stride, g.padding, bias.len());
    let (oh, ow) = ((h + 2 * ph - kh) / sh + 1, (w + 2 * pw - kw) / sw + 1);
    let mut want = vec![0.0f32; b * o * oh * ow];
    for bi in 0..b {
        for oi in 0..o {
            for i in 0..oh {
                for j in 0..ow {
                    let mut s = bias[oi];
                    for ci in 0..c {
                        for u in 0..kh {
                            for v in 0..kw {
                                let si = (i * sh + u) as isize - ph as isize;
                                let sj = (j * sw + v) as isize - pw as isize;
                                if si >= 0 && sj >= 0 && (si as usize) < h && (sj as usize) < w {
                                    s += ws[((oi * c + ci) * kh + u) * kw + v] * xs[((bi * c + ci) * h + si as usize) * w + sj as usize];
                                }
                            }
                        }
                    }
                    want[((bi * o + oi) * oh + i) * ow + j] = s;
                }
            }
        }
    }
    want
}

#[test]
fn conv3x3_matches_the_formula_written_out() {
    let _rng = crate::common::rng();
    // y[b,o,i,j] = bias[o] + Σ_{c,u,v} W[o,c,u,v]·x[b,c,i+u−1,j+v−1], zero outside
    let d = Device::flex();
    let [b, c, o, h, w] = [2, 2, 3, 4, 5];
    let xs: Vec<f32> = (0..b * c * h * w).map(|i| ((i * 7 % 11) as f32 - 5.0) / 4.0).collect();
    let ws: Vec<f32> = (0..o * c * 9).map(|i| ((i * 5 % 13) as f32 - 6.0) / 8.0).collect();
    let bias = [0.5f32, -1.0, 0.25];
    let x = Tensor::<4>::from_data(TensorData::new(xs.clone(), [b, c, h, w]), &d);
    let weight = Tensor::<4>::from_data(TensorData::new(ws.clone(), [o, c, 3, 3]), &d);
    let y = vals(kernels::conv3x3(x, weight, Tensor::<1>::from_floats(bias, &d)));
    let want = conv_written_out(&xs, [b, c, h, w], &ws, &bias, kernels::ConvGeom::SAME_3X3);
    close("y", &y, &want, 1e-5);
}

/// Every geometry of the zoo's convolutions (1×1 projections with stride 1 and 2, strided 3×3
/// with and without padding, unpadded 3×3, 5×5 "same"), on odd sizes, with and without bias,
/// through burn's padding configurations: output and gradients against burn's convolution.
#[test]
fn conv_of_every_geometry_matches_burns_convolution_and_its_gradients() {
    let _rng = crate::common::rng();
    let d = Device::flex().autodiff();
    d.seed(13);
    let explicit = |p: usize| PaddingConfig2d::Explicit(p, p, p, p);
    let cases = [
        (1, 1, explicit(0), 0),
        (1, 1, PaddingConfig2d::Valid, 0),
        (1, 2, explicit(0), 0),
        (3, 2, explicit(1), 1),
        (3, 1, PaddingConfig2d::Valid, 0),
        (5, 1, PaddingConfig2d::Same, 2),
        (5, 1, explicit(2), 2),
        (3, 2, explicit(0), 0),
        (3, 3, explicit(2), 2),
    ];
    for (k, s, padding, p) in cases {
        for bias in [true, false] {
            for [b, c, o, h, w] in [[3, 3, 5, 7, 9], [9, 2, 4, 8, 8], [2, 1, 1, 5, 6]] {
                let what = format!("k {k} stride {s} padding {padding:?} bias {bias} {:?}", [b, c, o, h, w]);
                let conv = Conv2dConfig::new([c, o], [k, k]).with_stride([s, s]).with_padding(padding.clone()).with_bias(bias).init(&d);
                assert_eq!(kernels::geometry(&conv), Some(kernels::ConvGeom::square(k, s, p)), "{what}");
                let x = Tensor::<4>::random([b, c, h, w], Distribution::Normal(0.0, 1.0), &d);
                assert!(kernels::conv_applies(&conv, &x), "{what}");
                let want_dims = conv.forward(x.clone()).dims();
                let g = kernels::ConvGeom::square(k, s, p);
                assert_eq!(want_dims, [b, o, g.out(0, h), g.out(1, w)], "{what}: output size");
                let r = Tensor::<4>::random(want_dims, Distribution::Normal(0.0, 1.0), &d);
                let run = |ours: bool| {
                    let x = x.clone().require_grad();
                    let y = if ours { kernels::conv(&conv, x.clone()) } else { conv.forward(x.clone()) };
                    let grads: Gradients = (y.clone() * r.clone()).sum().backward();
                    let db = conv.bias.as_ref().map(|b| vals(b.grad(&grads).unwrap())).unwrap_or_default();
                    [vals(y), vals(x.grad(&grads).unwrap()), vals(conv.weight.grad(&grads).unwrap()), db]
                };
                let (ours, burn) = (run(true), run(false));
                for (name, (p, q)) in ["y", "dx", "dW", "dbias"].iter().zip(ours.iter().zip(&burn)) {
                    close(&format!("{name} for {what}"), p, q, 1e-4);
                }
            }
        }
    }
}

/// Convolutions the kernel does not compute go to burn's: grouped (depthwise), dilated,
/// rectangular, uneven strides, uneven padding.
#[test]
fn conv_outside_the_kernels_geometries_falls_back_to_burn() {
    let _rng = crate::common::rng();
    let d = Device::flex();
    let base = || Conv2dConfig::new([4, 4], [3, 3]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1));
    let layers = [
        base().with_groups(2).init(&d),
        base().with_dilation([2, 2]).init(&d),
        Conv2dConfig::new([4, 4], [3, 1]).init(&d),
        base().with_stride([1, 2]).init(&d),
        base().with_padding(PaddingConfig2d::Explicit(1, 0, 1, 0)).init(&d),
    ];
    let x = Tensor::<4>::random([2, 4, 9, 9], Distribution::Normal(0.0, 1.0), &d);
    for conv in &layers {
        assert_eq!(kernels::geometry(conv), None, "{conv:?}");
        assert!(!kernels::conv_applies(conv, &x));
        assert_eq!(vals(kernels::conv(conv, x.clone())), vals(conv.forward(x.clone())));
    }
}

#[test]
fn strided_conv_matches_the_formula_written_out() {
    let _rng = crate::common::rng();
    // y[b,o,i,j] = bias[o] + Σ_{c,u,v} W[o,c,u,v]·x[b,c,i·s+u−p,j·s+v−p], zero outside,
    // OH = (H + 2p − k)/s + 1
    let d = Device::flex();
    let [b, c, o, h, w] = [2, 2, 3, 7, 6];
    // and rectangular ones: a 1-D convolution as a 1×k kernel on the rows (stride and padding
    // across only), and a 3×1 kernel with uneven strides
    let rect = kernels::ConvGeom { kernel: [3, 1], stride: [2, 1], padding: [1, 0] };
    for g in [kernels::ConvGeom::square(3, 2, 1), kernels::ConvGeom::square(1, 2, 0), kernels::ConvGeom::row(5, 2, 2), rect] {
        let [kh, kw] = g.kernel;
        let xs: Vec<f32> = (0..b * c * h * w).map(|i| ((i * 7 % 11) as f32 - 5.0) / 4.0).collect();
        let ws: Vec<f32> = (0..o * c * kh * kw).map(|i| ((i * 5 % 13) as f32 - 6.0) / 8.0).collect();
        let bias = [0.5f32, -1.0, 0.25];
        let x = Tensor::<4>::from_data(TensorData::new(xs.clone(), [b, c, h, w]), &d);
        let weight = Tensor::<4>::from_data(TensorData::new(ws.clone(), [o, c, kh, kw]), &d);
        let y = kernels::conv2d(x, weight, Tensor::<1>::from_floats(bias, &d), g);
        let [oh, ow] = g.out_size([h, w]);
        assert_eq!(y.dims(), [b, o, oh, ow], "{g:?}");
        let want = conv_written_out(&xs, [b, c, h, w], &ws, &bias, g);
        let y = vals(y);
        close(&format!("y for {g:?}"), &y, &want, 1e-5);
    }
}

/// The 1-D CNN's layers (`Conv1d`, kernel 5, "same" padding, stride 1 and 2, with and without
/// bias) and other 1-D geometries through cohort's kernels (stride 1: the batch-wide products of
/// `cpu::conv1d_forward`; other strides: a 1×k convolution of a one-row image): output and the
/// gradients for the input, weight and bias against burn's `Conv1d`.
#[test]
fn conv1d_matches_burns_convolution_and_its_gradients() {
    let _rng = crate::common::rng();
    use burn::nn::PaddingConfig1d;
    use burn::nn::conv::Conv1dConfig;
    let d = Device::flex().autodiff();
    d.seed(14);
    let cases = [
        (5, 1, PaddingConfig1d::Explicit(2, 2), 2),
        (5, 2, PaddingConfig1d::Explicit(2, 2), 2),
        (3, 1, PaddingConfig1d::Same, 1),
        (3, 3, PaddingConfig1d::Valid, 0),
        (1, 1, PaddingConfig1d::Valid, 0),
    ];
    for (k, s, padding, p) in cases {
        for bias in [true, false] {
            for [b, c, o, l] in [[9, 1, 32, 40], [3, 32, 32, 20], [2, 3, 5, 7]] {
                let what = format!("k {k} stride {s} padding {padding:?} bias {bias} {:?}", [b, c, o, l]);
                let conv = Conv1dConfig::new(c, o, k).with_stride(s).with_padding(padding.clone()).with_bias(bias).init(&d);
                assert_eq!(kernels::geometry1d(&conv), Some(kernels::ConvGeom::row(k, s, p)), "{what}");
                let x = Tensor::<3>::random([b, c, l], Distribution::Normal(0.0, 1.0), &d);
                assert!(kernels::conv1d_applies(&conv, &x), "{what}");
                let want_dims = conv.forward(x.clone()).dims();
                let r = Tensor::<3>::random(want_dims, Distribution::Normal(0.0, 1.0), &d);
                let run = |ours: bool| {
                    let x = x.clone().require_grad();
                    let y = if ours { kernels::conv1d(&conv, x.clone()) } else { conv.forward(x.clone()) };
                    assert_eq!(y.dims(), want_dims, "{what}: output size");
                    let grads: Gradients = (y.clone() * r.clone()).sum().backward();
                    let db = conv.bias.as_ref().map(|b| vals(b.grad(&grads).unwrap())).unwrap_or_default();
                    [vals(y), vals(x.grad(&grads).unwrap()), vals(conv.weight.grad(&grads).unwrap()), db]
                };
                let (ours, burn) = (run(true), run(false));
                for (name, (p, q)) in ["y", "dx", "dW", "dbias"].iter().zip(ours.iter().zip(&burn)) {
                    close(&format!("{name} for {what}"), p, q, 1e-4);
                }
            }
        }
    }
    // what the kernel does not compute goes to burn's: grouped, dilated, uneven padding
    let x = Tensor::<3>::random([2, 4, 12], Distribution::Normal(0.0, 1.0), &d);
    for conv in [
        Conv1dConfig::new(4, 4, 3).with_groups(2).init(&d),
        Conv1dConfig::new(4, 4, 3).with_dilation(2).init(&d),
        Conv1dConfig::new(4, 4, 3).with_padding(PaddingConfig1d::Explicit(1, 0)).init(&d),
    ] {
        assert_eq!(kernels::geometry1d(&conv), None, "{conv:?}");
        assert_eq!(vals(kernels::conv1d(&conv, x.clone())), vals(conv.forward(x.clone())));
    }
}

/// `y[b,o,i] = bias[o] + Σ_{c,t} W[o,c,t]·x[b,c,i·s+t−p]` (zero outside) written out, against
/// cohort's 1-D convolution.
#[test]
fn conv1d_matches_the_formula_written_out() {
    let _rng = crate::common::rng();
    use burn::nn::PaddingConfig1d;
    use burn::nn::conv::Conv1dConfig;
    let d = Device::flex();
    let [b, c, o, l, k] = [2, 3, 2, 11, 5];
    for (s, p) in [(1, 2), (2, 2), (2, 0)] {
        let mut conv = Conv1dConfig::new(c, o, k).with_stride(s).with_padding(PaddingConfig1d::Explicit(p, p)).init(&d);
        let xs: Vec<f32> = (0..b * c * l).map(|i| ((i * 7 % 11) as f32 - 5.0) / 4.0).collect();
        let ws: Vec<f32> = (0..o * c * k).map(|i| ((i * 5 % 13) as f32 - 6.0) / 8.0).collect();
        let bias = [0.5f32, -1.0];
        conv.weight = burn::module::Param::from_tensor(Tensor::<3>::from_data(TensorData::new(ws.clone(), [o, c, k]), &d));
        conv.bias = Some(burn::module::Param::from_tensor(Tensor::<1>::from_floats(bias, &d)));
        let ol = (l + 2 * p - k) / s + 1;
        let mut want = vec![0.0f32; b * o * ol];
        for bi in 0..b {
            for oi in 0..o {
                for i in 0..ol {
                    let mut v = bias[oi];
                    for ci in 0..c {
                        for t in 0..k {
                            let si = (i * s + t) as isize - p as isize;
                            if si >= 0 && (si as usize) < l {
                                v += ws[(oi * c + ci) * k + t] * xs[(bi * c + ci) * l + si as usize];
                            }
                        }
                    }
                    want[(bi * o + oi) * ol + i] = v;
                }
            }
        }
        let y = kernels::conv1d(&conv, Tensor::<3>::from_data(TensorData::new(xs, [b, c, l]), &d));
        assert_eq!(y.dims(), [b, o, ol]);
        close(&format!("y for stride {s} padding {p}"), &vals(y), &want, 1e-5);
    }
}

fn pool_layer() -> MaxPool2d {
    MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init()
}

#[test]
fn relu_max_pool_matches_burns_relu_then_max_pool() {
    let _rng = crate::common::rng();
    let d = Device::flex().autodiff();
    d.seed(5);
    let pool = pool_layer();
    // odd sizes drop the last row / column (floor mode); normal inputs give windows with no
    // positive entry, whose gradient is zero
    for dims in [[3, 4, 6, 8], [2, 3, 5, 7], [1, 1, 2, 2]] {
        let x = Tensor::<4>::random(dims, Distribution::Normal(0.0, 1.0), &d);
        assert!(kernels::pool_applies(&pool, &x));
        let r = Tensor::<4>::random([dims[0], dims[1], dims[2] / 2, dims[3] / 2], Distribution::Normal(0.0, 1.0), &d);
        let run = |ours: bool| {
            let x = x.clone().require_grad();
            let y = if ours { kernels::relu_pool(&pool, x.clone()) } else { pool.forward(relu(x.clone())) };
            let g = (y.clone() * r.clone()).sum().backward();
            (vals(y), vals(x.grad(&g).unwrap()))
        };
        let (y1, g1) = run(true);
        let (y2, g2) = run(false);
        assert_eq!(y1, y2, "{dims:?}: forward");
        assert_eq!(g1, g2, "{dims:?}: input gradient");
    }
}

#[test]
fn relu_max_pool_hand_values_and_nan() {
    let _rng = crate::common::rng();
    let d = Device::flex();
    // one 4×4 plane: windows {1,−2,3,4}→4, {−1,−2,−3,−4}→0, {0,5,NaN,1}→NaN, {2,2,−1,0}→2
    let x = [1.0, -2.0, -1.0, -2.0, 3.0, 4.0, -3.0, -4.0, 0.0, 5.0, 2.0, 2.0, f32::NAN, 1.0, -1.0, 0.0];
    let y = vals(kernels::relu_max_pool2x2(Tensor::<4>::from_data(TensorData::new(x.to_vec(), [1, 1, 4, 4]), &d)));
    assert_eq!((y[0], y[1], y[3]), (4.0, 0.0, 2.0));
    assert!(y[2].is_nan(), "a NaN in the window shows in the output: {y:?}");
    let (_, arg) = kernels::cpu::relu_max_pool2x2_forward(&x, [1, 1, 4, 4]);
    // ties go to the first maximum (window positions are row-major)
    assert_eq!(arg, vec![3, kernels::cpu::NONE, 2, 0]);
}

/// Depthwise convolutions (groups = channels, MobileNetV2's and ShuffleNetV2's 3×3 layers, stride
/// 1 and 2; a 5×5; with and without bias) through cohort's kernel: burn's grouped convolution's
/// output and its gradients for the input, weight and bias; the formula written out for one; and
/// the same bits for any thread count.
#[test]
fn depthwise_conv_matches_burns_grouped_convolution_and_its_gradients() {
    let _rng = crate::common::rng();
    let d = Device::flex().autodiff();
    d.seed(15);
    for (k, s, p) in [(3, 1, 1), (3, 2, 1), (5, 1, 2), (3, 1, 0)] {
        for bias in [true, false] {
            for [b, c, h, w] in [[3, 8, 8, 8], [2, 5, 7, 5], [9, 2, 1, 3]] {
                let what = format!("k {k} stride {s} padding {p} bias {bias} {:?}", [b, c, h, w]);
                let conv = Conv2dConfig::new([c, c], [k, k])
                    .with_groups(c)
                    .with_stride([s, s])
                    .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
                    .with_bias(bias)
                    .init(&d);
                let x = Tensor::<4>::random([b, c, h, w], Distribution::Normal(0.0, 1.0), &d);
                if h + 2 * p < k {
                    continue;
                }
                assert_eq!(kernels::depthwise_geometry(&conv, c), Some(kernels::ConvGeom::square(k, s, p)), "{what}");
                assert!(kernels::conv_applies(&conv, &x), "{what}");
                let want_dims = conv.forward(x.clone()).dims();
                assert_eq!(kernels::conv(&conv, x.clone()).dims(), want_dims, "{what}: output size");
                let r = Tensor::<4>::random(want_dims, Distribution::Normal(0.0, 1.0), &d);
                let (ours, burn) = (conv_run(&conv, &x, &r, true), conv_run(&conv, &x, &r, false));
                for (name, (p, q)) in ["y", "dx", "dW", "dbias"].iter().zip(ours.iter().zip(&burn)) {
                    close(&format!("{name} for {what}"), p, q, 1e-4);
                }
            }
        }
    }
    // written out: y[b,c,i,j] = bias[c] + Σ_{u,v} W[c,u,v]·x[b,c,2i+u−1,2j+v−1]
    let plain = Device::flex();
    let [b, c, h, w] = [2, 3, 5, 6];
    let mut conv = Conv2dConfig::new([c, c], [3, 3]).with_groups(c).with_stride([2, 2]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)).init(&plain);
    let xs: Vec<f32> = (0..b * c * h * w).map(|i| ((i * 7 % 11) as f32 - 5.0) / 4.0).collect();
    let ws: Vec<f32> = (0..c * 9).map(|i| ((i * 5 % 13) as f32 - 6.0) / 8.0).collect();
    let bias = [0.5f32, -1.0, 0.25];
    conv.weight = burn::module::Param::from_tensor(Tensor::<4>::from_data(TensorData::new(ws.clone(), [c, 1, 3, 3]), &plain));
    conv.bias = Some(burn::module::Param::from_tensor(Tensor::<1>::from_floats(bias, &plain)));
    let (oh, ow) = (3, 3);
    let mut want = vec![0.0f32; b * c * oh * ow];
    for bi in 0..b {
        for ci in 0..c {
            for i in 0..oh {
                for j in 0..ow {
                    let mut v = bias[ci];
                    for u in 0..3 {
                        for t in 0..3 {
                            let (si, sj) = ((2 * i + u) as isize - 1, (2 * j + t) as isize - 1);
                            if si >= 0 && sj >= 0 && (si as usize) < h && (sj as usize) < w {
                                v += ws[ci * 9 + u * 3 + t] * xs[((bi * c + ci) * h + si as usize) * w + sj as usize];
                            }
                        }
                    }
                    want[((bi * c + ci) * oh + i) * ow + j] = v;
                }
            }
        }
    }
    let y = kernels::conv(&conv, Tensor::<4>::from_data(TensorData::new(xs, [b, c, h, w]), &plain));
    close("depthwise written out", &vals(y), &want, 1e-5);
    // the same bits for any thread count
    let conv = Conv2dConfig::new([16, 16], [3, 3]).with_groups(16).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)).init(&d);
    let x = Tensor::<4>::random([21, 16, 9, 9], Distribution::Normal(0.0, 1.0), &d);
    let r = Tensor::<4>::random([21, 16, 9, 9], Distribution::Normal(0.0, 1.0), &d);
    let run = |threads: usize| {
        rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap().install(|| {
            let x = x.clone().require_grad();
            let y = kernels::conv(&conv, x.clone());
            let g = (y.clone() * r.clone()).sum().backward();
            [vals(y), vals(x.grad(&g).unwrap()), vals(conv.weight.grad(&g).unwrap()), vals(conv.bias.as_ref().unwrap().grad(&g).unwrap())]
        })
    };
    assert_eq!(run(1), run(3));
}

#[test]
fn kernels_give_the_same_bits_for_any_thread_count() {
    let _rng = crate::common::rng();
    let d = Device::flex().autodiff();
    d.seed(2);
    let conv = conv_layer(3, 8, &d);
    let x = Tensor::<4>::random([21, 3, 10, 10], Distribution::Normal(0.0, 1.0), &d);
    let r = Tensor::<4>::random([21, 8, 5, 5], Distribution::Normal(0.0, 1.0), &d);
    let pool = pool_layer();
    let fc = burn::nn::LinearConfig::new(8 * 25, 300).init(&d);
    let r2 = Tensor::<2>::random([21, 300], Distribution::Normal(0.0, 1.0), &d);
    let ((bn, _), (bn2, _)) = (bn_pair(8, &d), bn_pair(8, &d));
    // a strided 3×3 and a strided 1×1 projection (the CIFAR ResNets' downsampling block)
    let down = Conv2dConfig::new([3, 8], [3, 3]).with_stride([2, 2]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)).with_bias(false).init(&d);
    let proj = Conv2dConfig::new([3, 8], [1, 1]).with_stride([2, 2]).with_bias(false).init(&d);
    // the 1-D CNN's layer (stride 1: the batch-wide kernel) and a strided one (a 1×k convolution)
    let c1 = burn::nn::conv::Conv1dConfig::new(3, 8, 5).with_stride(2).with_padding(burn::nn::PaddingConfig1d::Explicit(2, 2)).init(&d);
    let c2 = burn::nn::conv::Conv1dConfig::new(8, 6, 5).with_padding(burn::nn::PaddingConfig1d::Explicit(2, 2)).init(&d);
    let x1 = Tensor::<3>::random([21, 3, 40], Distribution::Normal(0.0, 1.0), &d);
    let r1 = Tensor::<3>::random([21, 6, 20], Distribution::Normal(0.0, 1.0), &d);
    let run = |threads: usize| {
        let p = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        p.install(|| {
            let x = x.clone().require_grad();
            let h = kernels::conv(&conv, x.clone());
            let y = kernels::relu_pool(&pool, kernels::batch_norm_add_relu(&bn, h.clone(), kernels::batch_norm_relu(&bn2, h)));
            let z = kernels::linear(&fc, y.clone().flatten(1, 3));
            let s = kernels::conv(&down, x.clone()) + kernels::conv(&proj, x.clone());
            let g = ((y.clone() * r.clone()).sum() + (z.clone() * r2.clone()).sum() + (s.clone() * r.clone()).sum()).backward();
            let (dd, dp) = (vals(down.weight.grad(&g).unwrap()), vals(proj.weight.grad(&g).unwrap()));
            let x1 = x1.clone().require_grad();
            let y1 = kernels::conv1d(&c2, kernels::conv1d(&c1, x1.clone()));
            let g1 = (y1.clone() * r1.clone()).sum().backward();
            let (dx1, dw1, dw2) = (vals(x1.grad(&g1).unwrap()), vals(c1.weight.grad(&g1).unwrap()), vals(c2.weight.grad(&g1).unwrap()));
            [
                vals(z),
                vals(s),
                vals(x.grad(&g).unwrap()),
                vals(conv.weight.grad(&g).unwrap()),
                vals(fc.weight.grad(&g).unwrap()),
                dd,
                dp,
                vals(y1),
                dx1,
                dw1,
                dw2,
            ]
        })
    };
    assert_eq!(run(1), run(3));
}

#[test]
fn a_cnn_on_flex_matches_the_same_cnn_on_ndarray() {
    let _rng = crate::common::rng();
    use cohort::models::{Network, Taps};
    let spec = cohort::config::ron_options().from_str("Cnn2d(channels: [4, 6], hidden: 16)").unwrap();
    let flex = Device::flex().autodiff();
    flex.seed(9);
    let net = Network::init(&spec, &[1, 12, 12], 10, &flex);
    let other = Device::ndarray().autodiff();
    let x: Vec<f32> = (0..5 * 144).map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0).collect();
    let run = |net: Network, d: &Device| {
        let xs = Tensor::<2>::from_data(TensorData::new(x.clone(), [5, 144]), d);
        let z = net.forward_taps(xs, &mut Taps::new(&[]));
        let g = (z.clone() * z.clone()).sum().backward();
        let mut grads = vals(z);
        let mut visitor = Collect { grads: &g, out: &mut grads };
        net.visit(&mut visitor);
        grads
    };
    let a = run(net.clone(), &flex);
    let b = run(net.fork(&other), &other);
    close("logits and every parameter's gradient", &a, &b, 1e-4);
}

struct Collect<'a> {
    grads: &'a Gradients,
    out: &'a mut Vec<f32>,
}

impl burn::module::ModuleVisitor for Collect<'_> {
    fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
        self.out.extend(vals(param.val().grad(self.grads).expect("every parameter has a gradient")));
    }
}

/// A small MLP-like module for the optimiser tests.
#[derive(burn::module::Module, Debug)]
struct Two {
    a: burn::nn::Linear,
    b: burn::nn::Linear,
}

/// Its parameters drawn now (burn draws them lazily, from a random source that tests running
/// in parallel share), so that clones start from the same values.
fn two(d: &Device) -> Two {
    use burn::nn::LinearConfig;
    let m = Two { a: LinearConfig::new(7, 5).init(d), b: LinearConfig::new(5, 3).init(d) };
    let _ = params(&m);
    m
}

/// The module and optimiser after the SGD steps `steps` on a fixed loss, from `m` and `opt`.
fn train(mut opt: burn::optim::ModuleOptimizer, mut m: Two, steps: std::ops::Range<usize>, d: &Device) -> (Two, burn::optim::ModuleOptimizer) {
    use burn::optim::GradientsParams;
    for s in steps {
        let x = Tensor::<2>::from_data(TensorData::new((0..28).map(|i| ((i * 13 + s * 7) % 17) as f32 / 8.0 - 1.0).collect::<Vec<f32>>(), [4, 7]), d);
        let y = m.b.forward(relu(m.a.forward(x)));
        let grads = GradientsParams::from_grads((y.clone() * y).sum().backward(), &m);
        m = opt.step(0.05 + 0.01 * s as f64, m, grads);
    }
    (m, opt)
}

fn params(m: &Two) -> Vec<f32> {
    [vals(m.a.weight.val()), vals(m.a.bias.as_ref().unwrap().val()), vals(m.b.weight.val()), vals(m.b.bias.as_ref().unwrap().val())].concat()
}

#[test]
fn cohorts_sgd_gives_the_same_bits_as_burns_and_shares_its_records() {
    let _rng = crate::common::rng();
    use burn::optim::decay::WeightDecayConfig;
    use burn::optim::momentum::MomentumConfig;
    use burn::optim::{ModuleOptimizer, SgdConfig};
    use cohort::engine::sgd::{Momentum, Sgd};
    let d = Device::flex().autodiff();
    for (momentum, dampening, nesterov, decay) in
        [(0.9, 0.0, false, None), (0.9, 0.3, false, Some(5e-3f32)), (0.8, 0.0, true, Some(1e-2)), (0.0, 0.0, false, Some(1e-2))]
    {
        let burn = || {
            SgdConfig::new()
                .with_momentum((momentum > 0.0).then(|| MomentumConfig::new().with_momentum(momentum).with_dampening(dampening).with_nesterov(nesterov)))
                .with_weight_decay(decay.map(WeightDecayConfig::new))
                .init()
        };
        let ours = || {
            ModuleOptimizer::from(Sgd {
                momentum: (momentum > 0.0).then_some(Momentum { momentum: momentum as f32, dampening, nesterov }),
                weight_decay: decay,
            })
        };
        let case = format!("momentum {momentum}, dampening {dampening}, nesterov {nesterov}, decay {decay:?}");
        let init = two(&d);
        let (want, _) = train(burn(), init.clone(), 0..5, &d);
        let (got, _) = train(ours(), init.clone(), 0..5, &d);
        assert_eq!(params(&got), params(&want), "{case}: 5 steps");
        assert_ne!(params(&got), params(&init), "{case}: the parameters moved");
        // a record written by burn's Sgd after 3 steps resumes in cohort's, and the other way
        let (half, burn_half) = train(burn(), init.clone(), 0..3, &d);
        let (resumed, _) = train(ours().load_record(burn_half.to_record()), half, 3..5, &d);
        assert_eq!(params(&resumed), params(&want), "{case}: burn's record in cohort's Sgd");
        let (half, ours_half) = train(ours(), init.clone(), 0..3, &d);
        let (back, _) = train(burn().load_record(ours_half.to_record()), half, 3..5, &d);
        assert_eq!(params(&back), params(&want), "{case}: cohort's record in burn's Sgd");
    }
}

#[test]
fn linear_matches_burns_linear_and_its_gradients() {
    let _rng = crate::common::rng();
    use burn::nn::LinearConfig;
    let d = Device::flex().autodiff();
    d.seed(8);
    for [b, i, o] in [[5, 7, 3], [1, 4, 9], [33, 16, 1]] {
        let layer = LinearConfig::new(i, o).init(&d);
        let x = Tensor::<2>::random([b, i], Distribution::Normal(0.0, 1.0), &d);
        let r = Tensor::<2>::random([b, o], Distribution::Normal(0.0, 1.0), &d);
        let run = |ours: bool| {
            let x = x.clone().require_grad();
            let y = if ours { kernels::linear(&layer, x.clone()) } else { layer.forward(x.clone()) };
            let g = (y.clone() * r.clone()).sum().backward();
            let db = vals(layer.bias.as_ref().unwrap().grad(&g).unwrap());
            [vals(y), vals(x.grad(&g).unwrap()), vals(layer.weight.grad(&g).unwrap()), db]
        };
        let (ours, burn) = (run(true), run(false));
        for (name, (p, q)) in ["y", "dx", "dW", "dbias"].iter().zip(ours.iter().zip(&burn)) {
            close(&format!("{name} for {:?}", [b, i, o]), p, q, 1e-5);
        }
        // an input without gradient (data): only the parameters' gradients
        let g = (kernels::linear(&layer, x.clone()) * r.clone()).sum().backward();
        close("dW without dx", &vals(layer.weight.grad(&g).unwrap()), &burn[2], 1e-5);
    }
}

/// Two batch norms with the same (random, non-trivial) γ and β and their own running statistics.
fn bn_pair(c: usize, d: &Device) -> (burn::nn::BatchNorm, burn::nn::BatchNorm) {
    let gamma = Tensor::<1>::random([c], Distribution::Uniform(0.5, 1.5), d);
    let beta = Tensor::<1>::random([c], Distribution::Normal(0.0, 1.0), d);
    let make = || {
        let mut bn = burn::nn::BatchNormConfig::new(c).with_momentum(0.3).init(d);
        bn.gamma = burn::module::Param::from_tensor(gamma.clone());
        bn.beta = burn::module::Param::from_tensor(beta.clone());
        bn
    };
    (make(), make())
}

/// Output, the gradients of `Σ y·r` for x, γ and β, and the running mean and variance after
/// the pass.
fn bn_run<const D: usize>(bn: &burn::nn::BatchNorm, x: &Tensor<D>, r: &Tensor<D>, ours: bool) -> [Vec<f32>; 6] {
    let x = x.clone().require_grad();
    let y = if ours { kernels::batch_norm(bn, x.clone()) } else { bn.forward(x.clone()) };
    let g: Gradients = (y.clone() * r.clone()).sum().backward();
    [
        vals(y),
        vals(x.grad(&g).unwrap()),
        vals(bn.gamma.grad(&g).unwrap()),
        vals(bn.beta.grad(&g).unwrap()),
        vals(bn.running_mean.value()),
        vals(bn.running_var.value()),
    ]
}

#[test]
fn batch_norm_matches_burns_batch_norm_its_gradients_and_running_statistics() {
    let _rng = crate::common::rng();
    let d = Device::flex().autodiff();
    d.seed(31);
    let names = ["y", "dx", "dγ", "dβ", "running mean", "running var"];
    let check = |what: String, ours: [Vec<f32>; 6], burn: [Vec<f32>; 6]| {
        for (name, (p, q)) in names.iter().zip(ours.iter().zip(&burn)) {
            close(&format!("{name} for {what}"), p, q, 1e-4);
        }
    };
    for dims in [[5, 3, 4, 4], [4, 16, 8, 8], [3, 2, 1, 5]] {
        let (a, b) = bn_pair(dims[1], &d);
        let x = Tensor::<4>::random(dims, Distribution::Normal(0.7, 2.0), &d);
        let r = Tensor::<4>::random(dims, Distribution::Normal(0.0, 1.0), &d);
        check(format!("{dims:?}"), bn_run(&a, &x, &r, true), bn_run(&b, &x, &r, false));
        // a second pass on the updated running statistics
        check(format!("{dims:?}, second pass"), bn_run(&a, &x, &r, true), bn_run(&b, &x, &r, false));
    }
    // [B, C] (ONE's gate)
    let (a, b) = bn_pair(3, &d);
    let x = Tensor::<2>::random([7, 3], Distribution::Normal(-1.0, 3.0), &d);
    let r = Tensor::<2>::random([7, 3], Distribution::Normal(0.0, 1.0), &d);
    check("[7, 3]".into(), bn_run(&a, &x, &r, true), bn_run(&b, &x, &r, false));
    // evaluation (no autodiff): burn's inference path, the running statistics untouched
    let (a, _) = bn_pair(3, &d);
    let a = a.valid();
    let x = Tensor::<2>::random([7, 3], Distribution::Normal(0.0, 1.0), &Device::flex());
    assert_eq!(vals(kernels::batch_norm(&a, x.clone())), vals(a.forward(x)));
    assert_eq!(vals(a.running_mean.value()), vec![0.0; 3]);
}

/// One channel of `xs` `[B, C, S]` as the formula tests compute it, in f64: its entries' indices,
/// their count N, mean μ, biased variance σ² and `1/√(σ² + ε)`.
struct ChannelStats {
    idx: Vec<usize>,
    n: f64,
    mu: f64,
    var: f64,
    inv: f64,
}

fn channel_stats(xs: &[f32], [b, c, s]: [usize; 3], ch: usize, eps: f64) -> ChannelStats {
    let idx: Vec<usize> = (0..b).flat_map(|bi| (0..s).map(move |si| (bi * c + ch) * s + si)).collect();
    let n = idx.len() as f64;
    let mu = idx.iter().map(|&i| xs[i] as f64).sum::<f64>() / n;
    let var = idx.iter().map(|&i| (xs[i] as f64 - mu).powi(2)).sum::<f64>() / n;
    ChannelStats { idx, n, mu, var, inv: 1.0 / (var + eps).sqrt() }
}

#[test]
fn batch_norm_matches_the_formula_written_out() {
    let _rng = crate::common::rng();
    // per channel: μ = mean x, σ² = mean (x − μ)², x̂ = (x − μ)/√(σ² + ε), y = γ·x̂ + β; for
    // L = Σ y·r: dβ = Σ r, dγ = Σ r·x̂, dx = γ/√(σ² + ε)·(r − mean r − x̂·mean(r·x̂)),
    // all in f64 here
    let [b, c, s] = [3usize, 2, 5];
    let xs: Vec<f32> = (0..b * c * s).map(|i| ((i * 7 % 11) as f32 - 5.0) / 3.0).collect();
    let rs: Vec<f32> = (0..b * c * s).map(|i| ((i * 5 % 13) as f32 - 6.0) / 4.0).collect();
    let (gamma, beta, eps) = ([1.5f32, -0.5], [0.25f32, 2.0], 1e-5f64);
    let (y, mean, var) = kernels::cpu::batch_norm_forward(&xs, [b, c, s], &gamma, &beta, eps, kernels::cpu::BnTail::Plain);
    let (dx, dgamma, dbeta, dres) = kernels::cpu::batch_norm_backward(&xs, [b, c, s], &gamma, &mean, &var, eps, &rs, kernels::cpu::BnTailGrad::Plain);
    assert!(dres.is_none(), "no residual, no residual gradient");
    for ch in 0..c {
        let ChannelStats { idx, n, mu, var: var64, inv } = channel_stats(&xs, [b, c, s], ch, eps);
        let xhat = |i: usize| (xs[i] as f64 - mu) * inv;
        let db: f64 = idx.iter().map(|&i| rs[i] as f64).sum();
        let dg: f64 = idx.iter().map(|&i| rs[i] as f64 * xhat(i)).sum();
        close(&format!("μ[{ch}]"), &[mean[ch]], &[mu as f32], 1e-6);
        close(&format!("σ²[{ch}]"), &[var[ch]], &[var64 as f32], 1e-6);
        close(&format!("dβ[{ch}]"), &[dbeta[ch]], &[db as f32], 1e-6);
        close(&format!("dγ[{ch}]"), &[dgamma[ch]], &[dg as f32], 1e-5);
        for &i in &idx {
            let want_y = gamma[ch] as f64 * xhat(i) + beta[ch] as f64;
            let want_dx = gamma[ch] as f64 * inv * (rs[i] as f64 - db / n - xhat(i) * dg / n);
            close(&format!("y[{i}]"), &[y[i]], &[want_y as f32], 1e-5);
            close(&format!("dx[{i}]"), &[dx[i]], &[want_dx as f32], 1e-5);
        }
    }
}

/// Output, the gradients of `Σ y·q` for x, γ, β (and the residual), and the running statistics,
/// for `relu(bn(x))` (no residual) or `relu(bn(x) + residual)`: cohort's fused kernels or burn's
/// ops.
fn bn_relu_run<const D: usize>(bn: &burn::nn::BatchNorm, x: &Tensor<D>, residual: Option<&Tensor<D>>, q: &Tensor<D>, ours: bool) -> Vec<Vec<f32>> {
    let x = x.clone().require_grad();
    let residual = residual.map(|r| r.clone().require_grad());
    let y = match (&residual, ours) {
        (None, true) => kernels::batch_norm_relu(bn, x.clone()),
        (None, false) => relu(bn.forward(x.clone())),
        (Some(r), true) => kernels::batch_norm_add_relu(bn, x.clone(), r.clone()),
        (Some(r), false) => relu(bn.forward(x.clone()) + r.clone()),
    };
    let g: Gradients = (y.clone() * q.clone()).sum().backward();
    let mut out = vec![
        vals(y),
        vals(x.grad(&g).unwrap()),
        vals(bn.gamma.grad(&g).unwrap()),
        vals(bn.beta.grad(&g).unwrap()),
        vals(bn.running_mean.value()),
        vals(bn.running_var.value()),
    ];
    if let Some(r) = residual {
        out.push(vals(r.grad(&g).unwrap()));
    }
    out
}

#[test]
fn fused_batch_norm_relu_and_residual_match_burns_ops_and_their_gradients() {
    let _rng = crate::common::rng();
    let d = Device::flex().autodiff();
    d.seed(37);
    let names = ["y", "dx", "dγ", "dβ", "running mean", "running var", "d residual"];
    for dims in [[5, 3, 4, 4], [4, 16, 8, 8], [3, 2, 1, 5]] {
        let x = Tensor::<4>::random(dims, Distribution::Normal(0.3, 2.0), &d);
        let residual = Tensor::<4>::random(dims, Distribution::Normal(0.0, 1.0), &d);
        let q = Tensor::<4>::random(dims, Distribution::Normal(0.0, 1.0), &d);
        for with_residual in [false, true] {
            let (a, b) = bn_pair(dims[1], &d);
            let r = with_residual.then_some(&residual);
            for pass in ["first pass", "second pass"] {
                let (ours, burn) = (bn_relu_run(&a, &x, r, &q, true), bn_relu_run(&b, &x, r, &q, false));
                assert_eq!(ours.len(), burn.len());
                for (name, (p, w)) in names.iter().zip(ours.iter().zip(&burn)) {
                    close(&format!("{name} for {dims:?}, residual {with_residual}, {pass}"), p, w, 1e-4);
                }
                // the ReLU cut something off, so the gate was exercised (16 channels of 256
                // values: some below 0 and some above whatever γ and β were drawn; in the small
                // cases a channel may fall wholly on one side)
                if dims[1] == 16 {
                    assert!(ours[0].contains(&0.0) && ours[0].iter().any(|&v| v > 0.0), "{dims:?}: the ReLU passed or cut everything");
                }
            }
        }
    }
    // [B, C] (ONE's gate on the CIFAR ResNets: a linear layer, BN, ReLU)
    let x = Tensor::<2>::random([9, 4], Distribution::Normal(0.0, 1.0), &d);
    let q = Tensor::<2>::random([9, 4], Distribution::Normal(0.0, 1.0), &d);
    let (a, b) = bn_pair(4, &d);
    for (name, (p, w)) in names.iter().zip(bn_relu_run(&a, &x, None, &q, true).iter().zip(&bn_relu_run(&b, &x, None, &q, false))) {
        close(&format!("{name} for [9, 4]"), p, w, 1e-4);
    }
    // a NaN in the input still shows in the output (and does not stop the pass)
    let (a, _) = bn_pair(2, &d);
    let mut xs = vec![0.5f32; 2 * 2 * 3];
    xs[4] = f32::NAN;
    let x = Tensor::<4>::from_data(TensorData::new(xs, [2, 2, 3, 1]), &d);
    assert!(vals(kernels::batch_norm_relu(&a, x.clone())).iter().any(|v| v.is_nan()));
    assert!(vals(kernels::batch_norm_add_relu(&a, x.clone(), x.zeros_like())).iter().any(|v| v.is_nan()));
}

#[test]
fn fused_batch_norm_tails_match_the_formula_written_out() {
    let _rng = crate::common::rng();
    // y = max(0, γ·x̂ + β + r) per channel; for L = Σ y·q: δ = q where y > 0 (else 0),
    // dβ = Σ δ, dγ = Σ δ·x̂, dx = γ/√(σ² + ε)·(δ − mean δ − x̂·mean(δ·x̂)), dr = δ; in f64 here
    use kernels::cpu::{BnTail, BnTailGrad, batch_norm_backward, batch_norm_forward};
    let [b, c, s] = [3usize, 2, 5];
    let xs: Vec<f32> = (0..b * c * s).map(|i| ((i * 7 % 11) as f32 - 5.0) / 3.0).collect();
    let qs: Vec<f32> = (0..b * c * s).map(|i| ((i * 5 % 13) as f32 - 6.0) / 4.0).collect();
    let rs: Vec<f32> = (0..b * c * s).map(|i| ((i * 3 % 7) as f32 - 3.0) / 5.0).collect();
    let (gamma, beta, eps) = ([1.5f32, -0.5], [0.25f32, 0.5], 1e-5f64);
    for residual in [false, true] {
        let tail = if residual { BnTail::AddRelu(&rs) } else { BnTail::Relu };
        let (y, mean, var) = batch_norm_forward(&xs, [b, c, s], &gamma, &beta, eps, tail);
        let grad_tail = if residual { BnTailGrad::AddRelu(&y) } else { BnTailGrad::Relu(&beta) };
        let (dx, dgamma, dbeta, dres) = batch_norm_backward(&xs, [b, c, s], &gamma, &mean, &var, eps, &qs, grad_tail);
        assert_eq!(dres.is_some(), residual);
        for ch in 0..c {
            let ChannelStats { idx, n, mu, var: var64, inv } = channel_stats(&xs, [b, c, s], ch, eps);
            let xhat = |i: usize| (xs[i] as f64 - mu) * inv;
            let pre = |i: usize| gamma[ch] as f64 * xhat(i) + beta[ch] as f64 + if residual { rs[i] as f64 } else { 0.0 };
            let delta = |i: usize| if pre(i) > 0.0 { qs[i] as f64 } else { 0.0 };
            let db: f64 = idx.iter().map(|&i| delta(i)).sum();
            let dg: f64 = idx.iter().map(|&i| delta(i) * xhat(i)).sum();
            close(&format!("μ[{ch}]"), &[mean[ch]], &[mu as f32], 1e-6);
            close(&format!("σ²[{ch}]"), &[var[ch]], &[var64 as f32], 1e-6);
            close(&format!("dβ[{ch}], residual {residual}"), &[dbeta[ch]], &[db as f32], 1e-6);
            close(&format!("dγ[{ch}], residual {residual}"), &[dgamma[ch]], &[dg as f32], 1e-5);
            for &i in &idx {
                let want_dx = gamma[ch] as f64 * inv * (delta(i) - db / n - xhat(i) * dg / n);
                close(&format!("y[{i}], residual {residual}"), &[y[i]], &[pre(i).max(0.0) as f32], 1e-5);
                close(&format!("dx[{i}], residual {residual}"), &[dx[i]], &[want_dx as f32], 1e-5);
                if let Some(dr) = &dres {
                    close(&format!("dr[{i}]"), &[dr[i]], &[delta(i) as f32], 0.0);
                }
            }
        }
    }
}

#[test]
fn batch_statistics_keep_their_precision_far_from_zero() {
    let _rng = crate::common::rng();
    // a channel at 1000 + small noise: E[x²] − μ² in f32 would lose the variance entirely
    use kernels::cpu::{BnTail, batch_norm_forward};
    let [b, c, s] = [4usize, 1, 64];
    let xs: Vec<f32> = (0..b * c * s).map(|i| 1000.0 + ((i * 7 % 11) as f32 - 5.0) / 100.0).collect();
    let mu = xs.iter().map(|&v| v as f64).sum::<f64>() / xs.len() as f64;
    let var = xs.iter().map(|&v| (v as f64 - mu).powi(2)).sum::<f64>() / xs.len() as f64;
    let (_, mean, v) = batch_norm_forward(&xs, [b, c, s], &[1.0], &[0.0], 1e-5, BnTail::Plain);
    close("μ", &mean, &[mu as f32], 1e-7);
    assert!((v[0] as f64 - var).abs() <= 1e-4 * var, "σ² {} vs {var}", v[0]);
}

/// The depthwise kernel's sums in the order its docs state, written out as plain loops over
/// every output and window tap (the scatter form: each output adds its window's terms to `dx`;
/// `dW` sums images, then positions — for a "same" stride-1 convolution in 16 lanes over
/// zero-padded planes, images then positions, the lanes summed at the end): the kernel — which adds a tap at a time across rows or whole
/// planes, gathers stride-1 `dx` and recomputes edge columns — gives these bits exactly, for 3×3
/// stride 1 and 2, 5×5, no padding, odd sizes, planes of one row or column.
#[test]
fn depthwise_kernel_adds_in_its_stated_order() {
    use kernels::ConvGeom;
    use kernels::cpu::{depthwise_backward, depthwise_forward};
    for (k, s, p, [b, c, h, w]) in [
        (3, 1, 1, [2, 3, 7, 9]),
        (3, 2, 1, [2, 3, 8, 7]),
        (5, 1, 2, [1, 2, 6, 11]),
        (3, 1, 0, [2, 2, 5, 6]),
        (3, 2, 0, [1, 2, 9, 9]),
        (3, 1, 1, [2, 2, 1, 5]),
        (3, 1, 1, [1, 2, 6, 1]),
        (5, 1, 2, [1, 1, 3, 2]),
        (3, 1, 1, [1, 1, 33, 34]),
    ] {
        let g = ConvGeom::square(k, s, p);
        let [oh, ow] = g.out_size([h, w]);
        let fill = |n: usize, m: usize| (0..n).map(|i| (((i * m + 3) % 29) as f32 - 14.0) / 7.3).collect::<Vec<f32>>();
        let (x, wt, bias, gr) = (fill(b * c * h * w, 7), fill(c * k * k, 5), fill(c, 3), fill(b * c * oh * ow, 11));
        let at = |i: usize, u: usize, n: usize| (i * s + u).checked_sub(p).filter(|&r| r < n);
        let (mut y, mut dx, mut dw, mut db) = (vec![0f32; gr.len()], vec![0f32; x.len()], vec![0f32; wt.len()], vec![0f32; c]);
        for plane in 0..b * c {
            let ch = plane % c;
            for i in 0..oh {
                for j in 0..ow {
                    let mut acc = 0f32;
                    let gv = gr[(plane * oh + i) * ow + j];
                    for u in 0..k {
                        for v in 0..k {
                            if let (Some(r), Some(q)) = (at(i, u, h), at(j, v, w)) {
                                acc += wt[ch * k * k + u * k + v] * x[(plane * h + r) * w + q];
                                dx[(plane * h + r) * w + q] += gv * wt[ch * k * k + u * k + v];
                            }
                        }
                    }
                    y[(plane * oh + i) * ow + j] = acc + bias[ch];
                }
            }
        }
        // dW of a "same" stride-1 convolution: the products over the zero-padded planes (the
        // gradient W + 2p wide) in 16 lanes by flat index mod 16, images in order, each tap's
        // lanes summed pairwise (8, 4, 2, 1) at the end; else every term in order of images,
        // positions
        let same = s == 1 && k == 2 * p + 1;
        let wp = w + 2 * p;
        for ch in 0..c {
            let mut lanes = vec![[0f32; 16]; k * k];
            for bi in 0..b {
                let plane = bi * c + ch;
                if same {
                    let n = ((h - 1) * wp + w).div_ceil(16) * 16;
                    let gpad = |m: usize| if m % wp < w && m / wp < h { gr[(plane * h + m / wp) * w + m % wp] } else { 0.0 };
                    let xpad = |r: usize, q: usize| if r >= p && r < h + p && q >= p && q < w + p { x[(plane * h + r - p) * w + q - p] } else { 0.0 };
                    for m in 0..n {
                        for u in 0..k {
                            for v in 0..k {
                                let q = m + u * wp + v;
                                lanes[u * k + v][m % 16] += gpad(m) * xpad(q / wp, q % wp);
                            }
                        }
                    }
                    for i in 0..oh * ow {
                        db[ch] += gr[plane * oh * ow + i];
                    }
                    continue;
                }
                for i in 0..oh {
                    for j in 0..ow {
                        let gv = gr[(plane * oh + i) * ow + j];
                        db[ch] += gv;
                        for u in 0..k {
                            for v in 0..k {
                                if let (Some(r), Some(q)) = (at(i, u, h), at(j, v, w)) {
                                    dw[ch * k * k + u * k + v] += gv * x[(plane * h + r) * w + q];
                                }
                            }
                        }
                    }
                }
            }
            if same {
                for (t, mut acc) in lanes.into_iter().enumerate() {
                    for half in [8, 4, 2, 1] {
                        for l in 0..half {
                            acc[l] += acc[l + half];
                        }
                    }
                    dw[ch * k * k + t] = acc[0];
                }
            }
        }
        let what = format!("k {k} stride {s} padding {p} {:?}", [b, c, h, w]);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&depthwise_forward(&x, [b, c, h, w], &wt, &bias, g)), bits(&y), "y, {what}");
        let (kdx, kdw, kdb) = depthwise_backward(&x, [b, c, h, w], &wt, &gr, g, true);
        assert_eq!(bits(&kdx.unwrap()), bits(&dx), "dx, {what}");
        assert_eq!(bits(&kdw), bits(&dw), "dW, {what}");
        assert_eq!(bits(&kdb), bits(&db), "dbias, {what}");
    }
}
