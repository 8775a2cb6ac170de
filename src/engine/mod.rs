//! The cohort engine: runs a [`Plan`] seed by seed, stage by stage, epoch by epoch, and writes
//! the run folder ([`crate::results`]).
//!
//! Randomness is keyed by (seed, purpose, stage, epoch) ([`crate::data::batch::stream_seed`]):
//! initial weights per node, batch order, jitter and dropout per epoch. A run resumed from its
//! last complete epoch therefore continues exactly as the uninterrupted run would have.

pub mod bench;
pub mod eval;
pub mod exchange;
pub mod optim;
pub mod progress;
pub mod recorded;
pub mod sgd;
pub mod step;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::config::{Concurrency, Plan};
use crate::data::batch::{Stream, epoch_batches, gather, stream_seed};
use crate::data::rng::LegacyRandomState;
use crate::data::{self, Prepared};
use crate::error::Error;
use crate::fsutil::atomic_write_bytes;
use crate::models::{Network, Trainee};
use crate::results::{self, Divergence, MetricRow, RunDir, Summary};

use progress::Progress;

/// How to run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Root of fetched data sets.
    pub data_root: PathBuf,
    /// Continue interrupted runs from their last complete epoch; skip complete ones.
    pub resume: bool,
    /// Delete existing run folders and start over.
    pub overwrite: bool,
    /// Show a progress bar on a terminal (plain lines otherwise).
    pub progress: bool,
    /// The experiment file (recorded in the manifest).
    pub experiment_file: PathBuf,
    /// Its text (hashed into the manifest).
    pub experiment_text: String,
    /// Stop cleanly after this many epochs in total, leaving a resumable run (for testing
    /// interruption and for splitting long runs).
    pub stop_after_epochs: Option<usize>,
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Status {
    /// All stages finished.
    Complete,
    /// A loss became NaN/inf; the run stopped there (see `summary.json`).
    Diverged(Divergence),
    /// Already complete before this call (with `--resume`).
    AlreadyComplete,
    /// Stopped by `stop_after_epochs`; resumable.
    Stopped,
    /// Stopped by [`request_stop`] (SIGINT/SIGTERM) after the step in progress; resumable from
    /// the last complete epoch (the partial epoch is redone, so the result stays reproducible).
    Interrupted,
}

static STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Asks running and later runs of this process to stop after their current step (called from
/// the SIGINT/SIGTERM handler). Completed epochs are already on disk.
pub fn request_stop() {
    STOP.store(true, std::sync::atomic::Ordering::SeqCst);
}

fn stop_requested() -> bool {
    STOP.load(std::sync::atomic::Ordering::SeqCst)
}

/// The result of one seed's run.
#[derive(Clone, Debug)]
pub struct RunOutcome {
    /// Seed.
    pub seed: u64,
    /// Run folder.
    pub dir: PathBuf,
    /// How it ended.
    pub status: Status,
}

/// The default backend of this binary (the first compiled-in of flex, ndarray, tch, cuda) and
/// its name.
pub fn backend_device() -> (Device, String) {
    device_for(crate::config::BackendChoice::Auto, 0).expect("a backend is compiled in")
}

/// The device of `choice` (GPU index `index`) and its name, or an error naming the cargo
/// feature that compiles it in.
#[allow(deprecated, unreachable_code, unused_variables)] // burn marks tch/ndarray deprecated; unused arms depend on features
pub fn device_for(choice: crate::config::BackendChoice, index: usize) -> Result<(Device, String), Error> {
    use crate::config::BackendChoice as B;
    let missing = |name: &str| {
        Error::Unsupported(format!(
            "this binary was built without the `{name}` backend: rebuild with `cargo build --release --features {name}` (README, \"Backends\")"
        ))
    };
    let cpu = |name: &str| -> Result<(), Error> {
        if index == 0 {
            return Ok(());
        }
        Err(Error::Unsupported(format!("device {index}: {name} computes on the CPU, which is device 0; GPU indices need `backend: Cuda`")))
    };
    match choice {
        B::Auto => {
            #[cfg(feature = "flex")]
            return device_for(B::Flex, index);
            #[cfg(feature = "ndarray")]
            return device_for(B::Ndarray, index);
            #[cfg(feature = "tch")]
            return device_for(B::Tch, index);
            #[cfg(feature = "cuda")]
            return device_for(B::Cuda, index);
            Err(missing("flex"))
        }
        B::Flex => {
            #[cfg(feature = "flex")]
            return cpu("flex").map(|_| (Device::flex(), "flex".into()));
            Err(missing("flex"))
        }
        B::Ndarray => {
            #[cfg(feature = "ndarray")]
            return cpu("ndarray").map(|_| (Device::ndarray(), "ndarray".into()));
            Err(missing("ndarray"))
        }
        B::Tch => {
            #[cfg(feature = "tch")]
            return cpu("tch").map(|_| (Device::libtorch(), "tch (LibTorch CPU)".into()));
            Err(missing("tch"))
        }
        B::Cuda => {
            #[cfg(feature = "cuda")]
            return Ok((Device::cuda(index), format!("cuda:{index}")));
            Err(missing("cuda"))
        }
    }
}

/// Where a node computes: its device without autodiff (evaluation, fixed sources) and with it
/// (training).
#[derive(Clone, Debug)]
pub struct Placement {
    /// Eval-mode device.
    pub plain: Device,
    /// The same device with autodiff.
    pub train: Device,
    /// Backend and device, as the manifest records them.
    pub name: String,
}

impl Placement {
    pub(crate) fn of(plain: Device, name: String) -> Self {
        Placement { train: plain.clone().autodiff(), plain, name }
    }
}

/// Every node's placement: its own `backend`/`device`, else the plan's (after `--backend` /
/// `--device`). An error names the node whose backend is not compiled in or whose device does
/// not exist.
pub fn placements(plan: &Plan) -> Result<Vec<Placement>, Error> {
    (0..plan.nodes.len())
        .map(|n| {
            let (backend, device) = plan.placement(n);
            let node = &plan.nodes[n];
            match device_for(backend, device) {
                Ok((plain, name)) => Ok(Placement::of(plain, name)),
                Err(e) if node.backend.is_some() || node.device.is_some() => Err(Error::Unsupported(format!("node `{}`: {e}", node.id))),
                Err(e) => Err(e),
            }
        })
        .collect()
}

/// Contents of `manifest.ron`: everything needed to rerun.
#[derive(Serialize)]
struct Manifest<'a> {
    experiment: &'a str,
    experiment_file: String,
    experiment_sha256: String,
    seed: u64,
    backend: String,
    threads: usize,
    cohort_version: &'static str,
    git_revision: String,
    data_root: String,
    plan: &'a Plan,
}

/// The git revision of the working directory, with `-dirty` when it has uncommitted changes.
fn git_revision() -> String {
    let run = |args: &[&str]| std::process::Command::new("git").args(args).output().ok().filter(|o| o.status.success());
    match run(&["rev-parse", "HEAD"]) {
        Some(o) => {
            let rev = String::from_utf8_lossy(&o.stdout).trim().to_string();
            let dirty = run(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|o| !o.stdout.is_empty());
            if dirty { format!("{rev}-dirty") } else { rev }
        }
        None => "unknown".into(),
    }
}

/// `state/progress.json`: the last complete epoch.
#[derive(Serialize, Deserialize)]
struct Checkpointed {
    stage: usize,
    epochs_done: usize,
}

/// Serialises runs within one process: burn's backends seed one global generator (weight
/// initialisation, dropout), so two runs interleaving their draws would not be reproducible.
static RUN_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs every seed of `plan`, one after the other (none after an interruption).
pub fn run(plan: &Plan, opts: &RunOptions) -> Result<Vec<RunOutcome>, Error> {
    // a backend that is not compiled in, or a device that does not exist, fails before any folder is made
    device_for(plan.backend, plan.device)?;
    placements(plan)?;
    let mut out = Vec::new();
    for &seed in &plan.seeds {
        if stop_requested() {
            break;
        }
        let _guard = RUN_LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        out.push(run_seed(plan, seed, opts)?);
    }
    Ok(out)
}

