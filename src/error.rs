//! The crate's error and the process exit codes.

use std::path::PathBuf;

use crate::config::ConfigError;
use crate::data::DataError;

/// Exit code of a run that could not proceed (missing data, I/O, divergence, …).
pub const EXIT_FAILURE: i32 = 1;
/// Exit code of a run stopped by SIGINT/SIGTERM (resumable with `--resume`), as shells use.
pub const EXIT_INTERRUPTED: i32 = 130;
/// Exit code of invalid input: a malformed or inconsistent experiment file, bad arguments.
pub const EXIT_INVALID: i32 = 2;

/// Everything that can go wrong in a command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An experiment file is malformed or inconsistent.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// A data set is missing or damaged.
    #[error("{0}")]
    Data(#[from] DataError),
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// The command cannot do what was asked.
    #[error("{0}")]
    Unsupported(String),
    /// A sweep's grid or base file is invalid.
    #[error("{0}")]
    Sweep(#[from] crate::sweep::SweepError),
}

impl Error {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Config(_) | Error::Sweep(_) => EXIT_INVALID,
            _ => EXIT_FAILURE,
        }
    }
    /// Wraps an I/O error with its path.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
}
