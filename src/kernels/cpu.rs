//! Plain-slice kernels (NCHW, contiguous f32), independent of burn; `flex.rs` wraps them as burn
//! operations with hand-written backward passes. Every public function checks the slice lengths
//! its unsafe matrix products rely on, so safe callers cannot read out of bounds.

use std::cell::RefCell;
use std::mem::MaybeUninit;

use rayon::prelude::*;

pub use super::ConvGeom;

/// Images per partial weight gradient: the chunking (and so the summation order) is fixed,
/// whatever the number of threads.
const CHUNK: usize = 8;

thread_local! {
    /// Each thread's buffer for one image's patches or their gradient ([`with_scratch`]).
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// `f(buffer)` with this thread's scratch buffer of `len` f32s, kept from call to call (a fresh
/// zeroed buffer per image or chunk cost a pass over memory, 3 % of a ResNet-32 step in a
/// profile). Its values are left over from earlier use: `f` must write every entry it reads. `f`
/// must not itself reach `with_scratch` (the matrix products inside run on the calling thread).
fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    SCRATCH.with(|buffer| {
        let mut buffer = buffer.borrow_mut();
        if buffer.len() < len {
            buffer.resize(len, 0.0);
        }
        f(&mut buffer[..len])
    })
}

/// Window position of "no maximum above 0" in [`relu_max_pool2x2`]'s argmax.
pub const NONE: u8 = u8::MAX;

/// `dst[m×n] = lhs[m×k]·rhs[k×n]` (or `+=` with `accumulate`); each matrix given by its
/// pointer, column stride and row stride (so transposes cost nothing).
///
/// # Safety
/// The pointers and strides must address valid `m×n`, `m×k` and `k×n` matrices, `dst` not
/// overlapping the others.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    dst_cs: isize,
    dst_rs: isize,
    accumulate: bool,
    lhs: *const f32,
    lhs_cs: isize,
    lhs_rs: isize,
    rhs: *const f32,
    rhs_cs: isize,
    rhs_rs: isize,
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        gemm::gemm(m, n, k, dst, dst_cs, dst_rs, accumulate, lhs, lhs_cs, lhs_rs, rhs, rhs_cs, rhs_rs, 1.0, 1.0, false, false, false, gemm::Parallelism::None);
    }
}

/// One image's 3×3 patches: `cols[(c·9 + u·3 + v)·H·W + i·W + j] = x[c, i+u−1, j+v−1]`, 0
/// outside the image. `x`: `[C, H, W]`; `cols`: `[C·9, H·W]`. Each channel is first copied into
/// a plane with a zero border of one pixel, so every row of patches is one plain copy.
pub fn patches(x: &[f32], [c, h, w]: [usize; 3], cols: &mut [f32]) {
    let (hw, pw) = (h * w, w + 2);
    let mut padded = vec![0.0f32; (h + 2) * pw];
    for ci in 0..c {
        for (prow, xrow) in padded[pw..].chunks_exact_mut(pw).zip(x[ci * hw..(ci + 1) * hw].chunks_exact(w)) {
            prow[1..=w].copy_from_slice(xrow);
        }
        for u in 0..3 {
            for v in 0..3 {
                let row = &mut cols[(ci * 9 + u * 3 + v) * hw..][..hw];
                for (i, out) in row.chunks_exact_mut(w).enumerate() {
                    copy_row(out, &padded[(i + u) * pw + v..][..w]);
                }
            }
        }
    }
}

/// `dst.copy_from_slice(src)` with the zoo's row lengths (8, 16, 32) known to the compiler,
/// which then moves them in registers instead of calling `memcpy` once per row.
#[inline(always)]
fn copy_row(dst: &mut [f32], src: &[f32]) {
    fn fixed<const N: usize>(dst: &mut [f32], src: &[f32]) {
        let (d, s): (&mut [f32; N], &[f32; N]) = (dst.try_into().expect("row lengths agree"), src.try_into().expect("row lengths agree"));
        *d = *s;
    }
    match dst.len() {
        8 => fixed::<8>(dst, src),
        16 => fixed::<16>(dst, src),
        32 => fixed::<32>(dst, src),
        _ => dst.copy_from_slice(src),
    }
}

/// The adjoint of [`patches`]: `dx[c, i+u−1, j+v−1] += dcols[(c,u,v), (i,j)]` inside the
/// image, added into `dx` (zeroed by the caller for the gradient itself). Each channel's
/// contributions are summed in the order (u, v, i, j) into a plane with a one-pixel border
/// (where those falling outside the image land and are dropped), so every row is one plain
/// addition; the plane's inside is then written to `dx` (every entry, as `0 + value`: the
/// bits of adding it into a zeroed `dx`, the entry-by-entry form's).
pub fn patches_adjoint(dcols: &[f32], [c, h, w]: [usize; 3], dx: &mut [MaybeUninit<f32>]) {
    let (hw, pw) = (h * w, w + 2);
    let mut padded = vec![0.0f32; (h + 2) * pw];
    for ci in 0..c {
        padded.fill(0.0);
        for u in 0..3 {
            for v in 0..3 {
                let row = &dcols[(ci * 9 + u * 3 + v) * hw..][..hw];
                for (i, src) in row.chunks_exact(w).enumerate() {
                    let dst = &mut padded[(i + u) * pw + v..][..w];
                    dst.iter_mut().zip(src).for_each(|(d, s)| *d += s);
                }
            }
        }
        for (xrow, prow) in dx[ci * hw..(ci + 1) * hw].chunks_exact_mut(w).zip(padded[pw..].chunks_exact(pw)) {
            xrow.iter_mut().zip(&prow[1..=w]).for_each(|(d, s)| {
                d.write(0.0 + s);
            });
        }
    }
}

/// Source index `n·stride + tap − padding` along `axis` (0 down, 1 across) of output position
/// `n` and kernel tap `tap`, when it falls inside `0..len`.
#[inline(always)]
fn source(n: usize, tap: usize, g: ConvGeom, axis: usize, len: usize) -> Option<usize> {
    (n * g.stride[axis] + tap).checked_sub(g.padding[axis]).filter(|&s| s < len)
}

/// One image's patches for any [`ConvGeom`] (kh×kw kernel, strides s_h, s_w, zero padding p_h,
/// p_w): `cols[(c·kh·kw + u·kw + v)·OH·OW + i·OW + j] = x[c, i·s_h+u−p_h, j·s_w+v−p_w]`, 0 outside
/// the image. `x`: `[C, H, W]`; `cols`: `[C·kh·kw, OH·OW]`. The 3×3 "same" geometry goes through
/// [`patches`] (the same values, written row by row).
pub fn patches_geom(x: &[f32], [c, h, w]: [usize; 3], g: ConvGeom, cols: &mut [f32]) {
    if g == ConvGeom::SAME_3X3 {
        return patches(x, [c, h, w], cols);
    }
    patches_any(x, [c, h, w], g, cols)
}

/// The output positions `j` whose source `j·s + v − p` (kernel tap `v`) falls inside `0..len`,
/// as the range `j0..j1`, for `n` outputs along `axis`.
#[inline(always)]
fn inside(n: usize, v: usize, g: ConvGeom, axis: usize, len: usize) -> std::ops::Range<usize> {
    let (s, p) = (g.stride[axis].max(1), g.padding[axis]);
    // j·s + v ≥ p ⇔ j ≥ ceil((p − v)/s); j·s + v − p < len ⇔ j < ceil((len + p − v)/s)
    let j0 = p.saturating_sub(v).div_ceil(s);
    let j1 = (len + p).saturating_sub(v).div_ceil(s).min(n);
    j0.min(j1)..j1
}

/// [`patches_geom`] for every geometry: per kernel tap and output row, the zero border and the
/// inside (a plain copy at stride 1, a strided gather otherwise).
fn patches_any(x: &[f32], [c, h, w]: [usize; 3], g: ConvGeom, cols: &mut [f32]) {
    let ([kh, kw], [oh, ow], hw) = (g.kernel, g.out_size([h, w]), h * w);
    let sw = g.stride[1];
    for ci in 0..c {
        let plane = &x[ci * hw..(ci + 1) * hw];
        for u in 0..kh {
            for v in 0..kw {
                let row = &mut cols[((ci * kh + u) * kw + v) * oh * ow..][..oh * ow];
                let js = inside(ow, v, g, 1, w);
                for (i, out) in row.chunks_exact_mut(ow).enumerate() {
                    let Some(si) = source(i, u, g, 0, h) else {
                        out.fill(0.0);
                        continue;
                    };
                    let src = &plane[si * w..(si + 1) * w];
                    out[..js.start].fill(0.0);
                    out[js.end..].fill(0.0);
                    if js.is_empty() {
                        continue;
                    }
                    // the source of j0 is j0·s + v − p (≥ 0 by construction)
                    let first = js.start * sw + v - g.padding[1];
                    if sw == 1 {
                        out[js.clone()].copy_from_slice(&src[first..first + js.len()]);
                    } else {
                        for (o, &x) in out[js.clone()].iter_mut().zip(src[first..].iter().step_by(sw)) {
                            *o = x;
                        }
                    }
                }
            }
        }
    }
}

