//! Self-supervised knowledge distillation by singular value decomposition: the leading right
//! singular vectors of consecutive taps, related by a radial kernel, matched between a source and
//! a target.

use burn::tensor::{Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::check::EdgeCheck;
use super::kind::{Inputs, LossKind, Reads, Targets};
use crate::diagnostics::Diagnostic;
use crate::models::tap::Tap;

/// `Kdsvd`: "Self-supervised Knowledge Distillation Using Singular Value Decomposition" (Lee, Kim &
/// Song, ECCV 2018), as mdistiller's `distillers/KDSVD.py` (vendored under
/// `third_party/mdistiller/`) computes it. Each tap is read as one matrix per sample, `X = U Σ Vᵀ`,
/// and its leading right singular vectors `v_1..v_k` (unit columns) are kept. On the source's
/// taps (t, detached) `k` vectors; on the target's (s) `k + 3`, of which each source vector takes
/// the one with the largest `|cos|` to it, signed to agree (`align_rsv`). Both sides' vectors are
/// scaled by the source's leading singular values normalised to unit length, `σ̂ = σ_{1..k}/‖σ_{1..k}‖`
/// (1 for `k = 1`). Between consecutive taps `i − 1`, `i` a radial kernel relates every component
/// of one vector to every component of the other,
///
/// `R_i[a, c, j] = exp(−(σ̂_j v_{i,j}[a] − σ̂_j v_{i−1,j}[c])² / 8)`,
///
/// and the loss is `(1/B) Σ_i Σ_{b,a,c,j} (R^s_i − R^t_i)²` (sum over samples, rows, columns and
/// vectors, divided by the batch).
///
/// **The matrix** is mdistiller's: a map `[B, C, H, W]` is read as `B` matrices of `C·H` rows and
/// `W` columns (`feat.view(B, C·H, W)`), so the singular vectors live on the width; a sequence
/// `[B, C, L]` as `C × L` (the same rule, `H = 1`). The paper's TensorFlow code reads a map as
/// positions × channels; the tables report mdistiller's. mdistiller takes the stage outputs after
/// the stem (`feats[1:]`), `k = 1`, weight 1.
///
/// **The decomposition** is computed here, from the Gram matrix `XᵀX` in f64 ([`symmetric_eigen`]),
/// and its gradient is the exact first-order one of the singular vectors (with simple singular
/// values): `dv_j = Σ_{i≠j} v_i · v_iᵀ d(XᵀX) v_j / (σ_j² − σ_i²)` — what `torch.svd`'s backward
/// computes for `V` alone. The sign of each singular pair is fixed (its largest-magnitude
/// component positive): LAPACK's is arbitrary and the loss depends on it (the relative sign of a
/// source's consecutive vectors); the fixture runs the reference with the same rule. mdistiller
/// replaces non-finite values by zeros; from finite taps the decomposition here yields none (and a
/// NaN anywhere stops the run). Repeated singular values among the kept ones have no derivative:
/// their terms are dropped (PyTorch returns infinities).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kdsvd {
    /// Taps of the source, in order (two or more; mdistiller: every stage's output).
    pub from_taps: Vec<String>,
    /// Taps of the target, as many, each as wide (the last axis) as the source's at its index.
    pub to_taps: Vec<String>,
    /// Singular vectors kept per source tap (mdistiller: 1); the target keeps `k + 3`.
    #[serde(default = "one")]
    pub k: usize,
}

fn one() -> usize {
    1
}

/// A tap as one matrix per sample: `[B, C, H, W]` → `[B, C·H, W]`, `[B, C, L]` as it is.
///
/// # Shapes
/// `[B, C, H, W]` → `[B, C·H, W]`; `[B, C, L]` → `[B, C, L]`; `[B, F]` is not a matrix (refused
/// by the check).
pub fn as_matrix(tap: Tap) -> Tensor<3> {
    match tap {
        Tap::Map(t) => {
            let [b, c, h, w] = t.dims();
            t.reshape([b, c * h, w])
        }
        Tap::Seq(t) => t,
        Tap::Flat(_) => panic!("KDSVD reads maps or sequences (the check refuses flat taps)"),
    }
}

/// The (rows, columns) of a tap's matrix from its shape without the batch (`None` for flat taps).
fn matrix_size(shape: &[usize]) -> Option<(usize, usize)> {
    match shape {
        [c, l] => Some((*c, *l)),
        [c, h, w] => Some((c * h, *w)),
        _ => None,
    }
}

