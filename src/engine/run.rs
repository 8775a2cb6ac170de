//! One seed's run: prepare the folder and the data, then the stages, their epochs and steps,
//! and one [`Run::finish`] that writes what the run's ending needs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use burn::module::Module;
use burn::optim::ModuleOptimizer;

use super::eval::{self, Evaluated};
use super::progress::Progress;
use super::report::{Event, LogFile, Reporter, TensorBoard, Terminal};
use super::state::{self, Resume};
use super::step::{self, Fixed, NodeNeeds};
use super::tally::Tally;
use super::trainee::Trainee;
use super::{EngineError, Placement, RunOptions, RunOutcome, Status, device, recorded, switokd, thread_pools};
use crate::config::Plan;
use crate::data::batch::{epoch_batches, gather};
use crate::data::spec::Views;
use crate::data::{self, Prepared};
use crate::models::Network;
use crate::random::legacy::LegacyRandomState;
use crate::random::{Stream, epoch_key, node_stream_seed, stream_seed};
use crate::results::tensorboard::{self, Board};
use crate::results::{Divergence, Manifest, MetricRow, RunDir, RunStatus, Summary, Timing, manifest, summarize, write_metrics, write_summary};

/// What is already in a run folder.
enum Existing {
    /// Nothing (or an empty folder).
    Nothing,
    /// A complete run, to be skipped (`--resume`).
    Complete,
    /// An interrupted run, to be continued (`--resume`).
    Interrupted,
}

/// How a run stopped before its last stage finished, or that it finished.
enum Ending {
    Complete,
    Diverged(Divergence),
    /// Interrupted by a signal in (stage name, epoch, step), all from 1.
    Interrupted(String, usize, usize),
    /// Stopped after `--stop-after-epochs` epochs.
    Stopped,
}

/// Runs seed `seed` of `plan` into its run folder.
pub(super) fn run_seed(plan: &Plan, seed: u64, opts: &RunOptions) -> Result<RunOutcome, EngineError> {
    let dir = RunDir::new(&plan.output, &plan.name, seed);
    let existing = existing(&dir, opts)?;
    if let Existing::Complete = existing {
        Reporter::new(vec![Box::new(Terminal(Progress::new(false)))]).note(&format!("seed {seed}: already complete in {}", dir.root.display()), false);
        return Ok(RunOutcome { seed, dir: dir.root, status: Status::AlreadyComplete });
    }
    // the data is loaded and checked before any folder is made: a missing or damaged data set
    // leaves nothing behind that a corrected rerun would have to --resume or --overwrite
    let data = data::prepare(&plan.data, &opts.data_root, seed)?;
    check_data(plan, &data.train.labels)?;
    if opts.overwrite && dir.root.exists() {
        std::fs::remove_dir_all(&dir.root).map_err(|e| EngineError::io(&dir.root, e))?;
    }
    std::fs::create_dir_all(&dir.root).map_err(|e| EngineError::io(&dir.root, e))?;
    let mut run = Run::start(plan, seed, opts, dir, data, matches!(existing, Existing::Interrupted))?;
    let ending = run.train()?;
    run.finish(ending)
}

/// Every term's checks against the training split's labels ([`crate::losses::LossKind::check_data`]).
fn check_data(plan: &Plan, labels: &[u8]) -> Result<(), EngineError> {
    for t in plan.stages.iter().flat_map(|s| &s.terms) {
        if let Some((problem, hint)) = t.loss.kind().check_data(labels) {
            return Err(EngineError::TermData { at: format!("{}.loss", t.origin), problem, hint });
        }
    }
    Ok(())
}

/// What the folder holds, or an error when it holds a run that neither `--resume` nor
/// `--overwrite` allows to touch.
fn existing(dir: &RunDir, opts: &RunOptions) -> Result<Existing, EngineError> {
    let non_empty = std::fs::read_dir(&dir.root).is_ok_and(|mut d| d.next().is_some());
    if !non_empty || opts.overwrite {
        return Ok(Existing::Nothing);
    }
    match (dir.summary().exists(), opts.resume) {
        (true, true) => Ok(Existing::Complete),
        (true, false) => Err(EngineError::AlreadyComplete { dir: dir.root.clone() }),
        (false, true) => Ok(Existing::Interrupted),
        (false, false) => Err(EngineError::Interrupted { dir: dir.root.clone() }),
    }
}

