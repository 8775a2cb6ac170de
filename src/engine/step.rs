//! One training step of a stage: every trained node does its forward pass on the same batch
//! (restricted to its `train_on` subset), outputs (logits and the feature taps other nodes ask
//! for) are exchanged as detached targets, each node computes its own loss and takes its own
//! optimiser step — simultaneously (all from the pre-step outputs) or sequentially (a node sees
//! the refreshed outputs of the nodes that stepped before it in this step).

use std::collections::HashMap;
use std::sync::{Barrier, Mutex};

use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::config::{PlanStage, Progress, Term, UpdateOrder};
use crate::data::batch::Batch;
use crate::losses::{Adapter, Diagnostics, Inputs, Lookup, Targets};
use crate::models::{Network, Noise, Tap, Taps};
use crate::random::splitmix64;

use super::trainee::Trainee;

use super::Placement;

use super::exchange::{BatchMeta, SharedData, index_tensor, lfme_target, restrict, restrict_tap, subset_rows};
pub use super::exchange::{NodeNeeds, Shared, adapter_slots, slot_key, stage_needs};
use super::optim::ramp_up;

/// Seed of the draws of node `n`'s term in adapter slot `slot` at step `step` of the epoch whose
/// dropout streams are keyed by `noise_seed` (CRD's negatives; pass 2 of [`StepContext`]'s
/// streams, which the dropout masks never use).
pub fn term_draws(noise_seed: u64, n: usize, step: usize, slot: usize) -> u64 {
    splitmix64(splitmix64(splitmix64(splitmix64(noise_seed ^ n as u64) ^ step as u64) ^ 2) ^ slot as u64)
}

/// `weight · ramp · gate` of a term at `at`.
fn term_scale(term: &Term, at: Progress) -> f64 {
    term.weight * ramp_up(at.epoch, term.ramp_up_epochs) * term.gate.factor(at)
}

/// A term's loss and diagnostics on `inputs`; under KTG's correct gate, on the samples its source
/// classifies correctly (the argmax of its logits is the label), as the batch mean of the gated
/// per-sample losses: the mean over the passing samples × their share of the batch (0 when none
/// passes). The resolver allows the gate on single-source logit terms only.
fn gated_loss(term: &Term, inputs: Inputs) -> (Tensor<1>, Diagnostics) {
    let kind = term.loss.kind();
    if !term.gate.is_per_sample() {
        return kind.loss_and_diagnostics(inputs);
    }
    let device = inputs.z.device();
    let b = inputs.y.dims()[0];
    let hits: Vec<bool> =
        inputs.targets[0].clone().argmax(1).flatten::<1>(0, 1).equal(inputs.y.clone()).into_data().try_to_vec::<bool>().expect("a boolean mask");
    let rows: Vec<usize> = hits.iter().enumerate().filter(|(_, h)| **h).map(|(i, _)| i).collect();
    if rows.is_empty() {
        return (Tensor::zeros([1], &device), Vec::new());
    }
    let share = rows.len() as f64 / b as f64;
    let (loss, diagnostics) = kind.loss_and_diagnostics(inputs.select(index_tensor(&rows, &device)));
    (loss.mul_scalar(share), diagnostics)
}

/// A source that does not train in the stage.
// a handful per stage, built once: boxing the network would buy nothing
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Fixed {
    /// A network in eval mode (plain device).
    Net(Network),
    /// A network in training mode on its training device: batch norm with the batch's
    /// statistics (an `Ema` node with `batch_stats`); its outputs are detached, its running
    /// statistics belong to this copy alone.
    Training(Network),
    /// Outputs exported by `cohort export-logits`, looked up by sample index.
    Recorded(std::sync::Arc<super::recorded::Recorded>),
}

