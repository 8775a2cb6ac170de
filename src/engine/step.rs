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

use crate::config::{Combine, LossSpec, PlanStage, Term, UpdateOrder};
use crate::data::batch::{Batch, splitmix64};
use crate::distill;
use crate::models::{Adapter, Network, Noise, Tap, Taps, Trainee};

use super::Placement;

use super::exchange::{BatchMeta, SharedData, feature_taps, index_tensor, lfme_target, restrict, restrict_tap, subset_rows};
pub use super::exchange::{NodeNeeds, Shared, adapter_slots, stage_needs};
use super::optim::ramp_up;

/// `weight · ramp · loss` of one logit-level term for the trained logits `z`, given the
/// detached outputs of its sources (in `term.from` order).
pub fn term_loss(term: &Term, z: Tensor<2>, sources: &[Tensor<2>], y: Tensor<1, Int>, epoch: usize, epochs: usize) -> Tensor<1> {
    // logit standardisation (Sun et al. 2024): the target's and the sources' logits z-scored
    let (z, sources) = match term.loss {
        LossSpec::SoftTarget { standardize: true, .. } | LossSpec::MutualKl { standardize: true, .. } | LossSpec::Ensemble { standardize: true, .. } => {
            (distill::standardize_logits(z), sources.iter().cloned().map(distill::standardize_logits).collect())
        }
        _ => (z, sources.to_vec()),
    };
    let sources = &sources[..];
    let loss = match &term.loss {
        LossSpec::CrossEntropy => distill::cross_entropy(z, y),
        LossSpec::SoftTarget { temperature, source_weights, .. } => {
            let w: Vec<f64> = source_weights.iter().map(|w| w.get()).collect();
            let t = temperature.get();
            distill::kl_to_target(distill::mixture_target(sources, &w, t), z, t)
        }
        LossSpec::MutualKl { temperature, .. } => distill::mutual_kl(sources, z, temperature.get()),
        // `sources` holds the node's own output, detached
        LossSpec::OwnOutput { temperature } => distill::soft_target_kl(sources[0].clone(), z, temperature.get()),
        LossSpec::Dkd { alpha, beta, temperature } => distill::dkd(sources[0].clone(), z, y, alpha.get(), beta.get(), temperature.get()),
        LossSpec::Dist { beta, gamma, temperature } => distill::dist(sources[0].clone(), z, beta.get(), gamma.get(), temperature.get()),
        LossSpec::Ensemble { temperature, combine, include_self, .. } => {
            let mut members = sources.to_vec();
            if *include_self {
                members.push(z.clone().detach());
            }
            let t = temperature.get();
            distill::kl_to_target(ensemble_target(*combine, &members, y, t), z, t)
        }
        // `sources` holds the node's other heads, detached
        LossSpec::OtherHeads { temperature, combine } => {
            let t = temperature.get();
            distill::kl_to_target(ensemble_target(*combine, sources, y, t), z, t)
        }
        // `sources` holds, row for row of `z`, the logits of each sample's own-domain expert
        LossSpec::Lfme => distill::lfme(z, burn::tensor::activation::softmax(sources[0].clone(), 1)),
        LossSpec::Hint { .. } | LossSpec::Attention { .. } => unreachable!("feature terms go through `feature_loss`"),
        LossSpec::PeerAttention { .. } => unreachable!("OKDDip terms go through `StepContext::peer_attention`"),
    };
    loss.mul_scalar(term_scale(term, epoch, epochs))
}

/// `weight · ramp · gate` of a term in epoch `epoch` of `epochs`.
fn term_scale(term: &Term, epoch: usize, epochs: usize) -> f64 {
    term.weight * ramp_up(epoch, term.ramp_up_epochs) * term.gate.factor(epoch, epochs)
}

/// A tap as features `[B, C]`: flat taps as they are, maps averaged over their positions.
fn pooled(t: Tap) -> Tensor<2> {
    let m = t.channels_by_positions();
    let [b, c, _] = m.dims();
    m.mean_dim(2).reshape([b, c])
}

