//! Factor transfer: the source's feature map encoded into "factors" by a paraphraser trained
//! first to reconstruct it, and the target's translated into the same factors.

use burn::tensor::Tensor;
use burn::tensor::module::adaptive_avg_pool2d;
use serde::{Deserialize, Serialize};

pub use super::adapter::Factor;

use super::adapter::{Adapter, AdapterSpec};
use super::check::EdgeCheck;
use super::kind::{Inputs, LossKind, Reads, Targets};
use super::review::as_map;
use crate::diagnostics::Diagnostic;

/// `FactorTransfer` (FT): "Paraphrasing Complex Network: Network Compression via Factor Transfer"
/// (Kim, Park & Kwak, NeurIPS 2018), as RepDistiller runs it (`distiller_zoo/FT.py`,
/// `models/util.py`'s `Paraphraser` and `Translator`, `helper/pretrain.py`; vendored under
/// `third_party/RepDistiller/`). Two parts, one learned module pair shared by the two terms that
/// name the same taps and rate:
///
/// - `part: Paraphrase` (RepDistiller's init stage): the paraphraser `P` — three 3×3
///   convolutions with LeakyReLU(0.1) encoding the source's map `t` (`C` channels) into
///   `⌊k·C⌋` channels, three 3×3 transposed convolutions decoding it back — learns to reconstruct
///   it: `MSE(dec(P(t)), t)`, the mean over every element. Nothing of the target's network learns.
/// - `part: Translate`: the translator `T` (three 3×3 convolutions, each with a batch norm, and
///   LeakyReLU(0.1)) takes the target's map `s` to `⌊k·C⌋` channels, and the term is
///   `mean |φ(T(s)) − φ(P(t))|` with `φ(f) = normalise(mean_c f²)` the L2-normalised channel mean
///   of squares (`[B, H·W]`), the larger map first average-pooled to the smaller. The paraphraser
///   stays as trained (its factor carries no gradient).
///
/// RepDistiller reads the last stage's output (`feat[-2]`: `stage3` of a ResNet) on both sides,
/// `k = 0.5`, trains the paraphraser for 30 epochs at lr 0.01 (SGD, momentum 0.9), then CE plus
/// the transfer at weight 200 (`-a 0 -b 200`). Sequences are read as maps of width 1 (3×1
/// kernels, pooled to the shorter length).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FactorTransfer {
    /// Tap of the source (a map or a sequence).
    pub from_tap: String,
    /// Tap of the target (a map or a sequence).
    pub to_tap: String,
    /// The factors' share k of the source's channels.
    #[serde(default = "default_rate")]
    pub rate: f64,
    /// Which part the term trains.
    pub part: FactorPart,
}

fn default_rate() -> f64 {
    0.5
}

/// The two parts of factor transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FactorPart {
    /// The paraphraser learns to reconstruct the source's map (the init stage).
    Paraphrase,
    /// The target's translator learns the paraphraser's factors.
    Translate,
}

/// `φ(f) = f / max(‖f‖₂, 1e-12)` row by row of `mean_c f²` (`[B, H·W]`).
/// AT's attention map: RepDistiller's `FactorTransfer.factor` with p₁ = 2 is the same function.
fn factor(f: Tensor<4>) -> Tensor<2> {
    super::attention::attention_map(f.flatten(2, 3))
}

/// The transfer term `mean |φ(s) − φ(t)|` (RepDistiller's `FactorTransfer`, p₁ = 2, p₂ = 1), the
/// larger map average-pooled to the smaller's height (square maps; sequences by length).
///
/// # Shapes
/// `s` `[B, F, H, W]`, `t` `[B, F, H', W']` → `[1]`.
pub fn factor_loss(s: Tensor<4>, t: Tensor<4>) -> Tensor<1> {
    let ([_, _, hs, ws], [_, _, ht, wt]) = (s.dims(), t.dims());
    let (s, t) = match hs.cmp(&ht) {
        std::cmp::Ordering::Greater => (adaptive_avg_pool2d(s, [ht, wt]), t),
        std::cmp::Ordering::Less => (s, adaptive_avg_pool2d(t, [hs, ws])),
        std::cmp::Ordering::Equal => (s, t),
    };
    (factor(s) - factor(t)).abs().mean()
}

impl LossKind for FactorTransfer {
    fn name(&self) -> &'static str {
        "FactorTransfer"
    }
    fn label(&self) -> String {
        let part = match self.part {
            FactorPart::Paraphrase => "paraphrase",
            FactorPart::Translate => "translate",
        };
        format!("FactorTransfer({part}, {} -> {})", self.from_tap, self.to_tap)
    }
    fn reads(&self) -> Reads<'_> {
        let own: &[String] = match self.part {
            FactorPart::Paraphrase => &[],
            FactorPart::Translate => std::slice::from_ref(&self.to_tap),
        };
        Reads { targets: Targets::Features, own_taps: own, source_taps: std::slice::from_ref(&self.from_tap) }
    }
    /// One source; maps or sequences on both sides (not one of each); a rate that leaves at least
    /// one factor channel and at most the source's.
    fn check(&mut self, edge: &mut EdgeCheck) {
        let Some((u, v)) = edge.feature_taps(&self.from_tap, &self.to_tap) else { return };
        if u.len() < 2 || u.len() != v.len() {
            let msg = format!("factor transfer reads two maps or two sequences: `{}` is {u:?}, `{}` is {v:?}", self.from_tap, self.to_tap);
            let d = Diagnostic::at(edge.loss_path(), msg);
            edge.error(d.hint("RepDistiller reads the last stage's output on both sides (feat[-2]: `stage3` of a ResNet, `block3` of a Cnn1d)"));
            return;
        }
        if !(self.rate > 0.0 && self.rate <= 1.0 && (u[0] as f64 * self.rate) as usize >= 1) {
            let d = Diagnostic::at(
                edge.loss_path().field("rate"),
                format!("the rate must leave between 1 and {} factor channels of `{}`, got {}", u[0], self.from_tap, self.rate),
            );
            edge.error(d.hint("RepDistiller's is `rate: 0.5`"));
        }
    }
    /// Both parts' terms on the same taps and rate share one paraphraser and translator.
    fn adapter_key(&self) -> Option<String> {
        Some(format!("FactorTransfer({} -> {}, k {})", self.from_tap, self.to_tap, self.rate))
    }
    fn adapter(&self, own: &dyn Fn(&str) -> Vec<usize>, source: &dyn Fn(&str) -> Vec<usize>, _samples: usize) -> Option<AdapterSpec> {
        Some(AdapterSpec::Factor { own: own(&self.to_tap), source: source(&self.from_tap), rate: self.rate })
    }
    fn loss(&self, i: Inputs) -> Tensor<1> {
        let Some(Adapter::Factor(f)) = i.adapter else { panic!("a factor-transfer term's adapter is its paraphraser and translator") };
        let t = as_map(i.source_taps[0].clone());
        match self.part {
            FactorPart::Paraphrase => (f.reconstruct(t.clone()) - t).powi_scalar(2).mean(),
            FactorPart::Translate => factor_loss(f.translate(as_map(i.own_tap())), f.encode(t).detach()),
        }
    }
}
