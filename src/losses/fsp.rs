//! Flow of solution procedure: how a network's features change from one tap to the next, as the
//! Gram matrix between the channels of two taps, matched between a source and a target.

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use super::check::EdgeCheck;
use super::common::common_positions;
use super::kind::{Inputs, LossKind, Reads, Targets};
use crate::diagnostics::Diagnostic;
use crate::models::tap::Tap;

/// `Fsp`: "A Gift from Knowledge Distillation: Fast Optimization, Network Minimization and
/// Transfer Learning" (Yim et al., CVPR 2017), eqs. (1)–(2). For each pair of consecutive taps
/// `(F¹, F²)` of a list, the FSP matrix
///
/// `G_{ij}(x) = (1/N) Σ_n F¹_{i,n}(x) · F²_{j,n}(x)`   (N positions; i over F¹'s channels, j over F²'s),
///
/// and the loss `Σ_pairs mean_{b,j,i} (G^s_{ji} − G^t_{ji})²` between the target's (s) and the
/// source's (t, detached) matrices. As RepDistiller's `distiller_zoo/FSP.py` (vendored under
/// `third_party/RepDistiller/`): the map of a pair with more positions is average-pooled to the
/// other's first (adaptive pooling), the squared difference is averaged over batch and both
/// channel axes (the paper's λ_i and 1/N are folded into that mean and the edge's weight), and the
/// pairs' terms are summed. The taps of the same index must have the same channel count on both
/// sides (RepDistiller raises otherwise). RepDistiller trains it alone in a first stage (30 epochs
/// of the student's feature layers, `helper/pretrain.py`), then the student with cross-entropy
/// only: an edge restricted to a first stage (`stages: ["init"]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fsp {
    /// Taps of the source, in order (two or more; RepDistiller: `feat[:-1]`, the stem and every
    /// stage).
    pub from_taps: Vec<String>,
    /// Taps of the target, as many, each with the channels of the source's tap at its index.
    pub to_taps: Vec<String>,
}

/// The FSP matrix of two feature maps of one network: `G[b, j, i] = (1/N) Σ_n bottom[b, i, n] ·
/// top[b, j, n]`, after pooling the map with more positions to the other's.
///
/// # Shapes
/// `bottom` `[B, C₁, …]`, `top` `[B, C₂, …]` (maps or sequences, positions may differ) → `[B, C₂, C₁]`.
pub fn fsp_matrix(bottom: Tap, top: Tap) -> Tensor<3> {
    let (bottom, top) = common_positions(bottom, top);
    let (bottom, top) = (bottom.channels_by_positions(), top.channels_by_positions());
    let n = bottom.dims()[2];
    top.matmul(bottom.swap_dims(1, 2)).div_scalar(n as f64)
}

/// The FSP loss between the source's detached taps `t` and the target's `s` (the same count, in
/// order): the sum over consecutive pairs of the mean squared difference of their FSP matrices.
///
/// # Shapes
/// `t[k]` `[B, C_k, …]`, `s[k]` `[B, C_k, …]` (maps or sequences) → `[1]`.
pub fn fsp_loss(t: &[Tap], s: &[Tap]) -> Tensor<1> {
    assert!(t.len() == s.len() && s.len() >= 2, "fsp_loss: two or more taps on each side, as many");
    (1..s.len())
        .map(|k| {
            let gt = fsp_matrix(t[k - 1].clone().detach(), t[k].clone().detach());
            let gs = fsp_matrix(s[k - 1].clone(), s[k].clone());
            (gs - gt).powi_scalar(2).mean()
        })
        .reduce(|a, b| a + b)
        .expect("two taps or more")
}

impl LossKind for Fsp {
    fn name(&self) -> &'static str {
        "Fsp"
    }
    fn label(&self) -> String {
        format!("Fsp({} -> {})", self.from_taps.join("+"), self.to_taps.join("+"))
    }
    fn reads(&self) -> Reads<'_> {
        Reads { targets: Targets::Features, own_taps: &self.to_taps, source_taps: &self.from_taps }
    }
    /// One source; two or more taps on each side, as many; feature maps or sequences (not flat
    /// vectors); the same channels at each index.
    fn check(&mut self, edge: &mut EdgeCheck) {
        edge.one_source("FSP compares one source's taps with the target's", None);
        if self.from_taps.len() < 2 || self.from_taps.len() != self.to_taps.len() {
            let msg = format!("FSP needs two or more taps on each side, as many: {} in `from_taps`, {} in `to_taps`", self.from_taps.len(), self.to_taps.len());
            edge.error(
                Diagnostic::at(edge.loss_path(), msg)
                    .hint("list consecutive taps on both sides, e.g. `from_taps: [\"stem\", \"stage1\", \"stage2\", \"stage3\"]` and the same `to_taps`"),
            );
            return;
        }
        let source = edge.from.first().copied();
        for (f, t) in self.from_taps.iter().zip(&self.to_taps) {
            let (Some(u), Some(v)) = (edge.tap_shape(source, f, "from_taps"), edge.tap_shape(edge.to, t, "to_taps")) else { continue };
            if u.len() < 2 || v.len() < 2 {
                let msg = format!("FSP's Gram matrices are over positions, but `{f}` is {u:?} and `{t}` is {v:?} (channels first)");
                edge.error(Diagnostic::at(edge.loss_path(), msg).hint("use conv taps (`stem`, `stage1`, ...), not flat features"));
            } else if u[0] != v[0] {
                let msg = format!("FSP compares matrices of the same channels: the source's `{f}` has {} channels, the target's `{t}` has {}", u[0], v[0]);
                edge.error(
                    Diagnostic::at(edge.loss_path().field("to_taps"), msg)
                        .hint("pair taps of the same width (RepDistiller: ResNet-32x4 → ResNet-8x4, WRN-40-2 → WRN-16-2)"),
                );
            }
        }
    }
    fn loss(&self, i: Inputs) -> Tensor<1> {
        let k = self.from_taps.len();
        fsp_loss(&i.source_taps[..k], &i.own_taps)
    }
}