/// A run in progress.
struct Run<'a> {
    plan: &'a Plan,
    seed: u64,
    opts: &'a RunOptions,
    dir: RunDir,
    data: Prepared,
    places: Vec<Placement>,
    /// Per node (recorded sources: `None`).
    models: Vec<Option<Trainee>>,
    /// Every metric row so far (rewritten to `metrics.csv` after each epoch).
    rows: Vec<MetricRow>,
    /// Where training (re)starts.
    start: Resume,
    /// Epochs run by this process (for `--stop-after-epochs`).
    epochs_run: usize,
    /// The terminal, `log.txt` and TensorBoard.
    reporter: Reporter,
    /// When this process started the run, and each epoch's steps/s.
    started: Instant,
    epoch_speeds: Vec<f64>,
    /// The `self_attention:` rows whose collapse was already warned of (node id, metric).
    warned: Vec<(String, String)>,
}

/// What the epochs of one stage share.
struct StageRun<'s> {
    s: usize,
    /// SwitOKD: each trained teacher → its student trained in the same stage.
    switch: HashMap<usize, usize>,
    needs: &'s HashMap<usize, NodeNeeds>,
    pools: Option<&'s [rayon::ThreadPool]>,
}

impl<'a> Run<'a> {
    /// Writes (or, resuming, checks) the manifest, draws or loads the networks and, resuming,
    /// loads the last complete epoch's state and the metrics up to it.
    fn start(plan: &'a Plan, seed: u64, opts: &'a RunOptions, dir: RunDir, data: Prepared, resuming: bool) -> Result<Self, EngineError> {
        let (plain, name) = device::device_for(plan.backend, plan.device)?;
        let run_place = Placement::of(plain, name);
        let places = device::placements(plan)?;
        let manifest = manifest_of(plan, seed, opts, device::describe(plan, &run_place, &places));
        let mut reporter = Reporter::new(vec![Box::new(Terminal(Progress::new(opts.progress))), Box::new(LogFile { dir: dir.clone(), seed })]);
        if manifest.backend != "flex" {
            // a choice the user made (or a node's placement): say where it landed, e.g. a
            // `backend: Tch` run on a machine without a GPU
            reporter.note(&format!("seed {seed}: backend {}", manifest.backend), false);
        }
        if resuming && dir.manifest().exists() {
            // the experiment must be the one that started the run
            if Manifest::read(&dir.manifest())?.experiment_sha256 != manifest.experiment_sha256 {
                return Err(EngineError::ExperimentChanged { dir: dir.root.clone() });
            }
        } else {
            manifest.write(&dir.manifest())?;
        }
        let mut models = state::init_models(plan, seed, data.train.len(), &device::init_device(plan.backend, &run_place.train), &places)?;
        let resumed = if resuming { state::load(&dir, plan, &mut models)? } else { None };
        let rows = match resumed {
            Some(at) => resumed_rows(plan, &dir, at, seed, &mut reporter)?,
            None => Vec::new(),
        };
        if opts.tensorboard {
            let board = Board::new(&dir.root, plan.stages.len() > 1, resumed.map(|_| &rows[..]));
            reporter = reporter.with(Box::new(TensorBoard { board, written: rows.len(), root: dir.root.join(tensorboard::DIR) }));
        }
        Ok(Run {
            plan,
            seed,
            opts,
            dir,
            data,
            places,
            models,
            rows,
            start: resumed.unwrap_or_default(),
            epochs_run: 0,
            reporter,
            started: Instant::now(),
            epoch_speeds: Vec::new(),
            warned: Vec::new(),
        })
    }

    /// Trains the stages from the start point on.
    fn train(&mut self) -> Result<Ending, EngineError> {
        for s in self.start.stage..self.plan.stages.len() {
            let first_epoch = if s == self.start.stage { self.start.epochs_done } else { 0 };
            if let Some(stop) = self.stage(s, first_epoch)? {
                return Ok(stop);
            }
        }
        Ok(Ending::Complete)
    }