/// The softened ensemble of `members` (detached logits) formed by `combine` at temperature `t`.
fn ensemble_target(combine: Combine, members: &[Tensor<2>], y: Tensor<1, Int>, t: f64) -> Tensor<2> {
    match combine {
        Combine::MeanProbs => distill::mixture_target(members, &[], t),
        Combine::MeanLogits => distill::mean_logits_target(members, t),
        Combine::MinLogit => distill::min_logit_target(members, y, t),
    }
}

/// `weight · ramp · loss` of a feature term: the trained node's tap `v` (tracked), the source's
/// tap `u` (detached) and, for hints, the node's adapter r.
pub fn feature_loss(term: &Term, u: Tap, v: Tap, adapter: Option<&Adapter>, epoch: usize, epochs: usize) -> Tensor<1> {
    let loss = match &term.loss {
        LossSpec::Hint { .. } => {
            let rv = adapter.expect("every hint term has an adapter").forward(v);
            distill::hint(u.channels_by_positions().flatten(1, 2), rv.channels_by_positions().flatten(1, 2))
        }
        LossSpec::Attention { .. } => distill::attention_transfer(u.channels_by_positions(), v.channels_by_positions()),
        _ => unreachable!("logit terms go through `term_loss`"),
    };
    loss.mul_scalar(term_scale(term, epoch, epochs))
}

/// A source that does not train in the stage.
// a handful per stage, built once: boxing the network would buy nothing
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Fixed {
    /// A network in eval mode (plain device).
    Net(Network),
    /// Outputs exported by `cohort export-logits`, looked up by sample index.
    Recorded(std::sync::Arc<super::recorded::Recorded>),
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
}

/// A tracked forward pass of one trained node.
struct Forward {
    rows: Option<Vec<usize>>,
    z: Tensor<2>,
    taps: Taps,
}

impl StepContext<'_> {
    /// Dropout stream of node `n` for `pass` (0 = the tracked forward, 1 = a refresh), keyed by
    /// epoch, step and node so that it does not depend on thread scheduling.
    fn noise(&self, n: usize, pass: u64) -> Noise {
        let k = splitmix64(splitmix64(splitmix64(self.noise_seed ^ n as u64) ^ self.step as u64) ^ pass);
        Noise::new(k)
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

    /// The summed loss terms of node `n` for its forward pass `f`.
    fn node_loss(&self, n: usize, f: &Forward, adapters: &[Adapter], outputs: &HashMap<usize, Shared>, y: &Tensor<1, Int>, meta: &BatchMeta) -> Tensor<1> {
        let device = &f.z.device();
        let y = match &f.rows {
            Some(r) => y.clone().select(0, index_tensor(r, device)),
            None => y.clone(),
        };
        self.stage
            .terms
            .iter()
            .filter(|t| t.to == n)
            .map(|term| {
                if let Some((from_tap, to_tap)) = feature_taps(term) {
                    let src = &outputs[&term.from[0]];
                    let u = restrict_tap(src.tap(from_tap), &src.rows, &f.rows, device);
                    let v = f.taps.get(to_tap).cloned().expect("forward collected the own tap");
                    let adapter = self.needs[&n].adapters.get(&term.origin).map(|&k| &adapters[k]);
                    feature_loss(term, u, v, adapter, self.epoch, self.stage.epochs)
                } else if let LossSpec::PeerAttention { .. } = term.loss {
                    let adapter = &adapters[self.needs[&n].adapters[&term.origin]];
                    self.peer_attention(term, f, adapter, outputs, device)
                } else {
                    // the node's output, or one head of a Hydra
                    let head = |m: usize| match f.taps.get(&crate::models::head_tap(m)) {
                        Some(Tap::Flat(h)) => h.clone(),
                        _ => panic!("forward collected head {m} (the resolver checks heads)"),
                    };
                    let z = match term.head {
                        Some(m) => head(m),
                        None => f.z.clone(),
                    };
                    if let (LossSpec::OtherHeads { .. }, Some(m)) = (&term.loss, term.head) {
                        // every head was collected (`stage_needs`): head1, head2, … up to the last
                        let heads = (1..).take_while(|&j| f.taps.get(&crate::models::head_tap(j)).is_some()).count();
                        let others: Vec<Tensor<2>> = (1..=heads).filter(|&j| j != m).map(|j| head(j).detach()).collect();
                        term_loss(term, z, &others, y.clone(), self.epoch, self.stage.epochs)
                    } else if let LossSpec::OwnOutput { .. } = term.loss {
                        term_loss(term, z, &[f.z.clone().detach()], y.clone(), self.epoch, self.stage.epochs)
                    } else if term.loss == LossSpec::Lfme {
                        let target = lfme_target(&term.from, self.needs, outputs, &f.rows, meta, device);
                        term_loss(term, z, &[target], y.clone(), self.epoch, self.stage.epochs)
                    } else {
                        let sources: Vec<Tensor<2>> =
                            term.from.iter().map(|s| restrict(outputs[s].logits_of(term.from_head), &outputs[s].rows, &f.rows, device)).collect();
                        term_loss(term, z, &sources, y.clone(), self.epoch, self.stage.epochs)
                    }
                }
            })
            .reduce(|a, b| a + b)
            .expect("the resolver guarantees every trained node has a term")
    }
}

