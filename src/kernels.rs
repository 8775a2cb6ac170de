//! Cohort's own CPU kernels on the flex backend for the small CNN's hot layers, with hand-written
//! backward passes, and for the SGD update (a burn backend extension for `Flex` and
//! `Autodiff<Flex>`).
//!
//! - [`conv3x3`]: 3×3 convolution, stride 1, zero padding 1 ("same"), one group, with bias:
//!   `y[b,o,i,j] = bias[o] + Σ_{c,u,v} W[o,c,u,v] · x[b,c,i+u−1,j+v−1]` (x = 0 outside).
//!   Per image the patches `P_b[(c,u,v), (i,j)] = x[b,c,i+u−1,j+v−1]` (`[C·9, H·W]`, small
//!   enough to stay in cache) give `Y_b = W·P_b`, one matrix product. Backward:
//!   `dW = Σ_b δ_b·P_bᵀ`, `dbias[o] = Σ_{b,i,j} δ[b,o,i,j]`, `dx_b = Pᵀ(Wᵀ·δ_b)` (the adjoint of
//!   the patch gather adds each patch entry back where it was read).
//! - [`relu_max_pool2x2`]: `y[b,c,i,j] = max(0, max_{u,v∈{0,1}} x[b,c,2i+u,2j+v])`, which is
//!   `max_pool2x2(relu(x))` (relu is monotone) in one pass over `x`. The gradient goes to the
//!   window's first maximum when it is positive, else nowhere — what burn's relu followed by its
//!   max-pool gives. A NaN in a window wins it, so divergence still shows in the output.
//! - [`linear`]: `y = x·W + bias` with the bias as the product's starting value; backward
//!   `dx = δ·Wᵀ`, `dW = xᵀ·δ` with the transposes as strides of one matrix product each (in
//!   burn's matmul backward a profile shows a copy and a zero-fill besides the products), and
//!   `dbias = Σ_b δ_b`.
//! - [`sgd_momentum`]: one SGD-with-momentum update of a parameter in a single pass, in place
//!   when the buffers are not shared, with burn_optim's order of operations (so the results are
//!   the same bits as burn's `Sgd`): `g ← p·λ + g` (weight decay λ), `v ← g·(1−τ) + v·μ`,
//!   `d ← v·μ + g` (Nesterov) or `v`, `p ← p − d·lr`, where burn's `Sgd` makes five to seven
//!   passes over the parameter.
//!
//! Why: burn-flex 0.22 has no convolution backward of its own; burn's default computes the
//! weight gradient as a convolution whose kernel is the output gradient, and flex's max-pool is a
//! generic 3-D kernel. `cargo bench --bench kernels` times each kernel against burn's op (README,
//! "Performance"): at batch 128, forward + backward, the 32→64-channel convolution on 14×14 takes
//! 23 ms against burn's 42, ReLU + max-pool on 32×28×28 8 ms against 19, the MLP's SGD update
//! 1.7 ms against 2.8.
//!
//! Results are deterministic for any thread count (tested): images are processed independently,
//! the convolution's weight gradient is summed over fixed chunks of images in chunk order, and the
//! matrix products split their output, never a sum.
//! Other backends, dtypes and layer shapes use burn's own ops (see [`conv`], [`relu_pool`],
//! [`linear`] and [`sgd_momentum`]).

use burn::nn::{Linear, PaddingConfig2d};
use burn::nn::conv::Conv2d;
use burn::nn::pool::MaxPool2d;
use burn::tensor::Tensor;
use burn::tensor::activation::relu;