/// What the step needs besides the batch.
pub struct StepContext<'a> {
    /// The stage being trained.
    pub stage: &'a PlanStage,
    /// Epoch within the stage (0-based), for ramp-ups.
    pub epoch: usize,
    /// Step within the epoch (0-based), for dropout streams and per-step gates.
    pub step: usize,
    /// Steps in this epoch.
    pub steps: usize,
    /// Seed of this epoch's dropout streams.
    pub noise_seed: u64,
    /// Where each node computes, by node index: trained nodes on their autodiff device, fixed
    /// sources on the plain one. Detached outputs move to the device of the node reading them.
    pub places: &'a [Placement],
    /// Fixed sources of this stage (networks in eval mode, recorded outputs), by node index.
    pub fixed: &'a HashMap<usize, Fixed>,
    /// What each node computes and shares ([`stage_needs`]).
    pub needs: &'a HashMap<usize, NodeNeeds>,
    /// Learning rate of each trained node this epoch.
    pub lr: &'a HashMap<usize, f64>,
    /// One thread pool per trained node when the nodes step in parallel; `None` = serial.
    pub pools: Option<&'a [rayon::ThreadPool]>,
    /// SwitOKD: teacher → its student, for the trained teachers of this stage.
    pub switch: &'a HashMap<usize, usize>,
    /// The training split's labels, by sample index (CRD draws its negatives from them).
    pub split_labels: &'a [u8],
}

/// A tracked forward pass of one trained node.
struct Forward {
    rows: Option<Vec<usize>>,
    z: Tensor<2>,
    taps: Taps,
}

impl<'a> StepContext<'a> {
    /// Dropout stream of node `n` for `pass` (0 = the tracked forward, 1 = a refresh), keyed by
    /// epoch, step and node so that it does not depend on thread scheduling.
    fn noise(&self, n: usize, pass: u64) -> Noise {
        let k = splitmix64(splitmix64(splitmix64(self.noise_seed ^ n as u64) ^ self.step as u64) ^ pass);
        Noise::new(k)
    }

    /// Seed of the draws of node `n`'s term in adapter slot `slot` in this step (CRD's
    /// negatives), keyed like the dropout streams, and apart from them.
    fn draws(&self, n: usize, slot: usize) -> u64 {
        term_draws(self.noise_seed, n, self.step, slot)
    }

    /// The tracked forward pass of trained node `n` on its rows of the batch, collecting the taps
    /// it and others need; `None` when none of the batch's samples is in its subset.
    fn forward(&self, n: usize, net: &Network, x: &Tensor<2>, meta: &BatchMeta, pass: u64) -> Option<Forward> {
        let needs = &self.needs[&n];
        let rows = subset_rows(&needs.subset, meta);
        let x = match &rows {
            Some(r) if r.is_empty() => return None,
            Some(r) => x.clone().select(0, index_tensor(r, &x.device())),
            None => x.clone(),
        };
        let mut taps = Taps::training(self.noise(n, pass)).wanting(&needs.taps());
        let z = net.forward_taps(x, &mut taps);
        Some(Forward { rows, z, taps })
    }

    /// The detached outputs of a forward pass that other nodes may read.
    fn share(&self, n: usize, f: &Forward) -> Shared {
        let taps = self.needs[&n]
            .shared_taps
            .iter()
            .map(|name| {
                let t = f.taps.got.iter().find(|(g, _)| g == name).map(|(_, t)| t.clone()).expect("forward collected the shared tap");
                (name.clone(), t.detach())
            })
            .collect();
        Shared { rows: f.rows.clone(), logits: f.z.clone().detach(), taps }
    }

    /// The loss of node `n` for its forward pass `f`: the sum of its terms, and each term's
    /// value (`weight · ramp · gate · loss`).
    fn node_loss(&self, n: usize, f: &Forward, adapters: &[Adapter], outputs: &HashMap<usize, Shared>, y: &Tensor<1, Int>, meta: &BatchMeta) -> NodeLoss {
        let device = &f.z.device();
        let y = match &f.rows {
            Some(r) => y.clone().select(0, index_tensor(r, device)),
            None => y.clone(),
        };
        let (terms, diagnostics): (Vec<Tensor<1>>, Vec<Diagnostics>) = self
            .stage
            .terms
            .iter()
            .filter(|t| t.to == n)
            .map(|term| {
                let inputs = self.term_inputs(n, term, f, adapters, outputs, y.clone(), meta);
                let (loss, diagnostics) = gated_loss(term, inputs);
                let at = Progress { epoch: self.epoch, epochs: self.stage.epochs, step: self.step, steps: self.steps };
                (loss.mul_scalar(term_scale(term, at)), diagnostics)
            })
            .unzip();
        let values = terms.iter().zip(diagnostics).map(|(t, diagnostics)| TermValue { value: t.clone().into_scalar::<f32>() as f64, diagnostics }).collect();
        let total = terms.into_iter().reduce(|a, b| a + b).expect("the resolver guarantees every trained node has a term");
        NodeLoss { total, terms: values }
    }