impl StepContext<'_> {
    /// Whether trained node `n` pauses in this step: it has a SwitOKD student whose pre-step
    /// outputs are in `outputs`, and the rule says expert mode ([`expert_mode`]).
    fn pauses(&self, n: usize, outputs: &HashMap<usize, Shared>, meta: &BatchMeta) -> bool {
        let Some(student) = self.switch.get(&n) else { return false };
        let (Some(t), Some(s)) = (outputs.get(&n), outputs.get(student)) else { return false };
        let values = |z: &Tensor<2>| z.clone().into_data().convert::<f32>().try_into_vec::<f32>().expect("f32 logits");
        let [_, classes] = t.logits.dims();
        expert_mode(&values(&t.logits), &values(&s.logits), &meta.labels, classes)
    }

    /// `weight · ramp · T²·KL(softmax(t/T) ‖ softmax(z/T))` of an OKDDip term for the trained
    /// node's forward pass `f`: `t = Σ_j α_j z_j` over the node itself and the term's sources
    /// (their logits detached), α from the node's query and every member's key (the node's own
    /// features tracked, the sources' detached), so the gradient reaches the projections.
    fn peer_attention(&self, term: &Term, f: &Forward, adapter: &Adapter, outputs: &HashMap<usize, Shared>, device: &Device) -> Tensor<1> {
        let LossSpec::PeerAttention { temperature, tap, .. } = &term.loss else { unreachable!("called for PeerAttention terms") };
        let own = pooled(f.taps.get(tap).cloned().expect("forward collected the own tap"));
        let mut features = vec![own.clone()];
        let mut logits = vec![f.z.clone().detach()];
        for s in &term.from {
            let src = &outputs[s];
            features.push(pooled(restrict_tap(src.tap(tap), &src.rows, &f.rows, device)));
            logits.push(restrict(src.logits.clone(), &src.rows, &f.rows, device));
        }
        let (q, keys) = adapter.query_keys(own, &features);
        let target = distill::attention_logits(q, &keys, &logits);
        let t = temperature.get();
        distill::kl_tracked_target(target, f.z.clone(), t).mul_scalar(term_scale(term, self.epoch, self.stage.epochs))
    }
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
    /// The nodes that paused in this step (SwitOKD's expert mode), by index.
    pub paused: Vec<usize>,
}

