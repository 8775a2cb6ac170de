//! `summary.json`: how a run ended and, per stage and node, the last-epoch metrics and the
//! best epochs (by test accuracy, and by validation accuracy with the test accuracy there).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{MetricRow, ResultsError};
use crate::fsutil::atomic_write_bytes;

/// Final and best values of one node (or the ensemble) in one stage.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeSummary {
    /// Metrics of the last epoch, keyed `<split>_<metric>` (NaN is written as `null`).
    #[serde(with = "nan_as_null")]
    pub last: BTreeMap<String, f64>,
    /// Best test accuracy over the epochs (optimistic: selected on the test split).
    pub best_test: Option<Best>,
    /// Epoch of the best validation accuracy, with the test accuracy at that epoch (model
    /// selection without looking at the test split).
    pub best_validation: Option<Best>,
}

/// JSON has no NaN: a diverged run's NaN metrics are written as `null` and read back as NaN.
mod nan_as_null {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(m: &BTreeMap<String, f64>, s: S) -> Result<S::Ok, S::Error> {
        m.iter().map(|(k, v)| (k, v.is_finite().then_some(*v))).collect::<BTreeMap<_, _>>().serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, f64>, D::Error> {
        let m = BTreeMap::<String, Option<f64>>::deserialize(d)?;
        Ok(m.into_iter().map(|(k, v)| (k, v.unwrap_or(f64::NAN))).collect())
    }
}

/// The best epoch by some accuracy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Best {
    /// Epoch (from 1).
    pub epoch: usize,
    /// The accuracy it was selected by.
    pub accuracy: f64,
    /// Test accuracy at that epoch.
    pub test_accuracy: f64,
}

/// A stage's summary.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StageSummary {
    /// Stage name.
    pub name: String,
    /// Epochs completed.
    pub epochs: usize,
    /// Per node id, plus `ensemble` and `cohort` when the stage trains several nodes.
    pub nodes: BTreeMap<String, NodeSummary>,
}

/// Where a run diverged.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Divergence {
    /// Stage name.
    pub stage: String,
    /// Epoch (from 1).
    pub epoch: usize,
    /// Step within the epoch (from 1).
    pub step: usize,
    /// Node whose loss was not finite.
    pub node: String,
    /// The loss value as text (`NaN`, `inf`, `-inf`: JSON has no such numbers).
    pub loss: String,
}

/// How a finished run ended, as `summary.json` records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Every stage finished.
    Complete,
    /// A loss became NaN/inf; the run stopped there ([`Summary::diverged`] says where).
    Diverged,
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RunStatus::Complete => "complete",
            RunStatus::Diverged => "diverged",
        })
    }
}

/// `summary.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Experiment name.
    pub experiment: String,
    /// Seed of this run.
    pub seed: u64,
    /// `complete` or `diverged`.
    pub status: RunStatus,
    /// Set when `status` is `diverged`.
    pub diverged: Option<Divergence>,
    /// Per stage.
    pub stages: Vec<StageSummary>,
    /// How fast it trained (absent from runs older than the field: [`Timing::of_run`] reads
    /// their `log.txt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timing: Option<Timing>,
    /// The git revision of cohort that made it, as its manifest says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_revision: Option<String>,
}

/// How fast a run trained, on its machine and under its load (not a reproducible figure).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    /// Each epoch's training steps over its wall-clock seconds (the steps, the evaluation and
    /// the saving of the state), in the order the epochs ran; a resumed run's epochs before
    /// the interruption are in its `log.txt` only.
    pub epoch_steps_per_second: Vec<f64>,
    /// Wall-clock seconds from the start of the process's run to its summary.
    pub wall_seconds: f64,
}

impl Timing {
    /// The timing of run folder `dir`: its summary's, or for a run older than the field the
    /// steps/s of the epoch lines of its `log.txt` (as printed there, to one decimal).
    pub fn of_run(dir: &super::RunDir, summary: Option<&Summary>) -> Timing {
        if let Some(t) = summary.and_then(|s| s.timing.clone()) {
            return t;
        }
        let log = std::fs::read_to_string(dir.log()).unwrap_or_default();
        Timing { epoch_steps_per_second: log.lines().filter_map(epoch_steps_per_second).collect(), wall_seconds: f64::NAN }
    }
}

/// The steps/s of an epoch line of `log.txt`: `… (1.2 s, 166.1 steps/s)`.
fn epoch_steps_per_second(line: &str) -> Option<f64> {
    let rest = line.strip_suffix(" steps/s)")?;
    rest.rsplit(' ').next()?.parse().ok()
}

/// Builds the per-stage summaries from the metric rows.
pub fn summarize(rows: &[MetricRow], stages: &[String]) -> Vec<StageSummary> {
    stages
        .iter()
        .filter_map(|stage| {
            let mine: Vec<&MetricRow> = rows.iter().filter(|r| &r.stage == stage).collect();
            if mine.is_empty() {
                return None;
            }
            let epochs = mine.iter().map(|r| r.epoch).max().unwrap_or(0);
            let mut last_epoch: BTreeMap<&str, usize> = BTreeMap::new();
            for r in &mine {
                let e = last_epoch.entry(r.node.as_str()).or_default();
                *e = (*e).max(r.epoch);
            }
            let mut nodes: BTreeMap<String, NodeSummary> = BTreeMap::new();
            for r in &mine {
                let n = nodes.entry(r.node.clone()).or_default();
                if r.epoch == last_epoch[r.node.as_str()] {
                    n.last.insert(format!("{}_{}", r.split, r.metric), r.value);
                }
                if r.metric == "accuracy" && r.split == "test" && n.best_test.as_ref().is_none_or(|b| r.value > b.accuracy) {
                    n.best_test = Some(Best { epoch: r.epoch, accuracy: r.value, test_accuracy: r.value });
                }
                if r.metric == "accuracy" && r.split == "validation" && n.best_validation.as_ref().is_none_or(|b| r.value > b.accuracy) {
                    let test = mine
                        .iter()
                        .find(|x| x.node == r.node && x.epoch == r.epoch && x.split == "test" && x.metric == "accuracy")
                        .map_or(f64::NAN, |x| x.value);
                    n.best_validation = Some(Best { epoch: r.epoch, accuracy: r.value, test_accuracy: test });
                }
            }
            Some(StageSummary { name: stage.clone(), epochs, nodes })
        })
        .collect()
}

/// Writes `summary.json` atomically.
pub fn write_summary(path: &Path, s: &Summary) -> Result<(), ResultsError> {
    let text = serde_json::to_string_pretty(s).expect("summary serialises");
    atomic_write_bytes(path, text.as_bytes()).map_err(|e| ResultsError::io(path, e))
}

/// Reads a `summary.json`.
pub fn read_summary(path: &Path) -> Result<Summary, ResultsError> {
    let text = std::fs::read_to_string(path).map_err(|e| ResultsError::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| ResultsError::malformed(path, e))
}
