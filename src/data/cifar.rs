//! CIFAR-10, binary version: `data_batch_1.bin` … `data_batch_5.bin` and `test_batch.bin`, each a
//! sequence of 3073-byte records (1 label byte, then 1024 R, 1024 G, 1024 B bytes, row-major 32×32).

use std::path::Path;

use super::{DataError, Samples, Splits};

/// Bytes per record.
pub const RECORD: usize = 1 + 3 * 32 * 32;
/// Training files, in order.
pub const TRAIN_FILES: [&str; 5] = ["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"];
/// Test file.
pub const TEST_FILE: &str = "test_batch.bin";
const FIX: &str = "download the \"CIFAR-10 binary version\" (cifar-10-binary.tar.gz) on a machine with internet access and unpack its cifar-10-batches-bin/*.bin into this folder (or set `dir:` in the experiment)";

/// Parses the records of one file, pixels scaled to [0, 1].
pub fn parse_records(bytes: &[u8], path: &Path, out: &mut Samples) -> Result<(), DataError> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(RECORD) {
        return Err(DataError::Corrupt {
            path: path.to_path_buf(),
            problem: format!("size {} is not a positive multiple of the 3073-byte record (truncated or not a CIFAR-10 binary file)", bytes.len()),
            fix: FIX.into(),
        });
    }
    for (r, rec) in bytes.chunks_exact(RECORD).enumerate() {
        if rec[0] > 9 {
            return Err(DataError::Corrupt {
                path: path.to_path_buf(),
                problem: format!("record {r} has label {} outside 0..=9 (is this CIFAR-100?)", rec[0]),
                fix: FIX.into(),
            });
        }
        out.labels.push(rec[0]);
        out.features.extend(rec[1..].iter().map(|&p| p as f32 / 255.0));
    }
    Ok(())
}

fn load_files(dir: &Path, names: &[&str]) -> Result<Samples, DataError> {
    let mut s = Samples { features: Vec::new(), labels: Vec::new(), shape: vec![3, 32, 32], classes: 10, domains: Vec::new(), background: Vec::new() };
    for name in names {
        let path = dir.join(name);
        let bytes = std::fs::read(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => DataError::Missing { dataset: "CIFAR-10", path: path.clone(), fix: FIX.into() },
            _ => DataError::io(&path, e),
        })?;
        parse_records(&bytes, &path, &mut s)?;
    }
    Ok(s)
}

/// Loads CIFAR-10 from `dir`.
pub fn load_cifar10(dir: &Path) -> Result<Splits, DataError> {
    Ok(Splits { train: load_files(dir, &TRAIN_FILES)?, test: load_files(dir, &[TEST_FILE])? })
}
