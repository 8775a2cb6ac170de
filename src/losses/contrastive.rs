//! Contrastive representation distillation: the target's and the source's embeddings of the same
//! sample told apart from those of K samples of other classes, kept in a memory bank of the
//! whole training split.

use burn::tensor::{Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

pub use super::adapter::{Contrast, embed, nce_loss};

use super::adapter::{Adapter, AdapterSpec};
use super::check::EdgeCheck;
use super::common::flat_features;
use super::kind::{Inputs, LossKind, Reads, Targets};
use crate::diagnostics::Diagnostic;
use crate::random::splitmix64;

/// `Crd`: "Contrastive Representation Distillation" (Tian, Krishnan & Isola, ICLR 2020), eq. (18),
/// as RepDistiller's `crd/criterion.py` and `crd/memory.py` compute it (vendored under
/// `third_party/RepDistiller/crd/`). Each side's features (flattened) are embedded,
/// `s = g_s(f_s)`, `t = g_t(f_t)` (a `Linear` to `dim`, then L2-normalised; both learned with
/// the target), and scored against a memory bank of the training split — one embedding per
/// sample and side, `M_s`, `M_t` `[N, dim]`, drawn uniform in ±1/√(dim/3):
///
/// `P_s(i, j) = exp(⟨M_t[j], s_i⟩ / τ) / Z_s`, `P_t(i, j) = exp(⟨M_s[j], t_i⟩ / τ) / Z_t`
///
/// for `j` the sample's own index (the positive) and K indices of training samples of *other
/// classes* (negatives, drawn uniformly without replacement: RepDistiller's `mode='exact'`);
/// `Z` is fixed at the first step to N × the mean of that step's exponentials. Each side's loss
/// is the NCE of eq. (18) with the noise distribution `P_n = 1/N`, `c = K·P_n`:
///
/// `L = −(1/B)·Σ_i [ log(P(i, pos) / (P(i, pos) + c + ε)) + Σ_neg log(c / (P(i, neg) + c + ε)) ]`,
/// ε = 1e-7, and the term is `L_s + L_t`. After the loss, the bank rows of the batch move to the
/// new embeddings: `M[i] ← normalise(m·M[i] + (1 − m)·e_i)` with momentum m. The bank and the two
/// Z are part of the run's state (a resumed run continues with them); the negatives are drawn
/// from a stream keyed by the run's seed, epoch, step, node and term, so a resumed run draws the
/// same. RepDistiller's setting: `dim` 128, K = 16384, τ = 0.07, m = 0.5, on the pooled features
/// (`pool`), `-a 0 -b 0.8` (CE 1, the term 0.8).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Crd {
    /// Tap of the source (flattened).
    pub from_tap: String,
    /// Tap of the target (flattened).
    pub to_tap: String,
    /// Width of the embeddings.
    #[serde(default = "default_dim")]
    pub dim: usize,
    /// Negatives K per sample.
    #[serde(default = "default_negatives")]
    pub negatives: usize,
    /// Temperature τ of the scores.
    #[serde(default = "default_temperature")]
    pub temperature: f64,
    /// Momentum m of the memory bank's update.
    #[serde(default = "default_momentum")]
    pub momentum: f64,
}

fn default_dim() -> usize {
    128
}
fn default_negatives() -> usize {
    16384
}
fn default_temperature() -> f64 {
    0.07
}
fn default_momentum() -> f64 {
    0.5
}

/// Each row's contrast set: its own index, then `k` indices of training samples whose label
/// differs from its own, drawn uniformly without replacement (Floyd's algorithm over the other
/// classes' samples) from a stream of `seed` and the row's index in the training split.
///
/// # Panics
/// When a row's class leaves fewer than `k` other samples ([`LossKind::check_data`] refuses
/// such a setting before a run starts).
pub fn contrast_indices(indices: &[usize], labels: &[u8], k: usize, seed: u64) -> Vec<i64> {
    // the split's indices grouped by class: class c's are order[start[c]..start[c + 1]]
    let classes = labels.iter().map(|&l| l as usize + 1).max().unwrap_or(0);
    let mut start = vec![0usize; classes + 1];
    for &l in labels {
        start[l as usize + 1] += 1;
    }
    for c in 0..classes {
        start[c + 1] += start[c];
    }
    let mut order = vec![0usize; labels.len()];
    let mut next = start.clone();
    for (i, &l) in labels.iter().enumerate() {
        order[next[l as usize]] = i;
        next[l as usize] += 1;
    }
    let mut out = Vec::with_capacity(indices.len() * (k + 1));
    let mut taken = Vec::new();
    for &i in indices {
        let c = labels[i] as usize;
        let own = start[c + 1] - start[c];
        let pool = labels.len() - own;
        assert!(k <= pool, "{k} negatives from {pool} samples of other classes");
        out.push(i as i64);
        taken.clear();
        taken.resize(pool, false);
        let mut draw = splitmix64(seed ^ splitmix64(i as u64));
        let mut below = |m: usize| {
            draw = splitmix64(draw);
            ((draw as u128 * m as u128) >> 64) as usize
        };
        // Floyd: for j in pool − k .. pool, take a uniform p ≤ j, or j itself if p is taken
        for j in pool - k..pool {
            let p = below(j + 1);
            let p = if taken[p] { j } else { p };
            taken[p] = true;
            // position p among the other classes' samples → its index in the split
            out.push(order[if p < start[c] { p } else { p + own }] as i64);
        }
    }
    out
}

