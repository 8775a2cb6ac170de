//! Multi-layer perceptron (Hinton et al. 2015's MNIST teacher and student).

use std::fmt;

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor, activation::relu};
use serde::{Deserialize, Serialize};

use super::branched::Stages;
use super::tap::{Tap, Taps, dropout};
use super::{Architecture, Network, SpecProblem, widths};
use crate::data::spec::zero_fraction;
use crate::kernels;
use crate::values::{Fraction, MaxNorm, Width};

/// `Mlp(hidden: [1200, 1200], ...)`: a fully connected ReLU network on flattened inputs,
/// in → hidden… → classes. Taps: `hidden1`, `hidden2`, … (post-activation, after dropout).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename = "Mlp")]
pub struct MlpSpec {
    /// Hidden widths, e.g. `[1200, 1200]` (Hinton's teacher), `[800, 800]` (student).
    pub hidden: Vec<Width>,
    /// Dropout probability after every hidden layer.
    #[serde(default = "zero_fraction")]
    pub dropout: Fraction,
    /// Dropout probability on the inputs (Hinton et al. 2012 used 0.2 with 0.5 hidden).
    #[serde(default = "zero_fraction")]
    pub input_dropout: Fraction,
    /// Max-norm constraint (Hinton et al. 2012, Srivastava et al. 2014): after every optimiser
    /// step the incoming weight vector of each hidden unit is scaled down to L2 norm `c` when it
    /// is longer, `w_j ← w_j · min(1, c/‖w_j‖)`. `None` = unconstrained.
    #[serde(default)]
    pub max_norm: Option<MaxNorm>,
}

/// Name of the tap after hidden layer `i` (from 1).
fn tap(i: usize) -> String {
    format!("hidden{i}")
}

impl Architecture for MlpSpec {
    fn name(&self) -> &'static str {
        "Mlp"
    }
    fn input_rank(&self) -> Option<usize> {
        None
    }
    fn problems(&self, _shape: &[usize]) -> Vec<SpecProblem> {
        Vec::new()
    }
    fn stages(&self, shape: &[usize]) -> Vec<String> {
        self.taps(shape).into_iter().map(|(n, _)| n).collect()
    }
    fn taps(&self, _shape: &[usize]) -> Vec<(String, Vec<usize>)> {
        self.hidden.iter().enumerate().map(|(i, w)| (tap(i + 1), vec![w.get()])).collect()
    }
    fn build(&self, shape: &[usize], classes: usize, device: &Device) -> Network {
        let mut layers = Vec::new();
        let mut width = shape.iter().product();
        for w in &self.hidden {
            layers.push(LinearConfig::new(width, w.get()).init(device));
            width = w.get();
        }
        Network::Mlp(Mlp {
            hidden: layers,
            out: Some(LinearConfig::new(width, classes).init(device)),
            dropout: self.dropout.get(),
            input_dropout: self.input_dropout.get(),
            max_norm: self.max_norm.map_or(0.0, |c| c.get()),
            first: 0,
        })
    }
}

impl fmt::Display for MlpSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Mlp({}, dropout {}{}{})",
            if self.hidden.is_empty() { "linear".into() } else { widths(&self.hidden) },
            self.dropout,
            if self.input_dropout.get() > 0.0 { format!(", input dropout {}", self.input_dropout) } else { String::new() },
            self.max_norm.map_or(String::new(), |c| format!(", max-norm {c}"))
        )
    }
}

/// Multi-layer perceptron: Dropout(input) → (Linear → ReLU → Dropout)* → Linear.
#[derive(Module, Debug)]
pub struct Mlp {
    hidden: Vec<Linear>,
    /// The classifier (absent in a branched network's trunk).
    out: Option<Linear>,
    dropout: f64,
    input_dropout: f64,
    /// Max-norm bound c of the hidden units' incoming weights; 0 = none.
    max_norm: f64,
    /// Index of its first hidden layer in the whole network (0 unless it is a branch's tail).
    first: usize,
}

/// `w_j ← w_j · min(1, c/‖w_j‖)` for every column j of a Linear weight `[in, out]` (the incoming
/// weights of output unit j), outside the autodiff graph; the parameter keeps its id (and so its
/// optimiser state) and its gradient requirement.
pub fn max_norm_columns(layer: Linear, c: f64) -> Linear {
    let weight = layer.weight.map(|w| {
        let (tracked, autodiff) = (w.is_require_grad(), w.is_autodiff());
        let w = w.without_autodiff();
        let norms = w.clone().powi_scalar(2).sum_dim(0).sqrt(); // [1, out]
        let scale = norms.clamp_min(c).recip().mul_scalar(c); // min(1, c/‖w_j‖)
        let w = w * scale;
        if autodiff { w.autodiff().set_require_grad(tracked) } else { w }
    });
    Linear { weight, ..layer }
}

impl Mlp {
    /// The network after its max-norm constraint (applied after every optimiser step).
    pub(super) fn constrain(mut self) -> Self {
        if self.max_norm > 0.0 {
            let c = self.max_norm;
            self.hidden = self.hidden.into_iter().map(|l| max_norm_columns(l, c)).collect();
        }
        self
    }

    /// Logits `[B, classes]` of a flat batch `[B, D]`; taps `hidden{i}` are `[B, width_i]`.
    pub(super) fn forward(&self, x: Tensor<2>, taps: &mut Taps) -> Tensor<2> {
        let h = self.stages(Tap::Flat(x), taps);
        self.classify(h, taps).0
    }
}

impl Stages for Mlp {
    /// `[B, D]` (the input's input dropout when it holds the first layer) → `[B, width_i]`.
    fn stages(&self, h: Tap, taps: &mut Taps) -> Tap {
        let Tap::Flat(mut h) = h else { unreachable!("an MLP reads flat features") };
        if self.first == 0 {
            h = dropout(h, self.input_dropout, &mut taps.noise);
        }
        for (i, l) in self.hidden.iter().enumerate() {
            h = dropout(relu(kernels::linear(l, h)), self.dropout, &mut taps.noise);
            taps.put(tap(self.first + i + 1), || Tap::Flat(h.clone()));
        }
        Tap::Flat(h)
    }
    /// The last hidden features and their logits.
    fn classify(&self, h: Tap, _taps: &mut Taps) -> (Tensor<2>, Tensor<2>) {
        let Tap::Flat(h) = h else { unreachable!("an MLP's features are flat") };
        (kernels::linear(self.out.as_ref().expect("the classifier is in the tail"), h.clone()), h)
    }
    fn split(mut self, k: usize) -> (Self, Self) {
        let hidden = self.hidden.split_off(k);
        let tail =
            Mlp { hidden, out: self.out.take(), dropout: self.dropout, input_dropout: self.input_dropout, max_norm: self.max_norm, first: self.first + k };
        (self, tail)
    }
}