fn prepare_dir(dir: &RunDir, opts: &RunOptions) -> Result<bool, Error> {
    let exists = dir.root.exists() && std::fs::read_dir(&dir.root).map(|mut d| d.next().is_some()).unwrap_or(false);
    if exists && opts.overwrite {
        std::fs::remove_dir_all(&dir.root).map_err(|e| Error::io(&dir.root, e))?;
    } else if exists && dir.summary().exists() {
        return if opts.resume {
            Ok(true)
        } else {
            Err(Error::Unsupported(format!(
                "{} already holds a complete run; pass --overwrite to replace it, or rename the experiment",
                dir.root.display()
            )))
        };
    } else if exists && !opts.resume {
        return Err(Error::Unsupported(format!(
            "{} holds an interrupted run; pass --resume to continue it from its last complete epoch, or --overwrite to start over",
            dir.root.display()
        )));
    }
    std::fs::create_dir_all(&dir.root).map_err(|e| Error::io(&dir.root, e))?;
    Ok(false)
}

/// Loads a node checkpoint written by a run into a model of `spec` (for inspection and export).
/// Takes the run lock, since building the model draws from the backend's global generator.
pub fn load_checkpoint(spec: &crate::config::ModelSpec, input_shape: &[usize], classes: usize, path: &Path, device: &Device) -> Result<Network, Error> {
    let _guard = RUN_LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    Network::init(spec, input_shape, classes, device)
        .try_load_file(path)
        .map_err(|e| Error::io(path, std::io::Error::other(e.to_string())))
}

/// Every node's network (its checkpoint, or fresh weights from its own seed stream) with the
/// adapters of its hint terms, drawn after the network. Weights are drawn on the run's
/// `device`, then moved to the node's own placement, so that where a node computes does not
/// change its initial weights.
fn init_models(plan: &Plan, seed: u64, device: &Device, places: &[Placement]) -> Result<Vec<Option<Trainee>>, Error> {
    plan.nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            if matches!(n.model, crate::config::ModelSpec::Recorded { .. }) {
                return Ok(None); // outputs from a file, no network
            }
            device.seed(stream_seed(seed, Stream::Init, i) as u64);
            let m = Network::init(&n.model, &plan.input_shape, plan.classes, device);
            let slots: Vec<(Vec<usize>, Vec<usize>)> = step::adapter_slots(plan, i).into_iter().map(|(_, f, t)| (f, t)).collect();
            let adapters = |m: Network| {
                let t = Trainee::new(m, &slots, device);
                // `fork`, not `to_device`: the moved parameters are leaves of their own graph
                Some(if places[i].train == *device { t } else { t.fork(&places[i].train) })
            };
            match &n.checkpoint {
                None => Ok(adapters(m)),
                Some(path) => m.try_load_file(path).map(adapters).map_err(|e| {
                    Error::Unsupported(format!(
                        "node `{}`: cannot load checkpoint {}: {e}. Checkpoints are written by `cohort run` as results/<experiment>/seed-<seed>/checkpoints/<node>.bpk for the same architecture",
                        n.id,
                        path.display()
                    ))
                }),
            }
        })
        .collect()
}

/// One rayon pool per trained node when the stage's nodes step in parallel (see
/// [`Concurrency`]): the available threads are split evenly, at least one each.
pub(crate) fn thread_pools(c: Concurrency, st: &crate::config::PlanStage) -> Option<Vec<rayon::ThreadPool>> {
    let threads = rayon::current_num_threads();
    let k = st.train.len();
    let parallel = st.update == crate::config::UpdateOrder::Simultaneous
        && k > 1
        && match c {
            Concurrency::Auto => threads > 1,
            Concurrency::Threads => true,
            Concurrency::Serial => false,
        };
    parallel.then(|| {
        (0..k)
            .map(|_| rayon::ThreadPoolBuilder::new().num_threads((threads / k).max(1)).build().expect("thread pool"))
            .collect()
    })
}

/// Key of (stage, epoch) for the random streams.
fn epoch_key(stage: usize, epoch: usize) -> usize {
    stage * 1_000_000 + epoch
}

struct Evaluated {
    rows: Vec<MetricRow>,
    line: String,
}