/// The eigen-decomposition of the symmetric `n × n` matrix `a` (row-major), in f64: Householder
/// tridiagonalisation, then the implicit QL algorithm (EISPACK's `tred2` and `tql2`, as JAMA
/// writes them; `O(n³)`). Returns the eigenvalues in descending order and the eigenvectors as the
/// columns of a row-major `n × n` matrix, in the same order, each signed so that its
/// largest-magnitude component (the first of equal ones) is positive.
pub fn symmetric_eigen(a: &[f64], n: usize) -> (Vec<f64>, Vec<f64>) {
    assert_eq!(a.len(), n * n, "symmetric_eigen: an n × n matrix");
    if n == 0 {
        return (Vec::new(), Vec::new());
    }
    let mut v: Vec<Vec<f64>> = (0..n).map(|i| a[i * n..(i + 1) * n].to_vec()).collect();
    let (mut d, mut e) = (vec![0.0; n], vec![0.0; n]);
    tridiagonalize(&mut v, &mut d, &mut e);
    diagonalize(&mut v, &mut d, &mut e);
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| d[j].total_cmp(&d[i]));
    let values = order.iter().map(|&i| d[i]).collect();
    let mut vectors = vec![0.0; n * n];
    for (col, &i) in order.iter().enumerate() {
        let lead = (0..n).map(|r| v[r][i]).fold(0.0f64, |m, x| if x.abs() > m.abs() { x } else { m });
        let sign = if lead < 0.0 { -1.0 } else { 1.0 };
        for r in 0..n {
            vectors[r * n + col] = sign * v[r][i];
        }
    }
    (values, vectors)
}

/// Householder reduction of the symmetric `v` to tridiagonal form (EISPACK `tred2`): the
/// diagonal in `d`, the subdiagonal in `e[1..]`, the accumulated orthogonal transform in `v`.
fn tridiagonalize(v: &mut [Vec<f64>], d: &mut [f64], e: &mut [f64]) {
    let n = d.len();
    d.copy_from_slice(&v[n - 1]);
    for i in (1..n).rev() {
        let scale: f64 = d[..i].iter().map(|x| x.abs()).sum();
        let mut h = 0.0;
        if scale == 0.0 {
            e[i] = d[i - 1];
            for j in 0..i {
                d[j] = v[i - 1][j];
                v[i][j] = 0.0;
                v[j][i] = 0.0;
            }
        } else {
            for x in &mut d[..i] {
                *x /= scale;
                h += *x * *x;
            }
            let f = d[i - 1];
            let g = if f > 0.0 { -h.sqrt() } else { h.sqrt() };
            e[i] = scale * g;
            h -= f * g;
            d[i - 1] = f - g;
            e[..i].fill(0.0);
            for j in 0..i {
                let f = d[j];
                v[j][i] = f;
                let mut g = e[j] + v[j][j] * f;
                for k in j + 1..i {
                    g += v[k][j] * d[k];
                    e[k] += v[k][j] * f;
                }
                e[j] = g;
            }
            let mut f = 0.0;
            for j in 0..i {
                e[j] /= h;
                f += e[j] * d[j];
            }
            let hh = f / (h + h);
            for j in 0..i {
                e[j] -= hh * d[j];
            }
            for j in 0..i {
                let (f, g) = (d[j], e[j]);
                for k in j..i {
                    v[k][j] -= f * e[k] + g * d[k];
                }
                d[j] = v[i - 1][j];
                v[i][j] = 0.0;
            }
        }
        d[i] = h;
    }
    for i in 0..n - 1 {
        v[n - 1][i] = v[i][i];
        v[i][i] = 1.0;
        let h = d[i + 1];
        if h != 0.0 {
            for k in 0..=i {
                d[k] = v[k][i + 1] / h;
            }
            for j in 0..=i {
                let g: f64 = (0..=i).map(|k| v[k][i + 1] * v[k][j]).sum();
                for k in 0..=i {
                    v[k][j] -= g * d[k];
                }
            }
        }
        for row in v.iter_mut().take(i + 1) {
            row[i + 1] = 0.0;
        }
    }
    for j in 0..n {
        d[j] = v[n - 1][j];
        v[n - 1][j] = 0.0;
    }
    v[n - 1][n - 1] = 1.0;
    e[0] = 0.0;
}

