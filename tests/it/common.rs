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
        tensorboard: true,
        interrupt: Default::default(),
    }
}

/// Ends a test that needs something this machine lacks (MNIST not fetched, no permission to
/// mount a tmpfs): says so on the terminal (past the test harness's output capture) and in
/// `<target>/tmp/skipped-tests.txt`, which `.ci/run` prints. Where `COHORT_REQUIRE_ALL` is set
/// (CI sets it) nothing may be skipped, and the test fails instead.
pub fn skip(test: &str, why: &str) {
    if std::env::var_os("COHORT_REQUIRE_ALL").is_some() {
        panic!("{test} cannot run here ({why}), and COHORT_REQUIRE_ALL forbids skipping it");
    }
    let line = format!("SKIPPED {test}: {why}\n");
    let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
    let log = Path::new(env!("CARGO_TARGET_TMPDIR")).join("skipped-tests.txt");
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(log) {
        let _ = std::io::Write::write_all(&mut f, line.as_bytes());
    }
}

/// Metric rows of a finished run, in file order: `"stage epoch node split metric"` → value.
pub fn metric_rows(dir: &Path) -> Vec<(String, f64)> {
    cohort::results::read_metrics(&dir.join("metrics.csv"))
        .unwrap()
        .into_iter()
        .map(|r| (format!("{} {} {} {} {}", r.stage, r.epoch, r.node, r.split, r.metric), r.value))
        .collect()
}

/// A CIFAR-100 file set in the binary format (`train.bin`, `test.bin`) of `records` records per
/// split under `dir`; `record(split, r)` (split 0 train, 1 test) gives record r's coarse label,
/// fine label and 3072 pixels.
pub fn write_cifar100(dir: &Path, records: usize, record: impl Fn(usize, usize) -> (u8, u8, Vec<u8>)) {
    std::fs::create_dir_all(dir).unwrap();
    for (s, name) in ["train.bin", "test.bin"].iter().enumerate() {
        let mut bytes = Vec::new();
        for r in 0..records {
            let (coarse, fine, pixels) = record(s, r);
            bytes.extend([coarse, fine]);
            bytes.extend(pixels);
        }
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

/// Holds burn's global random generator for the rest of the scope (see
/// [`cohort::engine::generator_guard`]): a test that draws random tensors or initialises networks
/// outside the engine takes it, so that its draws never interleave with a run's weight draws on
/// another test thread (`cargo test` runs the topics' tests side by side in one process).
pub fn rng() -> std::sync::MutexGuard<'static, ()> {
    cohort::engine::generator_guard()
}
