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
    /// The CPU and the vector instruction sets the kernels can use, e.g. `AMD EPYC; avx2 fma`.
    /// Runs are bit-for-bit deterministic on one kind of CPU; the matrix kernels pick their
    /// code path (and so their rounding) by instruction set, so another CPU gives figures that
    /// agree within seed noise, not to the bit. Empty in manifests written before it existed.
    #[serde(default)]
    pub cpu: String,
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
/// tracked files outside `results/` other than Markdown documents; outside a repository or
/// without git, the revision of a `COMMIT` file beside the binary (a GPU bundle's), else
/// `unknown`. Run outputs and documents do not count: a study rerun over its own
/// committed runs (which `--overwrite` replaces), or one after another study has written its
/// table into README.md, is made by the committed code all the same.
pub fn git_revision() -> String {
    git_revision_in(Path::new("."))
}

/// [`git_revision`] of the repository holding `dir`.
pub fn git_revision_in(dir: &Path) -> String {
    let run = |args: &[&str]| std::process::Command::new("git").arg("-C").arg(dir).args(args).output().ok().filter(|o| o.status.success());
    match run(&["rev-parse", "HEAD"]) {
        Some(o) => {
            let rev = String::from_utf8_lossy(&o.stdout).trim().to_string();
            let dirty = run(&["status", "--porcelain", "--untracked-files=no", "--", ":(top)", ":(top,exclude)results", ":(top,exclude,glob)**/*.md"])
                .is_some_and(|o| !o.stdout.is_empty());
            if dirty { format!("{rev}-dirty") } else { rev }
        }
        None => bundled_revision().unwrap_or_else(|| "unknown".into()),
    }
}

/// Outside a repository, the revision in a `COMMIT` file beside the binary (the GPU bundle's:
/// scripts/gpu-bundle.sh writes what [`git_revision`] gives at the commit it builds).
fn bundled_revision() -> Option<String> {
    let exe = std::env::current_exe().ok()?;
    let text = std::fs::read_to_string(exe.parent()?.join("COMMIT")).ok()?;
    let rev = text.lines().next()?.trim();
    (!rev.is_empty()).then(|| rev.to_string())
}

/// The CPU's model name (from `/proc/cpuinfo` where there is one) and the x86 vector instruction
/// sets detected at run time, e.g. `AMD EPYC; avx2 fma`.
pub fn cpu_description() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| t.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split_once(':')).map(|(_, m)| m.trim().to_string()))
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    #[allow(unused_mut)]
    let mut features: Vec<&str> = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        for (name, on) in [
            ("sse4.2", std::arch::is_x86_feature_detected!("sse4.2")),
            ("avx", std::arch::is_x86_feature_detected!("avx")),
            ("avx2", std::arch::is_x86_feature_detected!("avx2")),
            ("fma", std::arch::is_x86_feature_detected!("fma")),
            ("avx512f", std::arch::is_x86_feature_detected!("avx512f")),
        ] {
            if on {
                features.push(name);
            }
        }
    }
    if features.is_empty() { model } else { format!("{model}; {}", features.join(" ")) }
}

/// The instruction sets of a [`cpu_description`] (`sse4.2 avx avx2 fma avx512f`; the whole
/// description when it lists none): what the matrix kernels choose their code, and so their
/// rounding, by. Two CPUs with the same ones reproduce each other's runs bit for bit (an AMD
/// EPYC with AVX-512 reproduces this project's Intel Xeon runs).
pub fn instruction_sets(cpu: &str) -> &str {
    cpu.rsplit_once("; ").map_or(cpu, |(_, sets)| sets)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Changes to tracked files make the revision dirty, except under `results/` (run outputs,
    /// which a study rerun replaces) and Markdown documents (README.md, where studies splice
    /// their tables); untracked files never do.
    #[test]
    fn dirty_means_tracked_changes_outside_results() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let git = |args: &[&str]| assert!(std::process::Command::new("git").arg("-C").arg(dir).args(args).output().unwrap().status.success(), "git {args:?}");
        git(&["init", "-q"]);
        std::fs::create_dir_all(dir.join("results/study/runs")).unwrap();
        std::fs::create_dir_all(dir.join("src")).unwrap();
        std::fs::write(dir.join("results/study/runs/metrics.csv"), "old").unwrap();
        std::fs::write(dir.join("src/lib.rs"), "// code").unwrap();
        std::fs::write(dir.join("README.md"), "readme").unwrap();
        std::fs::write(dir.join("src/notes.md"), "notes").unwrap();
        git(&["add", "."]);
        git(&["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "one"]);
        let clean = git_revision_in(dir);
        assert_eq!(clean.len(), 40, "{clean}");
        std::fs::write(dir.join("results/study/runs/metrics.csv"), "rerun").unwrap();
        std::fs::write(dir.join("untracked.txt"), "x").unwrap();
        std::fs::write(dir.join("README.md"), "a table spliced in by a study").unwrap();
        std::fs::write(dir.join("src/notes.md"), "edited").unwrap();
        assert_eq!(git_revision_in(&dir.join("src")), clean, "a rerun's outputs, documents and untracked files leave it clean, from any folder");
        std::fs::write(dir.join("src/lib.rs"), "// changed").unwrap();
        assert_eq!(git_revision_in(dir), format!("{clean}-dirty"));
        assert_eq!(git_revision_in(&std::env::temp_dir().join("no-such-repo-here")), "unknown");
    }
}
