//! `cohort verify`: retrain finished runs from their manifests and check that every figure of
//! their `metrics.csv` comes out the same, bit for bit.

use std::path::{Path, PathBuf};

use crate::engine::{self, RunOptions, Status};
use crate::error::{EXIT_FAILURE, EXIT_INTERRUPTED, Error};
use crate::results::{self, ExperimentDir, Manifest, ResultsError, RunDir};

/// How many changed rows are printed per run.
const SHOWN: usize = 5;

/// Reruns each run of `runs` (run folders) from its manifest's plan and seed into `keep` (else a
/// temporary folder, removed afterwards) and compares the two `metrics.csv`; with
/// `same_cpu_only`, runs recorded on a CPU with other instruction sets are named and skipped. Exit code 0 when
/// every rerun is identical, 1 otherwise, 130 when interrupted.
pub(super) fn verify(runs: &[PathBuf], keep: Option<&Path>, same_cpu_only: bool, root: &Path) -> Result<i32, Error> {
    let scratch = match keep {
        Some(_) => None,
        None => Some(tempfile::Builder::new().prefix("cohort-verify-").tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?),
    };
    let output = keep.or_else(|| scratch.as_ref().map(|t| t.path())).expect("a scratch folder when the reruns are not kept");
    let here = (results::manifest::git_revision(), results::manifest::cpu_description());
    let (mut differing, mut skipped) = (0, 0);
    for (i, run) in runs.iter().enumerate() {
        let dir = RunDir::at(run);
        if !dir.is_run() {
            return Err(ResultsError::NotARun { path: run.clone() }.into());
        }
        let recorded = Manifest::read(&dir.manifest())?;
        let before = results::read_metrics(&dir.metrics())?;
        let cpu = if recorded.cpu.is_empty() { "a CPU it does not name (a manifest older than the field)" } else { &recorded.cpu };
        println!("verify {}: {} seed {}, recorded at {} on {cpu}", run.display(), recorded.experiment, recorded.seed, short(&recorded.git_revision));
        if results::manifest::instruction_sets(&recorded.cpu) != results::manifest::instruction_sets(&here.1) {
            if same_cpu_only {
                println!("  skipped: this machine is {}, and only a CPU with the same instruction sets reproduces a run bit for bit", here.1);
                skipped += 1;
                continue;
            }
            println!(
                "  note: this machine is {}; the matrix kernels pick their rounding by instruction set, so only a CPU with the same ones reproduces a run bit for bit",
                here.1
            );
        }
        let mut plan = recorded.plan.clone();
        plan.seeds = vec![recorded.seed];
        // one folder per verified run: two runs of the same experiment and seed (another study's
        // copy) must not meet
        plan.output = output.join(format!("{i}"));
        let opts = RunOptions {
            data_root: root.to_path_buf(),
            resume: false,
            overwrite: true,
            progress: false,
            experiment_file: PathBuf::from(&recorded.experiment_file),
            experiment_text: String::new(),
            stop_after_epochs: None,
            tensorboard: false,
            interrupt: Default::default(),
        };
        let outcome = engine::run(&plan, &opts)?;
        if outcome.iter().any(|o| o.status == Status::Interrupted) {
            return Ok(EXIT_INTERRUPTED);
        }
        // a diverged run stops at the same step when it reproduces: its rows are compared too
        let again = ExperimentDir::new(&plan.output, &plan.name).run(recorded.seed);
        let after = results::read_metrics(&again.metrics())?;
        // a metric that did not exist when the run was made (per-term rows) is not a difference
        let recorded_metrics: std::collections::HashSet<&str> = before.iter().map(|r| r.metric.as_str()).collect();
        let after: Vec<_> = after.into_iter().filter(|r| recorded_metrics.contains(r.metric.as_str())).collect();
        let diff = results::metrics::compare_metrics(&before, &after);
        if diff.identical() {
            println!("  identical: {} rows of metrics.csv, bit for bit, at {}", diff.common, short(&here.0));
            continue;
        }
        differing += 1;
        println!(
            "  DIFFERS at {}: {} of {} common rows changed, {} recorded rows missing, {} new rows",
            short(&here.0),
            diff.changed.len(),
            diff.common,
            diff.only_first.len(),
            diff.only_second.len()
        );
        for (key, was, now) in diff.changed.iter().take(SHOWN) {
            println!("    {key}: recorded {was}, now {now}");
        }
        for key in diff.only_first.iter().take(SHOWN) {
            println!("    {key}: recorded, missing now");
        }
        if keep.is_some() {
            println!("  the rerun is in {}", again.root.display());
        }
    }
    if runs.len() > 1 || skipped > 0 {
        let note = if skipped > 0 { format!(" ({skipped} skipped: another kind of CPU)") } else { String::new() };
        println!("{} of {} run(s) reproduced bit for bit{note}", runs.len() - differing - skipped, runs.len());
    }
    Ok(if differing == 0 { 0 } else { EXIT_FAILURE })
}

/// A 40-digit revision shortened to 7, the rest (`-dirty`, `unknown`) kept.
fn short(rev: &str) -> String {
    match rev.get(..7) {
        Some(head) if rev.len() >= 40 => format!("{head}{}", &rev[40..]),
        _ => rev.to_string(),
    }
}
