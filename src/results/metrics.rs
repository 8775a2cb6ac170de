//! `metrics.csv`: every measurement of a run, one row each, in tidy long format
//! `stage,epoch,node,split,metric,value`, rewritten whole (atomically) after every epoch.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::ResultsError;
use crate::fsutil::atomic_write;

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
pub fn write_metrics(path: &Path, rows: &[MetricRow]) -> Result<(), ResultsError> {
    atomic_write(path, |w| {
        let mut csv = csv::Writer::from_writer(w);
        for r in rows {
            // a MetricRow always serialises: what can fail is the writer's I/O
            csv.serialize(r).map_err(std::io::Error::from)?;
        }
        csv.flush()
    })
    .map_err(|e| ResultsError::io(path, e))
}

/// Reads the rows of a `metrics.csv`.
pub fn read_metrics(path: &Path) -> Result<Vec<MetricRow>, ResultsError> {
    let file = std::fs::File::open(path).map_err(|e| ResultsError::io(path, e))?;
    let mut r = csv::Reader::from_reader(std::io::BufReader::new(file));
    r.deserialize()
        .collect::<Result<Vec<MetricRow>, _>>()
        .map_err(|e| if e.is_io_error() { ResultsError::io(path, e.into()) } else { ResultsError::malformed(path, e) })
}
