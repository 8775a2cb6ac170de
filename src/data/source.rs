//! The one trait every data source implements ([`Source`]): the spec written in `data:
//! Data(source: …)` knows its sample shape and classes, its domains, its own checks, its
//! description and how to load its train/test splits. [`super::spec::DataSource`] is the closed
//! enum of them, with one [`super::spec::DataSource::source`] dispatch, as `ModelSpec` has for
//! architectures and `LossSpec` for losses.

use std::path::Path;

use super::{DataError, Splits};

/// A problem with a source's own parameters: the field below `source` (or `None` for the
/// source as a whole), the message and a hint.
pub type Problem = (Option<&'static str>, String, Option<String>);

/// One kind of data set.
pub trait Source {
    /// One line for plans, e.g. `MNIST (IDX files)`.
    fn description(&self) -> String;

    /// Shape of one input sample (channels first, no batch) and number of classes. The
    /// built-in data sets know theirs; a user's files are asked (headers only).
    fn input_shape(&self) -> Result<(Vec<usize>, usize), DataError>;

    /// The domains of the training split (empty for data sets without domains).
    fn domains(&self) -> Vec<usize> {
        Vec::new()
    }

    /// What is wrong with its own parameters (empty when they are valid).
    fn problems(&self) -> Vec<Problem> {
        Vec::new()
    }

    /// Its standard train/test splits, raw (MNIST-1D as generated, pixels in [0, 1]); default
    /// folders are found under the data root `root`.
    fn load(&self, root: &Path) -> Result<Splits, DataError>;

    /// Whether its samples come standardised already, so that the default normalisation
    /// (`Standardize`) leaves them as they are (MNIST-1D's generator standardises).
    fn standardized_already(&self) -> bool {
        false
    }
}
