//! One seed's run: prepare the folder and the data, then the stages, their epochs and steps,
//! and one [`Run::finish`] that writes what the run's ending needs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use burn::module::Module;
use burn::optim::ModuleOptimizer;

use super::eval::{self, Evaluated};
use super::progress::Progress;
use super::state::{self, Resume};
use super::step::{self, Fixed, NodeNeeds};
use super::{EngineError, Placement, RunOptions, RunOutcome, Status, device, recorded, stop_requested, thread_pools};
use crate::config::Plan;
use crate::data::batch::{Stream, epoch_batches, epoch_key, gather, node_stream_seed, stream_seed};
use crate::data::rng::LegacyRandomState;
use crate::data::spec::Views;
use crate::data::{self, Prepared};
use crate::error::Error;
use crate::models::{Network, Trainee};
use crate::results::tensorboard::Board;
use crate::results::{Divergence, Manifest, MetricRow, RunDir, RunStatus, Summary, manifest, summarize, write_metrics, write_summary};

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
pub(super) fn run_seed(plan: &Plan, seed: u64, opts: &RunOptions) -> Result<RunOutcome, Error> {
    let dir = RunDir::new(&plan.output, &plan.name, seed);
    let existing = existing(&dir, opts)?;
    if let Existing::Complete = existing {
        println!("seed {seed}: already complete in {}", dir.root.display());
        return Ok(RunOutcome { seed, dir: dir.root, status: Status::AlreadyComplete });
    }
    // the data is loaded and checked before any folder is made: a missing or damaged data set
    // leaves nothing behind that a corrected rerun would have to --resume or --overwrite
    let data = data::prepare(&plan.data, &opts.data_root, seed)?;
    if opts.overwrite && dir.root.exists() {
        std::fs::remove_dir_all(&dir.root).map_err(|e| Error::io(&dir.root, e))?;
    }
    std::fs::create_dir_all(&dir.root).map_err(|e| Error::io(&dir.root, e))?;
    let mut run = Run::start(plan, seed, opts, dir, data, matches!(existing, Existing::Interrupted))?;
    let ending = run.train()?;
    run.finish(ending)
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
    /// TensorBoard's event files (unless `--no-tensorboard`) and how many of `rows` they hold.
    board: Option<(Board, usize)>,
    /// Where training (re)starts.
    start: Resume,
    /// Epochs run by this process (for `--stop-after-epochs`).
    epochs_run: usize,
    progress: Progress,
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
    fn start(plan: &'a Plan, seed: u64, opts: &'a RunOptions, dir: RunDir, data: Prepared, resuming: bool) -> Result<Self, Error> {
        let (plain, name) = device::device_for(plan.backend, plan.device)?;
        let run_place = Placement::of(plain, name);
        let places = device::placements(plan)?;
        let manifest = Manifest {
            experiment: plan.name.clone(),
            experiment_file: opts.experiment_file.display().to_string(),
            experiment_sha256: data::idx::sha256_hex(opts.experiment_text.as_bytes()),
            seed,
            backend: device::describe(plan, &run_place, &places),
            threads: rayon::current_num_threads(),
            cpu: manifest::cpu_description(),
            cohort_version: env!("CARGO_PKG_VERSION").into(),
            git_revision: manifest::git_revision(),
            data_root: opts.data_root.display().to_string(),
            plan: plan.clone(),
        };
        if manifest.backend != "flex" {
            // a choice the user made (or a node's placement): say where it landed, e.g. a
            // `backend: Tch` run on a machine without a GPU
            println!("seed {seed}: backend {}", manifest.backend);
        }
        if resuming && dir.manifest().exists() {
            // the experiment must be the one that started the run
            if Manifest::read(&dir.manifest())?.experiment_sha256 != manifest.experiment_sha256 {
                return Err(EngineError::ExperimentChanged { dir: dir.root.clone() }.into());
            }
        } else {
            manifest.write(&dir.manifest())?;
        }
        let mut models = state::init_models(plan, seed, &run_place.train, &places)?;
        let resumed = if resuming { state::load(&dir, plan, &mut models)? } else { None };
        let mut rows = Vec::new();
        if let Some(at) = resumed {
            rows = crate::results::read_metrics(&dir.metrics())?;
            rows.retain(|r| {
                let s = plan.stages.iter().position(|s| s.name == r.stage).unwrap_or(usize::MAX);
                s < at.stage || (s == at.stage && r.epoch <= at.epochs_done)
            });
            dir.log_line(&format!("resumed at stage {}, {} epochs done", at.stage, at.epochs_done));
            println!("seed {seed}: resuming stage `{}` after epoch {}", plan.stages[at.stage].name, at.epochs_done);
        }
        let progress = Progress::new(opts.progress);
        let board = opts.tensorboard.then(|| (Board::new(&dir.root, plan.stages.len() > 1, resumed.map(|_| &rows[..])), rows.len()));
        Ok(Run { plan, seed, opts, dir, data, places, models, rows, board, start: resumed.unwrap_or_default(), epochs_run: 0, progress })
    }

    /// Trains the stages from the start point on.
    fn train(&mut self) -> Result<Ending, Error> {
        for s in self.start.stage..self.plan.stages.len() {
            let first_epoch = if s == self.start.stage { self.start.epochs_done } else { 0 };
            if let Some(stop) = self.stage(s, first_epoch)? {
                return Ok(stop);
            }
        }
        Ok(Ending::Complete)
    }

    /// Trains stage `s` from `first_epoch` on; `Some` when the run stops before its end.
    fn stage(&mut self, s: usize, first_epoch: usize) -> Result<Option<Ending>, Error> {
        let st = &self.plan.stages[s];
        let mut optimizers = state::optimizers(self.plan, s, &self.dir.state(), first_epoch > 0)?;
        let mut fixed = self.fixed_sources(s)?;
        if first_epoch == 0 {
            self.evaluate_fixed(s, &fixed);
        }
        let pools = thread_pools(self.plan.concurrency, st);
        if let Some(p) = &pools {
            self.progress.line(&format!("[{}] {} nodes step in parallel, {} thread(s) each", st.name, st.train.len(), p[0].current_num_threads()));
        }
        let needs = step::stage_needs(self.plan, s);
        let steps = self.data.train.len().div_ceil(self.plan.batch_size);
        self.progress.start_stage(&st.name, (st.epochs - first_epoch) * steps);
        let switch = st.train.iter().filter_map(|&n| self.plan.nodes[n].switch_with.filter(|s| st.train.contains(s)).map(|s| (n, s))).collect();
        let stage = StageRun { s, switch, needs: &needs, pools: pools.as_deref() };
        for epoch in first_epoch..st.epochs {
            if let Some(stop) = self.epoch(&stage, &mut fixed, epoch, &mut optimizers)? {
                return Ok(Some(stop));
            }
        }
        self.progress.finish();
        state::save_checkpoints(&self.dir, self.plan, s, &self.models)?;
        Ok(None)
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
                _ => Fixed::Net(self.models[f].as_ref().expect("sources other than recorded ones have a model").net.valid()),
            };
            fixed.insert(f, source);
        }
        Ok(fixed)
    }

    /// Evaluates the networks among the fixed sources once, before the stage trains (epoch 0).
    fn evaluate_fixed(&mut self, s: usize, fixed: &HashMap<usize, Fixed>) {
        let mut nets: Vec<(usize, Network)> = fixed.iter().filter_map(|(&i, f)| if let Fixed::Net(m) = f { Some((i, m.clone())) } else { None }).collect();
        if nets.is_empty() {
            return;
        }
        nets.sort_by_key(|(i, _)| *i);
        let (ids, nets): (Vec<usize>, Vec<Network>) = nets.into_iter().unzip();
        let ev = eval::evaluate(self.plan, s, 0, &ids, &nets, &self.data, &self.places);
        self.rows.extend(ev.rows);
        self.progress.line(&format!("[{}] fixed sources before training:{}", self.plan.stages[s].name, ev.line));
    }

    /// One epoch of a stage: its steps, then the training rows, the evaluation, the metrics and
    /// the resumable state. `Some` when the run stops here.
    fn epoch(
        &mut self,
        stage: &StageRun,
        fixed: &mut HashMap<usize, Fixed>,
        epoch: usize,
        optimizers: &mut HashMap<usize, ModuleOptimizer>,
    ) -> Result<Option<Ending>, Error> {
        let (plan, seed) = (self.plan, self.seed);
        let st = &plan.stages[stage.s];
        let started = Instant::now();
        let key = epoch_key(stage.s, epoch);
        let mut augment_rng = LegacyRandomState::new(stream_seed(seed, Stream::Jitter, key));
        let lr: HashMap<usize, f64> = st
            .train
            .iter()
            .map(|&n| (n, super::optim::lr_at(super::optim::base_lr(&plan.nodes[n].optimizer), &plan.nodes[n].schedule, epoch, st.epochs)))
            .collect();
        let noise_seed = stream_seed(seed, Stream::Dropout, key) as u64;
        // (sum, count) of each node's loss over the steps it trained in
        let mut sums = vec![(0.0, 0usize); st.train.len()];
        // SwitOKD: expert-mode steps per teacher
        let mut paused: HashMap<usize, usize> = HashMap::new();
        let batches = epoch_batches(self.data.train.len(), plan.batch_size, seed, key);
        let augment = plan.data.augmentations();
        // with `views: PerNode`, every trained node draws its own view from its own stream
        let mut node_rngs: Vec<(usize, LegacyRandomState)> = if plan.data.views == Views::PerNode && !augment.is_empty() {
            st.train.iter().map(|&n| (n, LegacyRandomState::new(node_stream_seed(seed, Stream::Jitter, key, n)))).collect()
        } else {
            Vec::new()
        };
        for (k, idx) in batches.iter().enumerate() {
            let mut batch = gather(&self.data.train, idx, &augment, Some(&mut augment_rng));
            for (n, rng) in &mut node_rngs {
                batch.views.insert(*n, gather(&self.data.train, idx, &augment, Some(rng)).inputs);
            }
            let ctx = step::StepContext {
                stage: st,
                epoch,
                step: k,
                noise_seed,
                places: &self.places,
                fixed,
                needs: stage.needs,
                lr: &lr,
                pools: stage.pools,
                switch: &stage.switch,
            };
            let losses = match step::train_step(&ctx, batch, &mut self.models, optimizers) {
                Ok(report) => {
                    for n in report.paused {
                        *paused.entry(n).or_insert(0) += 1;
                    }
                    report.losses
                }
                Err(bad) => {
                    let node = plan.nodes[bad.node].id.clone();
                    return Ok(Some(Ending::Diverged(Divergence { stage: st.name.clone(), epoch: epoch + 1, step: k + 1, node, loss: bad.value.to_string() })));
                }
            };
            self.step_averages(&st.train, fixed);
            for (a, l) in sums.iter_mut().zip(&losses) {
                if let Some(l) = l {
                    a.0 += l;
                    a.1 += 1;
                }
            }
            if stop_requested() {
                return Ok(Some(Ending::Interrupted(st.name.clone(), epoch + 1, k + 1)));
            }
            self.progress.step(|| {
                let losses: Vec<String> = st.train.iter().zip(&losses).filter_map(|(&n, l)| l.map(|l| format!("{} {l:.3}", plan.nodes[n].id))).collect();
                format!("epoch {}/{} loss {}", epoch + 1, st.epochs, losses.join(" "))
            });
        }
        for (&n, &(sum, count)) in st.train.iter().zip(&sums) {
            let row = |metric: &str, value: f64| MetricRow {
                stage: st.name.clone(),
                epoch: epoch + 1,
                node: plan.nodes[n].id.clone(),
                split: "train".into(),
                metric: metric.into(),
                value,
            };
            // a node whose subset had no sample this epoch has no training loss to report
            if count > 0 {
                self.rows.push(row("loss", sum / count as f64));
            }
            self.rows.push(row("lr", lr[&n]));
            if stage.switch.contains_key(&n) {
                // the fraction of this epoch's steps in which the teacher paused
                self.rows.push(row("expert_mode", paused.get(&n).copied().unwrap_or(0) as f64 / batches.len() as f64));
            }
        }
        // the trained nodes and the averages of their weights
        let evaluated: Vec<usize> = st.train.iter().copied().chain(plan.emas_of(&st.train).map(|(e, ..)| e)).collect();
        let nets: Vec<Network> = evaluated.iter().map(|&n| self.models[n].as_ref().expect("trained nodes have a model").net.valid()).collect();
        let Evaluated { rows, line } = eval::evaluate(plan, stage.s, epoch + 1, &evaluated, &nets, &self.data, &self.places);
        self.rows.extend(rows);
        self.write_metrics()?;
        state::save(&self.dir, plan, Resume { stage: stage.s, epochs_done: epoch + 1 }, &self.models, optimizers)?;
        let secs = started.elapsed().as_secs_f64();
        let line = format!("[{}] epoch {}/{}: test{line} ({secs:.1} s, {:.1} steps/s)", st.name, epoch + 1, st.epochs, batches.len() as f64 / secs);
        self.progress.line(&line);
        self.dir.log_line(&format!("seed {seed} {line}"));
        self.epochs_run += 1;
        Ok(self.opts.stop_after_epochs.is_some_and(|n| self.epochs_run >= n).then_some(Ending::Stopped))
    }

    /// Rewrites `metrics.csv` with every row so far and appends the new ones to the TensorBoard
    /// event files.
    fn write_metrics(&mut self) -> Result<(), Error> {
        write_metrics(&self.dir.metrics(), &self.rows)?;
        if let Some((board, written)) = &mut self.board {
            let root = self.dir.root.join(crate::results::tensorboard::DIR);
            board.write(&self.rows[*written..]).map_err(|e| Error::io(root, e))?;
            *written = self.rows.len();
        }
        Ok(())
    }

    /// Moves every `Ema` node tracking one of `train` toward its node's weights after a step,
    /// and refreshes it where it serves as a fixed source.
    fn step_averages(&mut self, train: &[usize], fixed: &mut HashMap<usize, Fixed>) {
        for (e, of, decay) in self.plan.emas_of(train) {
            let average = self.models[e].take().expect("an Ema node has a model");
            let tracked = &self.models[of].as_ref().expect("trained nodes have a model").net;
            let net = crate::models::ema_step(average.net, tracked, decay);
            if let Some(f) = fixed.get_mut(&e) {
                *f = Fixed::Net(net.valid());
            }
            self.models[e] = Some(Trainee { net, adapters: Vec::new() });
        }
    }

    /// Ends the run: the summary of a complete or diverged run, the messages, the log.
    fn finish(mut self, ending: Ending) -> Result<RunOutcome, Error> {
        self.progress.finish();
        let seed = self.seed;
        let status = match ending {
            Ending::Complete => {
                self.write_summary(RunStatus::Complete, None)?;
                let _ = std::fs::remove_dir_all(&self.dir.state().root);
                println!("seed {seed}: complete, results in {}", self.dir.root.display());
                Status::Complete
            }
            Ending::Diverged(d) => {
                let msg = format!(
                    "seed {seed}: node `{}` diverged (loss {}) in stage `{}`, epoch {}, step {}; metrics so far are kept",
                    d.node, d.loss, d.stage, d.epoch, d.step
                );
                eprintln!("{msg}");
                self.dir.log_line(&msg);
                self.write_metrics()?;
                self.write_summary(RunStatus::Diverged, Some(d.clone()))?;
                Status::Diverged(d)
            }
            Ending::Interrupted(stage, epoch, step) => {
                let msg = format!(
                    "seed {seed}: interrupted in stage `{stage}`, epoch {epoch}, step {step}; the last complete epoch is saved: continue with --resume"
                );
                println!("{msg}");
                self.dir.log_line(&msg);
                Status::Interrupted
            }
            Ending::Stopped => {
                println!("seed {seed}: stopped after {} epoch(s) as asked; continue with --resume", self.epochs_run);
                Status::Stopped
            }
        };
        Ok(RunOutcome { seed, dir: self.dir.root, status })
    }

    fn write_summary(&self, status: RunStatus, diverged: Option<Divergence>) -> Result<(), Error> {
        let names: Vec<String> = self.plan.stages.iter().map(|s| s.name.clone()).collect();
        let summary = Summary { experiment: self.plan.name.clone(), seed: self.seed, status, diverged, stages: summarize(&self.rows, &names) };
        Ok(write_summary(&self.dir.summary(), &summary)?)
    }
}
