//! The crate's error and the process exit codes. Each area has its own error enum; [`Error`]
//! wraps them and its variant alone decides the exit code ([`Error::exit_code`]).

use std::path::PathBuf;

use crate::config::ConfigError;
use crate::config::overrides::OverrideError;
use crate::data::DataError;
use crate::engine::EngineError;
use crate::results::ResultsError;
use crate::sweep::SweepError;

/// Exit code of a run that could not proceed (missing data, I/O, divergence, …).
pub const EXIT_FAILURE: i32 = 1;
/// Exit code of a run stopped by SIGINT/SIGTERM (resumable with `--resume`), as shells use.
pub const EXIT_INTERRUPTED: i32 = 130;
/// Exit code of invalid input: a malformed or inconsistent experiment file, bad arguments.
pub const EXIT_INVALID: i32 = 2;

/// A command-line argument that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    /// An argument's value is malformed or out of range.
    #[error("{argument} {value}: {expected}")]
    BadValue {
        /// The argument, e.g. `--logit-bias`.
        argument: &'static str,
        /// The value given.
        value: String,
        /// What is expected instead.
        expected: String,
    },
    /// `--node` names no node of the run.
    #[error("{}: no node `{node}`; the run's nodes are {}", run.display(), known.join(", "))]
    UnknownNode {
        /// The run folder.
        run: PathBuf,
        /// The id given.
        node: String,
        /// The run's node ids.
        known: Vec<String>,
    },
}

/// Everything that can go wrong in a command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An experiment file is malformed or inconsistent.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// A sweep's grid or base file is invalid.
    #[error("{0}")]
    Sweep(#[from] SweepError),
    /// A `--set` override cannot be applied.
    #[error("{0}")]
    Override(#[from] OverrideError),
    /// A command-line argument cannot be used.
    #[error("{0}")]
    Usage(#[from] UsageError),
    /// A data set is missing or damaged.
    #[error("{0}")]
    Data(#[from] DataError),
    /// A run cannot start or go on.
    #[error("{0}")]
    Engine(EngineError),
    /// A result file cannot be read, written or used.
    #[error("{0}")]
    Results(#[from] ResultsError),
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// A worker process could not be started or waited for.
    #[error("{what}: {source}")]
    Process {
        /// Which process, and what was being done.
        what: String,
        /// The failure.
        source: std::io::Error,
    },
}

impl From<EngineError> for Error {
    /// The engine's data, result-file and I/O failures are those of the whole command.
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Data(d) => Error::Data(d),
            EngineError::Results(r) => Error::Results(r),
            EngineError::Io { path, source } => Error::Io { path, source },
            e => Error::Engine(e),
        }
    }
}

impl Error {
    /// The process exit code for this error: 2 for invalid input (experiment file, sweep grid,
    /// arguments), 1 for everything that failed while doing what was asked.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Config(_) | Error::Sweep(_) | Error::Override(_) | Error::Usage(_) => EXIT_INVALID,
            Error::Engine(crate::engine::EngineError::TermData { .. }) => EXIT_INVALID,
            Error::Data(_) | Error::Engine(_) | Error::Results(_) | Error::Io { .. } | Error::Process { .. } => EXIT_FAILURE,
        }
    }

    /// Wraps an I/O error with its path.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    /// The I/O error underneath, if the failure was one.
    pub fn io_error(&self) -> Option<&std::io::Error> {
        match self {
            Error::Io { source, .. } | Error::Process { source, .. } => Some(source),
            Error::Results(e) => e.io_error(),
            Error::Data(e) => e.io_error(),
            _ => None,
        }
    }

    /// Whether the failure was a full disk (then completed epochs are saved and `--resume`
    /// continues once there is space).
    pub fn is_storage_full(&self) -> bool {
        self.io_error().is_some_and(|e| e.kind() == std::io::ErrorKind::StorageFull)
    }
}