/// The adjoint of [`patches_geom`], written to every entry of `dx` `[C, H, W]`:
/// `dx[c, y, x] = Σ dcols[(c,u,v), (i,j)]` over the taps reading `(y, x)` (`y = i·s_h+u−p_h`,
/// `x = j·s_w+v−p_w`), summed from 0 in the order (u, v, i, j).
pub fn patches_geom_adjoint(dcols: &[f32], [c, h, w]: [usize; 3], g: ConvGeom, dx: &mut [MaybeUninit<f32>]) {
    if g == ConvGeom::SAME_3X3 {
        return patches_adjoint(dcols, [c, h, w], dx);
    }
    dx.iter_mut().for_each(|v| {
        v.write(0.0);
    });
    // SAFETY: every entry was just written.
    let dx: &mut [f32] = unsafe { &mut *(dx as *mut [MaybeUninit<f32>] as *mut [f32]) };
    patches_any_adjoint(dcols, [c, h, w], g, dx)
}

/// [`patches_geom_adjoint`] for every geometry, added into `dx`: per kernel tap and output row,
/// the inside added back where it was read (in the order (u, v, i, j) of the entry-by-entry
/// form, so the same sums).
fn patches_any_adjoint(dcols: &[f32], [c, h, w]: [usize; 3], g: ConvGeom, dx: &mut [f32]) {
    let ([kh, kw], [oh, ow], hw) = (g.kernel, g.out_size([h, w]), h * w);
    let sw = g.stride[1];
    for ci in 0..c {
        let plane = &mut dx[ci * hw..(ci + 1) * hw];
        for u in 0..kh {
            for v in 0..kw {
                let row = &dcols[((ci * kh + u) * kw + v) * oh * ow..][..oh * ow];
                let js = inside(ow, v, g, 1, w);
                if js.is_empty() {
                    continue;
                }
                let first = js.start * sw + v - g.padding[1];
                for (i, src) in row.chunks_exact(ow).enumerate() {
                    let Some(si) = source(i, u, g, 0, h) else { continue };
                    let dst = &mut plane[si * w..(si + 1) * w];
                    if sw == 1 {
                        dst[first..first + js.len()].iter_mut().zip(&src[js.clone()]).for_each(|(d, s)| *d += s);
                    } else {
                        for (d, s) in dst[first..].iter_mut().step_by(sw).zip(&src[js.clone()]) {
                            *d += s;
                        }
                    }
                }
            }
        }
    }
}

/// Convolution with one group: `x` `[B, C, H, W]`, `weight` `[O, C, kh, kw]`, `bias` `[O]` →
/// `[B, O, OH, OW]` (`OH = (H + 2p_h − kh)/s_h + 1`, `OW` alike), one image per task: `Y_b = W·P_b + bias` with
/// `P_b` the image's patches ([`patches_geom`]); a 1×1 kernel with stride 1 and no padding
/// multiplies the image itself (its patches are the image).
pub fn conv2d_forward(x: &[f32], [b, c, h, w]: [usize; 4], weight: &[f32], bias: &[f32], g: ConvGeom) -> Vec<f32> {
    let (hw, ohw, k, o) = (h * w, g.out(0, h) * g.out(1, w), c * g.taps(), bias.len());
    // the unsafe product below reads `weight` as [O, K]: checked here, so safe callers cannot
    // reach out-of-bounds reads (the other slices are taken with bounds checks)
    assert_eq!(weight.len(), o * k, "conv2d_forward: weight is not [O, C, kh, kw] for {o} outputs, {c} channels and a {:?} kernel", g.kernel);
    assert_eq!(x.len(), b * c * hw, "conv2d_forward: x is not [B, C, H, W] = {:?}", [b, c, h, w]);
    let len = b * o * ohw;
    // each image's output is written once, bias then product, without zero-filling it first
    let mut y: Vec<f32> = Vec::with_capacity(len);
    if len == 0 {
        return y;
    }
    let identity = g.is_identity();
    y.spare_capacity_mut()[..len].par_chunks_mut(o * ohw).enumerate().for_each(|(bi, yb)| {
        for (row, &bo) in yb.chunks_exact_mut(ohw).zip(bias) {
            row.iter_mut().for_each(|v| {
                v.write(bo);
            });
        }
        // SAFETY: the loop above wrote all O·OHW elements of this image's output (`bias` has O
        // entries), so it may be viewed as initialised f32s.
        let yb: &mut [f32] = unsafe { &mut *(yb as *mut [MaybeUninit<f32>] as *mut [f32]) };
        let xb = &x[bi * c * hw..(bi + 1) * c * hw];
        // SAFETY: yb is [O, OHW], weight [O, K], p [K, OHW], all row-major and in bounds.
        let mut product =
            |p: &[f32]| unsafe { gemm(o, ohw, k, yb.as_mut_ptr(), 1, ohw as isize, true, weight.as_ptr(), 1, k as isize, p.as_ptr(), 1, ohw as isize) };
        if identity {
            product(xb)
        } else {
            with_scratch(k * ohw, |cols| {
                patches_geom(xb, [c, h, w], g, cols);
                product(cols)
            })
        }
    });
    // SAFETY: every image's chunk of the first `len` elements was written above.
    unsafe { y.set_len(len) };
    y
}

/// Gradients of [`conv2d_forward`] given `grad` = ∂L/∂y `[B, O, OH, OW]`: `(dx, dW, dbias)`,
/// `dx` only when `want_x`: `dW = Σ_b δ_b·P_bᵀ` (summed over fixed chunks of images in chunk
/// order), `dbias[o] = Σ δ[·,o,·,·]`, `dx_b = Pᵀ(Wᵀ·δ_b)`; the 3×3 "same" geometry through
/// the patches of δ instead ([`conv3x3_backward`]).
pub fn conv2d_backward(x: &[f32], [b, c, h, w]: [usize; 4], weight: &[f32], grad: &[f32], g: ConvGeom, want_x: bool) -> (Option<Vec<f32>>, Vec<f32>, Vec<f32>) {
    let (hw, ohw, k) = (h * w, g.out(0, h) * g.out(1, w), c * g.taps());
    let o = weight.len() / k.max(1);
    assert_eq!(x.len(), b * c * hw, "conv2d_backward: x is not [B, C, H, W] = {:?}", [b, c, h, w]);
    if ohw == 0 || k == 0 {
        return (want_x.then(|| vec![0.0; x.len()]), vec![0.0; weight.len()], vec![0.0; o]);
    }
    // the unsafe products below read `weight` as [O, K] (so by construction) and each
    // image's gradient as [O, OH·OW]
    assert_eq!(grad.len(), b * o * ohw, "conv2d_backward: grad is not [B, O, OH, OW] for {o} outputs");
    if g == ConvGeom::SAME_3X3 {
        return conv3x3_backward(x, [b, c, h, w], weight, grad, want_x);
    }
    let identity = g.is_identity();
    let partials: Vec<(Vec<f32>, Vec<f32>)> = (0..b.div_ceil(CHUNK))
        .into_par_iter()
        .map(|chunk| {
            let (mut dw, mut db) = (vec![0.0f32; o * k], vec![0.0f32; o]);
            with_scratch(if identity { 0 } else { k * ohw }, |cols| {
                for bi in chunk * CHUNK..b.min((chunk + 1) * CHUNK) {
                    let gb = &grad[bi * o * ohw..(bi + 1) * o * ohw];
                    let xb = &x[bi * c * hw..(bi + 1) * c * hw];
                    let p: &[f32] = if identity {
                        xb
                    } else {
                        patches_geom(xb, [c, h, w], g, cols);
                        cols
                    };
                    // dW[O, K] += δ_b [O, OHW] · P_bᵀ [OHW, K] (P_bᵀ[q, kk] = p[kk·OHW + q]), dW held
                    // column-major (dw[kk·O + o]): gemm then reads the patches in place instead of
                    // packing them (2.7× faster at 16 channels on 32×32, measured beside the row-major
                    // form; the weights' transpose is made once, below)
                    // SAFETY: dw [K, O] = dW column-major, gb [O, OHW], p [K, OHW] read transposed, all in bounds.
                    unsafe { gemm(o, k, ohw, dw.as_mut_ptr(), o as isize, 1, true, gb.as_ptr(), 1, ohw as isize, p.as_ptr(), ohw as isize, 1) };
                    for (d, row) in db.iter_mut().zip(gb.chunks_exact(ohw)) {
                        *d += row.iter().sum::<f32>();
                    }
                }
            });
            (dw, db)
        })
        .collect();
    let (dw_t, db) = sum_in_chunk_order(&partials);
    // [K, O] → [O, K]
    let mut dw = vec![0.0f32; o * k];
    for (kk, row) in dw_t.chunks_exact(o).enumerate() {
        for (oi, &v) in row.iter().enumerate() {
            dw[oi * k + kk] = v;
        }
    }
    let dx = want_x.then(|| {
        // written once, image by image, without zero-filling it first
        let len = b * c * hw;
        let mut dx: Vec<f32> = Vec::with_capacity(len);
        dx.spare_capacity_mut()[..len].par_chunks_mut(c * hw).enumerate().for_each(|(bi, dxb)| {
            let gb = &grad[bi * o * ohw..(bi + 1) * o * ohw];
            // dP_b [K, OHW] = Wᵀ [K, O] · δ_b [O, OHW] (Wᵀ[kk, o] = weight[o·K + kk]), written
            // (not accumulated: gemm does not read dst) to all K·OHW entries of `dst`
            let weight_t_delta = |dst: *mut f32| {
                // SAFETY: dst addresses K·OHW f32s (the callers'), weight [O, K] read transposed, gb [O, OHW].
                unsafe { gemm(k, ohw, o, dst, 1, ohw as isize, false, weight.as_ptr(), k as isize, 1, gb.as_ptr(), 1, ohw as isize) };
            };
            if identity {
                // a 1×1 identity kernel: dx_b is dP_b itself (K·OHW = C·HW entries)
                weight_t_delta(dxb.as_mut_ptr().cast::<f32>());
            } else {
                with_scratch(k * ohw, |dcols| {
                    weight_t_delta(dcols.as_mut_ptr());
                    patches_geom_adjoint(dcols, [c, h, w], g, dxb);
                });
            }
        });
        // SAFETY: every image's chunk was written above, by the product (all C·HW entries of
        // an identity kernel's chunk) or by the adjoint (every entry).
        unsafe { dx.set_len(len) };
        dx
    });
    (dx, dw, db)
}

