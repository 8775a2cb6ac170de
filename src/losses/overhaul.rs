//! Overhaul of feature distillation (OFD): the target's pre-activations, through a connector,
//! pushed towards the source's where they matter — above a margin the source's batch norm sets.

use burn::tensor::module::adaptive_avg_pool2d;
use burn::tensor::{Tensor, TensorData};
use serde::{Deserialize, Serialize};

pub use super::adapter::OfdConnector;

use super::adapter::{Adapter, AdapterSpec};
use super::check::EdgeCheck;
use super::kind::{Inputs, LossKind, Reads, Targets};
use super::review::as_map;
use crate::diagnostics::Diagnostic;
use crate::models::{ModelSpec, Network};

/// `Ofd`: "A Comprehensive Overhaul of Feature Distillation" (Heo, Kim, Yun, Park, Kwak & Choi,
/// ICCV 2019), eqs. (2)–(4), as mdistiller's `distillers/OFD.py` computes it. With `s = r(v)`
/// the target's pre-activation `v` through the connector `r` (a 1×1 convolution without bias,
/// drawn normal with σ = √(2/C_t), and a batch norm), `t` the source's pre-activation
/// average-pooled to s's size (detached), and the per-channel margin m of the source:
///
/// `(1/B)·Σ [ (s − m)²·1(s > m ∧ t ≤ m) + (s − t)²·1(s > t ∧ m < t ≤ 0) + (s − t)²·1(t > 0) ]`
///
/// summed over channels and positions: the partial L2 — no loss where both are below the margin.
/// The margin is the expectation of the source's negative responses under the Gaussian its batch
/// norm before the ReLU sets (scale γ, shift β per channel): with `σ = |γ|`,
/// `m = β − σ·φ(β/σ)/Φ(−β/σ)` where `Φ(−β/σ) > 0.001`, else `−3σ` (φ, Φ the standard normal
/// density and CDF), read at the start of every stage from the source, which must not train in
/// that stage and must have a batch norm right before the tap (ResNet's `stage<i>_pre`: the last
/// block's second; WRN's `group<i>_pre`). mdistiller sums the term over every stage's
/// pre-activation, weighted 2^(i−n+1) (¼, ½, 1: one edge per stage with that weight), times
/// `FEAT_WEIGHT` 0.001 beside CE 1; it also runs the teacher in training mode (batch statistics):
/// a frozen source does so with `batch_stats: true` on its node (else eval mode, its running
/// statistics).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ofd {
    /// Tap of the source (a pre-activation with a batch norm before it, e.g. `stage1_pre`).
    pub from_tap: String,
    /// Tap of the target (a pre-activation).
    pub to_tap: String,
}

/// The standard normal CDF Φ(x) = erfc(−x/√2)/2.
fn normal_cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x / std::f64::consts::SQRT_2)
}