/// The implicit QL algorithm on the tridiagonal `(d, e)` (EISPACK `tql2`): the eigenvalues in
/// `d`, the eigenvectors accumulated into `v`'s columns.
fn diagonalize(v: &mut [Vec<f64>], d: &mut [f64], e: &mut [f64]) {
    let n = d.len();
    for i in 1..n {
        e[i - 1] = e[i];
    }
    e[n - 1] = 0.0;
    let (mut f, mut tst1) = (0.0f64, 0.0f64);
    let eps = f64::EPSILON;
    for l in 0..n {
        tst1 = tst1.max(d[l].abs() + e[l].abs());
        let mut m = l;
        while m < n - 1 && e[m].abs() > eps * tst1 {
            m += 1;
        }
        if m > l {
            for _iteration in 0..64 {
                let g = d[l];
                let mut p = (d[l + 1] - g) / (2.0 * e[l]);
                let mut r = p.hypot(1.0);
                if p < 0.0 {
                    r = -r;
                }
                d[l] = e[l] / (p + r);
                d[l + 1] = e[l] * (p + r);
                let dl1 = d[l + 1];
                let h = g - d[l];
                for x in &mut d[l + 2..n] {
                    *x -= h;
                }
                f += h;
                p = d[m];
                let (mut c, mut c2, mut c3) = (1.0, 1.0, 1.0);
                let el1 = e[l + 1];
                let (mut s, mut s2) = (0.0, 0.0);
                for i in (l..m).rev() {
                    c3 = c2;
                    c2 = c;
                    s2 = s;
                    let g = c * e[i];
                    let h = c * p;
                    r = p.hypot(e[i]);
                    e[i + 1] = s * r;
                    s = e[i] / r;
                    c = p / r;
                    p = c * d[i] - s * g;
                    d[i + 1] = h + s * (c * g + s * d[i]);
                    for row in v.iter_mut() {
                        let h = row[i + 1];
                        row[i + 1] = s * row[i] + c * h;
                        row[i] = c * row[i] - s * h;
                    }
                }
                p = -s * s2 * c3 * el1 * e[l] / dl1;
                e[l] = s * p;
                d[l] = c * p;
                if e[l].abs() <= eps * tst1 {
                    break;
                }
            }
        }
        d[l] += f;
        e[l] = 0.0;
    }
}

/// Per sample of `x` `[B, m, n]`: the eigenvalues of `XᵀX` (the squared singular values,
/// descending) and its eigenvectors (the right singular vectors, columns of a row-major `n × n`).
fn decompose(x: Tensor<3>) -> Vec<(Vec<f64>, Vec<f64>)> {
    let [b, m, n] = x.dims();
    let data: Vec<f64> = x.into_data().iter::<f32>().map(f64::from).collect();
    (0..b)
        .map(|s| {
            let xs = &data[s * m * n..(s + 1) * m * n];
            let mut gram = vec![0.0; n * n];
            for row in xs.chunks_exact(n) {
                for i in 0..n {
                    for j in i..n {
                        gram[i * n + j] += row[i] * row[j];
                    }
                }
            }
            for i in 0..n {
                for j in 0..i {
                    gram[i * n + j] = gram[j * n + i];
                }
            }
            symmetric_eigen(&gram, n)
        })
        .collect()
}

/// One tap's leading `k` right singular vectors, each column scaled to unit length
/// (`F.normalize(v, dim=1)`), with their data.
struct Vectors {
    /// `[B, n, k]`, tracked where the tap is.
    tensor: Tensor<3>,
    /// The same values, per sample row-major `n × k`, in f64.
    data: Vec<Vec<f64>>,
    /// The leading `k` singular values per sample.
    sigma: Vec<Vec<f64>>,
}

