//! The data part of an experiment file (`data: Data(...)`): which data set, the split and the
//! input scaling. Plain serde types checked while parsing, like the rest of the schema
//! (`crate::config::schema`), but owned here so that data sets depend on nothing in `config`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::DataError;
use super::arrays::{NpySpec, NpzSpec};
use super::cifar::Cifar100Labels;
use super::images::ImageFolderSpec;
use super::mnist1d::Mnist1dParams;
use super::table::CsvSpec;
use crate::values::Fraction;

/// Data set and split.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename = "Data")]
pub struct DataSpec {
    /// Which data set.
    pub source: DataSource,
    /// Fraction of the training split held out as a validation split (seeded by the run's seed).
    #[serde(default = "zero_fraction")]
    pub validation: Fraction,
    /// Use only the first N training samples (after the seeded hold-out); for quick trials.
    #[serde(default)]
    pub train_limit: Option<usize>,
    /// Use only the first N test samples.
    #[serde(default)]
    pub test_limit: Option<usize>,
    /// Random shifts of each training input by up to this many pixels (positions for 1-D data),
    /// redrawn every epoch (Hinton et al. 2015 used 2 on MNIST); the uncovered border gets the
    /// background value (a raw 0 pixel after the scaling). 0 = off.
    #[serde(default)]
    pub jitter: usize,
    /// Augmentations of each training input, applied in order after `jitter` and redrawn every
    /// epoch from the run's random streams, e.g. the CIFAR recipe
    /// `[RandomCrop(size: 32, padding: 4), HorizontalFlip(p: 0.5)]`. Evaluation never augments.
    #[serde(default)]
    pub augment: Vec<Augment>,
    /// `Shared`: every node sees the same augmented batch; `PerNode`: every trained node sees
    /// its own augmented view of the same samples (KDCL, Guo et al. 2020), drawn from its own
    /// stream. Fixed sources see the shared view.
    #[serde(default, skip_serializing_if = "Views::is_shared")]
    pub views: Views,
    /// How inputs are scaled.
    #[serde(default)]
    pub normalize: Normalization,
}

pub(crate) fn zero_fraction() -> Fraction {
    Fraction::new(0.0).expect("0 is a fraction")
}

/// Whether the nodes of a step share one augmented view of the batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Views {
    /// One view for every node.
    #[default]
    Shared,
    /// One view per trained node.
    PerNode,
}

impl Views {
    fn is_shared(&self) -> bool {
        *self == Views::Shared
    }
}

/// One augmentation of a training input. Uncovered pixels get the background value (a raw 0
/// pixel after the scaling: the zero padding of torchvision's `RandomCrop`, which pads before
/// `Normalize`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Augment {
    /// torchvision's `RandomCrop(size, padding)`: pad every side by `padding`, then crop a
    /// `size`×`size` window at a uniformly drawn position (top, then left). `size` must be the
    /// image's height and width (the input shape stays the same), so this is a shift by up to
    /// `padding` pixels on each axis.
    RandomCrop {
        /// Output height and width (the image's).
        size: usize,
        /// Padding on every side.
        padding: usize,
    },
    /// torchvision's `RandomHorizontalFlip(p)`: mirror left-right with probability `p`.
    HorizontalFlip {
        /// Probability of a flip.
        p: Fraction,
    },
    /// A shift by up to `pixels` on each axis (positions for 1-D data), as `jitter:` does.
    Jitter {
        /// Largest shift.
        pixels: usize,
    },
}

impl DataSpec {
    /// What is wrong with `augment` for samples of `shape`, as (index in `augment`, message,
    /// hint).
    pub fn augmentation_problems(&self, shape: &[usize]) -> Vec<(usize, String, Option<String>)> {
        let mut out = Vec::new();
        for (k, a) in self.augment.iter().enumerate() {
            match a {
                Augment::RandomCrop { .. } | Augment::HorizontalFlip { .. } if shape.len() != 3 => {
                    out.push((
                        k,
                        format!("this augmentation needs images, but the samples have shape {shape:?}"),
                        Some("use `Jitter(pixels: n)` for sequences".to_string()),
                    ));
                }
                Augment::RandomCrop { size, .. } if shape[1] != *size || shape[2] != *size => out.push((
                    k,
                    format!("RandomCrop's size {size} differs from the {}×{} images", shape[1], shape[2]),
                    Some(format!("crop to the image size (`size: {}`): the padding gives the shifts", shape[1])),
                )),
                _ => {}
            }
        }
        out
    }