/// The margin of each channel from the scale γ and shift β of the batch norm before it (see
/// [`Ofd`]), in f64, as mdistiller's `init_ofd_modules`.
pub fn margins(gamma: &[f32], beta: &[f32]) -> Vec<f32> {
    gamma
        .iter()
        .zip(beta)
        .map(|(&g, &b)| {
            let (s, m) = ((g as f64).abs(), b as f64);
            let p = normal_cdf(-m / s);
            let margin = if p > 0.001 { -s * (-(m / s).powi(2) / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt() / p + m } else { -3.0 * s };
            margin as f32
        })
        .collect()
}

/// The partial L2 of OFD (mdistiller's `feat_loss`) for the connected target pre-activations `s`,
/// the source's `t` (at s's size, detached) and the margin per channel; the indicators carry no
/// gradient.
///
/// # Shapes
/// `s`, `t` `[B, C, H, W]`, `margin` `[C]` → `[1]`.
pub fn ofd_loss(s: Tensor<4>, t: Tensor<4>, margin: Tensor<1>) -> Tensor<1> {
    let [b, c, h, w] = s.dims();
    let t = t.detach();
    let m = margin.reshape([1, c, 1, 1]).expand([b, c, h, w]);
    let sd = s.clone().detach();
    let above = sd.clone().greater(m.clone()).bool_and(t.clone().lower_equal(m.clone())).float();
    let between = sd.greater(t.clone()).bool_and(t.clone().greater(m.clone())).bool_and(t.clone().lower_equal_elem(0.0)).float();
    let on = t.clone().greater_elem(0.0).float();
    let d = (s.clone() - t).powi_scalar(2);
    let loss = (s - m).powi_scalar(2) * above + d.clone() * between + d * on;
    loss.abs().sum().div_scalar(b as f64)
}

impl LossKind for Ofd {
    fn name(&self) -> &'static str {
        "Ofd"
    }
    fn label(&self) -> String {
        format!("Ofd({} -> {})", self.from_tap, self.to_tap)
    }
    fn reads(&self) -> Reads<'_> {
        Reads { targets: Targets::Features, own_taps: std::slice::from_ref(&self.to_tap), source_taps: std::slice::from_ref(&self.from_tap) }
    }
    /// One source; maps on both sides (the source's pooled to the target's size); a source tap
    /// with a batch norm right before it (a ResNet's or a WRN's pre-activation).
    fn check(&mut self, edge: &mut EdgeCheck) {
        let Some((u, v)) = edge.feature_taps(&self.from_tap, &self.to_tap) else { return };
        let hint = "read `stage<i>_pre` of a ResNet or `group<i>_pre` of a WRN on both sides";
        if u.len() != 3 || v.len() != 3 {
            let msg = format!("OFD reads the pre-activation maps of two 2-D networks: `{}` is {u:?}, `{}` is {v:?}", self.from_tap, self.to_tap);
            edge.error(Diagnostic::at(edge.loss_path(), msg).hint(hint));
            return;
        }
        let source = &edge.nodes[edge.from[0]];
        let with_bn = matches!(source.model, ModelSpec::ResNet(_) | ModelSpec::Wrn(_)) && self.from_tap.ends_with("_pre");
        if !with_bn {
            let msg = format!("OFD's margin comes from the batch norm right before the source's tap, and `{}` of `{}` has none", self.from_tap, source.id);
            edge.error(Diagnostic::at(edge.loss_path().field("from_tap"), msg).hint(hint));
        }
    }
    fn adapter(&self, own: &dyn Fn(&str) -> Vec<usize>, source: &dyn Fn(&str) -> Vec<usize>, _samples: usize) -> Option<AdapterSpec> {
        Some(AdapterSpec::Overhaul { own: own(&self.to_tap)[0], source: source(&self.from_tap)[0] })
    }
    /// The margin from the source's batch norm before `from_tap`, at the stage's start.
    fn prepare(&self, adapter: Option<&Adapter>, source: &Network, source_trains: bool) -> Result<(), (String, String)> {
        let Some(Adapter::Overhaul(c)) = adapter else { panic!("an OFD term's adapter is its connector") };
        if source_trains {
            let fix = "train the source in an earlier stage, or freeze it (`frozen: true` with its checkpoint)";
            return Err(("OFD reads its margin from the source's batch norm once per stage, so the source must not train in the stage".into(), fix.into()));
        }
        let Some((gamma, beta)) = source.bn_before(&self.from_tap) else {
            let fix = "read a ResNet's `stage<i>_pre` or a WRN's `group<i>_pre` (a batch norm right before the tap)";
            return Err((format!("OFD's margin comes from the batch norm before the source's tap, and `{}` has none", self.from_tap), fix.into()));
        };
        let m = margins(&gamma, &beta);
        c.margin.update(Tensor::from_data(TensorData::new(m.clone(), [m.len()]), &c.margin.value().device()));
        c.margin.value_sync();
        Ok(())
    }
    fn loss(&self, i: Inputs) -> Tensor<1> {
        let Some(Adapter::Overhaul(c)) = i.adapter else { panic!("an OFD term's adapter is its connector") };
        let s = c.forward(as_map(i.own_tap()));
        let [_, _, h, w] = s.dims();
        let t = as_map(i.source_taps[0].clone());
        let t = if t.dims()[2..] == [h, w] { t } else { adaptive_avg_pool2d(t, [h, w]) };
        ofd_loss(s, t, c.margin.value())
    }
}