/// The leading `k` right singular vectors of each sample's matrix of `x` `[B, m, n]`, with the
/// gradient of the decomposition when `tracked`: `V_k = V⁰_k + V⁰ (F ∘ (M − sg(M)))`, where
/// `M = V⁰ᵀ (XᵀX) V⁰_k` and `F_ij = 1/(λ_j − λ_i)` (`i ≠ j`, else 0), is `V⁰_k` in value (the
/// bracket is exactly zero) and has the first-order perturbation of the eigenvectors as its
/// gradient. A detached `x` (the source's) skips those products: `V⁰_k` itself.
fn right_vectors(x: Tensor<3>, k: usize, tracked: bool) -> Vectors {
    let [b, _, n] = x.dims();
    let device = x.device();
    let parts = decompose(x.clone().detach());
    let mut v0 = Vec::with_capacity(b * n * n);
    let mut f = Vec::with_capacity(b * n * k);
    for (lambda, v) in &parts {
        v0.extend(v.iter().map(|&x| x as f32));
        for i in 0..n {
            for j in 0..k {
                let gap = lambda[j] - lambda[i];
                f.push(if i == j || gap == 0.0 { 0.0 } else { (1.0 / gap) as f32 });
            }
        }
    }
    let v0 = Tensor::<3>::from_data(TensorData::new(v0, [b, n, n]), &device);
    let v0k = v0.clone().slice([0..b, 0..n, 0..k]);
    let vk = if tracked {
        let f = Tensor::<3>::from_data(TensorData::new(f, [b, n, k]), &device);
        let gram = x.clone().swap_dims(1, 2).matmul(x);
        let m = v0.clone().swap_dims(1, 2).matmul(gram).matmul(v0k.clone());
        v0k + v0.matmul(f * (m.clone() - m.detach()))
    } else {
        v0k
    };
    let norm = super::common::safe_norm(vk.clone().powi_scalar(2).sum_dim(1));
    let data = parts.iter().map(|(_, v)| (0..n).flat_map(|r| (0..k).map(move |c| v[r * n + c])).collect()).collect();
    let sigma = parts.iter().map(|(lambda, _)| lambda[..k].iter().map(|l| l.max(0.0).sqrt()).collect()).collect();
    Vectors { tensor: vk / norm, data, sigma }
}

/// mdistiller's `align_rsv` as a constant `[B, k + 3, k]`: for each of the source's vectors the
/// target's with the largest `|cos|`, signed as the cosine (every target vector at the maximum,
/// should two tie).
fn alignment(s: &Vectors, t: &Vectors, n: usize, ks: usize, kt: usize, device: &burn::tensor::Device) -> Tensor<3> {
    let b = s.data.len();
    let mut mask = vec![0f32; b * ks * kt];
    for (sample, (sv, tv)) in s.data.iter().zip(&t.data).enumerate() {
        let cos = |a: usize, c: usize| (0..n).map(|r| sv[r * ks + a] * tv[r * kt + c]).sum::<f64>();
        for c in 0..kt {
            let best = (0..ks).map(|a| cos(a, c).abs()).fold(0.0f64, f64::max);
            for a in 0..ks {
                let x = cos(a, c);
                if x.abs() == best {
                    mask[sample * ks * kt + a * kt + c] = x.signum() as f32;
                }
            }
        }
    }
    Tensor::<3>::from_data(TensorData::new(mask, [b, ks, kt]), device)
}

/// The radial kernel between every component of `cur` and every component of `prev`, vector by
/// vector: `exp(−(cur[a, j] − prev[c, j])² / 8)`.
///
/// # Shapes
/// `cur` `[B, n₁, k]`, `prev` `[B, n₀, k]` → `[B, n₁, n₀, k]`.
fn radial(cur: Tensor<3>, prev: Tensor<3>) -> Tensor<4> {
    let ([b, n1, k], [_, n0, _]) = (cur.dims(), prev.dims());
    let d = cur.reshape([b, n1, 1, k]).expand([b, n1, n0, k]) - prev.reshape([b, 1, n0, k]).expand([b, n1, n0, k]);
    d.powi_scalar(2).div_scalar(-8.0).exp()
}

/// The KDSVD loss between the source's detached taps `t` and the target's `s` (the same count, in
/// order, each pair as wide), keeping `k` singular vectors of the source's.
///
/// # Shapes
/// `t[i]` `[B, C_i, H_i, W_i]` or `[B, C_i, W_i]`, `s[i]` the same `W_i`, rows `≥ k + 3` → `[1]`.
pub fn kdsvd_loss(t: &[Tap], s: &[Tap], k: usize) -> Tensor<1> {
    assert!(t.len() == s.len() && s.len() >= 2, "kdsvd_loss: two or more taps on each side, as many");
    let mut previous: Option<(Tensor<3>, Tensor<3>)> = None;
    let mut total: Option<Tensor<1>> = None;
    let mut batch = 0;
    for (ti, si) in t.iter().zip(s) {
        let (xt, xs) = (as_matrix(ti.clone().detach()), as_matrix(si.clone()));
        let [b, _, n] = xs.dims();
        batch = b;
        let device = xs.device();
        let vt = right_vectors(xt, k, false);
        let vs = right_vectors(xs, k + 3, true);
        let mask = alignment(&vs, &vt, n, k + 3, k, &device);
        // σ̂: the source's leading singular values at unit length, per sample, over the k vectors
        let scale: Vec<f32> = vt
            .sigma
            .iter()
            .flat_map(|sg| {
                let norm = sg.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
                sg.iter().map(move |x| (x / norm) as f32).collect::<Vec<_>>()
            })
            .collect();
        let scale = Tensor::<3>::from_data(TensorData::new(scale, [b, 1, k]), &device);
        let cur_t = vt.tensor * scale.clone().expand([b, n, k]);
        let cur_s = vs.tensor.matmul(mask) * scale.expand([b, n, k]);
        if let Some((prev_t, prev_s)) = previous {
            let term = (radial(cur_s.clone(), prev_s) - radial(cur_t.clone(), prev_t)).powi_scalar(2).sum();
            total = Some(match total {
                Some(sum) => sum + term,
                None => term,
            });
        }
        previous = Some((cur_t, cur_s));
    }
    total.expect("two taps or more").div_scalar(batch as f64)
}

