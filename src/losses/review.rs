//! Knowledge review: the target's features of every level fused, deepest first, by attention into
//! the level above, and each fused level compared with the source's at several scales.

use burn::tensor::Tensor;
use burn::tensor::module::adaptive_avg_pool2d;
use serde::{Deserialize, Serialize};

pub use super::adapter::{Abf, Review, as_map, nearest};

use super::adapter::{Adapter, AdapterSpec};
use super::check::EdgeCheck;
use super::kind::{Inputs, LossKind, Reads, Targets};
use crate::diagnostics::Diagnostic;

/// `ReviewKd`: "Distilling Knowledge via Knowledge Review" (Chen, Liu, Zhao & Jia, CVPR 2021),
/// as mdistiller's `distillers/ReviewKD.py` computes it (vendored under `third_party/mdistiller/`).
/// The target's taps `to_taps` (shallow to deep; the last usually its pooled features) go through
/// one attention-based fusion module (ABF) each, deepest first: level i's features `x_i` become
/// `m_i = bn(conv1×1(x_i))`; below the deepest, fused with the level beneath's residual `r_{i+1}`
/// upsampled (nearest) to level i's size: `a = σ(conv1×1([m_i; r]))` (two channels) and
/// `m_i ← m_i·a₀ + r·a₁`; `m_i` is upsampled to the source's size at that level if it differs and
/// is the residual passed up, and the level's output is `o_i = bn(conv3×3(m_i))` with the source's
/// channels. The loss is the hierarchical context loss against the source's taps `from_taps`:
///
/// `Σ_i [ MSE(o_i, t_i) + Σ_{l ∈ {4, 2, 1}, l < H_i} 2^{−k(l)}·MSE(P_l(o_i), P_l(t_i)) ] / (1 + Σ 2^{−k(l)})`
///
/// with `P_l` the adaptive average pool to l×l, `k(l)` = 1, 2, 3 for the levels kept, MSE the mean
/// over every element; times `min(e/warmup, 1)` in epoch e counted from 1 (mdistiller's warm-up,
/// 20 epochs). mdistiller reads the student's post-ReLU stage outputs and pooled features and the
/// teacher's pre-activations (`preact_feats[1:]`) and pooled features; the middle width is
/// `min(512, C)` of the target's deepest tap. Sequences (a 1-D CNN's blocks) are read as maps of
/// width 1 (the 3×3 convolution then 3×1, the pooling to l×1); flat taps as 1×1 maps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewKd {
    /// Taps of the source, shallow to deep (e.g. `stage1_pre`, …, `pool`).
    pub from_taps: Vec<String>,
    /// Taps of the target, one per source tap (e.g. `stage1`, …, `pool`).
    pub to_taps: Vec<String>,
    /// Warm-up in epochs (0 = none).
    #[serde(default = "default_warmup")]
    pub warmup: usize,
}

fn default_warmup() -> usize {
    20
}

/// The hierarchical context loss (mdistiller's `hcl_loss`) of the fused outputs `fs` against the
/// source's `ft`, level by level (see [`ReviewKd`]).
///
/// # Shapes
/// `fs[i]`, `ft[i]` `[B, C_i, H_i, W_i]` (the same) → `[1]`.
pub fn hcl_loss(fs: &[Tensor<4>], ft: &[Tensor<4>]) -> Tensor<1> {
    let mut total: Option<Tensor<1>> = None;
    for (s, t) in fs.iter().zip(ft) {
        let [_, _, h, w] = s.dims();
        let t = t.clone().detach();
        let mut loss = (s.clone() - t.clone()).powi_scalar(2).mean();
        let (mut cnt, mut tot) = (1.0, 1.0);
        for l in [4usize, 2, 1] {
            if l >= h {
                continue;
            }
            // l×l on maps, l×1 on sequences (width 1)
            let size = [l, l.min(w)];
            cnt /= 2.0;
            loss = loss + (adaptive_avg_pool2d(s.clone(), size) - adaptive_avg_pool2d(t.clone(), size)).powi_scalar(2).mean().mul_scalar(cnt);
            tot += cnt;
        }
        let loss = loss.div_scalar(tot);
        total = Some(match total {
            Some(a) => a + loss,
            None => loss,
        });
    }
    total.expect("at least one level")
}

impl LossKind for ReviewKd {
    fn name(&self) -> &'static str {
        "ReviewKd"
    }
    fn label(&self) -> String {
        format!("ReviewKd({} -> {})", self.from_taps.join("+"), self.to_taps.join("+"))
    }
    fn reads(&self) -> Reads<'_> {
        Reads { targets: Targets::Features, own_taps: &self.to_taps, source_taps: &self.from_taps }
    }
    /// One source; as many taps a side, at least one; maps, sequences or flat features (never
    /// maps on one side and sequences on the other).
    fn check(&mut self, edge: &mut EdgeCheck) {
        edge.one_source("feature losses take exactly one source", None);
        if self.from_taps.is_empty() || self.from_taps.len() != self.to_taps.len() {
            let msg = format!("ReviewKD pairs the taps level by level: {} source taps, {} target taps", self.from_taps.len(), self.to_taps.len());
            let d = Diagnostic::at(edge.loss_path(), msg);
            edge.error(d.hint("list one target tap per source tap, shallow to deep, e.g. `from_taps: [\"stage1_pre\", \"stage2_pre\", \"stage3_pre\", \"pool\"], to_taps: [\"stage1\", \"stage2\", \"stage3\", \"pool\"]`"));
            return;
        }
        let source = edge.from.first().copied();
        let mut ranks = Vec::new();
        for (from, to) in self.from_taps.iter().zip(&self.to_taps) {
            if let Some(u) = edge.tap_shape(source, from, "from_taps") {
                ranks.push((from, u.len()));
            }
            if let Some(v) = edge.tap_shape(edge.to, to, "to_taps") {
                ranks.push((to, v.len()));
            }
        }
        if ranks.iter().any(|(_, r)| *r == 2) && ranks.iter().any(|(_, r)| *r == 3) {
            let list: Vec<String> = ranks.iter().map(|(t, r)| format!("`{t}` {}", ["flat", "a sequence", "a map"][(*r).clamp(1, 3) - 1])).collect();
            let d = Diagnostic::at(edge.loss_path(), format!("ReviewKD fuses levels of one kind: maps or sequences, not both ({})", list.join(", ")));
            edge.error(d.hint("read the taps of two 2-D networks or of two 1-D networks"));
        }
    }
    /// One fusion module per level.
    fn adapter(&self, own: &dyn Fn(&str) -> Vec<usize>, source: &dyn Fn(&str) -> Vec<usize>, _samples: usize) -> Option<AdapterSpec> {
        Some(AdapterSpec::Review { own: self.to_taps.iter().map(|t| own(t)).collect(), source: self.from_taps.iter().map(|t| source(t)).collect() })
    }
    fn loss(&self, i: Inputs) -> Tensor<1> {
        let Some(Adapter::Review(r)) = i.adapter else { panic!("a ReviewKD term's adapter is its fusion modules") };
        let t: Vec<Tensor<4>> = i.source_taps.iter().cloned().map(as_map).collect();
        let out: Vec<[usize; 2]> = t.iter().map(|t| [t.dims()[2], t.dims()[3]]).collect();
        let s = r.forward(i.own_taps.into_iter().map(as_map).collect(), &out);
        let warm = if self.warmup == 0 { 1.0 } else { ((i.epoch + 1) as f64 / self.warmup as f64).min(1.0) };
        hcl_loss(&s, &t).mul_scalar(warm)
    }
}