    /// Every augmentation of a training input, in the order applied: `jitter` first, then
    /// `augment`.
    pub fn augmentations(&self) -> Vec<Augment> {
        let jitter = (self.jitter > 0).then_some(Augment::Jitter { pixels: self.jitter });
        jitter.into_iter().chain(self.augment.iter().cloned()).collect()
    }
}

/// The data sets cohort knows. Nothing is downloaded at run time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum DataSource {
    /// MNIST-1D generated in-process (4000 train / 1000 test × 40 by default).
    Mnist1d(Mnist1dParams),
    /// MNIST from the IDX files fetched by `cohort data fetch mnist` (60000 / 10000 × 1×28×28).
    Mnist(FolderSpec),
    /// CIFAR-10 binary version (`data_batch_{1..5}.bin`, `test_batch.bin`; 50000 / 10000 × 3×32×32).
    Cifar10(FolderSpec),
    /// CIFAR-100 binary version (`train.bin`, `test.bin`; 50000 / 10000 × 3×32×32), with the 100
    /// fine labels or the 20 coarse ones.
    Cifar100(Cifar100Spec),
    /// Rotated MNIST, DomainBed protocol, built from the fetched MNIST files: six domains rotated
    /// 0, 15, …, 75°; `test_domain` is held out as the test split, the other five train (each
    /// sample tagged with its domain, for `train_on: Subset(domains: …)` and `Lfme`).
    RotatedMnist(RotatedSpec),
    /// Your own arrays in one NumPy `.npz` archive (`np.savez`): `x_train`, `y_train`, `x_test`,
    /// `y_test` by default; the sample shape is the array's (see `src/data/arrays.rs`).
    Npz(NpzSpec),
    /// Your own arrays as four NumPy `.npy` files.
    Npy(NpySpec),
    /// Your own tabular data: training and test CSV files with a header row and a label column.
    Csv(CsvSpec),
    /// Your own images: one folder per class (torchvision's `ImageFolder` layout), PNG or JPEG,
    /// resized and centre-cropped to `size`×`size`.
    ImageFolder(ImageFolderSpec),
}

/// Rotated MNIST's split.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename = "Rotated")]
pub struct RotatedSpec {
    /// Held-out domain, 0..=5 (angle 15·d degrees).
    pub test_domain: usize,
    /// Seed of the shuffle that deals the 70 000 images into domains (fixed across runs, so
    /// every seed of an experiment sees the same domains).
    #[serde(default)]
    pub shuffle_seed: u32,
    /// Folder of the MNIST IDX files; default `<data root>/mnist`.
    #[serde(default)]
    pub dir: Option<PathBuf>,
}

/// Where a file-based data set lives.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default, rename = "Folder")]
pub struct FolderSpec {
    /// Folder holding the files; default `<data root>/<dataset>` where the data root is
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

/// Input scaling.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub enum Normalization {
    /// Per channel: subtract the training split's mean, divide by its std (MNIST-1D is already
    /// standardised by its generator, so this leaves it unchanged up to rounding).
    #[default]
    Standardize,
    /// Pixels in [0, 1] (bytes / 255); MNIST-1D values as generated.
    UnitRange,
    /// Per channel: `(x − mean_c) / std_c` with given statistics of pixels in [0, 1], as
    /// torchvision's `Normalize(mean, std)`; e.g. CIFAR-100's published
    /// `PerChannel(mean: [0.5071, 0.4865, 0.4409], std: [0.2673, 0.2564, 0.2762])`.
    PerChannel {
        /// Mean of each channel.
        mean: Vec<f64>,
        /// Standard deviation of each channel (> 0).
        std: Vec<f64>,
    },
}

