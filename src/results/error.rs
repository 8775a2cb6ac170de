//! What can go wrong with result files.

use std::path::PathBuf;

/// A result file or folder that cannot be read, written or used.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    /// Reading or writing failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// A file exists but its contents do not parse.
    #[error("{}: {problem}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        problem: String,
    },
    /// A folder that should be a run folder is not one.
    #[error("{} has no metrics.csv: pass a run folder (results/<experiment>/seed-<n>) or an experiment folder", path.display())]
    NotARun {
        /// The folder.
        path: PathBuf,
    },
    /// An experiment folder without runs.
    #[error("{}: no run folders with metrics.csv found", path.display())]
    NoRuns {
        /// The folder.
        path: PathBuf,
    },
    /// A chart could not be drawn.
    #[error("{}: drawing failed: {message}", path.display())]
    Drawing {
        /// The chart file.
        path: PathBuf,
        /// plotters' message.
        message: String,
    },
}

impl ResultsError {
    /// An I/O failure on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ResultsError::Io { path: path.into(), source }
    }
    /// A file of `path` that does not parse.
    pub fn malformed(path: impl Into<PathBuf>, problem: impl std::fmt::Display) -> Self {
        ResultsError::Malformed { path: path.into(), problem: problem.to_string() }
    }
    /// The underlying I/O error, if the failure was one.
    pub fn io_error(&self) -> Option<&std::io::Error> {
        match self {
            ResultsError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
