//! Correlation congruence: the correlations among a batch's samples taught from a source to a
//! target, beside (not instead of) the samples' own outputs.

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use super::adapter::{Adapter, AdapterSpec};
use super::check::EdgeCheck;
use super::common::flat_features;
use super::kind::{Inputs, LossKind, Reads, Targets};
use crate::diagnostics::Diagnostic;
use crate::values::Width;

/// `Correlation` (CC): "Correlation Congruence for Knowledge Distillation" (Peng et al., ICCV
/// 2019) between the source's tap (t, detached) and the target's (s), features flattened. Two
/// forms, because the paper and the code its authors shared differ:
///
/// - `Taylor(gamma, order)` — the paper, eqs. (4)–(9): each feature vector scaled to unit norm
///   (`f / max(‖f‖, 1e-12)`), the batch's correlation matrix through the P-order Taylor expansion
///   of the Gaussian RBF kernel `exp(−γ‖f_i − f_j‖²) = e^{−2γ} e^{2γ f_i·f_j}` for unit vectors,
///   `ψ(F)_ij = Σ_{p=0}^{P} e^{−2γ} (2γ)^p / p! · (f_i·f_j)^p`, and
///   `L_CC = (1/B²) Σ_ij (ψ(F_t)_ij − ψ(F_s)_ij)²` (the paper's `‖ψ_t − ψ_s‖²₂ / n²`). The widths
///   of the two taps may differ. Tested against an independent float64 computation of these
///   equations (`scripts/distill-reference.py`).
/// - `Authors(dim)` — the code the authors shared with RepDistiller (`distiller_zoo/CC.py`,
///   vendored under `third_party/RepDistiller/`): both taps embedded first, `e = W·f + b` with one
///   learned `Linear(F, dim)` per side (RepDistiller's `LinearEmbed`, not normalised, `dim` = 128,
///   both trained with the target: `train_student.py`), then with `Δ = |e_s − e_t|`,
///   `L = (1/(B−1)) Σ_{b=1}^{B−1} Σ_k Δ_{b,k} Δ_{b+1,k}` — products of consecutive samples of the
///   batch, not a correlation matrix. A batch of one sample gives 0 (the reference: NaN).
///
/// RepDistiller reads the pooled features (`feat[-1]`) and weights the term 0.02.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Correlation {
    /// Tap of the source.
    pub from_tap: String,
    /// Tap of the target.
    pub to_tap: String,
    /// Which definition.
    pub form: CcForm,
}

/// The two definitions of correlation congruence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum CcForm {
    /// The paper's Taylor-expanded Gaussian kernel: γ (0.4 in the common re-implementations) and
    /// the order P (2).
    Taylor {
        /// γ of `exp(−γ‖f_i − f_j‖²)`.
        gamma: f64,
        /// The highest power P of the expansion.
        order: usize,
    },
    /// The authors' code as RepDistiller runs it, after a learned embedding of width `dim` (128).
    Authors {
        /// Width of the embeddings.
        dim: Width,
    },
}

/// `ψ(F)` of a batch of features: unit rows, then `Σ_{p=0}^{P} e^{−2γ}(2γ)^p/p! · (f_i·f_j)^p`.
///
/// # Shapes
/// `f` `[B, F]` → `[B, B]`.
pub fn correlation_matrix(f: Tensor<2>, gamma: f64, order: usize) -> Tensor<2> {
    let norm = f.clone().powi_scalar(2).sum_dim(1).sqrt().clamp_min(1e-12);
    let f = f / norm;
    let sim = f.clone().matmul(f.transpose());
    let mut power = sim.ones_like();
    let mut coefficient = (-2.0 * gamma).exp();
    let mut psi = power.clone().mul_scalar(coefficient);
    for p in 1..=order {
        power = power * sim.clone();
        coefficient *= 2.0 * gamma / p as f64;
        psi = psi + power.clone().mul_scalar(coefficient);
    }
    psi
}

