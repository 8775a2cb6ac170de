//! LFME's logit regularisation by domain experts.

use burn::tensor::Tensor;
use burn::tensor::activation::softmax;

use super::check::EdgeCheck;
use super::kind::{Inputs, LossKind, Reads, Targets};
use crate::diagnostics::Diagnostic;

/// `Lfme`: `mean_{b,c} (z_bc − softmax(v_{d(b)})_bc)²` where `v_{d(b)}` are the logits of the
/// expert of sample b's domain — "LFME: A Simple Framework for Learning from Multiple Experts in
/// Domain Generalization" (Chen et al., NeurIPS 2024), eq. (2). The sources are the experts, each
/// with `train_on: Subset(domains: [d])`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Lfme;

/// LFME logit regulariser: `(1/(B·C)) Σ_{b,c} (z_bc − p_bc)²` where `p` is the detached softmax
/// of the sample's own-domain expert (`torch.nn.MSELoss()` between the target's logits and the
/// experts' probabilities, as in the authors' code).
///
/// # Shapes
/// `z`, `p` `[B, C]` → `[1]`.
pub fn lfme(z: Tensor<2>, p: Tensor<2>) -> Tensor<1> {
    (z - p.detach()).powi_scalar(2).mean()
}

impl LossKind for Lfme {
    fn name(&self) -> &'static str {
        "Lfme"
    }
    fn label(&self) -> String {
        "Lfme".into()
    }
    fn reads(&self) -> Reads<'_> {
        Reads::logits(Targets::RoutedExperts)
    }
    /// A data set with domains, one expert per whole domain, every domain the target trains on
    /// covered.
    fn check(&mut self, edge: &mut EdgeCheck) {
        if edge.domains.is_empty() {
            edge.error(Diagnostic::at(edge.loss_path(), "`Lfme` needs a data set with domains").hint("use `source: RotatedMnist(test_domain: ...)`"));
        }
        let mut covered: Vec<usize> = Vec::new();
        let mut all_single = true;
        for (f, fp) in edge.from.clone().into_iter().zip(edge.from_paths.clone()) {
            let node = &edge.nodes[f];
            let sub = node.train_on.map(|s| s.domains.clone()).unwrap_or_default();
            let class_filter = node.train_on.is_some_and(|s| !s.classes.is_empty() || !s.exclude_classes.is_empty());
            if sub.len() != 1 || class_filter {
                all_single = false;
                let d = Diagnostic::at(fp, format!("LFME expert `{}` must train on exactly one whole domain", node.id));
                edge.error(d.hint("give it `train_on: Subset(domains: [d])`, without class filters"));
            } else if covered.contains(&sub[0]) {
                edge.error(Diagnostic::at(fp, format!("two experts for domain {}", sub[0])));
            } else {
                covered.push(sub[0]);
            }
        }
        let Some(t) = edge.to else { return };
        let target = &edge.nodes[t];
        let wanted = target.train_on.filter(|s| !s.domains.is_empty()).map_or(edge.domains.to_vec(), |s| s.domains.clone());
        let missing: Vec<usize> = wanted.iter().copied().filter(|d| !covered.contains(d)).collect();
        if !missing.is_empty() && !edge.domains.is_empty() && all_single {
            let d = Diagnostic::at(edge.path.field("from"), format!("no expert for domain(s) {missing:?}, which `{}` trains on", target.id));
            edge.error(d.hint("add one expert node per training domain"));
        }
    }
    /// `targets` holds, row for row of `z`, the logits of each sample's own-domain expert.
    fn loss(&self, i: Inputs) -> Tensor<1> {
        lfme(i.z, softmax(i.targets[0].clone(), 1))
    }
}
