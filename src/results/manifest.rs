//! `manifest.ron`: everything needed to rerun a run — the resolved plan, the seed, where it ran
//! and from which sources. Written once when a run starts, read back by `--resume` (which refuses
//! a changed experiment file), `cohort eval`, `export-logits` and the charts.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::ResultsError;
use crate::config::{self, Plan};
use crate::fsutil::atomic_write_bytes;

/// Contents of `manifest.ron`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Experiment name.
    pub experiment: String,
    /// The experiment file, as given on the command line.
    pub experiment_file: String,
    /// SHA-256 of the experiment file's text (of the grid point's text in a sweep).
    pub experiment_sha256: String,
    /// The run's seed.
    pub seed: u64,
    /// Backend and device, with every node placed elsewhere, e.g. `flex, node `b`: ndarray`.
    pub backend: String,
    /// Threads of the global pool.
    pub threads: usize,
    /// cohort's version.
    pub cohort_version: String,
    /// `git rev-parse HEAD` of the working directory, `-dirty` with uncommitted changes,
    /// `unknown` outside a repository.
    pub git_revision: String,
    /// Root of the data sets.
    pub data_root: String,
    /// The resolved plan.
    pub plan: Plan,
}

impl Manifest {
    /// Writes the manifest atomically (with the experiment files' ron extensions, so that the
    /// plan can be pasted into an experiment file).
    pub fn write(&self, path: &Path) -> Result<(), ResultsError> {
        atomic_write_bytes(path, self.to_text().as_bytes()).map_err(|e| ResultsError::io(path, e))
    }

    /// The manifest's text.
    pub fn to_text(&self) -> String {
        ron::ser::to_string_pretty(self, ron::ser::PrettyConfig::default().extensions(config::ron_extensions())).expect("manifest serialises")
    }

    /// Reads a `manifest.ron`.
    pub fn read(path: &Path) -> Result<Manifest, ResultsError> {
        let text = std::fs::read_to_string(path).map_err(|e| ResultsError::io(path, e))?;
        config::ron_options().from_str(&text).map_err(|e| ResultsError::malformed(path, e))
    }
}

/// The git revision of the working directory, with `-dirty` when it has uncommitted changes to
/// tracked files; `unknown` outside a repository or without git.
pub fn git_revision() -> String {
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