    /// Trains stage `s` from `first_epoch` on; `Some` when the run stops before its end.
    fn stage(&mut self, s: usize, first_epoch: usize) -> Result<Option<Ending>, EngineError> {
        let st = &self.plan.stages[s];
        let mut optimizers = state::optimizers(self.plan, s, &self.dir.state(), first_epoch > 0)?;
        let mut fixed = self.fixed_sources(s)?;
        if first_epoch == 0 {
            self.evaluate_fixed(s, &fixed);
        }
        let pools = thread_pools(self.plan.concurrency, st);
        if let Some(p) = &pools {
            let line = format!("[{}] {} nodes step in parallel, {} thread(s) each", st.name, st.train.len(), p[0].current_num_threads());
            self.reporter.note(&line, false);
        }
        let needs = step::stage_needs(self.plan, s);
        self.prepare_terms(s, &needs)?;
        let steps = self.data.train.len().div_ceil(self.plan.batch_size);
        self.emit(Event::StageStarted { name: &st.name, steps: (st.epochs - first_epoch) * steps })?;
        let stage = StageRun { s, switch: switokd::pairs(self.plan, st), needs: &needs, pools: pools.as_deref() };
        for epoch in first_epoch..st.epochs {
            if let Some(stop) = self.epoch(&stage, &mut fixed, epoch, &mut optimizers)? {
                return Ok(Some(stop));
            }
        }
        self.emit(Event::StageFinished)?;
        state::save_checkpoints(&self.dir, self.plan, s, &self.models)?;
        Ok(None)
    }

    /// Each term of stage `s` reads what it needs of its first source's current weights
    /// ([`crate::losses::LossKind::prepare`]: OFD's margin).
    fn prepare_terms(&self, s: usize, needs: &HashMap<usize, NodeNeeds>) -> Result<(), EngineError> {
        let st = &self.plan.stages[s];
        for t in &st.terms {
            let (Some(&src), Some(to)) = (t.from.first(), self.models[t.to].as_ref()) else { continue };
            // recorded sources have no weights (and no taps for a feature term to read)
            let Some(source) = self.models[src].as_ref() else { continue };
            let adapter = needs.get(&t.to).and_then(|n| n.adapters.get(&step::slot_key(t))).map(|&k| &to.adapters[k]);
            t.loss.kind().prepare(adapter, &source.net, st.train.contains(&src)).map_err(|(problem, hint)| EngineError::TermData {
                at: format!("{}.loss", t.origin),
                problem,
                hint,
            })?;
        }
        Ok(())
    }

    /// The sources of stage `s` that do not train in it: networks in eval mode (on the plain
    /// device) and recorded outputs.
    fn fixed_sources(&self, s: usize) -> Result<HashMap<usize, Fixed>, EngineError> {
        let st = &self.plan.stages[s];
        let mut fixed = HashMap::new();
        for &f in st.terms.iter().flat_map(|t| &t.from) {
            if st.train.contains(&f) || fixed.contains_key(&f) {
                continue;
            }
            let node = &self.plan.nodes[f];
            let source = match &node.model {
                crate::config::ModelSpec::Recorded { file } => Fixed::Recorded(Arc::new(recorded::Recorded::load(file, &node.id, &self.data.train)?)),
                _ => fixed_net(node, &self.models[f].as_ref().expect("sources other than recorded ones have a model").net),
            };
            fixed.insert(f, source);
        }
        Ok(fixed)
    }

    /// Evaluates the networks among the fixed sources once, before the stage trains (epoch 0).
    fn evaluate_fixed(&mut self, s: usize, fixed: &HashMap<usize, Fixed>) {
        let mut nets: Vec<(usize, Network)> = fixed
            .iter()
            .filter_map(|(&i, f)| match f {
                Fixed::Net(m) => Some((i, m.clone())),
                Fixed::Training(m) => Some((i, m.valid())),
                Fixed::Recorded(_) => None,
            })
            .collect();
        if nets.is_empty() {
            return;
        }
        nets.sort_by_key(|(i, _)| *i);
        let (ids, nets): (Vec<usize>, Vec<Network>) = nets.into_iter().unzip();
        let ev = eval::evaluate(self.plan, s, 0, &ids, &nets, &self.data, &self.places);
        self.rows.extend(ev.rows);
        self.reporter.note(&format!("[{}] fixed sources before training:{}", self.plan.stages[s].name, ev.line), false);
    }