impl LossKind for Kdsvd {
    fn name(&self) -> &'static str {
        "Kdsvd"
    }
    fn label(&self) -> String {
        format!("Kdsvd(k={}, {} -> {})", self.k, self.from_taps.join("+"), self.to_taps.join("+"))
    }
    fn reads(&self) -> Reads<'_> {
        Reads { targets: Targets::Features, own_taps: &self.to_taps, source_taps: &self.from_taps }
    }
    /// One source; two or more taps on each side, as many; maps or sequences (not flat vectors);
    /// each pair as wide; `k ≥ 1` and matrices with room for `k` vectors (source) and `k + 3`
    /// (target).
    fn check(&mut self, edge: &mut EdgeCheck) {
        edge.one_source("KDSVD compares one source's taps with the target's", None);
        if self.k == 0 {
            edge.error(
                Diagnostic::at(edge.loss_path().field("k"), "KDSVD keeps at least one singular vector, `k: 0` keeps none")
                    .hint("mdistiller's setting is `k: 1`"),
            );
            return;
        }
        if self.from_taps.len() < 2 || self.from_taps.len() != self.to_taps.len() {
            let msg = format!(
                "KDSVD relates consecutive taps: two or more on each side, as many, but {} in `from_taps`, {} in `to_taps`",
                self.from_taps.len(),
                self.to_taps.len()
            );
            edge.error(
                Diagnostic::at(edge.loss_path(), msg)
                    .hint("list the stages on both sides, e.g. `from_taps: [\"stage1\", \"stage2\", \"stage3\"]` and the same `to_taps`"),
            );
            return;
        }
        let source = edge.from.first().copied();
        for (f, t) in self.from_taps.iter().zip(&self.to_taps) {
            let (Some(u), Some(v)) = (edge.tap_shape(source, f, "from_taps"), edge.tap_shape(edge.to, t, "to_taps")) else { continue };
            let (Some((mu, nu)), Some((mv, nv))) = (matrix_size(&u), matrix_size(&v)) else {
                let msg = format!(
                    "KDSVD decomposes each tap as a matrix, but the source's `{f}` is {u:?} and the target's `{t}` {v:?} (channels first): a flat tap is one vector"
                );
                edge.error(Diagnostic::at(edge.loss_path(), msg).hint("use conv taps (`stage1`, `block1`, ...), not flat features"));
                continue;
            };
            if nu != nv {
                let msg =
                    format!("KDSVD matches singular vectors over the last axis: the source's `{f}` is {nu} wide ({u:?}), the target's `{t}` {nv} ({v:?})");
                edge.error(
                    Diagnostic::at(edge.loss_path().field("to_taps"), msg)
                        .hint("pair taps of the same spatial size (mdistiller: the stage outputs of ResNet-32x4 → ResNet-8x4)"),
                );
            } else if mu.min(nu) < self.k || mv.min(nv) < self.k + 3 {
                let msg = format!(
                    "KDSVD keeps k = {} singular vectors of the source's `{f}` ({mu} × {nu}) and k + 3 = {} of the target's `{t}` ({mv} × {nv}): a matrix has at most min(rows, columns)",
                    self.k,
                    self.k + 3
                );
                edge.error(Diagnostic::at(edge.loss_path().field("k"), msg).hint("lower `k`, or use wider taps"));
            }
        }
    }
    fn loss(&self, i: Inputs) -> Tensor<1> {
        let n = self.from_taps.len();
        kdsvd_loss(&i.source_taps[..n], &i.own_taps, self.k)
    }
}
