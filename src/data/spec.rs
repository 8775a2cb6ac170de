//! The data part of an experiment file (`data: Data(...)`): which data set, the split and the
//! input scaling. Plain serde types checked while parsing, like the rest of the schema
//! (`crate::config::schema`), but owned here so that data sets depend on nothing in `config`.

use serde::{Deserialize, Serialize};

use super::DataError;
pub use super::arrays::{NpySpec, NpzSpec};
pub use super::cifar::{Cifar10Spec, Cifar100Spec};
pub use super::idx::MnistSpec;
pub use super::images::ImageFolderSpec;
pub use super::mnist1d::Mnist1dParams;
pub use super::rotated::RotatedSpec;
use super::source::{Problem, Source};
pub use super::table::CsvSpec;
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
    Mnist(MnistSpec),
    /// CIFAR-10 binary version (`data_batch_{1..5}.bin`, `test_batch.bin`; 50000 / 10000 × 3×32×32).
    Cifar10(Cifar10Spec),
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
    /// The source: everything cohort needs to know of the data set.
    pub fn source(&self) -> &dyn Source {
        match self {
            DataSource::Mnist1d(s) => s,
            DataSource::Mnist(s) => s,
            DataSource::Cifar10(s) => s,
            DataSource::Cifar100(s) => s,
            DataSource::RotatedMnist(s) => s,
            DataSource::Npz(s) => s,
            DataSource::Npy(s) => s,
            DataSource::Csv(s) => s,
            DataSource::ImageFolder(s) => s,
        }
    }

    /// Shape of one input sample and number of classes ([`Source::input_shape`]).
    pub fn input_shape(&self) -> Result<(Vec<usize>, usize), DataError> {
        self.source().input_shape()
    }

    /// The domains of the training split (empty for data sets without domains).
    pub fn training_domains(&self) -> Vec<usize> {
        self.source().domains()
    }

    /// What is wrong with the data set's own parameters, as (field below `source`, message,
    /// hint); empty when they are valid. Augmentations are checked by
    /// [`DataSpec::augmentation_problems`].
    pub fn problems(&self) -> Vec<Problem> {
        self.source().problems()
    }

    /// One line for `cohort check --plan`, e.g. `MNIST (IDX files)`.
    pub fn label(&self) -> String {
        self.source().description()
    }
}