    /// One epoch of a stage: train, evaluate, record, checkpoint. `Some` when the run stops here.
    fn epoch(
        &mut self,
        stage: &StageRun,
        fixed: &mut HashMap<usize, Fixed>,
        epoch: usize,
        optimizers: &mut HashMap<usize, ModuleOptimizer>,
    ) -> Result<Option<Ending>, EngineError> {
        let started = Instant::now();
        let lr = self.learning_rates(stage.s, epoch);
        let tally = match self.train_epoch(stage, fixed, epoch, &lr, optimizers) {
            Ok(tally) => tally,
            Err(stop) => return Ok(Some(stop)),
        };
        let trained = tally.rows(self.plan, stage.s, epoch, &lr, &stage.switch);
        self.warn_of_collapse(&trained);
        self.rows.extend(trained);
        let line = self.evaluate(stage.s, epoch);
        self.write_metrics()?;
        state::save(&self.dir, self.plan, Resume { stage: stage.s, epochs_done: epoch + 1 }, &self.models, optimizers)?;
        let (st, secs) = (&self.plan.stages[stage.s], started.elapsed().as_secs_f64());
        let speed = tally.steps() as f64 / secs;
        self.epoch_speeds.push(speed);
        let line = format!("[{}] epoch {}/{}: test{line} ({secs:.1} s, {speed:.1} steps/s)", st.name, epoch + 1, st.epochs);
        self.emit(Event::Line { text: &line, logged: true })?;
        self.epochs_run += 1;
        Ok(self.opts.stop_after_epochs.is_some_and(|n| self.epochs_run >= n).then_some(Ending::Stopped))
    }

    /// Warns once per term when an OKDDip term's attention has collapsed onto the peer itself
    /// (the epoch's mean `α_ii`, a `self_attention:` row of `rows`, above 0.95): its target is
    /// then the peer's own output, and the term ≈ 0.
    fn warn_of_collapse(&mut self, rows: &[MetricRow]) {
        for r in rows.iter().filter(|r| r.metric.starts_with("self_attention:") && r.value > 0.95) {
            if self.warned.iter().any(|(n, m)| *n == r.node && *m == r.metric) {
                continue;
            }
            let term = &r.metric["self_attention:".len()..];
            let text = format!(
                "warning: seed {}: the attention of node `{}` has collapsed onto the peer itself (mean α_ii {:.3} in epoch {} of `{}`, term loss:{term}): its distillation term is ≈ 0; the paper's form excludes the peer (`include_self: false`, docs/losses.md)",
                self.seed, r.node, r.value, r.epoch, r.stage
            );
            let _ = self.reporter.emit(Event::Note { text: &text, warning: true, logged: true });
            self.warned.push((r.node.clone(), r.metric.clone()));
        }
    }

    /// The learning rate of each node trained in stage `s`, epoch `epoch`.
    fn learning_rates(&self, s: usize, epoch: usize) -> HashMap<usize, f64> {
        let st = &self.plan.stages[s];
        let node_lr = |n: usize| super::optim::lr_at(super::optim::base_lr(&self.plan.nodes[n].optimizer), &self.plan.nodes[n].schedule, epoch, st.epochs);
        st.train.iter().map(|&n| (n, node_lr(n))).collect()
    }

    /// The steps of one epoch, in the epoch's batch order, each on its augmented batch (and
    /// each node's own view); the tally of their values, or how the run stops in it.
    fn train_epoch(
        &mut self,
        stage: &StageRun,
        fixed: &mut HashMap<usize, Fixed>,
        epoch: usize,
        lr: &HashMap<usize, f64>,
        optimizers: &mut HashMap<usize, ModuleOptimizer>,
    ) -> Result<Tally, Ending> {
        let (plan, st) = (self.plan, &self.plan.stages[stage.s]);
        let key = epoch_key(stage.s, epoch);
        let mut batches = EpochBatches::new(plan, self.seed, key, st, self.data.train.len());
        let noise_seed = stream_seed(self.seed, Stream::Dropout, key) as u64;
        let mut tally = Tally::new(st.train.len());
        for k in 0..batches.order.len() {
            let batch = batches.gather(&self.data.train, k);
            let ctx = step::StepContext {
                stage: st,
                epoch,
                step: k,
                steps: batches.order.len(),
                noise_seed,
                places: &self.places,
                fixed,
                needs: stage.needs,
                lr,
                pools: stage.pools,
                switch: &stage.switch,
                split_labels: &self.data.train.labels,
            };
            let report = step::train_step(&ctx, batch, &mut self.models, optimizers).map_err(|bad| {
                let node = plan.nodes[bad.node].id.clone();
                Ending::Diverged(Divergence { stage: st.name.clone(), epoch: epoch + 1, step: k + 1, node, loss: bad.value.to_string() })
            })?;
            self.step_averages(&st.train, fixed, epoch * batches.order.len() + k + 1);
            tally.add(&report);
            if self.opts.interrupt.requested() {
                return Err(Ending::Interrupted(st.name.clone(), epoch + 1, k + 1));
            }
            let losses = || {
                let losses: Vec<String> = st.train.iter().zip(&report.losses).filter_map(|(&n, l)| l.map(|l| format!("{} {l:.3}", plan.nodes[n].id))).collect();
                format!("epoch {}/{} loss {}", epoch + 1, st.epochs, losses.join(" "))
            };
            let _ = self.reporter.emit(Event::Step(&losses));
        }
        Ok(tally)
    }