/// The chunks' partial `(weight gradient, bias gradient)` added up from zero in chunk order (a
/// fixed order, whatever the number of threads).
fn sum_in_chunk_order(partials: &[(Vec<f32>, Vec<f32>)]) -> (Vec<f32>, Vec<f32>) {
    let (w, b) = partials.first().map_or((0, 0), |(w, b)| (w.len(), b.len()));
    let (mut dw, mut db) = (vec![0.0f32; w], vec![0.0f32; b]);
    for (pw, pb) in partials {
        dw.iter_mut().zip(pw).for_each(|(d, p)| *d += p);
        db.iter_mut().zip(pb).for_each(|(d, p)| *d += p);
    }
    (dw, db)
}

/// [`conv2d_backward`] of a 3×3 "same" convolution through the patches of the output gradient
/// instead of the input's: with `P_δ` the patches of `δ_b` ([`patches`] of `[O, H, W]`) and the
/// flipped, transposed kernel `W'[c, (o, u, v)] = W[o, c, 2−u, 2−v]`,
/// `dx_b = W'·P_δ` (a "same" convolution of δ with W': `dx[c,y,x] = Σ W[o,c,u,v]·δ[o,y−u+1,x−v+1]`)
/// and `dW'[c, (o,u,v)] = Σ_b X_b·P_δᵀ` (`dW[o,c,u,v] = Σ δ[o,y,x]·x[c,y+u−1,x+v−1]`, the
/// same pairs summed over the input's positions). One patch matrix per image serves both
/// products, where the input's patches (for dW) and the adjoint of the patch gather (for dx)
/// were two passes over as much memory. Images in fixed chunks of [`CHUNK`], the chunks' weight
/// gradients added in chunk order.
fn conv3x3_backward(x: &[f32], [b, c, h, w]: [usize; 4], weight: &[f32], grad: &[f32], want_x: bool) -> (Option<Vec<f32>>, Vec<f32>, Vec<f32>) {
    let hw = h * w;
    let o = weight.len() / (c * 9);
    let k = o * 9;
    // the products below read `weight` (through wf) as [C, O·9] and each image's x as [C, H·W]
    // and δ as [O, H·W]
    assert!(weight.len() == o * c * 9 && x.len() == b * c * hw && grad.len() == b * o * hw, "conv3x3_backward: shapes");
    // W'[c, o·9 + t] = W[o, c, 8 − t] (t = 3u + v; 8 − t = 3(2−u) + (2−v))
    let mut wf = vec![0.0f32; c * k];
    for oi in 0..o {
        for ci in 0..c {
            for t in 0..9 {
                wf[ci * k + oi * 9 + t] = weight[(oi * c + ci) * 9 + 8 - t];
            }
        }
    }
    let len = if want_x { b * c * hw } else { 0 };
    let mut dx: Vec<f32> = Vec::with_capacity(len);
    let chunks: Vec<Option<&mut [MaybeUninit<f32>]>> =
        if want_x { dx.spare_capacity_mut()[..len].chunks_mut(CHUNK * c * hw).map(Some).collect() } else { (0..b.div_ceil(CHUNK)).map(|_| None).collect() };
    let partials: Vec<(Vec<f32>, Vec<f32>)> = chunks
        .into_par_iter()
        .enumerate()
        .map(|(chunk, mut dx_chunk)| {
            // dW' column-major: dwt[j·C + c], j = o·9 + t (gemm then reads P_δ in place)
            let (mut dwt, mut db) = (vec![0.0f32; c * k], vec![0.0f32; o]);
            with_scratch(k * hw, |pd| {
                for bi in chunk * CHUNK..b.min((chunk + 1) * CHUNK) {
                    let gb = &grad[bi * o * hw..(bi + 1) * o * hw];
                    let xb = &x[bi * c * hw..(bi + 1) * c * hw];
                    patches(gb, [o, h, w], pd);
                    // SAFETY: dwt [K', C] = dW' column-major, xb [C, HW], pd [K', HW] read transposed, all in bounds.
                    unsafe { gemm(c, k, hw, dwt.as_mut_ptr(), c as isize, 1, true, xb.as_ptr(), 1, hw as isize, pd.as_ptr(), hw as isize, 1) };
                    for (d, row) in db.iter_mut().zip(gb.chunks_exact(hw)) {
                        *d += row.iter().sum::<f32>();
                    }
                    if let Some(dxc) = dx_chunk.as_deref_mut() {
                        let dxb = &mut dxc[(bi - chunk * CHUNK) * c * hw..][..c * hw];
                        // SAFETY: dxb holds C·HW entries, all written (accumulate false: not read);
                        // wf [C, K'], pd [K', HW], row-major.
                        unsafe {
                            gemm(c, hw, k, dxb.as_mut_ptr().cast::<f32>(), 1, hw as isize, false, wf.as_ptr(), 1, k as isize, pd.as_ptr(), 1, hw as isize)
                        };
                    }
                }
            });
            (dwt, db)
        })
        .collect();
    // SAFETY: with want_x every image's C·HW entries were written by its product above.
    unsafe { dx.set_len(len) };
    let (dwt, db) = sum_in_chunk_order(&partials);
    // dW[o, c, 8 − t] = dW'[c, o·9 + t] = dwt[(o·9 + t)·C + c]
    let mut dw = vec![0.0f32; o * c * 9];
    for oi in 0..o {
        for t in 0..9 {
            for ci in 0..c {
                dw[(oi * c + ci) * 9 + 8 - t] = dwt[(oi * 9 + t) * c + ci];
            }
        }
    }
    (want_x.then_some(dx), dw, db)
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

/// A 1-D convolution's batch laid out channel by channel, every sequence padded: `[C, B·L_p]`
/// with `L_p = L + 2p` rounded up to a multiple of the stride s, `x[b, c, j]` at column
/// `b·L_p + p + j`, zeros elsewhere. An output column `q = b·L_p/s + j` then reads columns
/// `q·s + v` for tap `v`: one offset and one stride per tap across the whole batch (the columns
/// `j ≥ L_out` between two sequences are computed and discarded).
fn conv1d_layout(x: &[f32], [b, c, l]: [usize; 3], pad: usize, lp: usize) -> Vec<f32> {
    let q = b * lp;
    let mut xp = vec![0.0f32; c * q];
    for bi in 0..b {
        for ci in 0..c {
            xp[ci * q + bi * lp + pad..][..l].copy_from_slice(&x[(bi * c + ci) * l..][..l]);
        }
    }
    xp
}

/// The sizes of a batch-wide 1-D convolution: `(L_p, L_out, N)`, the padded length per sequence
/// (a multiple of the stride), the outputs per sequence and the batch's output columns.
fn conv1d_sizes([b, l]: [usize; 2], k: usize, stride: usize, pad: usize) -> (usize, usize, usize) {
    let lp = (l + 2 * pad).div_ceil(stride) * stride;
    let lo = if l + 2 * pad >= k { (l + 2 * pad - k) / stride + 1 } else { 0 };
    let n = if b * lp >= k { (b * lp - k) / stride + 1 } else { 0 };
    (lp, lo, n)
}

/// 1-D convolution with bias and one group: `x` `[B, C, L]`, `weight` `[O, C, k]`, `bias` `[O]`,
/// stride s, padding p on both sides → `[B, O, L_out]`, `L_out = (L + 2p − k)/s + 1`. The whole
/// batch in k products (no patches): with the padded layout of [`conv1d_layout`],
/// `Y[:, q] = bias + Σ_v W_v·X[:, q·s + v]` (`W_v = weight[:, :, v]` read with strides), each
/// product `[O, C]·[C, N]` over the batch's N output columns, added in tap order.
pub fn conv1d_forward(x: &[f32], [b, c, l]: [usize; 3], weight: &[f32], bias: &[f32], k: usize, stride: usize, pad: usize) -> Vec<f32> {
    let o = bias.len();
    assert!(stride > 0, "conv1d_forward: stride 0");
    assert_eq!(weight.len(), o * c * k, "conv1d_forward: weight is not [O, C, k] for {o} outputs, {c} channels, k = {k}");
    assert_eq!(x.len(), b * c * l, "conv1d_forward: x is not [B, C, L] = {:?}", [b, c, l]);
    let (lp, lo, n) = conv1d_sizes([b, l], k, stride, pad);
    if b == 0 || o == 0 || lo == 0 {
        return vec![0.0; b * o * lo];
    }
    let (q, per) = (b * lp, lp / stride);
    let xp = conv1d_layout(x, [b, c, l], pad, lp);
    let mut yq = vec![0.0f32; o * n];
    for (row, &bo) in yq.chunks_exact_mut(n).zip(bias) {
        row.fill(bo);
    }
    for v in 0..k {
        // SAFETY: yq is [O, N] row-major; weight[o, c, v] at o·C·k + c·k + v; xp[c, q·s + v] for
        // q < N at c·Q + q·s + v ≤ c·Q + Q − 1: all in bounds.
        unsafe {
            gemm_sized(
                o,
                n,
                c,
                yq.as_mut_ptr(),
                1,
                n as isize,
                true,
                weight.as_ptr().add(v),
                k as isize,
                (c * k) as isize,
                xp.as_ptr().add(v),
                stride as isize,
                q as isize,
            )
        };
    }
    let mut y = vec![0.0f32; b * o * lo];
    for (bi, yb) in y.chunks_exact_mut(o * lo).enumerate() {
        for (oi, row) in yb.chunks_exact_mut(lo).enumerate() {
            row.copy_from_slice(&yq[oi * n + bi * per..][..lo]);
        }
    }
    y
}

/// Gradients of [`conv1d_forward`] given `grad` = ∂L/∂y `[B, O, L_out]`: `(dx, dW, dbias)`, `dx`
/// only when `want_x`. With `Δ` the gradient in the output's batch-wide layout (zeros in the
/// discarded columns): `dW_v = Δ·X_vᵀ` (one product over all the batch's columns per tap),
/// `dX[:, q·s + v] += W_vᵀ·Δ[:, q]` in tap order, `dbias[o] = Σ δ[·, o, ·]` (image by image).
#[allow(clippy::too_many_arguments)]
pub fn conv1d_backward(
    x: &[f32],
    [b, c, l]: [usize; 3],
    weight: &[f32],
    grad: &[f32],
    k: usize,
    stride: usize,
    pad: usize,
    want_x: bool,
) -> (Option<Vec<f32>>, Vec<f32>, Vec<f32>) {
    let o = weight.len() / (c * k).max(1);
    assert!(stride > 0, "conv1d_backward: stride 0");
    let (lp, lo, n) = conv1d_sizes([b, l], k, stride, pad);
    assert_eq!(x.len(), b * c * l, "conv1d_backward: x is not [B, C, L] = {:?}", [b, c, l]);
    assert_eq!(grad.len(), b * o * lo, "conv1d_backward: grad is not [B, O, L_out] for {o} outputs");
    if b == 0 || lo == 0 || o == 0 || c == 0 {
        return (want_x.then(|| vec![0.0; x.len()]), vec![0.0; weight.len()], vec![0.0; o]);
    }
    let (q, per) = (b * lp, lp / stride);
    let mut db = vec![0.0f32; o];
    let mut dq = vec![0.0f32; o * n];
    for (bi, gb) in grad.chunks_exact(o * lo).enumerate() {
        for (oi, row) in gb.chunks_exact(lo).enumerate() {
            dq[oi * n + bi * per..][..lo].copy_from_slice(row);
            db[oi] += row.iter().sum::<f32>();
        }
    }
    let xp = conv1d_layout(x, [b, c, l], pad, lp);
    let mut dw = vec![0.0f32; o * c * k];
    for v in 0..k {
        // SAFETY: dW_v [O, C] at dw[o·C·k + c·k + v]; Δ [O, N] row-major; X_vᵀ [N, C] at
        // xp[c·Q + q·s + v], q < N: all in bounds.
        unsafe {
            gemm_sized(
                o,
                c,
                n,
                dw.as_mut_ptr().add(v),
                k as isize,
                (c * k) as isize,
                false,
                dq.as_ptr(),
                1,
                n as isize,
                xp.as_ptr().add(v),
                q as isize,
                stride as isize,
            )
        };
    }
    let dx = want_x.then(|| {
        let mut dxp = vec![0.0f32; c * q];
        for v in 0..k {
            // SAFETY: dX's columns q·s + v [C, N] at dxp[c·Q + q·s + v], q < N; W_vᵀ [C, O] at
            // weight[o·C·k + c·k + v]; Δ [O, N]: all in bounds.
            unsafe {
                gemm_sized(
                    c,
                    n,
                    o,
                    dxp.as_mut_ptr().add(v),
                    stride as isize,
                    q as isize,
                    true,
                    weight.as_ptr().add(v),
                    (c * k) as isize,
                    k as isize,
                    dq.as_ptr(),
                    1,
                    n as isize,
                )
            };
        }
        let mut dx = vec![0.0f32; b * c * l];
        for bi in 0..b {
            for ci in 0..c {
                dx[(bi * c + ci) * l..][..l].copy_from_slice(&dxp[ci * q + bi * lp + pad..][..l]);
            }
        }
        dx
    });
    (dx, dw, db)
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

/// [`gemm`] on the current rayon pool's threads when the product is large (`m·n·k` ≥ 2²⁴
/// multiply-adds), else on this thread: a 1-D CNN's products (32 × 2816 × 32 at batch 128) run
/// 1.3× faster whole than split (`cohort bench --models cnn1d-32`, K = 1). The same bits either
/// way (the split is over rows and columns, never the sum).
///
/// # Safety
/// As [`gemm`].
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_sized(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    dst_cs: isize,
    dst_rs: isize,
    accumulate: bool,
    lhs: *const f32,
    lhs_cs: isize,
    lhs_rs: isize,
    rhs: *const f32,
    rhs_cs: isize,
    rhs_rs: isize,
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        if m * n * k >= 1 << 24 {
            gemm_par(m, n, k, dst, dst_cs, dst_rs, accumulate, lhs, lhs_cs, lhs_rs, rhs, rhs_cs, rhs_rs)
        } else {
            gemm(m, n, k, dst, dst_cs, dst_rs, accumulate, lhs, lhs_cs, lhs_rs, rhs, rhs_cs, rhs_rs)
        }
    }
}

/// [`gemm`] on the current rayon pool's threads.
///
/// # Safety
/// As [`gemm`].
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_par(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    dst_cs: isize,
    dst_rs: isize,
    accumulate: bool,
    lhs: *const f32,
    lhs_cs: isize,
    lhs_rs: isize,
    rhs: *const f32,
    rhs_cs: isize,
    rhs_rs: isize,
) {
    let threads = rayon::current_num_threads();
    let parallelism = if threads > 1 { gemm::Parallelism::Rayon(threads) } else { gemm::Parallelism::None };
    // SAFETY: forwarded from the caller.
    unsafe {
        gemm::gemm(m, n, k, dst, dst_cs, dst_rs, accumulate, lhs, lhs_cs, lhs_rs, rhs, rhs_cs, rhs_rs, 1.0, 1.0, false, false, false, parallelism);
    }
}

/// The input positions `(row, column)` a depthwise window reads for output `(i, j)` and tap
/// `(u, v)`, or `None` in the padding.
#[inline]
fn depthwise_source(g: ConvGeom, [h, w]: [usize; 2], [i, j]: [usize; 2], [u, v]: [usize; 2]) -> Option<usize> {
    let si = (i * g.stride[0] + u).checked_sub(g.padding[0]).filter(|&r| r < h)?;
    let sj = (j * g.stride[1] + v).checked_sub(g.padding[1]).filter(|&c| c < w)?;
    Some(si * w + sj)
}

/// The kernel offsets `t` along one axis that read inside the input for output index `o`:
/// `0 ≤ o·s + t − p < n` (stride `s`, padding `p`, kernel `k`, input side `n`).
fn window_taps(o: usize, s: usize, p: usize, k: usize, n: usize) -> std::ops::Range<usize> {
    let lo = p.saturating_sub(o * s).min(k);
    let hi = (n + p).saturating_sub(o * s).min(k);
    lo..hi.max(lo)
}

/// The output indices along one axis whose whole window reads inside the input: `o·s ≥ p` and
/// `o·s + k − 1 − p < n`, within `0..out`.
fn interior(s: usize, p: usize, k: usize, n: usize, out: usize) -> std::ops::Range<usize> {
    let lo = p.div_ceil(s.max(1)).min(out);
    let hi = if n + p >= k { ((n + p - k) / s.max(1) + 1).min(out) } else { 0 };
    lo..hi.max(lo)
}

/// Depthwise convolution (one filter per channel, groups = channels): `y[b,c,i,j] = bias[c] +
/// Σ_{u,v} W[c,u,v]·x[b,c,i·s_h+u−p_h, j·s_w+v−p_w]` (zero outside), `x` `[B, C, H, W]`, `weight`
/// `[C, 1, kh, kw]` → `[B, C, OH, OW]`. Direct loops, one (image, channel) plane per task: each
/// output is the sum over the window in row-major order (from 0, the taps outside skipped), then
/// the bias — the same bits for any thread count. The columns whose window lies inside are
/// computed a window tap at a time across the row (the same order per output, in vector lanes).
pub fn depthwise_forward(x: &[f32], [b, c, h, w]: [usize; 4], weight: &[f32], bias: &[f32], g: ConvGeom) -> Vec<f32> {
    let ([kh, kw], [oh, ow]) = (g.kernel, g.out_size([h, w]));
    let ([sh, sw], [ph, pw]) = (g.stride, g.padding);
    assert_eq!(x.len(), b * c * h * w, "depthwise_forward: x is not [B, C, H, W] = {:?}", [b, c, h, w]);
    assert!(weight.len() == c * kh * kw && bias.len() == c, "depthwise_forward: weight must be [C, 1, kh, kw] and bias [C]");
    let mut y = vec![0.0f32; b * c * oh * ow];
    if y.is_empty() {
        return y;
    }
    let cols = interior(sw, pw, kw, w, ow);
    y.par_chunks_mut(oh * ow).enumerate().for_each(|(plane, out)| {
        let ch = plane % c;
        let (xs, ws) = (&x[plane * h * w..(plane + 1) * h * w], &weight[ch * kh * kw..(ch + 1) * kh * kw]);
        if same_unit_stride(g) {
            return depthwise_forward_same(out, xs, ws, bias[ch], [h, w], g);
        }
        for (i, row) in out.chunks_exact_mut(ow).enumerate() {
            for j in (0..cols.start).chain(cols.end..ow) {
                let mut acc = 0.0f32;
                for u in 0..kh {
                    for v in 0..kw {
                        if let Some(k) = depthwise_source(g, [h, w], [i, j], [u, v]) {
                            acc += ws[u * kw + v] * xs[k];
                        }
                    }
                }
                row[j] = acc + bias[ch];
            }
            if cols.is_empty() {
                continue;
            }
            let inner = &mut row[cols.clone()];
            for u in window_taps(i, sh, ph, kh, h) {
                let xr = &xs[(i * sh + u - ph) * w..(i * sh + u - ph + 1) * w];
                for v in 0..kw {
                    let wv = ws[u * kw + v];
                    let first = cols.start * sw + v - pw;
                    if sw == 1 {
                        let len = inner.len();
                        for (o, xv) in inner.iter_mut().zip(&xr[first..first + len]) {
                            *o += wv * xv;
                        }
                    } else {
                        for (n, o) in inner.iter_mut().enumerate() {
                            *o += wv * xr[first + n * sw];
                        }
                    }
                }
            }
            for o in inner {
                *o += bias[ch];
            }
        }
    });
    y
}

/// Gradients of [`depthwise_forward`] given `grad` = ∂L/∂y `[B, C, OH, OW]`: `(dx, dW, dbias)`,
/// `dx` only when `want_x`. `dx` one plane per task, each input's contributions added from 0 in
/// the order of the outputs that read it (row-major); `dW` and `dbias` one channel per task,
/// summed over images then positions in order (`dW` of a "same" stride-1 convolution in lanes
/// instead: [`depthwise_dw_same`]) — the same bits for any thread count. With stride 1, `dx` is
/// gathered a kernel tap at a time across each input row or plane (vector lanes, the same order
/// per input); the interior of `dW`'s sum reads without bounds tests.
pub fn depthwise_backward(
    x: &[f32],
    [b, c, h, w]: [usize; 4],
    weight: &[f32],
    grad: &[f32],
    g: ConvGeom,
    want_x: bool,
) -> (Option<Vec<f32>>, Vec<f32>, Vec<f32>) {
    let ([kh, kw], [oh, ow]) = (g.kernel, g.out_size([h, w]));
    let ([sh, sw], [ph, pw]) = (g.stride, g.padding);
    assert!(x.len() == b * c * h * w && grad.len() == b * c * oh * ow, "depthwise_backward: x or grad of the wrong size");
    let dx = want_x.then(|| {
        let mut dx = vec![0.0f32; b * c * h * w];
        if !dx.is_empty() {
            dx.par_chunks_mut(h * w).enumerate().for_each(|(plane, dxs)| {
                let ch = plane % c;
                let (gs, ws) = (&grad[plane * oh * ow..(plane + 1) * oh * ow], &weight[ch * kh * kw..(ch + 1) * kh * kw]);
                if same_unit_stride(g) {
                    return depthwise_dx_same(dxs, gs, ws, [h, w], g);
                }
                if g.stride == [1, 1] {
                    return depthwise_dx_unit_stride(dxs, gs, ws, w, [oh, ow], g);
                }
                for i in 0..oh {
                    for j in 0..ow {
                        let gv = gs[i * ow + j];
                        for u in 0..kh {
                            for v in 0..kw {
                                if let Some(k) = depthwise_source(g, [h, w], [i, j], [u, v]) {
                                    dxs[k] += gv * ws[u * kw + v];
                                }
                            }
                        }
                    }
                }
            });
        }
        dx
    });
    let cols = interior(sw, pw, kw, w, ow);
    let per_channel: Vec<(Vec<f32>, f32)> = (0..c)
        .into_par_iter()
        .map(|ch| {
            if same_unit_stride(g) {
                return depthwise_dw_same(x, grad, [b, c, h, w], ch, g);
            }
            let (mut dw, mut db) = (vec![0.0f32; kh * kw], 0.0f32);
            for bi in 0..b {
                let plane = bi * c + ch;
                let (xs, gs) = (&x[plane * h * w..(plane + 1) * h * w], &grad[plane * oh * ow..(plane + 1) * oh * ow]);
                for i in 0..oh {
                    let rows = window_taps(i, sh, ph, kh, h);
                    for j in 0..ow {
                        let gv = gs[i * ow + j];
                        db += gv;
                        if cols.contains(&j) {
                            for u in rows.clone() {
                                let xr = &xs[(i * sh + u - ph) * w + j * sw - pw..][..kw];
                                for (d, xv) in dw[u * kw..(u + 1) * kw].iter_mut().zip(xr) {
                                    *d += gv * xv;
                                }
                            }
                            continue;
                        }
                        for u in 0..kh {
                            for v in 0..kw {
                                if let Some(k) = depthwise_source(g, [h, w], [i, j], [u, v]) {
                                    dw[u * kw + v] += gv * xs[k];
                                }
                            }
                        }
                    }
                }
            }
            (dw, db)
        })
        .collect();
    let dw = per_channel.iter().flat_map(|(dw, _)| dw.iter().copied()).collect();
    let db = per_channel.iter().map(|(_, db)| *db).collect();
    (dx, dw, db)
}

/// `dx` of one (image, channel) plane of a stride-1 depthwise convolution, gathered: input
/// `(r, c)` receives `grad[i, j]·W[u, v]` from each output `(i, j) = (r + p_h − u, c + p_w − v)`,
/// added from 0 in row-major order of `(i, j)` — `i` ascending, then `v` descending — one kernel
/// tap at a time across the row. The scatter of [`depthwise_backward`]'s general case adds the
/// same terms in the same order.
fn depthwise_dx_unit_stride(dxs: &mut [f32], gs: &[f32], ws: &[f32], w: usize, [oh, ow]: [usize; 2], g: ConvGeom) {
    let ([kh, kw], [ph, pw]) = (g.kernel, g.padding);
    for (r, dxr) in dxs.chunks_exact_mut(w).enumerate() {
        for i in (r + ph + 1).saturating_sub(kh)..(r + ph + 1).min(oh) {
            let u = r + ph - i;
            let gr = &gs[i * ow..(i + 1) * ow];
            for v in (0..kw).rev() {
                let wv = ws[u * kw + v];
                // inputs c whose output j = c + p_w − v is in 0..ow
                let (lo, hi) = (v.saturating_sub(pw), (ow + v).saturating_sub(pw).min(w));
                if lo >= hi {
                    continue;
                }
                let first = lo + pw - v;
                for (d, gv) in dxr[lo..hi].iter_mut().zip(&gr[first..first + (hi - lo)]) {
                    *d += gv * wv;
                }
            }
        }
    }
}

/// `fn $name(args)` calling `$body(args)` (an `#[inline(always)]` function) compiled for AVX-512F
/// or AVX2 when the CPU has them (detected at run time), else for the baseline. The arithmetic is
/// the same in every version (Rust never fuses `a * b + c` into an FMA), so are the bits; only the
/// lanes per instruction differ.
macro_rules! simd_dispatch {
    ($(#[$meta:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) => $body:ident) => {
        $(#[$meta])*
        fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                /// The body compiled with AVX-512F. Safety: the CPU must have AVX-512F.
                #[target_feature(enable = "avx512f")]
                unsafe fn avx512($($arg: $ty),*) {
                    $body($($arg),*)
                }
                /// The body compiled with AVX2. Safety: the CPU must have AVX2.
                #[target_feature(enable = "avx2")]
                unsafe fn avx2($($arg: $ty),*) {
                    $body($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has AVX-512F (checked just above).
                    return unsafe { avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU has AVX2 (checked just above).
                    return unsafe { avx2($($arg),*) };
                }
            }
            $body($($arg),*)
        }
    };
}

/// Whether a depthwise geometry is a "same" convolution of stride 1 (`k = 2p + 1` on both axes):
/// output and input planes then have one shape, and a window tap `(u, v)` reads the input at a
/// constant offset `(u − p_h)·W + (v − p_w)` of the flat output index.
fn same_unit_stride(g: ConvGeom) -> bool {
    g.stride == [1, 1] && g.kernel[0] == 2 * g.padding[0] + 1 && g.kernel[1] == 2 * g.padding[1] + 1
}

/// The flat indices `[r_s·W + p_w, r_e·W − p_w)` of rows `r_s..r_e` of a `W`-wide plane, less the
/// first row's first and the last row's last `p_w` columns (edge columns, computed apart).
fn flat_rows(rows: std::ops::Range<usize>, w: usize, pw: usize) -> Option<std::ops::Range<usize>> {
    let (lo, hi) = ((rows.start * w + pw), (rows.end * w).checked_sub(pw)?);
    (rows.start < rows.end && lo < hi).then_some(lo..hi)
}

/// Whether column `j` of a `W`-wide plane is an edge column (a window tap reads outside it).
fn edge_column(j: usize, w: usize, pw: usize) -> bool {
    j < pw || j + pw >= w
}

/// [`depthwise_forward`] of one plane of a "same" stride-1 convolution: each window tap `(u, v)`
/// in row-major order adds `W[u, v]·x` across the whole plane at once (the rows where tap row `u`
/// reads inside), from 0, then the bias; the edge columns, where wrapped reads entered, are
/// recomputed output by output. Per output the terms and their order are the general loop's.
fn depthwise_forward_same(out: &mut [f32], xs: &[f32], ws: &[f32], bias: f32, [h, w]: [usize; 2], g: ConvGeom) {
    let ([kh, kw], [ph, pw]) = (g.kernel, g.padding);
    for u in 0..kh {
        let Some(span) = flat_rows(ph.saturating_sub(u)..(h + ph).saturating_sub(u).min(h), w, pw) else { continue };
        for v in 0..kw {
            // x index = n + (u − p_h)·W + (v − p_w) ≥ 0 on the span
            let start = (span.start + u * w + v) - (ph * w + pw);
            axpy(&mut out[span.clone()], ws[u * kw + v], &xs[start..start + span.len()]);
        }
    }
    for o in out.iter_mut() {
        *o += bias;
    }
    for i in 0..h {
        for j in (0..w).filter(|&j| edge_column(j, w, pw)) {
            let mut acc = 0.0f32;
            for u in 0..kh {
                for v in 0..kw {
                    if let Some(k) = depthwise_source(g, [h, w], [i, j], [u, v]) {
                        acc += ws[u * kw + v] * xs[k];
                    }
                }
            }
            out[i * w + j] = acc + bias;
        }
    }
}

/// `dx` of one plane of a "same" stride-1 depthwise convolution: input `(r, c)` receives
/// `grad[i, j]·W[u, v]` from the outputs `(i, j) = (r + p_h − u, c + p_w − v)` in row-major
/// order of `(i, j)` — taps `u` descending, then `v` descending — each tap added across the whole
/// plane at once; the edge columns recomputed input by input in the same order.
fn depthwise_dx_same(dxs: &mut [f32], gs: &[f32], ws: &[f32], [h, w]: [usize; 2], g: ConvGeom) {
    let ([kh, kw], [ph, pw]) = (g.kernel, g.padding);
    for u in (0..kh).rev() {
        let Some(span) = flat_rows(u.saturating_sub(ph)..(h + u).saturating_sub(ph).min(h), w, pw) else { continue };
        for v in (0..kw).rev() {
            // grad index = m + (p_h − u)·W + (p_w − v) ≥ 0 on the span
            let start = (span.start + ph * w + pw) - (u * w + v);
            axpy(&mut dxs[span.clone()], ws[u * kw + v], &gs[start..start + span.len()]);
        }
    }
    for r in 0..h {
        for c in (0..w).filter(|&c| edge_column(c, w, pw)) {
            let mut acc = 0.0f32;
            for i in (r + ph + 1).saturating_sub(kh)..(r + ph + 1).min(h) {
                let u = r + ph - i;
                for j in (c + pw + 1).saturating_sub(kw)..(c + pw + 1).min(w) {
                    acc += gs[i * w + j] * ws[u * kw + c + pw - j];
                }
            }
            dxs[r * w + c] = acc;
        }
    }
}

/// `(dW, dbias)` of channel `ch` of a "same" stride-1 depthwise convolution. Each image's planes
/// are laid out zero-padded — the input `(H + 2p_h) × (W + 2p_w)`, the gradient `H × (W + 2p_w)`
/// — so that tap `(u, v)` reads the input at the constant offset `u·(W + 2p_w) + v` of the
/// gradient's flat index `m`; the terms `grad·x` go to 16 lanes by `m mod 16`, every tap in the
/// same pass, images in order then `m` ascending (padding adds zeros), and at the end each tap's
/// lanes are summed pairwise (`l + 8` into `l`, then `+ 4`, `+ 2`, `+ 1`). `dbias` is summed over
/// images then positions in order. The same bits for any thread count (one channel per task) and
/// for every instruction set (never fused).
fn depthwise_dw_same(x: &[f32], grad: &[f32], [b, c, h, w]: [usize; 4], ch: usize, g: ConvGeom) -> (Vec<f32>, f32) {
    let ([kh, kw], [ph, pw]) = (g.kernel, g.padding);
    if h == 0 || w == 0 {
        return (vec![0.0; kh * kw], 0.0);
    }
    let wp = w + 2 * pw;
    // the gradient's flat length without its last row's padding, rounded up to whole lanes
    let n = ((h - 1) * wp + w).div_ceil(16) * 16;
    let offsets: Vec<usize> = (0..kh).flat_map(|u| (0..kw).map(move |v| u * wp + v)).collect();
    let (mut xp, mut gp) = (vec![0.0f32; offsets[offsets.len() - 1] + n], vec![0.0f32; n.max(h * wp)]);
    let mut lanes = vec![[0.0f32; 16]; kh * kw];
    let mut db = 0.0f32;
    for bi in 0..b {
        let plane = bi * c + ch;
        let (xs, gs) = (&x[plane * h * w..(plane + 1) * h * w], &grad[plane * h * w..(plane + 1) * h * w]);
        for r in 0..h {
            xp[(r + ph) * wp + pw..][..w].copy_from_slice(&xs[r * w..(r + 1) * w]);
            gp[r * wp..][..w].copy_from_slice(&gs[r * w..(r + 1) * w]);
        }
        for gv in gs {
            db += gv;
        }
        tap_lanes(&mut lanes, &gp[..n], &xp, &offsets);
    }
    let dw = lanes
        .into_iter()
        .map(|mut acc| {
            for half in [8, 4, 2, 1] {
                for l in 0..half {
                    acc[l] += acc[l + half];
                }
            }
            acc[0]
        })
        .collect();
    (dw, db)
}

simd_dispatch! {
    /// `lanes[t][l] += g[m]·x[offsets[t] + m]` for every `m ≡ l (mod 16)` in order, `g` a whole
    /// number of lanes long.
    fn tap_lanes(lanes: &mut [[f32; 16]], g: &[f32], x: &[f32], offsets: &[usize]) => tap_lanes_body
}

#[inline(always)]
fn tap_lanes_body(lanes: &mut [[f32; 16]], g: &[f32], x: &[f32], offsets: &[usize]) {
    for (q, gq) in g.chunks_exact(16).enumerate() {
        for (acc, &off) in lanes.iter_mut().zip(offsets) {
            let xq = &x[off + 16 * q..][..16];
            for l in 0..16 {
                acc[l] += gq[l] * xq[l];
            }
        }
    }
}

simd_dispatch! {
    /// `out[n] += a·x[n]`, one multiplication and one addition per element.
    fn axpy(out: &mut [f32], a: f32, x: &[f32]) => axpy_body
}

#[inline(always)]
fn axpy_body(out: &mut [f32], a: f32, x: &[f32]) {
    for (o, v) in out.iter_mut().zip(x) {
        *o += a * v;
    }
}

/// One SGD-with-momentum step in place (module docs), elementwise in blocks, each block by the
/// widest vector unit the CPU has ([`sgd_block`]).
pub fn sgd_momentum(p: &mut [f32], g: &[f32], v: &mut [f32], s: super::SgdStep) {
    const BLOCK: usize = 1 << 14;
    assert!(p.len() == g.len() && p.len() == v.len(), "sgd_momentum: parameter, gradient and velocity differ in size");
    p.par_chunks_mut(BLOCK).zip(v.par_chunks_mut(BLOCK)).zip(g.par_chunks(BLOCK)).for_each(|((p, v), g)| sgd_block(p, v, g, s));
}

simd_dispatch! {
    /// [`sgd_momentum`] on one block: IEEE multiplications and additions in burn_optim's order.
    fn sgd_block(p: &mut [f32], v: &mut [f32], g: &[f32], s: super::SgdStep) => sgd_variants
}

/// The loop with the step's options (weight decay, Nesterov) decided once, outside it, so that
/// each of the four variants is a branch-free loop the compiler vectorises.
#[inline(always)]
fn sgd_variants(p: &mut [f32], v: &mut [f32], g: &[f32], s: super::SgdStep) {
    match (s.decay, s.nesterov) {
        (Some(penalty), true) => sgd_loop::<true, true>(p, v, g, s, penalty),
        (Some(penalty), false) => sgd_loop::<true, false>(p, v, g, s, penalty),
        (None, true) => sgd_loop::<false, true>(p, v, g, s, 0.0),
        (None, false) => sgd_loop::<false, false>(p, v, g, s, 0.0),
    }
}

/// `g ← p·λ + g` (with `DECAY`), `v ← g·keep + v·μ`, `d ← v·μ + g` (with `NESTEROV`) or `v`,
/// `p ← p − d·lr`, element by element.
#[inline(always)]
fn sgd_loop<const DECAY: bool, const NESTEROV: bool>(p: &mut [f32], v: &mut [f32], g: &[f32], s: super::SgdStep, penalty: f32) {
    let n = p.len();
    let (v, g) = (&mut v[..n], &g[..n]);
    let (lr, momentum, keep) = (s.lr, s.momentum, s.keep);
    for i in 0..n {
        let gi = if DECAY { p[i] * penalty + g[i] } else { g[i] };
        let vi = gi * keep + v[i] * momentum;
        v[i] = vi;
        let d = if NESTEROV { vi * momentum + gi } else { vi };
        p[i] -= d * lr;
    }
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

/// `Σ f(a[i], b[i])` over one row (a batch-norm channel of one image), in eight f32 lanes
/// added up in f64: a fixed order, whatever the thread count.
#[inline(always)]
fn row_sum(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f64 {
    let mut lanes = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (xa, xb) in ca.zip(cb) {
        for t in 0..8 {
            lanes[t] += f(xa[t], xb[t]);
        }
    }
    lanes.iter().map(|&l| l as f64).sum::<f64>() + ra.iter().zip(rb).map(|(&x, &y)| f(x, y) as f64).sum::<f64>()
}

/// `1/√(σ²_c + ε)` per channel.
fn inv_std(var: &[f32], epsilon: f64) -> Vec<f32> {
    var.iter().map(|&v| (1.0 / (v as f64 + epsilon).sqrt()) as f32).collect()
}

/// All ones where `z` is above 0 or NaN, else all zeros: the ReLU's gate as a bit mask, so
/// that the loops using it stay branch-free (a branch on the sign of a random activation is
/// mispredicted half the time: 2× slower batch-norm backward passes, measured).
#[inline(always)]
fn passes(z: f32) -> u32 {
    ((z <= 0.0) as u32).wrapping_sub(1)
}

/// `max(0, z)` as burn-flex's ReLU computes it: `+0` for `z ≤ 0`, and a NaN stays NaN (so
/// divergence still shows).
#[inline(always)]
fn relu(z: f32) -> f32 {
    f32::from_bits(z.to_bits() & passes(z))
}

/// The ReLU's gradient gate as burn's `relu_backward` applies it: `g` where the output `y` is
/// above 0 (or NaN), else `+0`.
#[inline(always)]
fn relu_gate(y: f32, g: f32) -> f32 {
    f32::from_bits(g.to_bits() & passes(y))
}

/// `γ·x̂ + β` with `x̂ = (v − μ)·r`, for the channel's constants `[μ, r, γ, β]`: the one formula
/// the forward pass and the backward pass's recomputed ReLU gate share, so that they agree to the
/// bit.
#[inline(always)]
fn normalised(v: f32, [m, r, g, t]: [f32; 4]) -> f32 {
    (v - m) * r * g + t
}

/// What a batch-norm kernel applies to `γ·x̂ + β` in the same pass over memory: nothing, a
/// ReLU, or a residual `r` (`[B, C, S]` as `x`) added and then a ReLU (the end of a ResNet
/// block, `relu(bn(conv(h)) + skip)`).
#[derive(Clone, Copy, Debug)]
pub enum BnTail<'a> {
    /// `y = γ·x̂ + β`.
    Plain,
    /// `y = max(0, γ·x̂ + β)`.
    Relu,
    /// `y = max(0, γ·x̂ + β + r)`.
    AddRelu(&'a [f32]),
}

/// A batch's per-channel mean and biased variance over the `N = B·S` values of each channel of
/// `x` `[B, C, S]`, in one pass over memory: each row (one image's channel, a few KiB that stay
/// in cache) is read twice, for its sum `S₁` and then for `Q = Σ (x − m)²` about its own mean
/// `m = S₁/S` (rounded to f32), so no cancellation as in `E[x²] − μ²`; the rows are then
/// combined exactly, in f64 and in image order: `μ = ΣS₁/N`,
/// `N·σ² = Σ_rows [Q + 2(m − μ)(S₁ − S·m) + S·(m − μ)²]`.
fn batch_stats(x: &[f32], [b, c, s]: [usize; 3]) -> (Vec<f32>, Vec<f32>) {
    if b * c * s == 0 {
        return (vec![0.0; c], vec![0.0; c]);
    }
    let rows: Vec<Vec<[f64; 3]>> = x
        .par_chunks(c * s)
        .map(|xb| {
            xb.chunks_exact(s)
                .map(|r| {
                    let s1 = row_sum(r, r, |u, _| u);
                    let m = (s1 / s as f64) as f32;
                    [s1, m as f64, row_sum(r, r, |u, _| (u - m) * (u - m))]
                })
                .collect()
        })
        .collect();
    let n = (b * s) as f64;
    (0..c)
        .map(|ch| {
            let mu = rows.iter().map(|r| r[ch][0]).sum::<f64>() / n;
            let m2: f64 = rows.iter().map(|r| r[ch]).map(|[s1, m, q]| q + 2.0 * (m - mu) * (s1 - s as f64 * m) + s as f64 * (m - mu) * (m - mu)).sum();
            // ≥ 0 up to rounding (the cross term may be a hair below); a NaN stays NaN
            let var = m2 / n;
            (mu as f32, if var < 0.0 { 0.0 } else { var as f32 })
        })
        .unzip()
}

/// Batch normalisation in training mode (Ioffe & Szegedy 2015, Algorithm 1) on `x` `[B, C, S]`
/// (S = H·W; 1 for `[B, C]`), statistics over the `N = B·S` values of each channel:
/// `μ_c = (1/N) Σ x`, `σ²_c = (1/N) Σ (x − μ_c)²` (biased, as in the normalisation of burn and
/// PyTorch), `x̂ = (x − μ_c)·r_c` with `r_c = 1/√(σ²_c + ε)`, `y = γ_c·x̂ + β_c`, followed in the
/// same pass by `tail` ([`BnTail`]: a ReLU, or a residual added then a ReLU).
/// Returns `(y, μ, σ²)`: two passes over `x` (statistics, [`batch_stats`]; output), one task per
/// image.
pub fn batch_norm_forward(x: &[f32], [b, c, s]: [usize; 3], gamma: &[f32], beta: &[f32], epsilon: f64, tail: BnTail) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let len = b * c * s;
    assert_eq!(x.len(), len, "batch_norm_forward: x is not [B, C, S] = {:?}", [b, c, s]);
    assert!(gamma.len() == c && beta.len() == c, "batch_norm_forward: gamma and beta must have {c} entries");
    if let BnTail::AddRelu(r) = tail {
        assert_eq!(r.len(), len, "batch_norm_forward: the residual is not [B, C, S] = {:?}", [b, c, s]);
    }
    let (mean, var) = batch_stats(x, [b, c, s]);
    let r = inv_std(&var, epsilon);
    let k: Vec<[f32; 4]> = (0..c).map(|ch| [mean[ch], r[ch], gamma[ch], beta[ch]]).collect();
    // written once, without zero-filling it first (a pass over memory that costs as much as the
    // map itself)
    let mut y: Vec<f32> = Vec::with_capacity(len);
    if len > 0 {
        y.spare_capacity_mut()[..len].par_chunks_mut(c * s).enumerate().for_each(|(bi, yb)| {
            for (ch, (yr, xr)) in yb.chunks_exact_mut(s).zip(x[bi * c * s..][..c * s].chunks_exact(s)).enumerate() {
                let z = |v: f32| normalised(v, k[ch]);
                match tail {
                    BnTail::Plain => yr.iter_mut().zip(xr).for_each(|(o, &v)| {
                        o.write(z(v));
                    }),
                    BnTail::Relu => yr.iter_mut().zip(xr).for_each(|(o, &v)| {
                        o.write(relu(z(v)));
                    }),
                    BnTail::AddRelu(res) => yr.iter_mut().zip(xr.iter().zip(&res[(bi * c + ch) * s..][..s])).for_each(|(o, (&v, &q))| {
                        o.write(relu(z(v) + q));
                    }),
                }
            }
        });
    }
    // SAFETY: every image's [C, S] chunk of the first `len` elements was written above, row by
    // row (`x` holds `len` values, checked, cut into the same rows).
    unsafe { y.set_len(len) };
    (y, mean, var)
}

/// What the backward pass of a [`BnTail`] needs to gate the gradient through its ReLU: the
/// ReLU's input is recomputed from `x`, γ and β (the forward pass's formula, so the same bits),
/// and for a residual tail the forward output `y` is read instead.
#[derive(Clone, Copy, Debug)]
pub enum BnTailGrad<'a> {
    /// No ReLU.
    Plain,
    /// `y = max(0, γ·x̂ + β)`, with this β.
    Relu(&'a [f32]),
    /// `y = max(0, γ·x̂ + β + r)`, with this output `y`.
    AddRelu(&'a [f32]),
}

/// Gradients of [`batch_norm_forward`] given `grad` = ∂L/∂y `[B, C, S]` and the forward pass's
/// `μ`, `σ²`: `(dx, dγ, dβ, dr)`. With `δ` the gradient after the tail's ReLU (`grad` where
/// `y > 0`): `dβ_c = Σ δ`, `dγ_c = Σ δ·x̂`, `dx = γ_c·r_c·(δ − dβ_c/N − x̂·dγ_c/N)` (the
/// statistics' own dependence on x included), and for a residual tail `dr = δ`. Two passes
/// over memory (both sums at once; `dx`), one task per image, the per-image sums added in image
/// order in f64.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_backward(
    x: &[f32],
    dims @ [b, c, s]: [usize; 3],
    gamma: &[f32],
    mean: &[f32],
    var: &[f32],
    epsilon: f64,
    grad: &[f32],
    tail: BnTailGrad,
) -> (Vec<f32>, Vec<f32>, Vec<f32>, Option<Vec<f32>>) {
    let len = b * c * s;
    assert!(x.len() == len && grad.len() == len, "batch_norm_backward: x and grad must be [B, C, S] = {dims:?}");
    assert!(gamma.len() == c && mean.len() == c && var.len() == c, "batch_norm_backward: gamma, mean and var must have {c} entries");
    match tail {
        BnTailGrad::Relu(beta) => assert_eq!(beta.len(), c, "batch_norm_backward: beta must have {c} entries"),
        BnTailGrad::AddRelu(y) => assert_eq!(y.len(), len, "batch_norm_backward: y must be [B, C, S] = {dims:?}"),
        BnTailGrad::Plain => {}
    }
    let n = (b * s).max(1) as f64;
    let r = inv_std(var, epsilon);
    let mut dres = matches!(tail, BnTailGrad::AddRelu(_)).then(|| vec![0.0f32; len]);
    // pass 1, per image: δ (written out as dr for a residual tail, else into a row buffer that
    // stays in cache: the gate in its own loop vectorises, inside the sums it does not) and its
    // row sums Σδ, Σδ·x̂
    let row_sums = |bi: usize, ch: usize, gr: &[f32], xr: &[f32], dr: &mut [f32]| -> [f64; 2] {
        let (m, rc) = (mean[ch], r[ch]);
        let xhat = |v: f32| (v - m) * rc;
        let delta: &[f32] = match tail {
            BnTailGrad::Plain => gr,
            BnTailGrad::Relu(beta) => {
                let kc = [m, rc, gamma[ch], beta[ch]];
                for (d, (&g, &v)) in dr.iter_mut().zip(gr.iter().zip(xr)) {
                    *d = relu_gate(normalised(v, kc), g);
                }
                dr
            }
            BnTailGrad::AddRelu(y) => {
                for (d, (&g, &o)) in dr.iter_mut().zip(gr.iter().zip(&y[(bi * c + ch) * s..][..s])) {
                    *d = relu_gate(o, g);
                }
                dr
            }
        };
        [row_sum(delta, delta, |d, _| d), row_sum(delta, xr, |d, v| d * xhat(v))]
    };
    // each image's dr rows, or (no residual) a row buffer of its own
    let images: Vec<Option<&mut [f32]>> = match dres.as_mut() {
        Some(d) if len > 0 => d.chunks_mut(c * s).map(Some).collect(),
        _ => (0..if len > 0 { b } else { 0 }).map(|_| None).collect(),
    };
    let rows: Vec<Vec<[f64; 2]>> = images
        .into_par_iter()
        .enumerate()
        .map(|(bi, mut db)| {
            let (gb, xb) = (&grad[bi * c * s..][..c * s], &x[bi * c * s..][..c * s]);
            let mut row = vec![0.0f32; if db.is_none() && !matches!(tail, BnTailGrad::Plain) { s } else { 0 }];
            (0..c)
                .map(|ch| {
                    let dr = match &mut db {
                        Some(db) => &mut db[ch * s..][..s],
                        None => &mut row[..],
                    };
                    row_sums(bi, ch, &gb[ch * s..][..s], &xb[ch * s..][..s], dr)
                })
                .collect()
        })
        .collect();
    let (dbeta, dgamma): (Vec<f64>, Vec<f64>) =
        (0..c).map(|ch| (rows.iter().map(|r| r[ch][0]).sum::<f64>(), rows.iter().map(|r| r[ch][1]).sum::<f64>())).unzip();
    // pass 2: dx = γ·r·(δ − mean δ − x̂·mean(δ·x̂)), x̂ = (x − μ)·r
    let k: Vec<[f32; 4]> = (0..c).map(|ch| [gamma[ch] * r[ch], (dbeta[ch] / n) as f32, mean[ch], r[ch] * (dgamma[ch] / n) as f32]).collect();
    let mut dx: Vec<f32> = Vec::with_capacity(len);
    if len > 0 {
        let delta_src: &[f32] = dres.as_deref().unwrap_or(grad);
        dx.spare_capacity_mut()[..len].par_chunks_mut(c * s).enumerate().for_each(|(bi, out)| {
            for (ch, or) in out.chunks_exact_mut(s).enumerate() {
                let at = (bi * c + ch) * s;
                let (dr, xr) = (&delta_src[at..][..s], &x[at..][..s]);
                let [kk, mg, m, rq] = k[ch];
                let f = |d: f32, v: f32| kk * (d - mg - (v - m) * rq);
                match tail {
                    BnTailGrad::Relu(beta) => {
                        let kc = [m, r[ch], gamma[ch], beta[ch]];
                        or.iter_mut().zip(dr.iter().zip(xr)).for_each(|(o, (&g, &v))| {
                            o.write(f(relu_gate(normalised(v, kc), g), v));
                        });
                    }
                    _ => or.iter_mut().zip(dr.iter().zip(xr)).for_each(|(o, (&d, &v))| {
                        o.write(f(d, v));
                    }),
                }
            }
        });
    }
    // SAFETY: every image's [C, S] chunk of the first `len` elements was written above, row by row.
    unsafe { dx.set_len(len) };
    let f32s = |v: Vec<f64>| v.into_iter().map(|t| t as f32).collect();
    (dx, f32s(dgamma), f32s(dbeta), dres)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 3×3 "same" patches and their adjoint (padded planes, row copies) give the bits of the
    /// entry-by-entry forms for every geometry, on odd and tiny image sizes: the adjoint sums
    /// each entry's contributions in the same (u, v, i, j) order.
    #[test]
    fn padded_3x3_patches_equal_the_entry_by_entry_form_bit_for_bit() {
        let mut state = 7u32;
        let mut next = move || {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        };
        for [c, h, w] in [[3, 5, 7], [2, 1, 1], [1, 2, 3], [4, 8, 8], [2, 32, 32]] {
            let x: Vec<f32> = (0..c * h * w).map(|_| next()).collect();
            let (mut fast, mut slow) = (vec![f32::NAN; c * 9 * h * w], vec![f32::NAN; c * 9 * h * w]);
            patches(&x, [c, h, w], &mut fast);
            patches_any(&x, [c, h, w], ConvGeom::SAME_3X3, &mut slow);
            assert!(fast.iter().zip(&slow).all(|(a, b)| a.to_bits() == b.to_bits()), "patches of {:?}", [c, h, w]);
            let dcols: Vec<f32> = (0..c * 9 * h * w).map(|_| next()).collect();
            let (mut fast, mut slow) = (vec![MaybeUninit::new(f32::NAN); c * h * w], vec![0.0f32; c * h * w]);
            patches_adjoint(&dcols, [c, h, w], &mut fast);
            // SAFETY: every entry was written (initialised to NaN, overwritten by the adjoint).
            let fast: Vec<f32> = fast.into_iter().map(|v| unsafe { v.assume_init() }).collect();
            patches_any_adjoint(&dcols, [c, h, w], ConvGeom::SAME_3X3, &mut slow);
            assert!(fast.iter().zip(&slow).all(|(a, b)| a.to_bits() == b.to_bits()), "adjoint of {:?}", [c, h, w]);
        }
    }
}