impl LossKind for Crd {
    fn name(&self) -> &'static str {
        "Crd"
    }
    fn label(&self) -> String {
        format!("Crd({} -> {}, K {}, τ {})", self.from_tap, self.to_tap, self.negatives, self.temperature)
    }
    fn reads(&self) -> Reads<'_> {
        Reads { targets: Targets::Features, own_taps: std::slice::from_ref(&self.to_tap), source_taps: std::slice::from_ref(&self.from_tap) }
    }
    /// One source, taps that exist (any rank: flattened), a width and K of at least 1, τ above
    /// 0, a momentum in [0, 1).
    fn check(&mut self, edge: &mut EdgeCheck) {
        edge.feature_taps(&self.from_tap, &self.to_tap);
        let path = edge.loss_path();
        let mut bad = |field: &'static str, msg: String, hint: &str| edge.error(Diagnostic::at(path.field(field), msg).hint(hint.to_string()));
        if self.dim == 0 {
            bad("dim", "the embedding width must be at least 1".into(), "RepDistiller's is `dim: 128`");
        }
        if self.negatives == 0 {
            bad("negatives", "CRD needs at least one negative per sample".into(), "RepDistiller's is `negatives: 16384` on CIFAR-100's 50 000 samples");
        }
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            bad("temperature", format!("the temperature must be a number above 0, got {}", self.temperature), "RepDistiller's is `temperature: 0.07`");
        }
        if !(self.momentum.is_finite() && (0.0..1.0).contains(&self.momentum)) {
            bad("momentum", format!("the memory's momentum must be in [0, 1), got {}", self.momentum), "RepDistiller's is `momentum: 0.5`");
        }
    }
    /// The embeddings and the memory bank of the `samples` training samples.
    fn adapter(&self, own: &dyn Fn(&str) -> Vec<usize>, source: &dyn Fn(&str) -> Vec<usize>, samples: usize) -> Option<AdapterSpec> {
        let width = |s: Vec<usize>| s.iter().product();
        Some(AdapterSpec::Contrast { own: width(own(&self.to_tap)), source: width(source(&self.from_tap)), dim: self.dim, samples })
    }
    /// K negatives of other classes for every sample: at most the size of the smallest pool
    /// (the split less its largest class).
    fn check_data(&self, labels: &[u8]) -> Option<(String, String)> {
        let mut count = [0usize; 256];
        for &l in labels {
            count[l as usize] += 1;
        }
        let pool = labels.len() - count.iter().max().copied().unwrap_or(0);
        (self.negatives > pool).then(|| {
            (
                format!(
                    "{} negatives per sample, but a sample of the largest class has only {pool} training samples of other classes to draw them from (the training split has {})",
                    self.negatives,
                    labels.len()
                ),
                format!("set `negatives:` to at most {pool}; RepDistiller draws 16384 of CIFAR-100's 50 000 (about a third of the split)"),
            )
        })
    }
    fn loss(&self, i: Inputs) -> Tensor<1> {
        let Some(Adapter::Contrast(c)) = i.adapter else { panic!("a CRD term's adapter is its embeddings and memory") };
        let s = embed(&c.embed_own, flat_features(i.own_tap()));
        let t = embed(&c.embed_source, flat_features(i.source_taps[0].clone()));
        let device = s.device();
        let look = &i.lookup;
        let contrast = contrast_indices(&look.indices, look.labels, self.negatives, look.seed);
        let contrast = Tensor::<1, Int>::from_data(TensorData::new(contrast.clone(), [contrast.len()]), &device);
        let rows: Vec<i64> = look.indices.iter().map(|&r| r as i64).collect();
        let rows = Tensor::<1, Int>::from_data(TensorData::new(rows, [look.indices.len()]), &device);
        c.step(s, t, rows, contrast, self.temperature, self.momentum)
    }
}