    /// Evaluates the nodes trained in stage `s` and the averages of their weights after epoch
    /// `epoch`; returns the line's test figures.
    fn evaluate(&mut self, s: usize, epoch: usize) -> String {
        let train = &self.plan.stages[s].train;
        let evaluated: Vec<usize> = train.iter().copied().chain(self.plan.emas_of(train).map(|(e, ..)| e)).collect();
        let nets: Vec<Network> = evaluated.iter().map(|&n| self.models[n].as_ref().expect("trained nodes have a model").net.valid()).collect();
        let Evaluated { rows, line } = eval::evaluate(self.plan, s, epoch + 1, &evaluated, &nets, &self.data, &self.places);
        self.rows.extend(rows);
        line
    }

    /// Tells the listeners; a listener's failure to write stops the run.
    fn emit(&mut self, event: Event) -> Result<(), EngineError> {
        self.reporter.emit(event).map_err(|f| EngineError::io(f.path, f.source))
    }

    /// Rewrites `metrics.csv` with every row so far (and TensorBoard adds the new ones).
    fn write_metrics(&mut self) -> Result<(), EngineError> {
        write_metrics(&self.dir.metrics(), &self.rows)?;
        let rows = std::mem::take(&mut self.rows);
        let told = self.emit(Event::Metrics(&rows));
        self.rows = rows;
        told
    }

    /// Moves every `Ema` node tracking one of `train` toward its node's weights after the
    /// stage's `n`-th step (from 1), and refreshes it where it serves as a fixed source.
    fn step_averages(&mut self, train: &[usize], fixed: &mut HashMap<usize, Fixed>, n: usize) {
        for (e, ema) in self.plan.emas_of(train) {
            let average = self.models[e].take().expect("an Ema node has a model");
            let tracked = &self.models[ema.of].as_ref().expect("trained nodes have a model").net;
            let net = crate::models::ema_step(average.net, tracked, ema.decay_at(n));
            if let Some(f) = fixed.get_mut(&e) {
                *f = fixed_net(&self.plan.nodes[e], &net);
            }
            self.models[e] = Some(Trainee { net, adapters: Vec::new() });
        }
    }

    /// Ends the run: the summary of a complete or diverged run, the messages, the log.
    fn finish(mut self, ending: Ending) -> Result<RunOutcome, EngineError> {
        self.emit(Event::StageFinished)?;
        let seed = self.seed;
        let status = match ending {
            Ending::Complete => {
                self.write_summary(RunStatus::Complete, None)?;
                let _ = std::fs::remove_dir_all(&self.dir.state().root);
                self.reporter.note(&format!("seed {seed}: complete, results in {}", self.dir.root.display()), false);
                Status::Complete
            }
            Ending::Diverged(d) => {
                let text = format!(
                    "seed {seed}: node `{}` diverged (loss {}) in stage `{}`, epoch {}, step {}; metrics so far are kept",
                    d.node, d.loss, d.stage, d.epoch, d.step
                );
                self.emit(Event::Note { text: &text, warning: true, logged: true })?;
                self.write_metrics()?;
                self.write_summary(RunStatus::Diverged, Some(d.clone()))?;
                Status::Diverged(d)
            }
            Ending::Interrupted(stage, epoch, step) => {
                let text = format!(
                    "seed {seed}: interrupted in stage `{stage}`, epoch {epoch}, step {step}; the last complete epoch is saved: continue with --resume"
                );
                self.reporter.note(&text, true);
                Status::Interrupted
            }
            Ending::Stopped => {
                self.reporter.note(&format!("seed {seed}: stopped after {} epoch(s) as asked; continue with --resume", self.epochs_run), false);
                Status::Stopped
            }
        };
        Ok(RunOutcome { seed, dir: self.dir.root, status })
    }