/// Evaluates the stage's trained nodes (and their ensemble) on validation and test.
fn evaluate(plan: &Plan, stage: usize, epoch: usize, nodes: &[usize], models: &[Network], data: &Prepared, places: &[Placement]) -> Evaluated {
    let st = &plan.stages[stage];
    let mut rows = Vec::new();
    let mut line = String::new();
    let row = |node: &str, split: &str, metric: &str, value: f64| MetricRow {
        stage: st.name.clone(),
        epoch,
        node: node.into(),
        split: split.into(),
        metric: metric.into(),
        value,
    };
    for (split, samples) in [("validation", &data.validation), ("test", &data.test)] {
        if samples.is_empty() {
            continue;
        }
        let probs: Vec<Vec<f64>> = nodes.iter().zip(models).map(|(&n, m)| eval::predict(m, samples, 1000, &places[n].plain).probs()).collect();
        for ((&n, p), model) in nodes.iter().zip(&probs).zip(models) {
            let s = eval::scores(p, plan.classes, &samples.labels);
            let id = &plan.nodes[n].id;
            rows.extend([row(id, split, "loss", s.loss), row(id, split, "accuracy", s.accuracy), row(id, split, "ece", s.ece)]);
            if split == "test" {
                line.push_str(&format!(" {id} {:.2}%", 100.0 * s.accuracy));
            }
            // a Hydra: every head as `<id>.head<m>`, and the heads' diversity
            if let crate::config::ModelSpec::Hydra { heads, .. } = &plan.nodes[n].model {
                let head_probs: Vec<Vec<f64>> = eval::predict_heads(model, heads.get(), samples, 1000, &places[n].plain).iter().map(|l| l.probs()).collect();
                for (m, hp) in head_probs.iter().enumerate() {
                    let hs = eval::scores(hp, plan.classes, &samples.labels);
                    let hid = format!("{id}.head{}", m + 1);
                    rows.extend([row(&hid, split, "loss", hs.loss), row(&hid, split, "accuracy", hs.accuracy), row(&hid, split, "ece", hs.ece)]);
                }
                if head_probs.len() >= 2 {
                    rows.push(row(id, split, "head_agreement", eval::agreement(&head_probs, plan.classes)));
                    rows.push(row(id, split, "head_pairwise_kl", eval::pairwise_kl(&head_probs, plan.classes)));
                }
            }
        }
        if probs.len() >= 2 {
            let s = eval::ensemble_scores(&probs, plan.classes, &samples.labels);
            rows.extend([row("ensemble", split, "loss", s.loss), row("ensemble", split, "accuracy", s.accuracy), row("ensemble", split, "ece", s.ece)]);
            rows.push(row("cohort", split, "agreement", eval::agreement(&probs, plan.classes)));
            rows.push(row("cohort", split, "pairwise_kl", eval::pairwise_kl(&probs, plan.classes)));
            if split == "test" {
                line.push_str(&format!(" | ensemble {:.2}%", 100.0 * s.accuracy));
            }
        }
    }
    Evaluated { rows, line }
}

