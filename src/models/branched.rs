//! The multi-branch CIFAR ResNet of ONE (Lan et al. 2018, §3.1 and Fig. 2) and CL-ILR (Song &
//! Chai 2018): the stem and every stage but the last are shared, the last stage and the
//! classifier are repeated once per branch. ONE's ResNet-32 has three branches after a shared
//! `layer1` and `layer2` (as in its official code).

use std::fmt;

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::norm::{BatchNorm, BatchNormConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::conv::first_conv;
use super::resnet::{BasicBlock, stage, stage_geometry};
use super::tap::{Tap, Taps};
use super::{Architecture, Network, SpecProblem, widths};
use crate::kernels;
use crate::values::{Width, is_false};

/// `BranchedResNet(blocks: [5, 5, 5], widths: [16, 32, 64], branches: 3, gate: true)`: ONE's
/// ResNet-32 — a CIFAR ResNet ([`super::ResNetSpec`], the same blocks) whose last stage, global
/// average pool and classifier exist once per branch on a shared stem and shared earlier stages.
/// Branch m's logits are the head tap `head{m}` (an edge with `head: m` trains that branch, as
/// for a [`super::HydraSpec`]); the node's output is the branches' mean,
/// `log((1/M) Σ_m softmax(z_m))`, or with `gate` ONE's gated ensemble `Σ_m g_m·z_m` with
/// `g = softmax(ReLU(BN(W·pool(h))))`, `h` the shared features (as the ONE/CL-ILR
/// re-implementation in OKDDip's official code, `models/model_cifar/resnet_one.py`, does), or
/// with `fusion` PCL's peer ensemble teacher `W·[f_1; …; f_M] + b` on the branches' pooled
/// features ([`super::Fusion`]). `backprop_rescale` divides the gradient reaching the shared part by the number of branches
/// (CL-ILR). Taps: `stage1`, … of the shared stages (`[C, H, W]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename = "BranchedResNet")]
pub struct BranchedResNetSpec {
    /// Basic blocks per stage, e.g. `[5, 5, 5]` (ResNet-32); the last stage is branched.
    pub blocks: Vec<Width>,
    /// Channels per stage, e.g. `[16, 32, 64]`.
    pub widths: Vec<Width>,
    /// Channels of the stem; default the first stage's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stem: Option<Width>,
    /// Number of branches M.
    pub branches: Width,
    /// ONE's gate over the branches.
    #[serde(default)]
    pub gate: bool,
    /// PCL (Wu & Gong 2021): the node's output is the peer ensemble teacher, a classifier on the
    /// branches' pooled features concatenated (see [`super::Fusion`]). Not with `gate`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub fusion: bool,
    /// CL-ILR's backpropagation rescaling: the shared part's gradient ÷ M.
    #[serde(default, skip_serializing_if = "is_false")]
    pub backprop_rescale: bool,
}

impl BranchedResNetSpec {
    /// `[C, H, W]` after each shared stage for inputs of `shape`.
    fn shared_geometry(&self, shape: &[usize]) -> Vec<[usize; 3]> {
        stage_geometry(&self.widths[..self.widths.len().saturating_sub(1)], shape)
    }
}

impl Architecture for BranchedResNetSpec {
    fn batch_norm(&self) -> bool {
        true
    }
    fn name(&self) -> &'static str {
        "BranchedResNet"
    }
    fn input_rank(&self) -> Option<usize> {
        Some(3)
    }
    fn problems(&self, _shape: &[usize]) -> Vec<SpecProblem> {
        if self.blocks.len() != self.widths.len() || self.blocks.len() < 2 {
            let msg =
                format!("`blocks` has {} stages and `widths` {}: a branched ResNet needs the same number, at least 2", self.blocks.len(), self.widths.len());
            return vec![SpecProblem::at("widths", msg).hint("e.g. ONE's ResNet-32: `blocks: [5, 5, 5], widths: [16, 32, 64], branches: 3`")];
        }
        super::hydra::ensemble_problems(self.gate, self.fusion)
    }
    fn taps(&self, shape: &[usize]) -> Vec<(String, Vec<usize>)> {
        self.shared_geometry(shape).into_iter().enumerate().map(|(i, s)| (format!("stage{}", i + 1), s.to_vec())).collect()
    }
    fn build(&self, shape: &[usize], classes: usize, device: &Device) -> Network {
        let w0 = self.stem.unwrap_or(self.widths[0]).get();
        let stem = Conv2dConfig::new([shape[0], w0], [3, 3]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)).with_bias(false).init(device);
        let mut cin = w0;
        let stage = |s: usize, cin: &mut usize| stage(s, self.blocks[s].get(), self.widths[s].get(), cin, device);
        let last = self.widths.len() - 1;
        let shared: Vec<Vec<BasicBlock>> = (0..last).map(|s| stage(s, &mut cin)).collect();
        let shared_width = cin;
        let mut branch_width = shared_width;
        let branches = (0..self.branches.get())
            .map(|_| {
                let mut c = shared_width;
                let blocks = stage(last, &mut c);
                branch_width = c;
                Branch { blocks, out: LinearConfig::new(c, classes).init(device) }
            })
            .collect();
        Network::BranchedResNet(BranchedResNet {
            stem,
            stem_bn: BatchNormConfig::new(w0).init(device),
            shared,
            branches,
            gate: self.gate.then(|| Gate {
                fc: LinearConfig::new(shared_width, self.branches.get()).init(device),
                bn: BatchNormConfig::new(self.branches.get()).init(device),
            }),
            fusion: self.fusion.then(|| super::Fusion::new(self.branches.get(), branch_width, classes, device)),
            rescale: self.backprop_rescale,
            shape: [shape[0], shape[1], shape[2]],
        })
    }
    fn heads(&self) -> usize {
        self.branches.get()
    }
}

