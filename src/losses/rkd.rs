//! Relational knowledge distillation: the distances and angles among a batch's features.

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use super::check::EdgeCheck;
use super::common::flat_features;
use super::kind::{Inputs, LossKind, Reads, Targets};
use crate::values::Weight;

/// `Rkd`: "Relational Knowledge Distillation" (Park, Kim, Lu & Cho, CVPR 2019), eqs. (3)–(7):
/// `w_d·L_D + w_a·L_A` between the source's (t, detached) and the target's (s) features
/// (flattened). Distance-wise: `ψ_D(i, j) = ‖f_i − f_j‖₂ / μ` with μ the mean of the batch's
/// non-zero distances, `L_D = mean_{ij} huber(ψ_D^s − ψ_D^t)`; angle-wise: `ψ_A(i, j, k) = ⟨e_ij,
/// e_kj⟩` with `e_ij = (f_i − f_j)/‖f_i − f_j‖`, `L_A = mean_{ijk} huber(ψ_A^s − ψ_A^t)`; huber is
/// PyTorch's `smooth_l1` (β = 1): `½x²` for `|x| < 1`, else `|x| − ½`. As RepDistiller's
/// `distiller_zoo/RKD.py` (vendored under `third_party/RepDistiller/`): squared distances
/// clamped at 1e-12 before the square root, the diagonal 0, the difference vectors normalised by
/// `max(‖·‖, 1e-12)`; it reads the pooled features (`pool`) with `w_d = 25`, `w_a = 50` and
/// weights the term 1.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rkd {
    /// Tap of the source.
    pub from_tap: String,
    /// Tap of the target.
    pub to_tap: String,
    /// Weight w_d of the distance term.
    #[serde(default = "default_distance")]
    pub distance: Weight,
    /// Weight w_a of the angle term.
    #[serde(default = "default_angle")]
    pub angle: Weight,
}

fn default_distance() -> Weight {
    Weight::new(25.0).expect("valid")
}
fn default_angle() -> Weight {
    Weight::new(50.0).expect("valid")
}

/// Pairwise Euclidean distances, `sqrt(max(‖f_i‖² + ‖f_j‖² − 2⟨f_i, f_j⟩, 1e-12))`, 0 on the
/// diagonal, divided by their mean over the off-diagonal entries (all of them positive).
///
/// # Shapes
/// `f` `[B, F]` → `[B, B]`.
pub fn normalized_distances(f: Tensor<2>) -> Tensor<2> {
    let [b, _] = f.dims();
    let sq = f.clone().powi_scalar(2).sum_dim(1);
    let prod = f.clone().matmul(f.transpose());
    let d = (sq.clone() + sq.transpose() - prod.mul_scalar(2.0)).clamp_min(1e-12).sqrt();
    let off = Tensor::<2>::ones([b, b], &d.device()) - Tensor::<2>::eye(b, &d.device());
    let d = d * off;
    let mean = d.clone().sum().div_scalar((b * b.saturating_sub(1)).max(1) as f64);
    d / mean.unsqueeze()
}

/// The angles `⟨e_ij, e_kj⟩` of every triplet, with `e_ij = (f_i − f_j)/max(‖f_i − f_j‖, 1e-12)`
/// (RepDistiller's indexing: `[i, j, k]` = ⟨f_j − f_i, f_k − f_i⟩ normalised).
///
/// # Shapes
/// `f` `[B, F]` → `[B, B, B]`.
pub fn angles(f: Tensor<2>) -> Tensor<3> {
    let [b, n] = f.dims();
    // td[i, j] = f_j − f_i
    let diff = f.clone().reshape([1, b, n]).expand([b, b, n]) - f.reshape([b, 1, n]).expand([b, b, n]);
    let e = diff.clone() / super::common::safe_norm(diff.powi_scalar(2).sum_dim(2));
    e.clone().matmul(e.swap_dims(1, 2))
}

/// PyTorch's `smooth_l1_loss` (β = 1, mean) of `x − y`.
fn huber<const D: usize>(x: Tensor<D>, y: Tensor<D>) -> Tensor<1> {
    let d = x - y;
    let a = d.clone().abs();
    let small = a.clone().lower_elem(1.0);
    d.powi_scalar(2).mul_scalar(0.5).mask_where(small.bool_not(), a.sub_scalar(0.5)).mean()
}

/// `w_d·L_D + w_a·L_A` for the source's detached features `t` and the target's `s`.
///
/// # Shapes
/// `t` `[B, F_t]`, `s` `[B, F_s]` → `[1]`.
pub fn rkd_loss(t: Tensor<2>, s: Tensor<2>, w_d: f64, w_a: f64) -> Tensor<1> {
    let t = t.detach();
    let distance = huber(normalized_distances(s.clone()), normalized_distances(t.clone()));
    let angle = huber(angles(s), angles(t));
    distance.mul_scalar(w_d) + angle.mul_scalar(w_a)
}

impl LossKind for Rkd {
    fn name(&self) -> &'static str {
        "Rkd"
    }
    fn label(&self) -> String {
        format!("Rkd({} -> {}, w_d {}, w_a {})", self.from_tap, self.to_tap, self.distance, self.angle)
    }
    fn reads(&self) -> Reads<'_> {
        Reads { targets: Targets::Features, own_taps: std::slice::from_ref(&self.to_tap), source_taps: std::slice::from_ref(&self.from_tap) }
    }
    /// One source, and taps that exist (any rank: the features are flattened).
    fn check(&mut self, edge: &mut EdgeCheck) {
        edge.feature_taps(&self.from_tap, &self.to_tap);
    }
    fn loss(&self, i: Inputs) -> Tensor<1> {
        let (t, s) = (flat_features(i.source_taps[0].clone()), flat_features(i.own_tap()));
        rkd_loss(t, s, self.distance.get(), self.angle.get())
    }
}
