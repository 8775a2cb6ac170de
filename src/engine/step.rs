//! One training step of a stage: every trained node does its forward pass on the same batch,
//! outputs are exchanged as detached targets, each node computes its own loss and takes its own
//! optimiser step — simultaneously (all from the pre-step outputs) or sequentially (a node sees
//! the refreshed outputs of the nodes that stepped before it in this step).

use std::collections::HashMap;
use std::sync::{Barrier, Mutex};

use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::config::{Combine, LossSpec, PlanStage, Term, UpdateOrder};
use crate::data::batch::{Batch, splitmix64};
use crate::distill;
use crate::models::{Network, Noise, Taps};

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
    /// Step within the epoch (0-based), for dropout streams.
    pub step: usize,
    /// Seed of this epoch's dropout streams.
    pub noise_seed: u64,
    /// Autodiff device of the trained models.
    pub device: &'a Device,
    /// Plain device of the fixed sources (eval mode).
    pub plain: &'a Device,
    /// Fixed sources of this stage in eval mode, by node index.
    pub fixed: &'a HashMap<usize, Network>,
    /// Learning rate of each trained node this epoch.
    pub lr: &'a HashMap<usize, f64>,
    /// One thread pool per trained node when the nodes step in parallel; `None` = serial.
    pub pools: Option<&'a [rayon::ThreadPool]>,
}

impl StepContext<'_> {
    /// Dropout stream of node `n` for `pass` (0 = the tracked forward, 1 = a refresh), keyed by
    /// epoch, step and node so that it does not depend on thread scheduling.
    fn noise(&self, n: usize, pass: u64) -> Noise {
        let k = splitmix64(splitmix64(splitmix64(self.noise_seed ^ n as u64) ^ self.step as u64) ^ pass);
        Noise::new(k)
    }

    /// The summed loss terms of node `n` for its tracked logits `z`.
    fn node_loss(&self, n: usize, z: &Tensor<2>, outputs: &HashMap<usize, Tensor<2>>, y: &Tensor<1, Int>) -> Tensor<1> {
        self.stage
            .terms
            .iter()
            .filter(|t| t.to == n)
            .map(|term| {
                let sources: Vec<Tensor<2>> = term.from.iter().map(|s| outputs[s].clone()).collect();
                term_loss(term, z.clone(), &sources, y.clone(), self.epoch)
            })
            .reduce(|a, b| a + b)
            .expect("the resolver guarantees every trained node has a term")
    }
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
/// first node (in that order) whose loss is not finite; a node with a non-finite loss takes no
/// optimiser step.
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
    // outputs of the fixed sources (eval mode, detached)
    let mut outputs: HashMap<usize, Tensor<2>> = HashMap::new();
    if !ctx.fixed.is_empty() {
        let x_plain = Tensor::<2>::from_data(data, ctx.plain);
        for (&n, m) in ctx.fixed {
            outputs.insert(n, m.forward(x_plain.clone()).autodiff().detach());
        }
    }
    match ctx.pools {
        Some(pools) if ctx.stage.update == UpdateOrder::Simultaneous && ctx.stage.train.len() > 1 => {
            let y_data = y.into_data();
            parallel_step(ctx, pools, &x.into_data(), &y_data, outputs, models, optimizers)
        }
        _ => serial_step(ctx, x, y, outputs, models, optimizers),
    }
}

