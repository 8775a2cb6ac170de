//! One training step of a stage: every trained node does its forward pass on the same batch,
//! outputs are exchanged as detached targets, each node computes its own loss and takes its own
//! optimiser step — simultaneously (all from the pre-step outputs) or sequentially (a node sees
//! the refreshed outputs of the nodes that stepped before it in this step).

use std::collections::HashMap;

use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::config::{Combine, LossSpec, PlanStage, Term, UpdateOrder};
use crate::data::batch::Batch;
use crate::distill;
use crate::models::Network;

use super::optim::ramp_up;

/// `weight · ramp · loss` of one term for the trained logits `z`, given the detached outputs of
/// its sources (in `term.from` order).
pub fn term_loss(term: &Term, z: Tensor<2>, sources: &[Tensor<2>], y: Tensor<1, Int>, epoch: usize) -> Tensor<1> {
    let loss = match &term.loss {
        LossSpec::CrossEntropy => distill::cross_entropy(z, y),
        LossSpec::SoftTarget { temperature, source_weights } => {
            let w: Vec<f64> = source_weights.iter().map(|w| w.get()).collect();
            let t = temperature.get();
            distill::kl_to_target(distill::mixture_target(sources, &w, t), z, t)
        }
        LossSpec::MutualKl { temperature } => distill::mutual_kl(sources, z, temperature.get()),
        LossSpec::Ensemble { temperature, combine, include_self } => {
            let t = temperature.get();
            let mut members = sources.to_vec();
            if *include_self {
                members.push(z.clone().detach());
            }
            let target = match combine {
                Combine::MeanProbs => distill::mixture_target(&members, &[], t),
                Combine::MeanLogits => distill::mean_logits_target(&members, t),
                Combine::MinLogit => distill::min_logit_target(&members, y, t),
            };
            distill::kl_to_target(target, z, t)
        }
        LossSpec::Hint { .. } | LossSpec::Attention { .. } => {
            unreachable!("feature losses are rejected before training starts")
        }
    };
    loss.mul_scalar(term.weight * ramp_up(epoch, term.ramp_up_epochs))
}

/// What the step needs besides the batch.
pub struct StepContext<'a> {
    /// The stage being trained.
    pub stage: &'a PlanStage,
    /// Epoch within the stage (0-based), for ramp-ups.
    pub epoch: usize,
    /// Autodiff device of the trained models.
    pub device: &'a Device,
    /// Plain device of the fixed sources (eval mode).
    pub plain: &'a Device,
    /// Fixed sources of this stage in eval mode, by node index.
    pub fixed: &'a HashMap<usize, Network>,
    /// Learning rate of each trained node this epoch.
    pub lr: &'a HashMap<usize, f64>,
}

/// A non-finite loss.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NonFinite {
    /// Node index.
    pub node: usize,
    /// The loss value.
    pub value: f64,
}

/// Runs one step; returns each trained node's loss value (in `stage.train` order), or the
/// first node whose loss is not finite (no step is taken for it or after it).
pub fn train_step(
    ctx: &StepContext,
    batch: Batch,
    models: &mut [Option<Network>],
    optimizers: &mut HashMap<usize, ModuleOptimizer>,
) -> Result<Vec<f64>, NonFinite> {
    let b = batch.labels.len();
    let d = batch.inputs.len() / b;
    let data = TensorData::new(batch.inputs, [b, d]);
    let x = Tensor::<2>::from_data(data.clone(), ctx.device);
    let y = Tensor::<1, Int>::from_data(TensorData::new(batch.labels, [b]), ctx.device);

    let train = &ctx.stage.train;
    // outputs of every node that is a source in this stage, detached
    let mut outputs: HashMap<usize, Tensor<2>> = HashMap::new();
    if !ctx.fixed.is_empty() {
        let x_plain = Tensor::<2>::from_data(data, ctx.plain);
        for (&n, m) in ctx.fixed {
            outputs.insert(n, m.forward(x_plain.clone()).autodiff().detach());
        }
    }
    // tracked forward passes of the trained nodes
    let mut tracked: HashMap<usize, Tensor<2>> = HashMap::new();
    for &n in train {
        let z = models[n].as_ref().expect("trained model present").forward(x.clone());
        outputs.insert(n, z.clone().detach());
        tracked.insert(n, z);
    }
    let mut values = Vec::with_capacity(train.len());
    for (k, &n) in train.iter().enumerate() {
        let z = tracked.remove(&n).expect("tracked output");
        let mut loss: Option<Tensor<1>> = None;
        for term in ctx.stage.terms.iter().filter(|t| t.to == n) {
            let sources: Vec<Tensor<2>> = term.from.iter().map(|s| outputs[s].clone()).collect();
            let l = term_loss(term, z.clone(), &sources, y.clone(), ctx.epoch);
            loss = Some(match loss {
                Some(acc) => acc + l,
                None => l,
            });
        }
        let loss = loss.expect("the resolver guarantees every trained node has a term");
        let value = loss.clone().into_scalar::<f32>() as f64;
        if !value.is_finite() {
            return Err(NonFinite { node: n, value });
        }
        values.push(value);
        let model = models[n].take().expect("trained model present");
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let opt = optimizers.get_mut(&n).expect("optimizer of trained node");
        let model = opt.step(ctx.lr[&n], model, grads);
        if ctx.stage.update == UpdateOrder::Sequential {
            // later nodes of this step see this node's refreshed outputs
            let needed = train[k + 1..].iter().any(|&later| ctx.stage.terms.iter().any(|t| t.to == later && t.from.contains(&n)));
            if needed {
                outputs.insert(n, model.forward(x.clone()).detach());
            }
        }
        models[n] = Some(model);
    }
    Ok(values)
}