/// SwitOKD's switching rule (Qian et al., ECCV 2022, eqs. (5)–(9); the authors' code) for a
/// teacher with logits `t` and its student with logits `s` (`[B, C]` row-major) on labels `y`:
/// with `p = softmax(·)`, `G = mean_b ‖p_s − p_t‖₁` (the distillation gap), `s_y = mean_b ‖p_s −
/// onehot(y)‖₁`, `t_y = mean_b ‖p_t − onehot(y)‖₁`, `ε = exp(−t_y/(t_y + s_y))` and the adaptive
/// threshold `δ = s_y − ε·t_y`: expert mode (the teacher pauses) when `G > δ` and `t_y < s_y`.
pub fn expert_mode(t: &[f32], s: &[f32], y: &[i64], classes: usize) -> bool {
    let probs = |z: &[f32]| -> Vec<f64> {
        z.chunks(classes)
            .flat_map(|r| {
                let m = r.iter().cloned().fold(f32::MIN, f32::max) as f64;
                let e: Vec<f64> = r.iter().map(|&v| (v as f64 - m).exp()).collect();
                let sum: f64 = e.iter().sum();
                e.into_iter().map(move |v| v / sum)
            })
            .collect()
    };
    let (pt, ps) = (probs(t), probs(s));
    let b = y.len() as f64;
    let to_label = |p: &[f64]| -> f64 {
        p.chunks(classes)
            .zip(y)
            .map(|(r, &l)| r.iter().enumerate().map(|(c, v)| if c as i64 == l { (v - 1.0).abs() } else { v.abs() }).sum::<f64>())
            .sum::<f64>()
            / b
    };
    let gap = pt.iter().zip(&ps).map(|(a, b)| (a - b).abs()).sum::<f64>() / b;
    let (s_y, t_y) = (to_label(&ps), to_label(&pt));
    let epsilon = (-t_y / (t_y + s_y)).exp();
    gap > s_y - epsilon * t_y && t_y < s_y
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
    let meta = BatchMeta { labels, domains };
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
    let mut values = Vec::with_capacity(train.len());
    for (k, &n) in train.iter().enumerate() {
        let Some(f) = tracked.remove(&n).filter(|_| !paused.contains(&n)) else {
            values.push(None);
            continue;
        };
        let model = models[n].take().expect("trained model present");
        let loss = ctx.node_loss(n, &f, &model.adapters, &outputs, &batch[&n].1, meta);
        let value = loss.clone().into_scalar::<f32>() as f64;
        if !value.is_finite() {
            models[n] = Some(model);
            return Err(NonFinite { node: n, value });
        }
        values.push(Some(value));
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let opt = optimizers.get_mut(&n).expect("optimizer of trained node");
        let model = constrained(opt.step(ctx.lr[&n], model, grads));
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
    Ok(StepReport { losses: values, paused })
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
    let done: Vec<(usize, Trainee, ModuleOptimizer, Option<f64>, bool)> = std::thread::scope(|scope| {
        let handles: Vec<_> = work
            .into_iter()
            .enumerate()
            .map(|(k, (n, model, mut opt))| {
                let (exchange, barrier) = (&exchange, &barrier);
                let pool = &pools[k % pools.len()];
                scope.spawn(move || {
                    pool.install(|| {
                        let device = &ctx.places[n].train;
                        let x = Tensor::<2>::from_data(views.get(&n).unwrap_or(x).clone(), device);
                        let y = Tensor::<1, Int>::from_data(y.clone(), device);
                        let f = ctx.forward(n, &model.net, &x, meta, 0);
                        if let Some(f) = &f {
                            exchange.lock().expect("exchange lock").insert(n, ctx.share(n, f).into_data());
                        }
                        barrier.wait();
                        let Some(f) = f else { return (n, model, opt, None, false) };
                        let outputs: HashMap<usize, Shared> =
                            exchange.lock().expect("exchange lock").iter().map(|(&m, d)| (m, Shared::from_data(d, device))).collect();
                        if ctx.pauses(n, &outputs, meta) {
                            return (n, model, opt, None, true);
                        }
                        let loss = ctx.node_loss(n, &f, &model.adapters, &outputs, &y, meta);
                        let value = loss.clone().into_scalar::<f32>() as f64;
                        if !value.is_finite() {
                            return (n, model, opt, Some(value), false);
                        }
                        let grads = GradientsParams::from_grads(loss.backward(), &model);
                        let model = constrained(opt.step(ctx.lr[&n], model, grads));
                        (n, model, opt, Some(value), false)
                    })
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("a node's step panicked")).collect()
    });
    let mut values = Vec::with_capacity(done.len());
    let mut paused = Vec::new();
    let mut bad = None;
    for (n, model, opt, value, pause) in done {
        models[n] = Some(model);
        optimizers.insert(n, opt);
        if pause {
            paused.push(n);
        }
        if let Some(v) = value.filter(|v| !v.is_finite()) {
            bad.get_or_insert(NonFinite { node: n, value: v });
        }
        values.push(value);
    }
    match bad {
        Some(b) => Err(b),
        None => Ok(StepReport { losses: values, paused }),
    }
}