    /// What `term`'s kind reads ([`crate::losses::Reads`]), gathered from node `n`'s forward
    /// pass `f` and the shared outputs, on `f`'s rows and device.
    #[allow(clippy::too_many_arguments)]
    fn term_inputs<'m>(
        &self,
        n: usize,
        term: &Term,
        f: &Forward,
        adapters: &'m [Adapter],
        outputs: &HashMap<usize, Shared>,
        y: Tensor<1, Int>,
        meta: &BatchMeta,
    ) -> Inputs<'m>
    where
        'a: 'm,
    {
        let device = &f.z.device();
        let reads = term.loss.kind().reads();
        let head = |m: usize| match f.taps.get(&crate::models::head_tap(m)) {
            Some(Tap::Flat(h)) => h.clone(),
            _ => panic!("forward collected head {m} (the resolver checks heads)"),
        };
        // the node's output, or one head of a multi-head node
        let z = term.head.map_or_else(|| f.z.clone(), head);
        let targets = match reads.targets {
            Targets::Labels | Targets::Features => Vec::new(),
            Targets::SourceLogits => term.from.iter().map(|s| restrict(outputs[s].logits_of(term.from_head), &outputs[s].rows, &f.rows, device)).collect(),
            Targets::OwnOutput => vec![f.z.clone().detach()],
            Targets::OtherHeads => {
                // every head was collected (`stage_needs`): head1, head2, … up to the last
                let m = term.head.expect("the resolver checks that OtherHeads names a head");
                let heads = (1..).take_while(|&j| f.taps.get(&crate::models::head_tap(j)).is_some()).count();
                (1..=heads).filter(|&j| j != m).map(|j| head(j).detach()).collect()
            }
            Targets::RoutedExperts => vec![lfme_target(&term.from, self.needs, outputs, &f.rows, meta, device)],
            // every branch, tracked (the resolver checks the node is branched)
            Targets::Branches => (1..).take_while(|&j| f.taps.get(&crate::models::head_tap(j)).is_some()).map(head).collect(),
        };
        let branches = match reads.targets {
            Targets::Branches => (1..=targets.len())
                .map(|j| crate::losses::common::pooled(f.taps.get(&crate::models::branch_tap(j)).cloned().expect("forward collected every branch")))
                .collect(),
            _ => Vec::new(),
        };
        let own_taps = reads.own_taps.iter().map(|tap| f.taps.get(tap).cloned().expect("forward collected the own taps")).collect();
        let source_taps = term
            .from
            .iter()
            .flat_map(|s| reads.source_taps.iter().map(move |tap| (s, tap)))
            .map(|(s, tap)| restrict_tap(outputs[s].tap(tap), &outputs[s].rows, &f.rows, device))
            .collect();
        let slot = self.needs[&n].adapters.get(&super::exchange::slot_key(term)).copied();
        let adapter = slot.map(|k| &adapters[k]);
        let indices = match &f.rows {
            Some(r) => r.iter().map(|&i| meta.indices[i]).collect(),
            None => meta.indices.clone(),
        };
        let lookup = Lookup { indices, labels: self.split_labels, seed: self.draws(n, slot.unwrap_or(0)) };
        Inputs { z, y, targets, own_taps, source_taps, branches, adapter, epoch: self.epoch, lookup }
    }
}

impl StepContext<'_> {
    /// Node `n`'s loss for its forward pass `f`, backward pass and optimiser step (with its
    /// weight constraints): the node after it and its values, or the non-finite loss value (and
    /// the node unchanged: no step is taken).
    #[allow(clippy::too_many_arguments)]
    fn learn(
        &self,
        n: usize,
        f: &Forward,
        model: Trainee,
        opt: &mut ModuleOptimizer,
        outputs: &HashMap<usize, Shared>,
        y: &Tensor<1, Int>,
        meta: &BatchMeta,
    ) -> (Trainee, Result<Learned, f64>) {
        let NodeLoss { total, terms } = self.node_loss(n, f, &model.adapters, outputs, y, meta);
        let loss = total.clone().into_scalar::<f32>() as f64;
        if !loss.is_finite() {
            return (model, Err(loss));
        }
        let grads = GradientsParams::from_grads(total.backward(), &model);
        let model = constrained(opt.step(self.lr[&n], model, grads));
        (model, Ok(Learned { loss, terms }))
    }
}

