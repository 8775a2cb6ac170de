//! The only owner of result files. A run folder `<output>/<experiment>/seed-<seed>/` holds
//! `metrics.csv` (tidy long format, [`metrics`]), `summary.json` ([`summary`]), `manifest.ron`
//! ([`manifest`]), `checkpoints/`, `state/` (for `--resume`) and `log.txt`; [`dirs`] names every
//! path. Every file is written atomically (temporary file, then rename), so an interrupted run
//! never leaves half a file. The engine writes these files and `plot`, `cli` and the sweep read
//! them back through this module only.

pub mod dirs;
pub mod error;
pub mod manifest;
pub mod metrics;
pub mod summary;
pub mod tensorboard;

pub use dirs::{ExperimentDir, RunDir, StateDir};
pub use error::ResultsError;
pub use manifest::Manifest;
pub use metrics::{MetricRow, read_metrics, write_metrics};
pub use summary::{Best, Divergence, NodeSummary, RunStatus, StageSummary, Summary, Timing, read_summary, summarize, write_summary};
