//! Data sets, offline: the MNIST-1D generator, MNIST from IDX files, CIFAR-10/100 binary files,
//! and a researcher's own NumPy arrays, CSV files and image folders; seeded splitting,
//! shuffling, batching and augmentation.
//!
//! Everything is loaded into memory as `f32` features (row-major, one row per sample) and `u8`
//! labels. Nothing is downloaded at run time: [`fetch`] is the one documented way to get MNIST.

pub mod arrays;
pub mod batch;
pub mod cifar;
pub mod export;
pub mod fetch;
pub mod idx;
pub mod images;
pub mod mnist1d;
pub mod rotated;
pub mod source;
pub mod spec;
pub mod subset;
pub mod table;

use std::path::{Path, PathBuf};

pub use source::Source;
pub use spec::{Cifar10Spec, Cifar100Spec, DataSource, DataSpec, MnistSpec, Normalization, RotatedSpec};

/// Samples of one split.
#[derive(Clone, Debug, PartialEq)]
pub struct Samples {
    /// `len() × shape.product()` values, row-major.
    pub features: Vec<f32>,
    /// One label per sample, in `0..classes`.
    pub labels: Vec<u8>,
    /// Shape of one sample: `[L]` for sequences, `[C, H, W]` for images.
    pub shape: Vec<usize>,
    /// Number of classes.
    pub classes: usize,
    /// Domain of each sample (e.g. the rotation of Rotated MNIST), or empty for data sets
    /// without domains.
    pub domains: Vec<u8>,
    /// Per channel, the value of a background pixel (raw 0) after the split's scaling: what a
    /// jittered input's uncovered border is filled with. Empty = 0 for every channel.
    pub background: Vec<f32>,
}

impl Samples {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    /// True when there are no samples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
    /// Values per sample.
    pub fn row_len(&self) -> usize {
        self.shape.iter().product()
    }
    /// The features of sample `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        let d = self.row_len();
        &self.features[i * d..(i + 1) * d]
    }
    /// The samples at `idx`, in that order.
    pub fn select(&self, idx: &[usize]) -> Samples {
        Samples {
            features: idx.iter().flat_map(|&i| self.row(i).iter().copied()).collect(),
            labels: idx.iter().map(|&i| self.labels[i]).collect(),
            shape: self.shape.clone(),
            classes: self.classes,
            domains: if self.domains.is_empty() { Vec::new() } else { idx.iter().map(|&i| self.domains[i]).collect() },
            background: self.background.clone(),
        }
    }
    /// Domain of sample `i` (0 for data sets without domains).
    pub fn domain(&self, i: usize) -> u8 {
        self.domains.get(i).copied().unwrap_or(0)
    }
    /// Samples per class.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut c = vec![0; self.classes];
        for &l in &self.labels {
            c[l as usize] += 1;
        }
        c
    }
    /// Per-channel mean and std (population) over all samples; channel = first axis of a 3-D
    /// shape, else one channel.
    pub fn channel_stats(&self) -> Vec<(f64, f64)> {
        let channels = if self.shape.len() == 3 { self.shape[0] } else { 1 };
        let plane = self.row_len() / channels;
        (0..channels)
            .map(|c| {
                let vals = || (0..self.len()).flat_map(move |i| self.row(i)[c * plane..(c + 1) * plane].iter().map(|&v| v as f64));
                let n = (self.len() * plane) as f64;
                let mean = vals().sum::<f64>() / n;
                let var = vals().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
                (mean, var.sqrt().max(1e-12))
            })
            .collect()
    }
    /// Applies `(x − mean_c) / std_c` per channel (to the background value too).
    pub fn standardize(&mut self, stats: &[(f64, f64)]) {
        let plane = self.row_len() / stats.len();
        for (k, v) in self.features.iter_mut().enumerate() {
            let (m, s) = stats[(k / plane) % stats.len()];
            *v = ((*v as f64 - m) / s) as f32;
        }
        self.background = stats.iter().enumerate().map(|(c, &(m, s))| ((self.background.get(c).copied().unwrap_or(0.0) as f64 - m) / s) as f32).collect();
    }
}