/// A node after its thread's step: its index, network, optimiser, its values (`None`: it did not
/// step; `Err`: its non-finite loss) and whether it paused.
type Stepped = (usize, Trainee, ModuleOptimizer, Option<Result<Learned, f64>>, bool);

/// The values of a node that stepped.
struct Learned {
    /// Its loss.
    loss: f64,
    /// Each of its terms.
    terms: Vec<TermValue>,
}

/// One term of a node in one step: its value (`weight · ramp · gate · loss`) and what its kind
/// reports beside it ([`crate::losses::LossKind::loss_and_diagnostics`]).
#[derive(Clone, Debug, PartialEq)]
pub struct TermValue {
    /// The weighted value.
    pub value: f64,
    /// `(name, value)` pairs.
    pub diagnostics: Diagnostics,
}

impl StepReport {
    /// Appends the next trained node's values (`None`: it did not step).
    fn push(&mut self, learned: Option<Learned>) {
        self.losses.push(learned.as_ref().map(|l| l.loss));
        self.terms.push(learned.map(|l| l.terms));
    }
}

/// A node's loss in one step.
struct NodeLoss {
    /// The sum of its terms (tracked).
    total: Tensor<1>,
    /// Each term's value, in stage order.
    terms: Vec<TermValue>,
}

/// A node after its optimiser step and its network's weight constraints (max-norm).
fn constrained(t: Trainee) -> Trainee {
    Trainee { net: t.net.constrain(), ..t }
}

/// A non-finite loss.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NonFinite {
    /// Node index.
    pub node: usize,
    /// The loss value.
    pub value: f64,
}

/// What a step did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StepReport {
    /// Each trained node's loss value, in `stage.train` order; `None` for a node none of whose
    /// samples is in the batch, or that paused (SwitOKD's expert mode).
    pub losses: Vec<Option<f64>>,
    /// Each trained node's terms' values (`weight · ramp · gate · loss`, the node's terms in
    /// stage order), where `losses` has a value.
    pub terms: Vec<Option<Vec<TermValue>>>,
    /// The nodes that paused in this step (SwitOKD's expert mode), by index.
    pub paused: Vec<usize>,
}

/// Runs one step; returns each trained node's loss value and the nodes that paused, or the
/// first node (in `stage.train` order) whose loss is not finite; a node with a non-finite loss
/// takes no optimiser step.
pub fn train_step(
    ctx: &StepContext,
    batch: Batch,
    models: &mut [Option<Trainee>],
    optimizers: &mut HashMap<usize, ModuleOptimizer>,
) -> Result<StepReport, NonFinite> {
    let Batch { inputs, labels, domains, indices, views, .. } = batch;
    let b = labels.len();
    let d = inputs.len() / b;
    let x = TensorData::new(inputs, [b, d]);
    let views: HashMap<usize, TensorData> = views.into_iter().map(|(n, v)| (n, TensorData::new(v, [b, d]))).collect();
    let y = TensorData::new(labels.clone(), [b]);
    let meta = BatchMeta { labels, domains, indices: indices.clone() };
    // outputs of the fixed sources (eval mode, every row, detached), each on its own device
    let mut outputs: HashMap<usize, Shared> = HashMap::new();
    for (&n, source) in ctx.fixed {
        let place = &ctx.places[n];
        let shared = match source {
            Fixed::Net(m) => {
                let mut taps = Taps::new(&ctx.needs[&n].shared_taps);
                let z = m.forward_taps(Tensor::from_data(x.clone(), &place.plain), &mut taps);
                let taps = taps.got.into_iter().map(|(name, t)| (name, t.autodiff().detach())).collect();
                Shared { rows: None, logits: z.autodiff().detach(), taps }
            }
            Fixed::Training(m) => {
                let mut taps = Taps::new(&ctx.needs[&n].shared_taps);
                let z = m.forward_taps(Tensor::from_data(x.clone(), &place.train), &mut taps);
                let taps = taps.got.into_iter().map(|(name, t)| (name, t.detach())).collect();
                Shared { rows: None, logits: z.detach(), taps }
            }
            Fixed::Recorded(r) => {
                let rows = TensorData::new(r.rows(&indices), [b, r.classes()]);
                Shared { rows: None, logits: Tensor::from_data(rows, &place.train), taps: Vec::new() }
            }
        };
        outputs.insert(n, shared);
    }
    match ctx.pools {
        Some(pools) if ctx.stage.update == UpdateOrder::Simultaneous && ctx.stage.train.len() > 1 => {
            parallel_step(ctx, pools, &x, &views, &y, &meta, outputs, models, optimizers)
        }
        _ => serial_step(ctx, x, &views, y, &meta, outputs, models, optimizers),
    }
}

