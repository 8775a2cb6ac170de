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

/// How two runs' `metrics.csv` files differ, row by row, keyed by
/// `stage,epoch,node,split,metric` ([`compare_metrics`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetricsDiff {
    /// Rows in both files.
    pub common: usize,
    /// Keys of rows in the first file only.
    pub only_first: Vec<String>,
    /// Keys of rows in the second file only.
    pub only_second: Vec<String>,
    /// Rows in both whose values differ (not bit for bit equal): key, first value, second value.
    pub changed: Vec<(String, f64, f64)>,
}

impl MetricsDiff {
    /// Whether the two files hold the same rows with bit-for-bit equal values.
    pub fn identical(&self) -> bool {
        self.only_first.is_empty() && self.only_second.is_empty() && self.changed.is_empty()
    }
}

/// The key of a row: `stage,epoch,node,split,metric`.
fn row_key(r: &MetricRow) -> String {
    format!("{},{},{},{},{}", r.stage, r.epoch, r.node, r.split, r.metric)
}

/// Compares two runs' rows: values must agree bit for bit (`metrics.csv` holds the shortest
/// decimal that reads back as the same `f64`, so equal text means equal values). Two NaNs of the
/// same bits count as equal. Rows in the order of `first`, then `second`'s extra ones.
pub fn compare_metrics(first: &[MetricRow], second: &[MetricRow]) -> MetricsDiff {
    let theirs: std::collections::HashMap<String, f64> = second.iter().map(|r| (row_key(r), r.value)).collect();
    let ours: std::collections::HashSet<String> = first.iter().map(row_key).collect();
    let mut diff = MetricsDiff::default();
    for r in first {
        let key = row_key(r);
        match theirs.get(&key) {
            Some(&v) if v.to_bits() == r.value.to_bits() => diff.common += 1,
            Some(&v) => {
                diff.common += 1;
                diff.changed.push((key, r.value, v));
            }
            None => diff.only_first.push(key),
        }
    }
    diff.only_second = second.iter().map(row_key).filter(|k| !ours.contains(k)).collect();
    diff
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(epoch: usize, metric: &str, value: f64) -> MetricRow {
        MetricRow { stage: "main".into(), epoch, node: "a".into(), split: "test".into(), metric: metric.into(), value }
    }

    /// Equal rows in another order are identical; a change in the last bit, a missing row and
    /// an extra row are each reported with their keys.
    #[test]
    fn compare_metrics_is_bit_exact_and_names_the_rows() {
        let a = vec![row(1, "loss", 0.5), row(1, "accuracy", 0.9), row(2, "loss", 0.25)];
        let shuffled = vec![a[2].clone(), a[0].clone(), a[1].clone()];
        let d = compare_metrics(&a, &shuffled);
        assert!(d.identical(), "{d:?}");
        assert_eq!(d.common, 3);
        let nudged = f64::from_bits(0.25f64.to_bits() + 1);
        let b = vec![row(1, "loss", 0.5), row(2, "loss", nudged), row(3, "loss", 0.1)];
        let d = compare_metrics(&a, &b);
        assert!(!d.identical());
        assert_eq!(d.common, 2);
        assert_eq!(d.changed, vec![("main,2,a,test,loss".to_string(), 0.25, nudged)]);
        assert_eq!(d.only_first, vec!["main,1,a,test,accuracy".to_string()]);
        assert_eq!(d.only_second, vec!["main,3,a,test,loss".to_string()]);
    }

    /// What `write_metrics` writes, `read_metrics` reads back to the same bits.
    #[test]
    fn metrics_round_trip_bit_for_bit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.csv");
        let rows: Vec<MetricRow> = (1..200).map(|i| row(i, "loss", (i as f64).sqrt() / 7.0 + 1e-17 * i as f64)).collect();
        write_metrics(&path, &rows).unwrap();
        assert!(compare_metrics(&rows, &read_metrics(&path).unwrap()).identical());
    }
}