/// A data set's standard train and test splits, plus an optional validation split.
#[derive(Clone, Debug, PartialEq)]
pub struct Splits {
    /// Training samples.
    pub train: Samples,
    /// Test samples.
    pub test: Samples,
}

/// A data set with the experiment's split and normalisation applied.
#[derive(Clone, Debug, PartialEq)]
pub struct Prepared {
    /// Training samples (without the held-out part).
    pub train: Samples,
    /// Held-out validation samples (empty when `validation` is 0).
    pub validation: Samples,
    /// Test samples.
    pub test: Samples,
}

/// Errors of data loading: each names the file and how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The data set's folder or a file in it is absent.
    #[error("{dataset} not found: {path} is missing.\n  fix: {fix}")]
    Missing {
        /// Data set name.
        dataset: &'static str,
        /// The missing path.
        path: PathBuf,
        /// What to run.
        fix: String,
    },
    /// A file exists but is not what it should be.
    #[error("{path}: {problem}.\n  fix: {fix}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
        /// What to do.
        fix: String,
    },
    /// An I/O failure.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// Fetching failed.
    #[error("fetching {dataset} failed: {problem}")]
    Fetch {
        /// Data set name.
        dataset: &'static str,
        /// What went wrong.
        problem: String,
    },
}

impl DataError {
    /// The problem and, where there is one, its fix, for a diagnostic that names the place
    /// itself (`cohort check` of an experiment whose data files are unusable).
    pub fn problem_and_fix(&self) -> (String, Option<String>) {
        match self {
            DataError::Missing { dataset, path, fix } => (format!("{dataset} not found: {} is missing", path.display()), Some(fix.clone())),
            DataError::Corrupt { path, problem, fix } => (format!("{}: {problem}", path.display()), Some(fix.clone())),
            other => (other.to_string(), None),
        }
    }

    /// The I/O error underneath, if the failure was one.
    pub fn io_error(&self) -> Option<&std::io::Error> {
        match self {
            DataError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        DataError::Io { path: path.to_path_buf(), source }
    }
}

/// The folder holding downloaded data sets: `explicit`, else `$COHORT_DATA`, else `./data`.
pub fn data_root(explicit: Option<&Path>) -> PathBuf {
    explicit.map(Path::to_path_buf).or_else(|| std::env::var_os("COHORT_DATA").map(PathBuf::from)).unwrap_or_else(|| PathBuf::from("data"))
}

impl DataSource {
    /// Loads the standard train/test splits, raw ([`Source::load`]).
    pub fn load(&self, root: &Path) -> Result<Splits, DataError> {
        self.source().load(root)
    }
}

/// Loads `spec`'s data set and applies its split (seeded hold-out, limits) and normalisation
/// (statistics from the training part only).
pub fn prepare(spec: &DataSpec, root: &Path, seed: u64) -> Result<Prepared, DataError> {
    let Splits { train: raw, mut test } = spec.source.load(root)?;
    let n_val = (raw.len() as f64 * spec.validation.get()).round() as usize;
    let (mut val_idx, mut train_idx) = if n_val > 0 {
        let order = crate::random::shuffled(raw.len(), seed, crate::random::Stream::HoldOut, 0);
        (order[..n_val].to_vec(), order[n_val..].to_vec())
    } else {
        (Vec::new(), (0..raw.len()).collect())
    };
    // keep the file order within each part
    val_idx.sort_unstable();
    train_idx.sort_unstable();
    if let Some(l) = spec.train_limit {
        train_idx.truncate(l);
    }
    let mut train = raw.select(&train_idx);
    let mut validation = raw.select(&val_idx);
    if let Some(l) = spec.test_limit {
        let keep: Vec<usize> = (0..test.len().min(l)).collect();
        test = test.select(&keep);
    }
    let stats = match &spec.normalize {
        Normalization::Standardize if !spec.source.source().standardized_already() => Some(train.channel_stats()),
        Normalization::PerChannel { mean, std } => Some(mean.iter().copied().zip(std.iter().copied()).collect()),
        _ => None,
    };
    if let Some(stats) = stats {
        train.standardize(&stats);
        validation.standardize(&stats);
        test.standardize(&stats);
    }
    Ok(Prepared { train, validation, test })
}
