//! `cohort data export`: a data set's splits as CSV (`label,x0,x1,…`), values written with the
//! shortest representation that reads back to the same `f32`, for pandas and for tests.

use std::path::Path;

use super::Samples;
use crate::fsutil::atomic_write;

/// Writes `samples` to `path` as CSV with a header row.
pub fn write_csv(samples: &Samples, path: &Path) -> std::io::Result<()> {
    atomic_write(path, |w| {
        let mut csv = csv::Writer::from_writer(w);
        let mut header = vec!["label".to_string()];
        header.extend((0..samples.row_len()).map(|k| format!("x{k}")));
        csv.write_record(&header)?;
        let mut rec = Vec::with_capacity(samples.row_len() + 1);
        for i in 0..samples.len() {
            rec.clear();
            rec.push(samples.labels[i].to_string());
            rec.extend(samples.row(i).iter().map(f32::to_string));
            csv.write_record(&rec)?;
        }
        csv.flush()
    })
}