/// The paper's `(1/B²) Σ_ij (ψ(F_t)_ij − ψ(F_s)_ij)²` for the source's detached features `t` and
/// the target's `s`.
///
/// # Shapes
/// `t` `[B, F_t]`, `s` `[B, F_s]` → `[1]`.
pub fn cc_taylor_loss(t: Tensor<2>, s: Tensor<2>, gamma: f64, order: usize) -> Tensor<1> {
    (correlation_matrix(t.detach(), gamma, order) - correlation_matrix(s, gamma, order)).powi_scalar(2).mean()
}

/// The authors' `(1/(B−1)) Σ_b Σ_k Δ_{b,k} Δ_{b+1,k}`, `Δ = |e_s − e_t|`, on embeddings already
/// made; 0 for a batch of one.
///
/// # Shapes
/// `e_t`, `e_s` `[B, d]` → `[1]`.
pub fn cc_authors_loss(e_t: Tensor<2>, e_s: Tensor<2>) -> Tensor<1> {
    let [b, d] = e_s.dims();
    if b < 2 {
        return e_s.sum().mul_scalar(0.0);
    }
    let delta = (e_s - e_t).abs();
    (delta.clone().slice([0..b - 1, 0..d]) * delta.slice([1..b, 0..d])).sum().div_scalar((b - 1) as f64)
}

/// RepDistiller's `LinearEmbed`, the embedding its CC reads through: `W·f + b`.
///
/// # Shapes
/// `f` `[B, F]` → `[B, d]`.
pub fn embed(linear: &burn::nn::Linear, f: Tensor<2>) -> Tensor<2> {
    crate::kernels::linear(linear, f)
}

impl LossKind for Correlation {
    fn name(&self) -> &'static str {
        "Correlation"
    }
    fn label(&self) -> String {
        match &self.form {
            CcForm::Taylor { gamma, order } => format!("Correlation(γ={gamma}, P={order}; {} -> {})", self.from_tap, self.to_tap),
            CcForm::Authors { dim } => format!("Correlation(authors, d={dim}; {} -> {})", self.from_tap, self.to_tap),
        }
    }
    fn reads(&self) -> Reads<'_> {
        Reads { targets: Targets::Features, own_taps: std::slice::from_ref(&self.to_tap), source_taps: std::slice::from_ref(&self.from_tap) }
    }
    /// One source, taps that exist, and γ > 0.
    fn check(&mut self, edge: &mut EdgeCheck) {
        edge.feature_taps(&self.from_tap, &self.to_tap);
        if let CcForm::Taylor { gamma, .. } = self.form
            && !(gamma.is_finite() && gamma > 0.0)
        {
            let msg = format!("CC's kernel width γ must be a positive number, not {gamma}");
            edge.error(Diagnostic::at(edge.loss_path().field("form").field("gamma"), msg).hint("the common setting is gamma: 0.4"));
        }
    }
    fn adapter(&self, own: &dyn Fn(&str) -> Vec<usize>, source: &dyn Fn(&str) -> Vec<usize>, _samples: usize) -> Option<AdapterSpec> {
        match self.form {
            CcForm::Authors { dim } => {
                let width = |shape: Vec<usize>| shape.iter().product::<usize>();
                Some(AdapterSpec::Embed { own: width(own(&self.to_tap)), source: width(source(&self.from_tap)), dim: dim.get() })
            }
            CcForm::Taylor { .. } => None,
        }
    }
    fn loss(&self, i: Inputs) -> Tensor<1> {
        let (t, s) = (flat_features(i.source_taps[0].clone()).detach(), flat_features(i.own_tap()));
        match self.form {
            CcForm::Taylor { gamma, order } => cc_taylor_loss(t, s, gamma, order),
            CcForm::Authors { .. } => {
                let Some(Adapter::Embed(e)) = i.adapter else { panic!("an authors'-form CC term has an embedding adapter") };
                cc_authors_loss(embed(&e.source, t), embed(&e.own, s))
            }
        }
    }
}
