//! CIFAR-10 and CIFAR-100, binary versions (Krizhevsky 2009). Each file is a sequence of
//! fixed-size records: the label byte(s), then 1024 R, 1024 G and 1024 B bytes (row-major 32×32).
//!
//! - CIFAR-10: `data_batch_1.bin` … `data_batch_5.bin` (50 000) and `test_batch.bin` (10 000);
//!   records of 3073 bytes: 1 label byte (0..=9), 3072 pixel bytes.
//! - CIFAR-100: `train.bin` (50 000) and `test.bin` (10 000); records of 3074 bytes: 1 coarse label
//!   byte (20 superclasses), 1 fine label byte (100 classes), 3072 pixel bytes.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::source::Source;
use super::{DataError, Samples, Splits};

/// Where CIFAR-10 lives (binary version: `data_batch_{1..5}.bin`, `test_batch.bin`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default, rename = "Folder")]
pub struct Cifar10Spec {
    /// Folder holding the files; default `<data root>/cifar10`, where the data root is
    /// `--data-dir`, else `$COHORT_DATA`, else `data/`.
    pub dir: Option<PathBuf>,
}

/// Where CIFAR-100 lives and which labels to use.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default, rename = "Cifar100")]
pub struct Cifar100Spec {
    /// Folder holding `train.bin` and `test.bin`; default `<data root>/cifar100`.
    pub dir: Option<PathBuf>,
    /// `Fine` (100 classes, default) or `Coarse` (20 superclasses).
    pub labels: Cifar100Labels,
}

impl Source for Cifar10Spec {
    fn description(&self) -> String {
        "CIFAR-10 (binary files)".to_string()
    }
    fn input_shape(&self) -> Result<(Vec<usize>, usize), DataError> {
        Ok((vec![3, 32, 32], 10))
    }
    fn load(&self, root: &Path) -> Result<Splits, DataError> {
        load_cifar10(&self.dir.clone().unwrap_or_else(|| root.join("cifar10")))
    }
}

impl Source for Cifar100Spec {
    fn description(&self) -> String {
        match self.labels {
            Cifar100Labels::Fine => "CIFAR-100 (binary files, 100 fine labels)".to_string(),
            Cifar100Labels::Coarse => "CIFAR-100 (binary files, 20 coarse labels)".to_string(),
        }
    }
    fn input_shape(&self) -> Result<(Vec<usize>, usize), DataError> {
        Ok((vec![3, 32, 32], if self.labels == Cifar100Labels::Coarse { 20 } else { 100 }))
    }
    fn load(&self, root: &Path) -> Result<Splits, DataError> {
        load_cifar100(&self.dir.clone().unwrap_or_else(|| root.join("cifar100")), self.labels)
    }
}

/// Pixel bytes per record (3 planes of 32×32).
pub const PIXELS: usize = 3 * 32 * 32;
/// Bytes per CIFAR-10 record.
pub const RECORD: usize = 1 + PIXELS;
/// Bytes per CIFAR-100 record.
pub const RECORD_100: usize = 2 + PIXELS;
/// CIFAR-10's training files, in order.
pub const TRAIN_FILES: [&str; 5] = ["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"];
/// CIFAR-10's test file.
pub const TEST_FILE: &str = "test_batch.bin";
/// CIFAR-100's training and test files.
pub const FILES_100: [&str; 2] = ["train.bin", "test.bin"];

/// Which of a CIFAR-100 record's two labels is the class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Cifar100Labels {
    /// The 100 fine classes (the benchmark tables' setting).
    #[default]
    Fine,
    /// The 20 superclasses.
    Coarse,
}

/// A binary CIFAR variant: record layout, label position and the fix for a missing file.
struct Format {
    name: &'static str,
    record: usize,
    label_at: usize,
    classes: usize,
    fix: &'static str,
}

const CIFAR10: Format = Format {
    name: "CIFAR-10",
    record: RECORD,
    label_at: 0,
    classes: 10,
    fix: "download the \"CIFAR-10 binary version\" (cifar-10-binary.tar.gz) on a machine with internet access and unpack its cifar-10-batches-bin/*.bin into this folder (or set `dir:` in the experiment)",
};

fn cifar100(labels: Cifar100Labels) -> Format {
    Format {
        name: "CIFAR-100",
        record: RECORD_100,
        label_at: if labels == Cifar100Labels::Coarse { 0 } else { 1 },
        classes: if labels == Cifar100Labels::Coarse { 20 } else { 100 },
        fix: "download the \"CIFAR-100 binary version\" (cifar-100-binary.tar.gz) on a machine with internet access and unpack its cifar-100-binary/{train,test}.bin into this folder (or set `dir:` in the experiment)",
    }
}

/// Parses the records of one file of `format`, pixels scaled to [0, 1].
fn parse(bytes: &[u8], path: &Path, out: &mut Samples, format: &Format) -> Result<(), DataError> {
    let corrupt = |problem: String| DataError::Corrupt { path: path.to_path_buf(), problem, fix: format.fix.into() };
    if bytes.is_empty() || !bytes.len().is_multiple_of(format.record) {
        return Err(corrupt(format!(
            "size {} is not a positive multiple of the {}-byte record (truncated or not a {} binary file)",
            bytes.len(),
            format.record,
            format.name
        )));
    }
    let labels = format.record - PIXELS;
    for (r, rec) in bytes.chunks_exact(format.record).enumerate() {
        let label = rec[format.label_at];
        if label as usize >= format.classes {
            let hint = if format.record == RECORD { " (is this CIFAR-100?)" } else { "" };
            return Err(corrupt(format!("record {r} has label {label} outside 0..={}{hint}", format.classes - 1)));
        }
        out.labels.push(label);
        out.features.extend(rec[labels..].iter().map(|&p| p as f32 / 255.0));
    }
    Ok(())
}

/// Parses the records of one CIFAR-10 file, pixels scaled to [0, 1].
pub fn parse_records(bytes: &[u8], path: &Path, out: &mut Samples) -> Result<(), DataError> {
    parse(bytes, path, out, &CIFAR10)
}

fn load_files(dir: &Path, names: &[&str], format: &Format) -> Result<Samples, DataError> {
    let mut s =
        Samples { features: Vec::new(), labels: Vec::new(), shape: vec![3, 32, 32], classes: format.classes, domains: Vec::new(), background: Vec::new() };
    for name in names {
        let path = dir.join(name);
        let bytes = std::fs::read(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => DataError::Missing { dataset: format.name, path: path.clone(), fix: format.fix.into() },
            _ => DataError::io(&path, e),
        })?;
        parse(&bytes, &path, &mut s, format)?;
    }
    Ok(s)
}

/// Loads CIFAR-10 from `dir`.
pub fn load_cifar10(dir: &Path) -> Result<Splits, DataError> {
    Ok(Splits { train: load_files(dir, &TRAIN_FILES, &CIFAR10)?, test: load_files(dir, &[TEST_FILE], &CIFAR10)? })
}

/// Loads CIFAR-100 from `dir` with the fine or the coarse labels.
pub fn load_cifar100(dir: &Path, labels: Cifar100Labels) -> Result<Splits, DataError> {
    let format = cifar100(labels);
    Ok(Splits { train: load_files(dir, &FILES_100[..1], &format)?, test: load_files(dir, &FILES_100[1..], &format)? })
}