/// `conv.forward(x)` — through [`conv3x3`] when it applies (flex, f32, 3×3, stride 1, padding 1,
/// dilation 1, one group, with bias), else burn's convolution.
pub fn conv(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    #[cfg(feature = "flex")]
    if conv_applies(conv, &x) {
        let bias = conv.bias.as_ref().expect("conv_applies checks the bias").val();
        return conv3x3(x, conv.weight.val(), bias);
    }
    conv.forward(x)
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

/// Whether `conv` is a 3×3 convolution with stride 1, dilation 1, one group and "same" padding
/// (the layers cohort's 3×3 kernels and [`crate::models::conv::first_conv`] compute).
pub fn is_same_3x3(conv: &Conv2d) -> bool {
    let plain_3x3 = conv.kernel_size == [3, 3] && conv.stride == [1, 1] && conv.dilation == [1, 1] && conv.groups == 1;
    plain_3x3 && matches!(conv.padding, PaddingConfig2d::Same | PaddingConfig2d::Explicit(1, 1, 1, 1))
}

/// Whether [`conv`] uses cohort's kernel for `conv` on `x`.
pub fn conv_applies(conv: &Conv2d, x: &Tensor<4>) -> bool {
    is_same_3x3(conv) && conv.bias.is_some() && on_flex_f32(x)
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
pub use flex::{conv3x3, linear2d, relu_max_pool2x2};

/// Plain-slice kernels (NCHW, contiguous f32), independent of burn; `flex` wraps them.
#[cfg(feature = "flex")]
pub mod cpu {
    use rayon::prelude::*;

    /// Images per partial weight gradient: the chunking (and so the summation order) is fixed,
    /// whatever the number of threads.
    const CHUNK: usize = 8;

    /// Window position of "no maximum above 0" in [`relu_max_pool2x2`]'s argmax.
    pub const NONE: u8 = u8::MAX;

    /// `dst[m×n] = lhs[m×k]·rhs[k×n]` (or `+=` with `accumulate`); each matrix given by its
    /// pointer, column stride and row stride (so transposes cost nothing).
    ///
    /// # Safety
    /// The pointers and strides must address valid `m×n`, `m×k` and `k×n` matrices, `dst` not
    /// overlapping the others.
    #[allow(clippy::too_many_arguments)]
    unsafe fn gemm(m: usize, n: usize, k: usize, dst: *mut f32, dst_cs: isize, dst_rs: isize, accumulate: bool, lhs: *const f32, lhs_cs: isize, lhs_rs: isize, rhs: *const f32, rhs_cs: isize, rhs_rs: isize) {
        // SAFETY: forwarded from the caller.
        unsafe {
            gemm::gemm(m, n, k, dst, dst_cs, dst_rs, accumulate, lhs, lhs_cs, lhs_rs, rhs, rhs_cs, rhs_rs, 1.0, 1.0, false, false, false, gemm::Parallelism::None);
        }
    }

    /// One image's 3×3 patches: `cols[(c·9 + u·3 + v)·H·W + i·W + j] = x[c, i+u−1, j+v−1]`, 0
    /// outside the image. `x`: `[C, H, W]`; `cols`: `[C·9, H·W]`.
    pub fn patches(x: &[f32], [c, h, w]: [usize; 3], cols: &mut [f32]) {
        let hw = h * w;
        for ci in 0..c {
            let plane = &x[ci * hw..(ci + 1) * hw];
            for u in 0..3 {
                for v in 0..3 {
                    let row = &mut cols[(ci * 9 + u * 3 + v) * hw..][..hw];
                    for (i, out) in row.chunks_exact_mut(w).enumerate() {
                        let Some(si) = (i + u).checked_sub(1).filter(|&si| si < h) else {
                            out.fill(0.0);
                            continue;
                        };
                        let src = &plane[si * w..(si + 1) * w];
                        match v {
                            0 => {
                                out[0] = 0.0;
                                out[1..].copy_from_slice(&src[..w - 1]);
                            }
                            1 => out.copy_from_slice(src),
                            _ => {
                                out[..w - 1].copy_from_slice(&src[1..]);
                                out[w - 1] = 0.0;
                            }
                        }
                    }
                }
            }
        }
    }

    /// The adjoint of [`patches`]: `dx[c, i+u−1, j+v−1] += dcols[(c,u,v), (i,j)]` inside the
    /// image (`dx` is overwritten).
    pub fn patches_adjoint(dcols: &[f32], [c, h, w]: [usize; 3], dx: &mut [f32]) {
        let hw = h * w;
        dx.fill(0.0);
        for ci in 0..c {
            let plane = &mut dx[ci * hw..(ci + 1) * hw];
            for u in 0..3 {
                for v in 0..3 {
                    let row = &dcols[(ci * 9 + u * 3 + v) * hw..][..hw];
                    for (i, src) in row.chunks_exact(w).enumerate() {
                        let Some(si) = (i + u).checked_sub(1).filter(|&si| si < h) else { continue };
                        let dst = &mut plane[si * w..(si + 1) * w];
                        let (d, s) = match v {
                            0 => (&mut dst[..w - 1], &src[1..]),
                            1 => (&mut dst[..], src),
                            _ => (&mut dst[1..], &src[..w - 1]),
                        };
                        d.iter_mut().zip(s).for_each(|(d, s)| *d += s);
                    }
                }
            }
        }
    }

    /// 3×3 "same" convolution: `x` `[B, C, H, W]`, `weight` `[O, C, 3, 3]`, `bias` `[O]` →
    /// `[B, O, H, W]`, one image per task.
    pub fn conv3x3_forward(x: &[f32], [b, c, h, w]: [usize; 4], weight: &[f32], bias: &[f32]) -> Vec<f32> {
        let (hw, k, o) = (h * w, c * 9, bias.len());
        // the unsafe product below reads `weight` as [O, K]: checked here, so safe callers cannot
        // reach out-of-bounds reads (the other slices are taken with bounds checks)
        assert_eq!(weight.len(), o * k, "conv3x3_forward: weight is not [O, C, 3, 3] for {o} outputs and {c} channels");
        assert_eq!(x.len(), b * c * hw, "conv3x3_forward: x is not [B, C, H, W] = {:?}", [b, c, h, w]);
        let mut y = vec![0.0f32; b * o * hw];
        if y.is_empty() {
            return y;
        }
        y.par_chunks_mut(o * hw).enumerate().for_each_init(
            || vec![0.0f32; k * hw],
            |cols, (bi, yb)| {
                patches(&x[bi * c * hw..(bi + 1) * c * hw], [c, h, w], cols);
                for (row, &bo) in yb.chunks_exact_mut(hw).zip(bias) {
                    row.fill(bo);
                }
                // SAFETY: yb is [O, HW], weight [O, K], cols [K, HW], all row-major and in bounds.
                unsafe { gemm(o, hw, k, yb.as_mut_ptr(), 1, hw as isize, true, weight.as_ptr(), 1, k as isize, cols.as_ptr(), 1, hw as isize) };
            },
        );
        y
    }

    /// Gradients of [`conv3x3_forward`] given `grad` = ∂L/∂y `[B, O, H, W]`: `(dx, dW, dbias)`,
    /// `dx` only when `want_x`.
    pub fn conv3x3_backward(x: &[f32], [b, c, h, w]: [usize; 4], weight: &[f32], grad: &[f32], want_x: bool) -> (Option<Vec<f32>>, Vec<f32>, Vec<f32>) {
        let (hw, k) = (h * w, c * 9);
        let o = weight.len() / k.max(1);
        assert_eq!(x.len(), b * c * hw, "conv3x3_backward: x is not [B, C, H, W] = {:?}", [b, c, h, w]);
        if hw == 0 || k == 0 {
            return (want_x.then(|| vec![0.0; x.len()]), vec![0.0; weight.len()], vec![0.0; o]);
        }
        // the unsafe products below read `weight` as [O, K] (so by construction) and each
        // image's gradient as [O, H·W]
        assert_eq!(grad.len(), b * o * hw, "conv3x3_backward: grad is not [B, O, H, W] for {o} outputs");
        let partials: Vec<(Vec<f32>, Vec<f32>)> = (0..b.div_ceil(CHUNK))
            .into_par_iter()
            .map(|chunk| {
                let (mut dw, mut db, mut cols) = (vec![0.0f32; o * k], vec![0.0f32; o], vec![0.0f32; k * hw]);
                for bi in chunk * CHUNK..b.min((chunk + 1) * CHUNK) {
                    let g = &grad[bi * o * hw..(bi + 1) * o * hw];
                    patches(&x[bi * c * hw..(bi + 1) * c * hw], [c, h, w], &mut cols);
                    // dW[O, K] += δ_b [O, HW] · P_bᵀ [HW, K] (P_bᵀ[p, kk] = cols[kk·HW + p])
                    // SAFETY: dw [O, K], g [O, HW], cols [K, HW] read transposed, all in bounds.
                    unsafe { gemm(o, k, hw, dw.as_mut_ptr(), 1, k as isize, true, g.as_ptr(), 1, hw as isize, cols.as_ptr(), hw as isize, 1) };
                    for (d, row) in db.iter_mut().zip(g.chunks_exact(hw)) {
                        *d += row.iter().sum::<f32>();
                    }
                }
                (dw, db)
            })
            .collect();
        let (mut dw, mut db) = (vec![0.0f32; o * k], vec![0.0f32; o]);
        for (pw, pb) in &partials {
            dw.iter_mut().zip(pw).for_each(|(d, p)| *d += p);
            db.iter_mut().zip(pb).for_each(|(d, p)| *d += p);
        }
        let dx = want_x.then(|| {
            let mut dx = vec![0.0f32; b * c * hw];
            if !dx.is_empty() {
                dx.par_chunks_mut(c * hw).enumerate().for_each_init(
                    || vec![0.0f32; k * hw],
                    |dcols, (bi, dxb)| {
                        let g = &grad[bi * o * hw..(bi + 1) * o * hw];
                        // dP_b [K, HW] = Wᵀ [K, O] · δ_b [O, HW] (Wᵀ[kk, o] = weight[o·K + kk])
                        // SAFETY: dcols [K, HW], weight [O, K] read transposed, g [O, HW].
                        unsafe { gemm(k, hw, o, dcols.as_mut_ptr(), 1, hw as isize, false, weight.as_ptr(), k as isize, 1, g.as_ptr(), 1, hw as isize) };
                        patches_adjoint(dcols, [c, h, w], dxb);
                    },
                );
            }
            dx
        });
        (dx, dw, db)
    }

    /// ReLU then 2×2 max-pool with stride 2 (floor mode): `[B, C, H, W]` → `[B, C, H/2, W/2]`,
    /// with each output's window position (0..4, row-major) of its maximum, or [`NONE`] when no
    /// entry is above 0.
    pub fn relu_max_pool2x2_forward(x: &[f32], [b, c, h, w]: [usize; 4]) -> (Vec<f32>, Vec<u8>) {
        let (oh, ow) = (h / 2, w / 2);
        let mut y = vec![0.0f32; b * c * oh * ow];
        let mut arg = vec![NONE; y.len()];
        if y.is_empty() {
            return (y, arg);
        }
        y.par_chunks_mut(oh * ow).zip(arg.par_chunks_mut(oh * ow)).enumerate().for_each(|(plane, (yp, ap))| {
            let xp = &x[plane * h * w..(plane + 1) * h * w];
            for i in 0..oh {
                let (r0, r1) = (&xp[2 * i * w..(2 * i + 1) * w], &xp[(2 * i + 1) * w..(2 * i + 2) * w]);
                for j in 0..ow {
                    let window = [r0[2 * j], r0[2 * j + 1], r1[2 * j], r1[2 * j + 1]];
                    let (mut m, mut a) = (0.0f32, NONE);
                    for (t, &v) in window.iter().enumerate() {
                        if v > m || (v.is_nan() && !m.is_nan()) {
                            (m, a) = (v, t as u8);
                        }
                    }
                    yp[i * ow + j] = m;
                    ap[i * ow + j] = a;
                }
            }
        });
        (y, arg)
    }

    /// `x` `[B, I]` · `weight` `[I, O]` + `bias` `[O]` → `[B, O]`.
    pub fn linear_forward(x: &[f32], weight: &[f32], bias: &[f32]) -> Vec<f32> {
        let o = bias.len();
        let i = weight.len() / o.max(1);
        let b = x.len() / i.max(1);
        let mut y: Vec<f32> = (0..b).flat_map(|_| bias.iter().copied()).collect();
        // SAFETY: y [B, O], x [B, I], weight [I, O], row-major.
        unsafe { gemm_par(b, o, i, y.as_mut_ptr(), 1, o as isize, true, x.as_ptr(), 1, i as isize, weight.as_ptr(), 1, o as isize) };
        y
    }

    /// Gradients of [`linear_forward`] given `grad` = ∂L/∂y `[B, O]`: `(dx, dW, dbias)`, `dx`
    /// only when `want_x`: `dx = δ·Wᵀ`, `dW = xᵀ·δ`, `dbias = Σ_b δ_b` (transposes as strides).
    pub fn linear_backward(x: &[f32], weight: &[f32], grad: &[f32], o: usize, want_x: bool) -> (Option<Vec<f32>>, Vec<f32>, Vec<f32>) {
        let i = weight.len() / o.max(1);
        let b = x.len() / i.max(1);
        // the unsafe products below read `grad` as [B, O] (`x` and `weight` fit by construction)
        assert_eq!(grad.len(), b * o, "linear_backward: grad is not [B, O] = [{b}, {o}]");
        let mut dw = vec![0.0f32; i * o];
        // SAFETY: dw [I, O]; xᵀ[i, b] = x[b·I + i]; grad [B, O].
        unsafe { gemm_par(i, o, b, dw.as_mut_ptr(), 1, o as isize, false, x.as_ptr(), i as isize, 1, grad.as_ptr(), 1, o as isize) };
        let mut db = vec![0.0f32; o];
        for row in grad.chunks_exact(o.max(1)) {
            db.iter_mut().zip(row).for_each(|(d, g)| *d += g);
        }
        let dx = want_x.then(|| {
            let mut dx = vec![0.0f32; b * i];
            // SAFETY: dx [B, I]; grad [B, O]; Wᵀ[o, i] = weight[i·O + o].
            unsafe { gemm_par(b, i, o, dx.as_mut_ptr(), 1, i as isize, false, grad.as_ptr(), 1, o as isize, weight.as_ptr(), o as isize, 1) };
            dx
        });
        (dx, dw, db)
    }

    /// [`gemm`] on the current rayon pool's threads.
    ///
    /// # Safety
    /// As [`gemm`].
    #[allow(clippy::too_many_arguments)]
    unsafe fn gemm_par(m: usize, n: usize, k: usize, dst: *mut f32, dst_cs: isize, dst_rs: isize, accumulate: bool, lhs: *const f32, lhs_cs: isize, lhs_rs: isize, rhs: *const f32, rhs_cs: isize, rhs_rs: isize) {
        let threads = rayon::current_num_threads();
        let parallelism = if threads > 1 { gemm::Parallelism::Rayon(threads) } else { gemm::Parallelism::None };
        // SAFETY: forwarded from the caller.
        unsafe {
            gemm::gemm(m, n, k, dst, dst_cs, dst_rs, accumulate, lhs, lhs_cs, lhs_rs, rhs, rhs_cs, rhs_rs, 1.0, 1.0, false, false, false, parallelism);
        }
    }

    /// One SGD-with-momentum step in place (module docs), elementwise in blocks.
    pub fn sgd_momentum(p: &mut [f32], g: &[f32], v: &mut [f32], s: super::SgdStep) {
        const BLOCK: usize = 1 << 14;
        assert!(p.len() == g.len() && p.len() == v.len(), "sgd_momentum: parameter, gradient and velocity differ in size");
        let step = |(p, v): (&mut [f32], &mut [f32]), g: &[f32]| {
            for ((p, v), &g) in p.iter_mut().zip(v.iter_mut()).zip(g) {
                let g = match s.decay {
                    Some(penalty) => *p * penalty + g,
                    None => g,
                };
                *v = g * s.keep + *v * s.momentum;
                let d = if s.nesterov { *v * s.momentum + g } else { *v };
                *p -= d * s.lr;
            }
        };
        p.par_chunks_mut(BLOCK).zip(v.par_chunks_mut(BLOCK)).zip(g.par_chunks(BLOCK)).for_each(|(pv, g)| step(pv, g));
    }

    /// Gradient of [`relu_max_pool2x2_forward`]: `grad` `[B, C, H/2, W/2]` → `[B, C, H, W]`.
    pub fn relu_max_pool2x2_backward(grad: &[f32], arg: &[u8], [b, c, h, w]: [usize; 4]) -> Vec<f32> {
        let (oh, ow) = (h / 2, w / 2);
        let mut dx = vec![0.0f32; b * c * h * w];
        if dx.is_empty() || oh * ow == 0 {
            return dx;
        }
        dx.par_chunks_mut(h * w).zip(grad.par_chunks(oh * ow)).zip(arg.par_chunks(oh * ow)).for_each(|((dxp, gp), ap)| {
            for i in 0..oh {
                for j in 0..ow {
                    let a = ap[i * ow + j];
                    if a != NONE {
                        let (u, v) = (a as usize / 2, a as usize % 2);
                        dxp[(2 * i + u) * w + 2 * j + v] = gp[i * ow + j];
                    }
                }
            }
        });
        dx
    }
}

#[cfg(feature = "flex")]
mod flex {
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
        /// See [`conv3x3`].
        fn conv3x3(x: FloatTensor<Self>, weight: FloatTensor<Self>, bias: FloatTensor<Self>) -> FloatTensor<Self>;
        /// See [`relu_max_pool2x2`].
        fn relu_max_pool2x2(x: FloatTensor<Self>) -> FloatTensor<Self>;
        /// See [`linear2d`].
        fn linear2d(x: FloatTensor<Self>, weight: FloatTensor<Self>, bias: FloatTensor<Self>) -> FloatTensor<Self>;
        /// See [`super::sgd_momentum`]; `decay` is used when `has_decay`.
        #[allow(clippy::too_many_arguments)]
        fn sgd_momentum(param: FloatTensor<Self>, grad: FloatTensor<Self>, velocity: FloatTensor<Self>, lr: f32, momentum: f32, keep: f32, nesterov: bool, decay: f32, has_decay: bool) -> (FloatTensor<Self>, FloatTensor<Self>);
    }

    /// 3×3 "same" convolution with bias (module docs): `x` `[B, C, H, W]`, `weight`
    /// `[O, C, 3, 3]`, `bias` `[O]` → `[B, O, H, W]`. Flex devices and f32 only.
    pub fn conv3x3(x: Tensor<4>, weight: Tensor<4>, bias: Tensor<1>) -> Tensor<4> {
        Tensor::from_dispatch(<Dispatch as CohortKernels>::conv3x3(x.into_dispatch(), weight.into_dispatch(), bias.into_dispatch()))
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

    /// See [`super::sgd_momentum`] (flex f32 tensors).
    pub(super) fn sgd_momentum_flex<const D: usize>(param: Tensor<D>, grad: Tensor<D>, velocity: Tensor<D>, s: super::SgdStep) -> (Tensor<D>, Tensor<D>) {
        let (p, v) = <Dispatch as CohortKernels>::sgd_momentum(param.into_dispatch(), grad.into_dispatch(), velocity.into_dispatch(), s.lr, s.momentum, s.keep, s.nesterov, s.decay.unwrap_or(0.0), s.decay.is_some());
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
    fn sgd_flex(param: FlexTensor, grad: FlexTensor, velocity: FlexTensor, lr: f32, momentum: f32, keep: f32, nesterov: bool, decay: f32, has_decay: bool) -> (FlexTensor, FlexTensor) {
        let grad = values(&grad);
        let (mut p, mut v) = (whole(param), whole(velocity));
        let s = super::SgdStep { lr, momentum, keep, nesterov, decay: has_decay.then_some(decay) };
        cpu::sgd_momentum(p.storage_mut::<f32>(), slice(&grad), v.storage_mut::<f32>(), s);
        (p, v)
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

    fn conv_forward(x: FlexTensor, weight: FlexTensor, bias: FlexTensor) -> FlexTensor {
        let (x, weight, bias) = (values(&x), values(&weight), values(&bias));
        let [b, c, h, w] = dims4(&x);
        let [o, wc, kh, kw] = dims4(&weight);
        assert!(wc == c && kh == 3 && kw == 3 && slice(&bias).len() == o, "conv3x3: weight must be [O, C, 3, 3] and bias [O]");
        tensor(cpu::conv3x3_forward(slice(&x), [b, c, h, w], slice(&weight), slice(&bias)), [b, o, h, w])
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
        fn conv3x3(x: FlexTensor, weight: FlexTensor, bias: FlexTensor) -> FlexTensor {
            conv_forward(x, weight, bias)
        }
        fn relu_max_pool2x2(x: FlexTensor) -> FlexTensor {
            pool_forward(x).0
        }
        fn linear2d(x: FlexTensor, weight: FlexTensor, bias: FlexTensor) -> FlexTensor {
            linear_forward(x, weight, bias)
        }
        fn sgd_momentum(param: FlexTensor, grad: FlexTensor, velocity: FlexTensor, lr: f32, momentum: f32, keep: f32, nesterov: bool, decay: f32, has_decay: bool) -> (FlexTensor, FlexTensor) {
            sgd_flex(param, grad, velocity, lr, momentum, keep, nesterov, decay, has_decay)
        }
    }

    /// The two affine ops, `y = f(x, W) + bias`, whose backward passes are written here.
    #[derive(Clone, Copy, Debug)]
    enum Affine {
        Conv3x3,
        Linear,
    }

    impl Affine {
        fn forward(self, x: FlexTensor, weight: FlexTensor, bias: FlexTensor) -> FlexTensor {
            match self {
                Affine::Conv3x3 => conv_forward(x, weight, bias),
                Affine::Linear => linear_forward(x, weight, bias),
            }
        }

        /// `(dx, dW, dbias)` for the output gradient `grad`, `dx` only when `want_x`.
        fn backward(self, x: &FlexTensor, weight: &FlexTensor, grad: &FlexTensor, want_x: bool) -> (Option<FlexTensor>, FlexTensor, FlexTensor) {
            let shaped = |values: Vec<f32>, shape: &[usize]| FlexTensor::from_data(TensorData::new(values, shape.to_vec()));
            let (dx, dw, db, x_shape, w_shape) = match self {
                Affine::Conv3x3 => {
                    let dims = dims4(x);
                    let (dx, dw, db) = cpu::conv3x3_backward(slice(x), dims, slice(weight), slice(grad), want_x);
                    (dx, dw, db, dims.to_vec(), dims4(weight).to_vec())
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
    fn affine<C: CheckpointStrategy>(op: Affine, x: FloatTensor<Autodiff<Flex, C>>, weight: FloatTensor<Autodiff<Flex, C>>, bias: FloatTensor<Autodiff<Flex, C>>) -> FloatTensor<Autodiff<Flex, C>> {
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

    impl<C: CheckpointStrategy> CohortKernels for Autodiff<Flex, C> {
        fn conv3x3(x: FloatTensor<Self>, weight: FloatTensor<Self>, bias: FloatTensor<Self>) -> FloatTensor<Self> {
            affine::<C>(Affine::Conv3x3, x, weight, bias)
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
        fn sgd_momentum(param: FloatTensor<Self>, grad: FloatTensor<Self>, velocity: FloatTensor<Self>, lr: f32, momentum: f32, keep: f32, nesterov: bool, decay: f32, has_decay: bool) -> (FloatTensor<Self>, FloatTensor<Self>) {
            let inner = <Self as AutodiffBackend>::inner;
            let (p, v) = sgd_flex(inner(param), inner(grad), inner(velocity), lr, momentum, keep, nesterov, decay, has_decay);
            (<Self as AutodiffBackend>::from_inner(p), <Self as AutodiffBackend>::from_inner(v))
        }
    }
}
