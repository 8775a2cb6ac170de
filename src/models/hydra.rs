//! Hydra (Tran et al. 2020) and ONE's gated multi-branch network (Lan et al. 2018): one shared
//! body, several light heads.

use std::fmt;

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor, activation::relu};
use serde::{Deserialize, Serialize};

use super::tap::{Tap, Taps};
use super::{Architecture, Network, SpecProblem, widths};
use crate::kernels;
use crate::values::{Width, is_false};

/// `Hydra(body: [512, 512], heads: 4)`: one shared fully connected body and `heads` light heads
/// (Linear → ReLU → Linear each). The node's output is the head mean, `log((1/M) Σ_m
/// softmax(h_m))` (or ONE's gated ensemble with `gate`, PCL's fusion classifier on the heads'
/// hidden features with `fusion`); an edge with `head: m` trains head m alone (e.g. from ensemble member m).
/// Taps: `hidden1`, … of the body; the heads' logits are [`super::head_tap`]s, read by the engine for
/// `head: m` terms, not listed as features.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename = "Hydra")]
pub struct HydraSpec {
    /// Widths of the shared body, e.g. `[512, 512]`.
    pub body: Vec<Width>,
    /// Number of heads M.
    pub heads: Width,
    /// Hidden width of each head.
    #[serde(default = "default_head_hidden")]
    pub head_hidden: Width,
    /// ONE (Lan et al. 2018): a gate (Linear on the body's features → softmax over heads)
    /// weights the heads' logits, and the node's output is the gated ensemble `Σ_m g_m·h_m`
    /// instead of the head mean.
    #[serde(default)]
    pub gate: bool,
    /// PCL (Wu & Gong 2021): the node's output is the peer ensemble teacher, a classifier on the
    /// heads' hidden features concatenated (see [`super::Fusion`]), instead of the head mean.
    /// Not with `gate`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub fusion: bool,
    /// CL-ILR's backpropagation rescaling (Song & Chai 2018, §3.3): the gradient that reaches
    /// the shared body from the heads is divided by the number of heads H (the forward pass is
    /// unchanged), so the body learns at the rate of one head.
    #[serde(default, skip_serializing_if = "is_false")]
    pub backprop_rescale: bool,
}

fn default_head_hidden() -> Width {
    Width::new(64).expect("valid")
}

/// Name of the tap after body layer `i` (from 1).
fn tap(i: usize) -> String {
    format!("hidden{i}")
}

impl Architecture for HydraSpec {
    fn name(&self) -> &'static str {
        "Hydra"
    }
    fn input_rank(&self) -> Option<usize> {
        None
    }
    fn problems(&self, _shape: &[usize]) -> Vec<SpecProblem> {
        ensemble_problems(self.gate, self.fusion)
    }
    fn taps(&self, _shape: &[usize]) -> Vec<(String, Vec<usize>)> {
        self.body.iter().enumerate().map(|(i, w)| (tap(i + 1), vec![w.get()])).collect()
    }
    fn build(&self, shape: &[usize], classes: usize, device: &Device) -> Network {
        let mut layers = Vec::new();
        let mut width = shape.iter().product();
        for w in &self.body {
            layers.push(LinearConfig::new(width, w.get()).init(device));
            width = w.get();
        }
        let hidden = self.head_hidden.get();
        let heads: Vec<HydraHead> = (0..self.heads.get())
            .map(|_| HydraHead { hidden: LinearConfig::new(width, hidden).init(device), out: LinearConfig::new(hidden, classes).init(device) })
            .collect();
        let gate = self.gate.then(|| LinearConfig::new(width, heads.len()).init(device));
        let fusion = self.fusion.then(|| super::Fusion::new(heads.len(), hidden, classes, device));
        Network::Hydra(Hydra { body: layers, heads, gate, fusion, rescale: self.backprop_rescale })
    }
    fn heads(&self) -> usize {
        self.heads.get()
    }
}

impl fmt::Display for HydraSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tail = ensemble_label(self.gate, self.fusion, self.backprop_rescale);
        write!(f, "Hydra(body {}, {} heads of {}{tail})", widths(&self.body), self.heads, self.head_hidden)
    }
}

/// How a multi-head network's spec ends when displayed: `, gated` (ONE) or `, fused` (PCL), then
/// `, backprop rescaled` (CL-ILR).
pub(super) fn ensemble_label(gate: bool, fusion: bool, rescale: bool) -> String {
    let ensemble = if gate {
        ", gated"
    } else if fusion {
        ", fused"
    } else {
        ""
    };
    format!("{ensemble}{}", if rescale { ", backprop rescaled" } else { "" })
}

/// A multi-head network's ensemble is the head mean, ONE's gate or PCL's fusion: not both.
pub(super) fn ensemble_problems(gate: bool, fusion: bool) -> Vec<SpecProblem> {
    if gate && fusion {
        vec![
            SpecProblem::at("fusion", "`gate` and `fusion` are two ways to build the node's output: choose one").hint("ONE: `gate: true`; PCL: `fusion: true`"),
        ]
    } else {
        Vec::new()
    }
}

/// One light head of a [`Hydra`]: Linear → ReLU → Linear.
#[derive(Module, Debug)]
pub struct HydraHead {
    hidden: Linear,
    out: Linear,
}

/// A shared fully connected body (Linear → ReLU)* and M heads, optionally gated.
#[derive(Module, Debug)]
pub struct Hydra {
    body: Vec<Linear>,
    heads: Vec<HydraHead>,
    gate: Option<Linear>,
    /// PCL's fusion classifier (see [`HydraSpec::fusion`]).
    fusion: Option<super::Fusion>,
    /// Backpropagation rescaling (see [`HydraSpec::backprop_rescale`]).
    rescale: bool,
}

impl Hydra {
    /// Log-probabilities `[B, classes]` of the head mean (or the gated ensemble's, or the fusion
    /// classifier's logits) of a flat batch `[B, D]`; taps `hidden{i}` are `[B, width_i]`,
    /// `head{m}` `[B, classes]`.
    pub(super) fn forward(&self, x: Tensor<2>, taps: &mut Taps) -> Tensor<2> {
        let mut h = x;
        for (i, l) in self.body.iter().enumerate() {
            h = relu(kernels::linear(l, h));
            taps.put(tap(i + 1), || Tap::Flat(h.clone()));
        }
        if self.rescale {
            h = super::rescale_gradient(h, self.heads.len());
        }
        let features: Vec<Tensor<2>> = self.heads.iter().map(|head| relu(kernels::linear(&head.hidden, h.clone()))).collect();
        let outs: Vec<Tensor<2>> = self.heads.iter().zip(&features).map(|(head, f)| kernels::linear(&head.out, f.clone())).collect();
        let gate_scores = self.gate.as_ref().map(|gate| kernels::linear(gate, h));
        super::heads::multi_head_output(outs, features, gate_scores, self.fusion.as_ref(), taps)
    }
}