    fn write_summary(&self, status: RunStatus, diverged: Option<Divergence>) -> Result<(), EngineError> {
        let names: Vec<String> = self.plan.stages.iter().map(|s| s.name.clone()).collect();
        let timing = Timing { epoch_steps_per_second: self.epoch_speeds.clone(), wall_seconds: self.started.elapsed().as_secs_f64() };
        let summary = Summary {
            experiment: self.plan.name.clone(),
            seed: self.seed,
            status,
            diverged,
            stages: summarize(&self.rows, &names),
            timing: Some(timing),
            git_revision: Some(manifest::git_revision()),
        };
        Ok(write_summary(&self.dir.summary(), &summary)?)
    }
}

/// A network serving as a fixed source: in eval mode on the plain device, or — a node with
/// `batch_stats`, or an `Ema` node with it — in training mode (a copy on its training device).
fn fixed_net(node: &crate::config::PlanNode, net: &Network) -> Fixed {
    if node.batch_stats || node.ema.is_some_and(|e| e.batch_stats) { Fixed::Training(net.valid().train()) } else { Fixed::Net(net.valid()) }
}

/// The manifest of seed `seed` of `plan`, run on `backend`.
fn manifest_of(plan: &Plan, seed: u64, opts: &RunOptions, backend: String) -> Manifest {
    Manifest {
        experiment: plan.name.clone(),
        experiment_file: opts.experiment_file.display().to_string(),
        experiment_sha256: crate::digest::sha256_hex(opts.experiment_text.as_bytes()),
        seed,
        backend,
        threads: rayon::current_num_threads(),
        cpu: manifest::cpu_description(),
        cohort_version: env!("CARGO_PKG_VERSION").into(),
        git_revision: manifest::git_revision(),
        data_root: opts.data_root.display().to_string(),
        plan: plan.clone(),
    }
}

/// The metric rows of an interrupted run up to its last complete epoch `at`.
fn resumed_rows(plan: &Plan, dir: &RunDir, at: Resume, seed: u64, reporter: &mut Reporter) -> Result<Vec<MetricRow>, EngineError> {
    let mut rows = crate::results::read_metrics(&dir.metrics())?;
    rows.retain(|r| {
        let s = plan.stages.iter().position(|s| s.name == r.stage).unwrap_or(usize::MAX);
        s < at.stage || (s == at.stage && r.epoch <= at.epochs_done)
    });
    dir.log_line(&format!("resumed at stage {}, {} epochs done", at.stage, at.epochs_done));
    reporter.note(&format!("seed {seed}: resuming stage `{}` after epoch {}", plan.stages[at.stage].name, at.epochs_done), false);
    Ok(rows)
}

/// The batches of one epoch: their order, the shared jitter stream and, with `views: PerNode`,
/// every trained node's own stream.
struct EpochBatches {
    order: Vec<Vec<usize>>,
    augment: Vec<crate::data::spec::Augment>,
    shared: LegacyRandomState,
    per_node: Vec<(usize, LegacyRandomState)>,
}

impl EpochBatches {
    fn new(plan: &Plan, seed: u64, key: usize, st: &crate::config::PlanStage, samples: usize) -> Self {
        let augment = plan.data.augmentations();
        let per_node = if plan.data.views == Views::PerNode && !augment.is_empty() {
            st.train.iter().map(|&n| (n, LegacyRandomState::new(node_stream_seed(seed, Stream::Jitter, key, n)))).collect()
        } else {
            Vec::new()
        };
        let shared = LegacyRandomState::new(stream_seed(seed, Stream::Jitter, key));
        EpochBatches { order: epoch_batches(samples, plan.batch_size, seed, key), augment, shared, per_node }
    }

    /// Batch `k` (drawn in order: the streams advance).
    fn gather(&mut self, samples: &crate::data::Samples, k: usize) -> crate::data::batch::Batch {
        let idx = &self.order[k];
        let mut batch = gather(samples, idx, &self.augment, Some(&mut self.shared));
        for (n, rng) in &mut self.per_node {
            batch.views.insert(*n, gather(samples, idx, &self.augment, Some(rng)).inputs);
        }
        batch
    }
}