/// The batch's inputs (the node's own view, if it has one) and labels on each trained node's
/// device (the shared view made once per device).
fn batch_on_devices(ctx: &StepContext, x: TensorData, views: &HashMap<usize, TensorData>, y: TensorData) -> HashMap<usize, (Tensor<2>, Tensor<1, Int>)> {
    let mut made: Vec<(&Device, Tensor<2>, Tensor<1, Int>)> = Vec::new();
    let mut per_node = HashMap::new();
    for &n in &ctx.stage.train {
        let device = &ctx.places[n].train;
        if let Some(view) = views.get(&n) {
            per_node.insert(n, (Tensor::<2>::from_data(view.clone(), device), Tensor::<1, Int>::from_data(y.clone(), device)));
            continue;
        }
        let pair = match made.iter().find(|(d, ..)| *d == device) {
            Some((_, x, y)) => (x.clone(), y.clone()),
            None => {
                let pair = (Tensor::<2>::from_data(x.clone(), device), Tensor::<1, Int>::from_data(y.clone(), device));
                made.push((device, pair.0.clone(), pair.1.clone()));
                pair
            }
        };
        per_node.insert(n, pair);
    }
    per_node
}

/// Nodes one after another. Simultaneous: every loss uses the pre-step outputs. Sequential:
/// after a node steps, its output is recomputed for the nodes after it.
#[allow(clippy::too_many_arguments)]
fn serial_step(
    ctx: &StepContext,
    x: TensorData,
    views: &HashMap<usize, TensorData>,
    y: TensorData,
    meta: &BatchMeta,
    mut outputs: HashMap<usize, Shared>,
    models: &mut [Option<Trainee>],
    optimizers: &mut HashMap<usize, ModuleOptimizer>,
) -> Result<StepReport, NonFinite> {
    let train = &ctx.stage.train;
    let batch = batch_on_devices(ctx, x, views, y);
    let mut tracked: HashMap<usize, Forward> = HashMap::new();
    for &n in train {
        if let Some(f) = ctx.forward(n, &models[n].as_ref().expect("trained model present").net, &batch[&n].0, meta, 0) {
            outputs.insert(n, ctx.share(n, &f));
            tracked.insert(n, f);
        }
    }
    // SwitOKD's decisions, from the pre-step outputs
    let paused: Vec<usize> = train.iter().copied().filter(|&n| ctx.pauses(n, &outputs, meta)).collect();
    let mut report = StepReport { paused: paused.clone(), ..Default::default() };
    for (k, &n) in train.iter().enumerate() {
        let Some(f) = tracked.remove(&n).filter(|_| !paused.contains(&n)) else {
            report.push(None);
            continue;
        };
        let model = models[n].take().expect("trained model present");
        let opt = optimizers.get_mut(&n).expect("optimizer of trained node");
        let (model, learned) = ctx.learn(n, &f, model, opt, &outputs, &batch[&n].1, meta);
        let Ok(values) = learned else {
            models[n] = Some(model);
            return Err(NonFinite { node: n, value: learned.err().expect("not Ok") });
        };
        report.push(Some(values));
        if ctx.stage.update == UpdateOrder::Sequential {
            // later nodes of this step see this node's refreshed outputs: a training-mode pass
            // (batch statistics, the step's dropout stream 1) on a copy whose batch-norm running
            // statistics are its own, so that they are updated once per step, by the tracked pass
            let needed = train[k + 1..].iter().any(|&later| ctx.stage.terms.iter().any(|t| t.to == later && t.from.contains(&n)));
            if needed && let Some(fresh) = ctx.forward(n, &model.net.valid().train(), &batch[&n].0, meta, 1) {
                outputs.insert(n, ctx.share(n, &fresh));
            }
        }
        models[n] = Some(model);
    }
    Ok(report)
}

