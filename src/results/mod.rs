//! Run folders and what goes in them: `metrics.csv` (tidy long format), `summary.json`,
//! `manifest.ron`, `checkpoints/`, `state/` (for `--resume`) and `log.txt`. Every file is written
//! atomically (temporary file, then rename), so an interrupted run never leaves half a file.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::fsutil::{atomic_write, atomic_write_bytes};

/// The folder of one run: `<output>/<experiment>/seed-<seed>/`.
#[derive(Clone, Debug)]
pub struct RunDir {
    /// The folder.
    pub root: PathBuf,
}

impl RunDir {
    /// The run folder of `experiment` with `seed` under `output`.
    pub fn new(output: &Path, experiment: &str, seed: u64) -> Self {
        Self { root: output.join(experiment).join(format!("seed-{seed}")) }
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
    /// Folder of the resumable state (last complete epoch).
    pub fn state(&self) -> PathBuf {
        self.root.join("state")
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
}

/// One row of `metrics.csv`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricRow {
    /// Stage name.
    pub stage: String,
    /// Epoch within the stage, from 1 (0 = evaluated before training, for fixed sources).
    pub epoch: usize,
    /// Node id, `ensemble` (mean of the trained nodes' probabilities) or `cohort` (pairwise
    /// statistics of the trained nodes).
    pub node: String,
    /// `train`, `validation` or `test`.
    pub split: String,
    /// `loss`, `accuracy`, `ece`, `lr`, `agreement`, `pairwise_kl`.
    pub metric: String,
    /// The value.
    pub value: f64,
}

/// Writes all rows to `path` atomically (the file is rewritten each epoch; it is small).
pub fn write_metrics(path: &Path, rows: &[MetricRow]) -> Result<(), Error> {
    atomic_write(path, |w| {
        let mut csv = csv::Writer::from_writer(w);
        for r in rows {
            csv.serialize(r).map_err(std::io::Error::other)?;
        }
        csv.flush()
    })
    .map_err(|e| Error::io(path, e))
}

/// Reads the rows of a `metrics.csv`.
pub fn read_metrics(path: &Path) -> Result<Vec<MetricRow>, Error> {
    let mut r = csv::Reader::from_path(path).map_err(|e| Error::io(path, std::io::Error::other(e)))?;
    r.deserialize().collect::<Result<Vec<MetricRow>, _>>().map_err(|e| Error::io(path, std::io::Error::other(e)))
}

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

/// `summary.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Experiment name.
    pub experiment: String,
    /// Seed of this run.
    pub seed: u64,
    /// `complete` or `diverged`.
    pub status: String,
    /// Set when `status` is `diverged`.
    pub diverged: Option<Divergence>,
    /// Per stage.
    pub stages: Vec<StageSummary>,
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
pub fn write_summary(path: &Path, s: &Summary) -> Result<(), Error> {
    let text = serde_json::to_string_pretty(s).expect("summary serialises");
    atomic_write_bytes(path, text.as_bytes()).map_err(|e| Error::io(path, e))
}

/// Reads a `summary.json`.
pub fn read_summary(path: &Path) -> Result<Summary, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::io(path, std::io::Error::other(e)))
}
