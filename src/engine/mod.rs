//! The cohort engine: runs a [`Plan`] seed by seed, stage by stage, epoch by epoch, and writes
//! the run folder through [`crate::results`].
//!
//! Randomness is keyed by (seed, purpose, stage, epoch) ([`crate::random::stream_seed`]):
//! initial weights per node, batch order, jitter and dropout per epoch. A run resumed from its
//! last complete epoch therefore continues exactly as the uninterrupted run would have.
//!
//! | file | what |
//! |---|---|
//! | `run.rs` | one seed's run: its stages, their epochs, the steps, one `finish` |
//! | `step.rs`, `exchange.rs` | one training step: forward all, exchange detached outputs, each node's loss and update |
//! | `eval.rs` | evaluation and the metric rows it produces |
//! | `state.rs` | initial weights, resumable state, final checkpoints |
//! | `device.rs` | backends and node placement |
//! | `optim.rs`, `sgd.rs` | optimisers and learning-rate schedules |
//! | `recorded.rs` | a teacher's exported outputs as a fixed source |

pub mod bench;
pub mod device;
pub mod error;
pub mod eval;
pub mod exchange;
pub mod optim;
pub mod progress;
pub mod recorded;
pub mod report;
mod run;
pub mod sgd;
pub mod state;
pub mod step;
mod switokd;
mod tally;
pub mod trainee;
#[cfg(feature = "wgpu")]
pub mod wgpu;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub use device::{Placement, backend_device, device_for, placements};
pub use error::EngineError;
pub use state::{load_checkpoint, load_initial};
pub use trainee::Trainee;

use crate::config::{Concurrency, Plan, PlanStage, UpdateOrder};
use crate::results::Divergence;

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
    /// Also write TensorBoard event files (`<run>/tensorboard/<node>/`), after every epoch.
    pub tensorboard: bool,
    /// Asked to stop (SIGINT/SIGTERM): runs stop after their current step, resumably.
    pub interrupt: Interrupt,
}

/// A request to stop, shared between whoever asks (a signal handler) and the runs, which stop
/// after their current step (completed epochs are already on disk).
#[derive(Clone, Debug, Default)]
pub struct Interrupt(Arc<AtomicBool>);

impl Interrupt {
    /// Asks the runs holding this handle to stop after their current step.
    pub fn request(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether a stop was asked for.
    pub fn requested(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
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
    /// Stopped by [`Interrupt::request`] (SIGINT/SIGTERM) after the step in progress; resumable from
    /// the last complete epoch (the partial epoch is redone, so the result stays reproducible).
    Interrupted,
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

/// Serialises runs within one process: burn's backends seed one global generator (weight
/// initialisation, dropout), so two runs interleaving their draws would not be reproducible.
static RUN_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Holds the process's random generator until dropped: burn's backends draw weights and noise
/// from one global generator, so code that draws on another thread while a run is under way
/// (tests drawing random tensors beside an engine run, a library user initialising a network)
/// would shift the run's draws. Runs and [`initial_models`] hold it themselves; do not call them
/// while holding it.
pub fn generator_guard() -> std::sync::MutexGuard<'static, ()> {
    RUN_LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs every seed of `plan`, one after the other (none after an interruption).
pub fn run(plan: &Plan, opts: &RunOptions) -> Result<Vec<RunOutcome>, EngineError> {
    // a backend that is not compiled in, or a device that does not exist, fails before any folder is made
    device_for(plan.backend, plan.device)?;
    placements(plan)?;
    let mut out = Vec::new();
    for &seed in &plan.seeds {
        if opts.interrupt.requested() {
            break;
        }
        let _guard = RUN_LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        out.push(run::run_seed(plan, seed, opts)?);
    }
    Ok(out)
}

/// The networks (with their hint adapters) a run of `plan` with `seed` starts from, each on its
/// node's training device; `None` for recorded sources. The same draws as the run's own (for
/// inspection and for tests that recompute a step independently), for a training split of
/// `samples` (the rows of CRD's memory bank).
pub fn initial_models(plan: &Plan, seed: u64, samples: usize) -> Result<Vec<Option<Trainee>>, EngineError> {
    let _guard = RUN_LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let (plain, _) = device_for(plan.backend, plan.device)?;
    state::init_models(plan, seed, samples, &device::init_device(plan.backend, &plain.autodiff()), &placements(plan)?)
}

/// One rayon pool per trained node when the stage's nodes step in parallel (see
/// [`Concurrency`]): the available threads are split evenly, at least one each.
pub(crate) fn thread_pools(c: Concurrency, st: &PlanStage) -> Option<Vec<rayon::ThreadPool>> {
    let threads = rayon::current_num_threads();
    let k = st.train.len();
    let parallel = st.update == UpdateOrder::Simultaneous
        && k > 1
        && match c {
            Concurrency::Auto => threads > 1,
            Concurrency::Threads => true,
            Concurrency::Serial => false,
        };
    parallel.then(|| (0..k).map(|_| rayon::ThreadPoolBuilder::new().num_threads((threads / k).max(1)).build().expect("thread pool")).collect())
}
