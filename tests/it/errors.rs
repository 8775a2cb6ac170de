//! Every user-facing message of the engine, the result files and the command line's arguments,
//! with the exit code its variant decides, as a reviewed snapshot (`cargo insta review` after a
//! deliberate change). The messages of experiment files have their own snapshots
//! (`tests/config.rs`); these are built directly, one per variant.

use std::path::PathBuf;

use cohort::engine::EngineError;
use cohort::error::{Error, UsageError};
use cohort::results::ResultsError;

fn line(e: Error) -> String {
    format!("exit {}: {e}", e.exit_code())
}

#[test]
fn engine_errors_name_the_place_and_the_fix() {
    let dir = PathBuf::from("results/dml/seed-0");
    let errors = [
        EngineError::BackendMissing { backend: "cuda" },
        EngineError::NoSuchDevice { index: 1, backend: "flex" },
        EngineError::NodePlacement { node: "peer2".into(), source: Box::new(EngineError::BackendMissing { backend: "tch" }) },
        EngineError::NoAdapter,
        EngineError::AdapterIndex { index: 2, adapters: "0: NVIDIA H100 (discrete GPU; Vulkan, NVIDIA 550.54); 1: llvmpipe (LLVM 15.0.6, 256 bits) (software, on the CPU; Vulkan, llvmpipe Mesa 22.3.6 (LLVM 15.0.6))".into() },
        EngineError::AlreadyComplete { dir: dir.clone() },
        EngineError::Interrupted { dir: dir.clone() },
        EngineError::ExperimentChanged { dir: dir.clone() },
        EngineError::InitialCheckpoint { node: "teacher".into(), path: "teacher.bpk".into(), problem: "tensor not found".into() },
        EngineError::Checkpoint { path: dir.join("state/a.bpk"), problem: "unexpected end of file".into() },
        EngineError::Serialise { path: dir.join("state/a.bpk"), problem: "unsupported dtype".into() },
        EngineError::Recorded { node: "teacher".into(), path: "t.logits.json".into(), problem: "format `x`, expected `cohort-logits/1`".into() },
    ];
    let text: Vec<String> = errors.into_iter().map(|e| line(e.into())).collect();
    insta::assert_snapshot!("engine", text.join("\n"));
}

#[test]
fn argument_and_result_file_errors() {
    let run = PathBuf::from("results/ev/seed-0");
    let errors: Vec<Error> = vec![
        UsageError::BadValue { argument: "--logit-bias", value: "bad".into(), expected: "expected CLASS=VALUE with a finite VALUE, e.g. `3=3.5`".into() }
            .into(),
        UsageError::UnknownNode { run: run.clone(), node: "nope".into(), known: vec!["a".into(), "b".into()] }.into(),
        ResultsError::io(run.join("metrics.csv"), std::io::Error::from(std::io::ErrorKind::NotFound)).into(),
        ResultsError::malformed(run.join("summary.json"), "expected value at line 1 column 1").into(),
        ResultsError::NotARun { path: "results/ev".into() }.into(),
        ResultsError::NoRuns { path: "results/ev".into() }.into(),
        ResultsError::Drawing { path: run.join("charts/curves.png"), message: "font not found".into() }.into(),
        Error::io("results/ev", std::io::Error::from(std::io::ErrorKind::PermissionDenied)),
    ];
    let text: Vec<String> = errors.into_iter().map(line).collect();
    insta::assert_snapshot!("usage_and_results", text.join("\n"));
}

/// A full disk is recognised by the I/O error's kind, wherever it is wrapped, not by its text.
#[test]
fn a_full_disk_is_recognised_by_kind() {
    let full = || std::io::Error::from(std::io::ErrorKind::StorageFull);
    assert!(Error::io("x", full()).is_storage_full());
    assert!(Error::from(ResultsError::io("metrics.csv", full())).is_storage_full());
    assert!(!Error::io("x", std::io::Error::other("No space left on device")).is_storage_full());
    assert!(!Error::from(ResultsError::NoRuns { path: "x".into() }).is_storage_full());
}
