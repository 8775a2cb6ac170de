//! Where result files live: an experiment folder holds one run folder per seed.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::ResultsError;

/// Prefix of run folder names: `seed-<seed>`.
const SEED_PREFIX: &str = "seed-";

/// The folder of one run: `<output>/<experiment>/seed-<seed>/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunDir {
    /// The folder.
    pub root: PathBuf,
}

impl RunDir {
    /// The run folder of `experiment` with `seed` under `output`.
    pub fn new(output: &Path, experiment: &str, seed: u64) -> Self {
        Self { root: output.join(experiment).join(format!("{SEED_PREFIX}{seed}")) }
    }
    /// An existing folder, as given by a user (`cohort eval RUN`).
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }
    /// Whether the folder looks like a run folder (has a manifest or metrics).
    pub fn is_run(&self) -> bool {
        self.metrics().exists() || self.manifest().exists()
    }
    /// The seed in the folder's name, if it has the `seed-<n>` form.
    pub fn seed(&self) -> Option<u64> {
        self.name().strip_prefix(SEED_PREFIX)?.parse().ok()
    }
    /// The folder's name, e.g. `seed-0`.
    pub fn name(&self) -> String {
        self.root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    }
    /// The experiment folder holding it.
    pub fn experiment(&self) -> ExperimentDir {
        ExperimentDir::at(self.root.parent().map(Path::to_path_buf).unwrap_or_default())
    }
    /// `metrics.csv`.
    pub fn metrics(&self) -> PathBuf {
        self.root.join("metrics.csv")
    }
    /// `summary.json` (written when the run ends, complete or diverged).
    pub fn summary(&self) -> PathBuf {
        self.root.join("summary.json")
    }
    /// `manifest.ron`.
    pub fn manifest(&self) -> PathBuf {
        self.root.join("manifest.ron")
    }
    /// Final checkpoint of a node after the last stage that trained it.
    pub fn checkpoint(&self, node: &str) -> PathBuf {
        self.root.join("checkpoints").join(format!("{node}.bpk"))
    }
    /// `charts/`.
    pub fn charts(&self) -> PathBuf {
        self.root.join("charts")
    }
    /// The resumable state of the last complete epoch.
    pub fn state(&self) -> StateDir {
        StateDir { root: self.root.join("state") }
    }
    /// Where the next state is written before it replaces [`RunDir::state`].
    pub fn state_next(&self) -> StateDir {
        StateDir { root: self.root.join("state.tmp") }
    }
    /// Where the previous state waits while the next one is swapped in.
    pub fn state_previous(&self) -> StateDir {
        StateDir { root: self.root.join("state.old") }
    }
    /// `log.txt`.
    pub fn log(&self) -> PathBuf {
        self.root.join("log.txt")
    }
    /// Appends a line to the log (best effort: the log is informative, not a result).
    pub fn log_line(&self, line: &str) {
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(self.log()) {
            let _ = writeln!(f, "{line}");
        }
    }
    /// A title for charts, `<experiment> (seed-<n>)`.
    pub fn title(&self) -> String {
        format!("{} ({})", self.experiment().name(), self.name())
    }
}

/// A run's resumable state: per trained node its network, its hint adapters and its optimiser,
/// and `progress.json` (the last complete epoch).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateDir {
    /// The folder.
    pub root: PathBuf,
}

impl StateDir {
    /// The node's network.
    pub fn network(&self, node: &str) -> PathBuf {
        self.root.join(format!("{node}.bpk"))
    }
    /// The node's hint adapters.
    pub fn adapters(&self, node: &str) -> PathBuf {
        self.root.join(format!("{node}.adapters.bpk"))
    }
    /// The node's optimiser state.
    pub fn optimizer(&self, node: &str) -> PathBuf {
        self.root.join(format!("{node}.optim.bpk"))
    }
    /// `progress.json`.
    pub fn progress(&self) -> PathBuf {
        self.root.join("progress.json")
    }
    /// Whether the folder exists.
    pub fn exists(&self) -> bool {
        self.root.exists()
    }
}

/// An experiment folder `<output>/<experiment>/`, holding one run folder per seed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExperimentDir {
    /// The folder.
    pub root: PathBuf,
}

impl ExperimentDir {
    /// The folder of `experiment` under `output`.
    pub fn new(output: &Path, experiment: &str) -> Self {
        Self { root: output.join(experiment) }
    }
    /// An existing folder, as given by a user (`cohort compare DIR`).
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }
    /// The folder's name (the experiment's).
    pub fn name(&self) -> String {
        self.root.file_name().map_or_else(|| self.root.display().to_string(), |n| n.to_string_lossy().into_owned())
    }
    /// The run folder of `seed`.
    pub fn run(&self, seed: u64) -> RunDir {
        RunDir { root: self.root.join(format!("{SEED_PREFIX}{seed}")) }
    }
    /// Its `seed-*` run folders, by seed (then name for unparsable seeds).
    pub fn runs(&self) -> Result<Vec<RunDir>, ResultsError> {
        let mut runs: Vec<RunDir> = std::fs::read_dir(&self.root)
            .map_err(|e| ResultsError::io(&self.root, e))?
            .filter_map(Result::ok)
            .map(|e| RunDir::at(e.path()))
            .filter(|r| r.root.is_dir() && r.name().starts_with(SEED_PREFIX))
            .collect();
        runs.sort_by_key(|r| (r.seed().unwrap_or(u64::MAX), r.name()));
        Ok(runs)
    }
    /// `charts/` (charts over the seeds).
    pub fn charts(&self) -> PathBuf {
        self.root.join("charts")
    }
}