/// Simultaneous update on one thread per node, each inside its own rayon pool (so the
/// backend's parallel operations of one node stay on its share of the cores). The exchange is
/// a barrier: every node publishes its detached outputs, waits for the others, then computes
/// its loss, backward pass and optimiser step.
#[allow(clippy::too_many_arguments)]
fn parallel_step(
    ctx: &StepContext,
    pools: &[rayon::ThreadPool],
    x: &TensorData,
    views: &HashMap<usize, TensorData>,
    y: &TensorData,
    meta: &BatchMeta,
    fixed: HashMap<usize, Shared>,
    models: &mut [Option<Trainee>],
    optimizers: &mut HashMap<usize, ModuleOptimizer>,
) -> Result<StepReport, NonFinite> {
    let train = &ctx.stage.train;
    // Nothing autodiff-related is shared between the threads: each builds its own input tensors
    // from the batch data, and outputs cross over as plain data, so the threads' graphs are
    // disjoint and never merged (or locked together) by burn's autodiff graph registry.
    let exchange: Mutex<HashMap<usize, SharedData>> = Mutex::new(fixed.into_iter().map(|(n, t)| (n, t.into_data())).collect());
    let barrier = Barrier::new(train.len());
    let work: Vec<(usize, Trainee, ModuleOptimizer)> =
        train.iter().map(|&n| (n, models[n].take().expect("trained model present"), optimizers.remove(&n).expect("optimizer of trained node"))).collect();
    let done: Vec<Stepped> = std::thread::scope(|scope| {
        let handles: Vec<_> = work
            .into_iter()
            .enumerate()
            .map(|(k, (n, model, opt))| {
                let (exchange, barrier) = (&exchange, &barrier);
                let pool = &pools[k % pools.len()];
                scope.spawn(move || pool.install(|| node_thread(ctx, (n, model, opt), (x, views, y, meta), exchange, barrier)))
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("a node's step panicked")).collect()
    });
    let mut report = StepReport::default();
    let mut bad = None;
    for (n, model, opt, learned, pause) in done {
        models[n] = Some(model);
        optimizers.insert(n, opt);
        if pause {
            report.paused.push(n);
        }
        match learned {
            Some(Err(v)) => {
                bad.get_or_insert(NonFinite { node: n, value: v });
                report.losses.push(Some(v));
                report.terms.push(None);
            }
            Some(Ok(values)) => report.push(Some(values)),
            None => report.push(None),
        }
    }
    match bad {
        Some(b) => Err(b),
        None => Ok(report),
    }
}

/// One trained node's part of a simultaneous step on its own thread: its forward pass, its
/// detached outputs published to `exchange`, the barrier, then its loss, backward pass and
/// optimiser step from everyone's outputs (or its pause, SwitOKD).
fn node_thread(
    ctx: &StepContext,
    (n, model, mut opt): (usize, Trainee, ModuleOptimizer),
    (x, views, y, meta): (&TensorData, &HashMap<usize, TensorData>, &TensorData, &BatchMeta),
    exchange: &Mutex<HashMap<usize, SharedData>>,
    barrier: &Barrier,
) -> Stepped {
    let device = &ctx.places[n].train;
    let x = Tensor::<2>::from_data(views.get(&n).unwrap_or(x).clone(), device);
    let y = Tensor::<1, Int>::from_data(y.clone(), device);
    let f = ctx.forward(n, &model.net, &x, meta, 0);
    if let Some(f) = &f {
        exchange.lock().expect("exchange lock").insert(n, ctx.share(n, f).into_data());
    }
    barrier.wait();
    let Some(f) = f else { return (n, model, opt, None, false) };
    let outputs: HashMap<usize, Shared> = exchange.lock().expect("exchange lock").iter().map(|(&m, d)| (m, Shared::from_data(d, device))).collect();
    if ctx.pauses(n, &outputs, meta) {
        return (n, model, opt, None, true);
    }
    let (model, learned) = ctx.learn(n, &f, model, &mut opt, &outputs, &y, meta);
    // A GPU runtime queues work per thread (burn's wgpu backend: a stream per thread) and does
    // not order another thread's reads of this node's weights after it: without waiting here for
    // the optimiser step to finish, the evaluation (on the run's thread) read weights the step
    // was still writing (seen on lavapipe: test accuracies off by a point). A no-op on the CPU.
    let _ = device.sync();
    (n, model, opt, Some(learned), false)
}
