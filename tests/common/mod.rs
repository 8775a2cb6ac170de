//! Helpers of the integration tests that run the engine in-process (`mod common;`).
#![allow(dead_code)] // each test crate uses its own part

use std::path::Path;

use cohort::config::{self, Plan};
use cohort::engine::RunOptions;

/// The experiment text `src` parsed and resolved (panics with the diagnostic), results under `out`.
pub fn plan(src: &str, out: &Path) -> Plan {
    let mut p = config::plan_from_str(src, Path::new("test.ron")).unwrap_or_else(|e| panic!("{e}"));
    p.output = out.to_path_buf();
    p
}

/// A fresh, quiet run of the experiment text `text`: no resume, no overwrite, no epoch limit;
/// data sets from the usual root (`$COHORT_DATA`, else `./data`).
pub fn opts(text: &str) -> RunOptions {
    RunOptions {
        data_root: cohort::data::data_root(None),
        resume: false,
        overwrite: false,
        progress: false,
        experiment_file: "test.ron".into(),
        experiment_text: text.into(),
        stop_after_epochs: None,
    }
}
