//! Offline ("business-to-business") transfer: a trained node's outputs on the training split,
//! exported once by `cohort export-logits`, later read back as a fixed source (`model:
//! Recorded(file: ...)`) so that a student trains without access to the teacher's weights.
//!
//! The file is JSON: a header naming the experiment, node, seed and data spec, a SHA-256
//! fingerprint of the training split it was computed on (features as little-endian f32, then
//! labels), the outputs (raw logits, or probabilities softened at a temperature T), and a
//! SHA-256 of those values. Reading checks both: a file computed on other data, or damaged, is
//! refused with a message saying so.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::EngineError;
use crate::config::DataSpec;
use crate::data::Samples;
use crate::digest::Sha256Hex;

/// Format tag of the file.
pub const FORMAT: &str = "cohort-logits/1";

/// The exported file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RecordedFile {
    /// [`FORMAT`].
    pub format: String,
    /// Experiment of the run the outputs come from.
    pub experiment: String,
    /// Node whose outputs these are.
    pub node: String,
    /// Seed of that run (the training split can depend on it through the validation hold-out).
    pub seed: u64,
    /// The data spec of that run.
    pub data: DataSpec,
    /// Always `train`: the transfer set is the training split.
    pub split: String,
    /// Rows.
    pub samples: usize,
    /// Columns.
    pub classes: usize,
    /// `None`: raw logits; `Some(T)`: probabilities `softmax(v/T)`.
    pub temperature: Option<f64>,
    /// [`fingerprint`] of the training split.
    pub data_sha256: String,
    /// SHA-256 of `values` as little-endian f32.
    pub values_sha256: String,
    /// `samples × classes`, row-major, rows in training-split order.
    pub values: Vec<f32>,
}

/// SHA-256 of a split: its features as little-endian f32, then its labels.
pub fn fingerprint(s: &Samples) -> String {
    let mut h = Sha256Hex::new();
    for v in &s.features {
        h.update(&v.to_le_bytes());
    }
    h.update(&s.labels);
    h.hex()
}

fn values_hash(values: &[f32]) -> String {
    let mut h = Sha256Hex::new();
    for v in values {
        h.update(&v.to_le_bytes());
    }
    h.hex()
}

impl RecordedFile {
    /// The file for `logits` (`samples × classes`) of a run's node on `train`; with a
    /// temperature, the values are `softmax(logits/T)`.
    pub fn new(experiment: &str, node: &str, seed: u64, data: &DataSpec, train: &Samples, logits: &[f32], temperature: Option<f64>) -> Self {
        let c = train.classes;
        let values: Vec<f32> = match temperature {
            None => logits.to_vec(),
            Some(t) => logits.chunks(c).flat_map(|row| crate::stats::softmax_f64(row, t).into_iter().map(|x| x as f32)).collect(),
        };
        Self {
            format: FORMAT.into(),
            experiment: experiment.into(),
            node: node.into(),
            seed,
            data: data.clone(),
            split: "train".into(),
            samples: train.len(),
            classes: c,
            temperature,
            data_sha256: fingerprint(train),
            values_sha256: values_hash(&values),
            values,
        }
    }

    /// Writes the file atomically.
    pub fn write(&self, path: &Path) -> Result<(), EngineError> {
        let text = serde_json::to_string(self).expect("serialises");
        crate::fsutil::atomic_write_bytes(path, text.as_bytes()).map_err(|e| EngineError::io(path, e))
    }
}

/// The first 12 characters of a hex digest, for messages (all of it when shorter: a damaged
/// file may hold anything).
pub fn short_hash(hex: &str) -> &str {
    hex.get(..12).unwrap_or(hex)
}

/// Outputs read back, as logits the loss terms can use: raw logits as exported, or
/// `T·ln p` for probabilities exported at temperature T (so `softmax(v/T) = p` again).
#[derive(Clone, Debug)]
pub struct Recorded {
    classes: usize,
    logits: Vec<f32>,
}

impl Recorded {
    /// Reads `path` and checks it against this run's training split `train`.
    pub fn load(path: &Path, node: &str, train: &Samples) -> Result<Self, EngineError> {
        let bad = |problem: String| EngineError::Recorded { node: node.to_string(), path: path.to_path_buf(), problem };
        let text =
            std::fs::read_to_string(path).map_err(|e| bad(format!("{e}; recorded outputs are written by `cohort export-logits RUN --node ID --out FILE`")))?;
        let f: RecordedFile = serde_json::from_str(&text).map_err(|e| bad(format!("not a cohort logits file ({e})")))?;
        if f.format != FORMAT {
            return Err(bad(format!("format `{}`, expected `{FORMAT}`", f.format)));
        }
        if f.values.len() != f.samples * f.classes || values_hash(&f.values) != f.values_sha256 {
            return Err(bad("the values do not match their checksum: the file is damaged; export it again".into()));
        }
        if f.samples != train.len() || f.classes != train.classes || f.data_sha256 != fingerprint(train) {
            return Err(bad(format!(
                "computed on a different training split ({} samples, fingerprint {}…) than this run's ({} samples, {}…); \
                 the data spec (source, limits, validation hold-out and, with a hold-out, the seed {}) must be the same as the exporting run's",
                f.samples,
                short_hash(&f.data_sha256),
                train.len(),
                short_hash(&fingerprint(train)),
                f.seed
            )));
        }
        let logits = match f.temperature {
            None => f.values,
            Some(t) => f.values.iter().map(|&p| (t * (p.max(f32::MIN_POSITIVE) as f64).ln()) as f32).collect(),
        };
        Ok(Self { classes: f.classes, logits })
    }

    /// Classes per row.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// The rows of training samples `idx`, row-major.
    pub fn rows(&self, idx: &[usize]) -> Vec<f32> {
        idx.iter().flat_map(|&i| self.logits[i * self.classes..(i + 1) * self.classes].iter().copied()).collect()
    }
}
