//! The tail every multi-head network shares (Hydra, BranchedResNet): its heads as taps, and its
//! output as the gated ensemble (ONE), the fusion classifier (FFL) or the mean of the heads'
//! probabilities.

use burn::tensor::Tensor;
use burn::tensor::activation::{log_softmax, softmax};

use super::fusion::Fusion;
use super::tap::{Tap, Taps};

/// The output of a multi-head network with heads' logits `outs` (each `[B, C]`), the heads'
/// features `features` (for a fusion classifier) and, for a gated ensemble, its gate's scores
/// `[B, M]` (before the softmax). Puts each head as tap `head{m}`.
pub fn multi_head_output(
    outs: Vec<Tensor<2>>,
    features: Vec<Tensor<2>>,
    gate_scores: Option<Tensor<2>>,
    fusion: Option<&Fusion>,
    taps: &mut Taps,
) -> Tensor<2> {
    for (m, o) in outs.iter().enumerate() {
        taps.put(head_tap(m + 1), || Tap::Flat(o.clone()));
    }
    match (gate_scores, fusion) {
        (Some(scores), _) => gated_logits(&outs, softmax(scores, 1)),
        (None, Some(fusion)) => fusion.forward(features),
        (None, None) => head_mean_log_probs(&outs),
    }
}

/// The output of a multi-head (Hydra) network: the log of the mean of its heads'
/// probabilities, `log((1/M) Σ_m softmax(h_m))`, computed as a log-sum-exp over heads of
/// `log_softmax(h_m)` minus `log M`. As logits, its softmax is the head mean.
///
/// # Shapes
/// each `h_m` `[B, C]` → `[B, C]`.
pub fn head_mean_log_probs(heads: &[Tensor<2>]) -> Tensor<2> {
    assert!(!heads.is_empty(), "at least one head");
    let m = heads.len() as f64;
    let logp: Vec<Tensor<2>> = heads.iter().map(|h| log_softmax(h.clone(), 1)).collect();
    let max = logp.iter().cloned().reduce(|a, b| a.max_pair(b)).expect("non-empty");
    let sum = logp.into_iter().map(|l| (l - max.clone()).exp()).reduce(|a, b| a + b).expect("non-empty");
    max + sum.log() - m.ln()
}

/// ONE's gated ensemble (Lan et al. 2018): `Σ_m g_bm·h_bm` for the heads' logits `h_m` and gate
/// weights `g` (rows sum to 1).
///
/// # Shapes
/// each `h_m` `[B, C]`, `g` `[B, M]` → `[B, C]`.
pub fn gated_logits(heads: &[Tensor<2>], g: Tensor<2>) -> Tensor<2> {
    let [b, _] = g.dims();
    heads.iter().enumerate().map(|(m, h)| h.clone() * g.clone().slice([0..b, m..m + 1])).reduce(|a, c| a + c).expect("at least one head")
}

/// Name of head `m`'s logits (from 1): the tap a `head: m` term trains, and the suffix of the
/// head's rows in `metrics.csv` (`<node>.head<m>`).
pub fn head_tap(m: usize) -> String {
    format!("head{m}")
}
