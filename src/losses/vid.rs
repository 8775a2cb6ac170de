//! Variational information distillation: a target's features regressed onto a source's under a
//! learned Gaussian likelihood.

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use super::adapter::{Adapter, AdapterSpec};
use super::check::EdgeCheck;
use super::kind::{Inputs, LossKind, Reads, Targets};
use crate::diagnostics::Diagnostic;
use crate::values::Width;

/// `Vid`: "Variational Information Distillation for Knowledge Transfer" (Ahn et al., CVPR 2019),
/// eq. (6): the source's features t (detached) modelled as a Gaussian whose mean μ(s) a learned
/// regressor predicts from the target's features s, with a learned variance σ²_c per channel c of
/// the source,
/// `L = mean_{b,c,n} ½ ((t_{b,c,n} − μ(s)_{b,c,n})² / σ²_c + log σ²_c)`
/// (the negative log-likelihood without its constant, averaged over every entry). As the authors'
/// code in RepDistiller (`distiller_zoo/VID.py`, vendored under `third_party/RepDistiller/`): μ is
/// 1×1 conv → ReLU → 1×1 conv → ReLU → 1×1 conv, no biases (channels C_s → mid → mid → C_t;
/// RepDistiller's mid = C_t), `σ²_c = softplus(α_c) + 1e-5` with α starting where σ² = `init_var`
/// (5); when the positions differ, the larger map is average-pooled to the smaller first. The
/// regressor and α are learned with the target. RepDistiller applies it to the three stages'
/// outputs with weight 1 each.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vid {
    /// Tap of the source.
    pub from_tap: String,
    /// Tap of the target.
    pub to_tap: String,
    /// Channels of the regressor's hidden layers (default: the source's channels).
    #[serde(default)]
    pub mid: Option<Width>,
    /// Initial variance σ² (default 5).
    #[serde(default = "default_init_var")]
    pub init_var: f64,
}

fn default_init_var() -> f64 {
    5.0
}

/// ε added to the softplus (the smallest variance).
const EPS: f64 = super::adapter::VID_EPS;

pub use super::common::common_positions;

/// `mean ½ ((t − μ)² / σ² + log σ²)`, σ² broadcast over the batch and the positions.
///
/// # Shapes
/// `t`, `mu` `[B, C, N]`, `var` `[C]` → `[1]`.
pub fn vid_loss(t: Tensor<3>, mu: Tensor<3>, var: Tensor<1>) -> Tensor<1> {
    let [c] = var.dims();
    let var = var.reshape([1, c, 1]);
    ((t.detach() - mu).powi_scalar(2) / var.clone() + var.log()).mul_scalar(0.5).mean()
}

impl LossKind for Vid {
    fn name(&self) -> &'static str {
        "Vid"
    }
    fn label(&self) -> String {
        format!("Vid({} -> {})", self.from_tap, self.to_tap)
    }
    fn reads(&self) -> Reads<'_> {
        Reads { targets: Targets::Features, own_taps: std::slice::from_ref(&self.to_tap), source_taps: std::slice::from_ref(&self.from_tap) }
    }
    /// One source, taps of the same rank, and a positive finite initial variance.
    fn check(&mut self, edge: &mut EdgeCheck) {
        if let Some((u, v)) = edge.feature_taps(&self.from_tap, &self.to_tap)
            && u.len() != v.len()
        {
            let msg = format!("VID regresses one kind of feature onto the same kind, but `{}` is {:?} and `{}` is {:?}", self.from_tap, u, self.to_tap, v);
            edge.error(
                Diagnostic::at(edge.loss_path().field("to_tap"), msg)
                    .hint("name taps of the same rank on both nodes: two feature maps, two sequences, or two flat features"),
            );
        }
        if !(self.init_var.is_finite() && self.init_var > EPS) {
            let msg = format!("VID's initial variance must be a finite number above 1e-5, not {}", self.init_var);
            edge.error(Diagnostic::at(edge.loss_path().field("init_var"), msg).hint("the authors start at init_var: 5.0"));
        }
    }
    fn adapter(&self, own: &dyn Fn(&str) -> Vec<usize>, source: &dyn Fn(&str) -> Vec<usize>, _samples: usize) -> Option<AdapterSpec> {
        let to = source(&self.from_tap);
        let mid = self.mid.map_or(to[0], |m| m.get());
        Some(AdapterSpec::Variational { from: own(&self.to_tap), to, mid, init_var: self.init_var })
    }
    fn loss(&self, i: Inputs) -> Tensor<1> {
        let Some(Adapter::Variational(v)) = i.adapter else { panic!("a Vid term has its regressor") };
        let (t, s) = common_positions(i.source_taps[0].clone(), i.own_tap());
        vid_loss(t.channels_by_positions(), v.mean(s.channels_by_positions()), v.variance())
    }
}