fn save_state(dir: &RunDir, plan: &Plan, stage: usize, epochs_done: usize, models: &[Option<Trainee>], optimizers: &HashMap<usize, ModuleOptimizer>) -> Result<(), Error> {
    let state = dir.state();
    let tmp = dir.root.join("state.tmp");
    let old = dir.root.join("state.old");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    let io = |p: &Path, e: String| Error::io(p, std::io::Error::other(e));
    for (n, node) in plan.nodes.iter().enumerate() {
        if node.frozen {
            continue;
        }
        // the network as a plain checkpoint; the hint adapters (if any) beside it
        let Trainee { net, adapters } = models[n].clone().expect("model present");
        let path = tmp.join(format!("{}.bpk", node.id));
        net.save_file(&path).map_err(|e| io(&path, e.to_string()))?;
        if !adapters.is_empty() {
            let path = tmp.join(format!("{}.adapters.bpk", node.id));
            adapters.save_file(&path).map_err(|e| io(&path, e.to_string()))?;
        }
        if let Some(opt) = optimizers.get(&n) {
            let path = tmp.join(format!("{}.optim.bpk", node.id));
            opt.save(&path).map_err(|e| io(&path, e.to_string()))?;
        }
    }
    let progress = serde_json::to_string(&Checkpointed { stage, epochs_done }).expect("serialises");
    atomic_write_bytes(&tmp.join("progress.json"), progress.as_bytes()).map_err(|e| Error::io(&tmp, e))?;
    // swap in the new state: state -> state.old, state.tmp -> state, drop state.old
    let _ = std::fs::remove_dir_all(&old);
    if state.exists() {
        std::fs::rename(&state, &old).map_err(|e| Error::io(&state, e))?;
    }
    std::fs::rename(&tmp, &state).map_err(|e| Error::io(&state, e))?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

/// Loads the resumable state, if any: (stage, epochs done in it).
fn load_state(dir: &RunDir, plan: &Plan, models: &mut [Option<Trainee>]) -> Result<Option<(usize, usize)>, Error> {
    // a crash between the two renames of `save_state` leaves only state.old
    let old = dir.root.join("state.old");
    if !dir.state().exists() && old.exists() {
        std::fs::rename(&old, dir.state()).map_err(|e| Error::io(&old, e))?;
    }
    let p = dir.state().join("progress.json");
    let Ok(text) = std::fs::read_to_string(&p) else { return Ok(None) };
    let c: Checkpointed = serde_json::from_str(&text).map_err(|e| Error::io(&p, std::io::Error::other(e)))?;
    for (n, node) in plan.nodes.iter().enumerate() {
        if node.frozen {
            continue;
        }
        let load_err = |p: &Path, e: String| Error::io(p, std::io::Error::other(e));
        let Trainee { net, adapters } = models[n].take().expect("model present");
        let path = dir.state().join(format!("{}.bpk", node.id));
        let net = net.try_load_file(&path).map_err(|e| load_err(&path, e.to_string()))?;
        let adapters = if adapters.is_empty() {
            adapters
        } else {
            let path = dir.state().join(format!("{}.adapters.bpk", node.id));
            adapters.try_load_file(&path).map_err(|e| load_err(&path, e.to_string()))?
        };
        models[n] = Some(Trainee { net, adapters });
    }
    Ok(Some((c.stage, c.epochs_done)))
}

fn run_seed(plan: &Plan, seed: u64, opts: &RunOptions) -> Result<RunOutcome, Error> {
    let dir = RunDir::new(&plan.output, &plan.name, seed);
    let outcome = |status| RunOutcome { seed, dir: dir.root.clone(), status };
    if prepare_dir(&dir, opts)? {
        println!("seed {seed}: already complete in {}", dir.root.display());
        return Ok(outcome(Status::AlreadyComplete));
    }
    let (plain, mut backend) = device_for(plan.backend, plan.device)?;
    let device = plain.clone().autodiff();
    let places = placements(plan)?;
    for (node, place) in plan.nodes.iter().zip(&places) {
        if place.train != device {
            backend.push_str(&format!(", node `{}`: {}", node.id, place.name));
        }
    }
    let manifest = Manifest {
        experiment: &plan.name,
        experiment_file: opts.experiment_file.display().to_string(),
        experiment_sha256: data::idx::sha256_hex(opts.experiment_text.as_bytes()),
        seed,
        backend,
        threads: rayon::current_num_threads(),
        cohort_version: env!("CARGO_PKG_VERSION"),
        git_revision: git_revision(),
        data_root: opts.data_root.display().to_string(),
        plan,
    };
    let manifest_text = ron::ser::to_string_pretty(&manifest, ron::ser::PrettyConfig::default().extensions(crate::config::ron_extensions())).expect("manifest serialises");
    if dir.manifest().exists() {
        // resuming: the experiment must be the one that started the run
        let old = std::fs::read_to_string(dir.manifest()).unwrap_or_default();
        let hash_line = |t: &str| t.lines().find(|l| l.contains("experiment_sha256")).map(str::to_owned);
        if hash_line(&old) != hash_line(&manifest_text) {
            return Err(Error::Unsupported(format!(
                "{} was started from a different version of the experiment file; pass --overwrite to start over",
                dir.root.display()
            )));
        }
    } else {
        atomic_write_bytes(&dir.manifest(), manifest_text.as_bytes()).map_err(|e| Error::io(dir.manifest(), e))?;
    }

    let data = data::prepare(&plan.data, &opts.data_root, seed)?;
    let mut models = init_models(plan, seed, &device, &places)?;
    let resumed = if opts.resume { load_state(&dir, plan, &mut models)? } else { None };
    let (mut rows, start) = match resumed {
        Some((stage, done)) => {
            let rows: Vec<MetricRow> = results::read_metrics(&dir.metrics())?
                .into_iter()
                .filter(|r| {
                    let s = plan.stages.iter().position(|s| s.name == r.stage).unwrap_or(usize::MAX);
                    s < stage || (s == stage && r.epoch <= done)
                })
                .collect();
            dir.log_line(&format!("resumed at stage {stage}, {done} epochs done"));
            println!("seed {seed}: resuming stage `{}` after epoch {done}", plan.stages[stage].name);
            (rows, (stage, done))
        }
        None => (Vec::new(), (0, 0)),
    };
    let stage_names: Vec<String> = plan.stages.iter().map(|s| s.name.clone()).collect();
    let mut epochs_run = 0;
    let mut progress = Progress::new(opts.progress);

    for (s, st) in plan.stages.iter().enumerate().skip(start.0) {
        let first_epoch = if s == start.0 { start.1 } else { 0 };
        let mut optimizers: HashMap<usize, ModuleOptimizer> = HashMap::new();
        for &n in &st.train {
            let mut opt = optim::build(&plan.nodes[n].optimizer);
            let saved = dir.state().join(format!("{}.optim.bpk", plan.nodes[n].id));
            if first_epoch > 0 && saved.exists() {
                opt = opt.load(&saved).map_err(|e| Error::io(&saved, std::io::Error::other(e.to_string())))?;
            }
            optimizers.insert(n, opt);
        }
        // sources that do not train in this stage run in eval mode, on the plain device
        let mut fixed: HashMap<usize, step::Fixed> = HashMap::new();
        for t in &st.terms {
            for &f in &t.from {
                if st.train.contains(&f) || fixed.contains_key(&f) {
                    continue;
                }
                let source = match &plan.nodes[f].model {
                    crate::config::ModelSpec::Recorded { file } => {
                        step::Fixed::Recorded(std::sync::Arc::new(recorded::Recorded::load(file, &plan.nodes[f].id, &data.train)?))
                    }
                    _ => step::Fixed::Net(models[f].as_ref().expect("model present").net.valid()),
                };
                fixed.insert(f, source);
            }
        }
        // networks among the fixed sources are evaluated once before the stage trains
        let fixed_nets: Vec<(usize, Network)> = {
            let mut v: Vec<(usize, Network)> = fixed.iter().filter_map(|(&i, f)| if let step::Fixed::Net(m) = f { Some((i, m.clone())) } else { None }).collect();
            v.sort_by_key(|(i, _)| *i);
            v
        };
        if first_epoch == 0 && !fixed_nets.is_empty() {
            let ids: Vec<usize> = fixed_nets.iter().map(|(i, _)| *i).collect();
            let ms: Vec<Network> = fixed_nets.into_iter().map(|(_, m)| m).collect();
            let ev = evaluate(plan, s, 0, &ids, &ms, &data, &places);
            rows.extend(ev.rows);
            progress.line(&format!("[{}] fixed sources before training:{}", st.name, ev.line));
        }
        let pools = thread_pools(plan.concurrency, st);
        if let Some(p) = &pools {
            progress.line(&format!("[{}] {} nodes step in parallel, {} thread(s) each", st.name, st.train.len(), p[0].current_num_threads()));
        }
        let needs = step::stage_needs(plan, s);
        let steps = data.train.len().div_ceil(plan.batch_size);
        progress.start_stage(&st.name, (st.epochs - first_epoch) * steps);
        for epoch in first_epoch..st.epochs {
            let started = Instant::now();
            let key = epoch_key(s, epoch);
            let mut jitter_rng = LegacyRandomState::new(stream_seed(seed, Stream::Jitter, key));
            let lr: HashMap<usize, f64> = st
                .train
                .iter()
                .map(|&n| (n, optim::lr_at(optim::base_lr(&plan.nodes[n].optimizer), &plan.nodes[n].schedule, epoch, st.epochs)))
                .collect();
            let noise_seed = stream_seed(seed, Stream::Dropout, key) as u64;
            // (sum, count) of each node's loss over the steps it trained in
            let mut sums = vec![(0.0, 0usize); st.train.len()];
            let batches = epoch_batches(data.train.len(), plan.batch_size, seed, key, false);
            for (k, idx) in batches.iter().enumerate() {
                let batch = gather(&data.train, idx, plan.data.jitter, Some(&mut jitter_rng));
                let ctx = step::StepContext { stage: st, epoch, step: k, noise_seed, places: &places, fixed: &fixed, needs: &needs, lr: &lr, pools: pools.as_deref() };
                match step::train_step(&ctx, batch, &mut models, &mut optimizers) {
                    Ok(losses) => {
                        for (a, l) in sums.iter_mut().zip(&losses) {
                            if let Some(l) = l {
                                a.0 += l;
                                a.1 += 1;
                            }
                        }
                        if stop_requested() {
                            progress.finish();
                            let msg = format!(
                                "seed {seed}: interrupted in stage `{}`, epoch {}, step {}; the last complete epoch is saved: continue with --resume",
                                st.name,
                                epoch + 1,
                                k + 1
                            );
                            println!("{msg}");
                            dir.log_line(&msg);
                            return Ok(outcome(Status::Interrupted));
                        }
                        progress.step(|| {
                            let losses: Vec<String> =
                                st.train.iter().zip(&losses).filter_map(|(&n, l)| l.map(|l| format!("{} {l:.3}", plan.nodes[n].id))).collect();
                            format!("epoch {}/{} loss {}", epoch + 1, st.epochs, losses.join(" "))
                        });
                    }
                    Err(bad) => {
                        let d = Divergence { stage: st.name.clone(), epoch: epoch + 1, step: k + 1, node: plan.nodes[bad.node].id.clone(), loss: bad.value.to_string() };
                        progress.finish();
                        let msg = format!("seed {seed}: node `{}` diverged (loss {}) in stage `{}`, epoch {}, step {}; metrics so far are kept", d.node, d.loss, d.stage, d.epoch, d.step);
                        eprintln!("{msg}");
                        dir.log_line(&msg);
                        results::write_metrics(&dir.metrics(), &rows)?;
                        let summary = Summary { experiment: plan.name.clone(), seed, status: "diverged".into(), diverged: Some(d.clone()), stages: results::summarize(&rows, &stage_names) };
                        results::write_summary(&dir.summary(), &summary)?;
                        return Ok(outcome(Status::Diverged(d)));
                    }
                }
            }
            for (i, &n) in st.train.iter().enumerate() {
                let id = &plan.nodes[n].id;
                let mk = |metric: &str, value: f64| MetricRow { stage: st.name.clone(), epoch: epoch + 1, node: id.clone(), split: "train".into(), metric: metric.into(), value };
                // a node whose subset had no sample this epoch has no training loss to report
                let (sum, count) = sums[i];
                if count > 0 {
                    rows.push(mk("loss", sum / count as f64));
                }
                rows.push(mk("lr", lr[&n]));
            }
            let eval_models: Vec<Network> = st.train.iter().map(|&n| models[n].as_ref().expect("model present").net.valid()).collect();
            let ev = evaluate(plan, s, epoch + 1, &st.train, &eval_models, &data, &places);
            rows.extend(ev.rows);
            results::write_metrics(&dir.metrics(), &rows)?;
            save_state(&dir, plan, s, epoch + 1, &models, &optimizers)?;
            let secs = started.elapsed().as_secs_f64();
            let line = format!("[{}] epoch {}/{}: test{} ({:.1} s, {:.1} steps/s)", st.name, epoch + 1, st.epochs, ev.line, secs, batches.len() as f64 / secs);
            progress.line(&line);
            dir.log_line(&format!("seed {seed} {line}"));
            epochs_run += 1;
            if opts.stop_after_epochs.is_some_and(|n| epochs_run >= n) {
                progress.finish();
                println!("seed {seed}: stopped after {epochs_run} epoch(s) as asked; continue with --resume");
                return Ok(outcome(Status::Stopped));
            }
        }
        progress.finish();
        for &n in &st.train {
            let path = dir.checkpoint(&plan.nodes[n].id);
            std::fs::create_dir_all(path.parent().expect("has parent")).map_err(|e| Error::io(&path, e))?;
            let tmp = path.with_extension("bpk.tmp");
            models[n].clone().expect("model present").net.save_file(&tmp).map_err(|e| Error::io(&tmp, std::io::Error::other(e.to_string())))?;
            std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
        }
    }
    let summary = Summary { experiment: plan.name.clone(), seed, status: "complete".into(), diverged: None, stages: results::summarize(&rows, &stage_names) };
    results::write_summary(&dir.summary(), &summary)?;
    let _ = std::fs::remove_dir_all(dir.state());
    println!("seed {seed}: complete, results in {}", dir.root.display());
    Ok(outcome(Status::Complete))
}