impl fmt::Display for BranchedResNetSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BranchedResNet(blocks {}, widths {}", widths(&self.blocks), widths(&self.widths))?;
        if let Some(s) = self.stem {
            write!(f, ", stem {s}")?;
        }
        let gated = if self.gate {
            ", gated"
        } else if self.fusion {
            ", fused"
        } else {
            ""
        };
        let rescaled = if self.backprop_rescale { ", backprop rescaled" } else { "" };
        write!(f, ", {} branches{gated}{rescaled})", self.branches)
    }
}

/// One branch: the last stage's blocks and a classifier.
#[derive(Module, Debug)]
pub struct Branch {
    blocks: Vec<BasicBlock>,
    out: Linear,
}

/// A CIFAR ResNet with a shared trunk and branched last stage (see [`BranchedResNetSpec`]).
#[derive(Module, Debug)]
pub struct BranchedResNet {
    stem: Conv2d,
    stem_bn: BatchNorm,
    shared: Vec<Vec<BasicBlock>>,
    branches: Vec<Branch>,
    gate: Option<Gate>,
    fusion: Option<super::Fusion>,
    rescale: bool,
    shape: [usize; 3],
}

/// ONE's gate: linear map of the pooled shared features → batch norm → ReLU (→ softmax).
#[derive(Module, Debug)]
pub struct Gate {
    fc: Linear,
    bn: BatchNorm,
}

impl BranchedResNet {
    /// Log-probabilities `[B, classes]` of the branch mean (or the gated ensemble's, or the
    /// fusion classifier's logits, from the branches' pooled features `[B, C_last]`) of a
    /// flat batch `[B, C·H·W]`; taps `stage{i}` are the shared stages' `[B, C_i, H_i, W_i]`,
    /// `head{m}` branch m's logits `[B, classes]`.
    pub(super) fn forward(&self, x: Tensor<2>, taps: &mut Taps) -> Tensor<2> {
        let [b, _] = x.dims();
        let [c, hh, ww] = self.shape;
        let mut h = kernels::batch_norm_relu(&self.stem_bn, first_conv(&self.stem, x.reshape([b, c, hh, ww])));
        for (i, stage) in self.shared.iter().enumerate() {
            for block in stage {
                h = block.forward(h);
            }
            taps.put(format!("stage{}", i + 1), || Tap::Map(h.clone()));
        }
        if self.rescale {
            h = super::rescale_gradient(h, self.branches.len());
        }
        let features: Vec<Tensor<2>> = self
            .branches
            .iter()
            .map(|branch| {
                let mut z = h.clone();
                for block in &branch.blocks {
                    z = block.forward(z);
                }
                z.mean_dims(&[2, 3]).flatten(1, 3)
            })
            .collect();
        let outs: Vec<Tensor<2>> = self.branches.iter().zip(&features).map(|(branch, f)| kernels::linear(&branch.out, f.clone())).collect();
        let gate_scores = self.gate.as_ref().map(|gate| {
            let pooled: Tensor<2> = h.mean_dims(&[2, 3]).flatten(1, 3);
            kernels::batch_norm_relu(&gate.bn, kernels::linear(&gate.fc, pooled))
        });
        super::heads::multi_head_output(outs, features, gate_scores, self.fusion.as_ref(), taps)
    }
}