/// Nodes one after another. Simultaneous: every loss uses the pre-step outputs. Sequential:
/// after a node steps, its output is recomputed for the nodes after it.
fn serial_step(
    ctx: &StepContext,
    x: Tensor<2>,
    y: Tensor<1, Int>,
    mut outputs: HashMap<usize, Tensor<2>>,
    models: &mut [Option<Network>],
    optimizers: &mut HashMap<usize, ModuleOptimizer>,
) -> Result<Vec<f64>, NonFinite> {
    let train = &ctx.stage.train;
    let mut tracked: HashMap<usize, Tensor<2>> = HashMap::new();
    for &n in train {
        let z = models[n].as_ref().expect("trained model present").forward_taps(x.clone(), &mut Taps::training(ctx.noise(n, 0)));
        outputs.insert(n, z.clone().detach());
        tracked.insert(n, z);
    }
    let mut values = Vec::with_capacity(train.len());
    for (k, &n) in train.iter().enumerate() {
        let z = tracked.remove(&n).expect("tracked output");
        let loss = ctx.node_loss(n, &z, &outputs, &y);
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
                let fresh = model.forward_taps(x.clone(), &mut Taps::training(ctx.noise(n, 1)));
                outputs.insert(n, fresh.detach());
            }
        }
        models[n] = Some(model);
    }
    Ok(values)
}

/// Simultaneous update on one thread per node, each inside its own rayon pool (so the
/// backend's parallel operations of one node stay on its share of the cores). The exchange is
/// a barrier: every node publishes its detached output, waits for the others, then computes
/// its loss, backward pass and optimiser step.
fn parallel_step(
    ctx: &StepContext,
    pools: &[rayon::ThreadPool],
    x: &TensorData,
    y: &TensorData,
    fixed: HashMap<usize, Tensor<2>>,
    models: &mut [Option<Network>],
    optimizers: &mut HashMap<usize, ModuleOptimizer>,
) -> Result<Vec<f64>, NonFinite> {
    let train = &ctx.stage.train;
    // Nothing autodiff-related is shared between the threads: each builds its own input tensors
    // from the batch data, and outputs cross over as plain data, so the threads' graphs are
    // disjoint and never merged (or locked together) by burn's autodiff graph registry.
    let exchange: Mutex<HashMap<usize, TensorData>> = Mutex::new(fixed.into_iter().map(|(n, t)| (n, t.into_data())).collect());
    let barrier = Barrier::new(train.len());
    let work: Vec<(usize, Network, ModuleOptimizer)> = train
        .iter()
        .map(|&n| (n, models[n].take().expect("trained model present"), optimizers.remove(&n).expect("optimizer of trained node")))
        .collect();
    let done: Vec<(usize, Network, ModuleOptimizer, f64)> = std::thread::scope(|scope| {
        let handles: Vec<_> = work
            .into_iter()
            .enumerate()
            .map(|(k, (n, model, mut opt))| {
                let (exchange, barrier) = (&exchange, &barrier);
                let pool = &pools[k % pools.len()];
                scope.spawn(move || {
                    pool.install(|| {
                        let x = Tensor::<2>::from_data(x.clone(), ctx.device);
                        let y = Tensor::<1, Int>::from_data(y.clone(), ctx.device);
                        let z = model.forward_taps(x, &mut Taps::training(ctx.noise(n, 0)));
                        exchange.lock().expect("exchange lock").insert(n, z.clone().detach().into_data());
                        barrier.wait();
                        let outputs: HashMap<usize, Tensor<2>> = exchange
                            .lock()
                            .expect("exchange lock")
                            .iter()
                            .map(|(&m, d)| (m, Tensor::<2>::from_data(d.clone(), ctx.device)))
                            .collect();
                        let loss = ctx.node_loss(n, &z, &outputs, &y);
                        let value = loss.clone().into_scalar::<f32>() as f64;
                        if !value.is_finite() {
                            return (n, model, opt, value);
                        }
                        let grads = GradientsParams::from_grads(loss.backward(), &model);
                        let model = opt.step(ctx.lr[&n], model, grads);
                        (n, model, opt, value)
                    })
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("a node's step panicked")).collect()
    });
    let mut values = Vec::with_capacity(done.len());
    let mut bad = None;
    for (n, model, opt, value) in done {
        models[n] = Some(model);
        optimizers.insert(n, opt);
        if !value.is_finite() && bad.is_none() {
            bad = Some(NonFinite { node: n, value });
        }
        values.push(value);
    }
    match bad {
        Some(b) => Err(b),
        None => Ok(values),
    }
}