impl DataSpec {
    /// What is wrong with `normalize` for samples of `shape`, as (message, hint).
    pub fn normalization_problem(&self, shape: &[usize]) -> Option<(String, String)> {
        let Normalization::PerChannel { mean, std } = &self.normalize else { return None };
        let channels = if shape.len() == 3 { shape[0] } else { 1 };
        if mean.len() != channels || std.len() != channels {
            return Some((
                format!("{} means and {} stds for {channels} channel(s)", mean.len(), std.len()),
                format!("give one mean and one std per channel ({channels})"),
            ));
        }
        if std.iter().chain(mean).any(|v| !v.is_finite()) || std.iter().any(|&s| s <= 0.0) {
            return Some(("every mean must be finite and every std a positive number".into(), "e.g. `std: [0.2673, 0.2564, 0.2762]`".into()));
        }
        None
    }
}

impl DataSource {
    /// Shape of one input sample and number of classes. The built-in data sets know theirs; a
    /// user's files are asked (array headers, the CSV header, the class folders), which fails when
    /// they are missing or unusable.
    pub fn input_shape(&self) -> Result<(Vec<usize>, usize), DataError> {
        Ok(match self {
            DataSource::Mnist1d(p) => (vec![p.final_seq_length], 10),
            DataSource::Mnist(_) => (vec![1, 28, 28], 10),
            DataSource::Cifar10(_) => (vec![3, 32, 32], 10),
            DataSource::Cifar100(c) => (vec![3, 32, 32], if c.labels == Cifar100Labels::Coarse { 20 } else { 100 }),
            DataSource::RotatedMnist(_) => (vec![1, 28, 28], 10),
            DataSource::Npz(s) => s.input_shape()?,
            DataSource::Npy(s) => s.input_shape()?,
            DataSource::Csv(s) => s.input_shape()?,
            DataSource::ImageFolder(s) => s.input_shape()?,
        })
    }

    /// The domains of the training split (empty for data sets without domains).
    pub fn training_domains(&self) -> Vec<usize> {
        match self {
            DataSource::RotatedMnist(r) => (0..super::rotated::DOMAINS).filter(|&d| d != r.test_domain).collect(),
            _ => Vec::new(),
        }
    }

    /// What is wrong with the data set's own parameters, as (field below `source`, message,
    /// hint); empty when they are valid. Augmentations are checked by
    /// [`DataSpec::augmentation_problems`].
    pub fn problems(&self) -> Vec<(Option<&'static str>, String, Option<String>)> {
        match self {
            DataSource::Mnist1d(p) => p.check().err().map(|m| (None, m, None)).into_iter().collect(),
            DataSource::RotatedMnist(r) if r.test_domain >= super::rotated::DOMAINS => vec![(
                Some("test_domain"),
                format!("Rotated MNIST has domains 0..={}, not {}", super::rotated::DOMAINS - 1, r.test_domain),
                Some("domain d is rotated by 15·d degrees; e.g. `test_domain: 5` holds out 75°".to_string()),
            )],
            _ => Vec::new(),
        }
    }

    /// One line for `cohort check --plan`, e.g. `MNIST (IDX files)`.
    pub fn label(&self) -> String {
        match self {
            DataSource::Mnist1d(p) => format!("MNIST-1D (generated, {} samples, seed {})", p.num_samples, p.seed),
            DataSource::Mnist(_) => "MNIST (IDX files)".to_string(),
            DataSource::Cifar10(_) => "CIFAR-10 (binary files)".to_string(),
            DataSource::Cifar100(c) => match c.labels {
                Cifar100Labels::Fine => "CIFAR-100 (binary files, 100 fine labels)".to_string(),
                Cifar100Labels::Coarse => "CIFAR-100 (binary files, 20 coarse labels)".to_string(),
            },
            DataSource::RotatedMnist(r) => format!("Rotated MNIST (test domain {}°)", super::rotated::angle(r.test_domain)),
            DataSource::Npz(s) => format!("NumPy archive {}", s.file.display()),
            DataSource::Npy(s) => format!("NumPy arrays {}, …", s.x_train.display()),
            DataSource::Csv(s) => format!("CSV files {} and {}", s.train.display(), s.test.display()),
            DataSource::ImageFolder(s) => format!("image folders {} and {} ({}×{})", s.train.display(), s.test.display(), s.size, s.size),
        }
    }
}
