//! PCL's peer ensemble teacher (Wu & Gong, AAAI 2021, §3.1): the branches' features
//! concatenated and classified by one more fully connected layer, `z_e = W·[f_1; …; f_M] + b`,
//! the output of a multi-branch node built with `fusion: true` ([`super::HydraSpec`],
//! [`super::BranchedResNetSpec`]). Trained by the cross-entropy on the node's output (PCL's
//! `L_ce^e`), whose gradient reaches the branches and the shared part through the features; the
//! branches learn from it through `OwnOutput` head terms (PCL's `L_pe`, the target detached).
//! As the reimplementation in shaoeric/Peer-Collaborative-Learning-for-Online-Knowledge-
//! Distillation (`models/resnet.py`: `en_fc` on `torch.cat([feat1, feat2, feat3], 1)`).

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor};

use crate::kernels;

/// The fusion classifier `[B, M·F] → [B, classes]`.
#[derive(Module, Debug)]
pub struct Fusion {
    fc: Linear,
}

impl Fusion {
    /// A classifier of `branches` features of width `features` each.
    pub fn new(branches: usize, features: usize, classes: usize, device: &Device) -> Self {
        Fusion { fc: LinearConfig::new(branches * features, classes).init(device) }
    }

    /// `z_e = W·[f_1; …; f_M] + b` for the branches' features `f_m` `[B, F]`, concatenated in
    /// branch order.
    pub fn forward(&self, features: Vec<Tensor<2>>) -> Tensor<2> {
        kernels::linear(&self.fc, Tensor::cat(features, 1))
    }
}
