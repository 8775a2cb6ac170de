//! TensorBoard event files read back with TensorBoard's own reader (scripts/read-tensorboard.py,
//! the `tensorboard` Python package that .ci/run installs into .venv-tb): every scalar of
//! `metrics.csv` is there with its step and value, once, also after an interrupted run resumed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use cohort::engine::{self, Status};
use cohort::results;

use crate::common;
use crate::common::{opts, plan};

/// A Python with the `tensorboard` package: `$COHORT_TB_PYTHON`, else `.venv-tb/bin/python`.
fn tb_python() -> Option<PathBuf> {
    let p = std::env::var_os("COHORT_TB_PYTHON").map(PathBuf::from).unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv-tb/bin/python"));
    let ok = Command::new(&p).args(["-c", "import tensorboard"]).output().is_ok_and(|o| o.status.success());
    ok.then_some(p)
}

/// (folder, tag, step) → value, as TensorBoard reads the run's event files; fails on a
/// duplicate (folder, tag, step).
fn read_events(python: &Path, run: &Path) -> HashMap<(String, String, i64), f64> {
    let out = Command::new(python).arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/read-tensorboard.py")).arg(run).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut seen = HashMap::new();
    for line in String::from_utf8(out.stdout).unwrap().lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let key = (f[0].to_string(), f[1].to_string(), f[2].parse().unwrap());
        assert!(seen.insert(key.clone(), f[3].parse().unwrap()).is_none(), "step written twice: {key:?}");
    }
    seen
}

/// Every row of `metrics.csv` is in the event files (as a 32-bit float), and nothing else.
fn assert_same(run: &Path, events: &HashMap<(String, String, i64), f64>, staged: bool) {
    let rows = results::read_metrics(&run.join("metrics.csv")).unwrap();
    assert_eq!(rows.len(), events.len(), "metrics.csv has {} rows, the event files {} scalars", rows.len(), events.len());
    for r in rows {
        let dir = if r.node == "ensemble" || r.node == "cohort" { "cohort".to_string() } else { r.node.clone() };
        let tag = if staged { format!("{}/{}/{}", r.stage, r.split, r.metric) } else { format!("{}/{}", r.split, r.metric) };
        let got = events.get(&(dir.clone(), tag.clone(), r.epoch as i64)).unwrap_or_else(|| panic!("{dir} {tag} step {} missing", r.epoch));
        assert_eq!(*got, r.value as f32 as f64, "{dir} {tag} step {}", r.epoch);
    }
}

const PEERS: &str = r#"Experiment(
    name: "tb",
    data: (source: Mnist1d(num_samples: 1000), train_limit: 300, test_limit: 100),
    nodes: [Node(id: "a", model: Mlp(hidden: [16])), Node(id: "b", model: Mlp(hidden: [16]))],
    edges: [Edge(to: "a", loss: CrossEntropy), Edge(to: "b", loss: CrossEntropy), Mutual(peers: ["a", "b"])],
    training: (epochs: 4, batch_size: 50, optimizer: Adam(lr: 0.01)),
)"#;

#[test]
fn event_files_hold_every_metric_once_after_a_resume() {
    let Some(python) = tb_python() else {
        common::skip("event_files_hold_every_metric_once_after_a_resume", "no Python with the tensorboard package (.venv-tb or COHORT_TB_PYTHON)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let full = engine::run(&plan(PEERS, &tmp.path().join("full")), &opts(PEERS)).unwrap();
    let p = plan(PEERS, &tmp.path().join("cut"));
    let mut o = opts(PEERS);
    o.stop_after_epochs = Some(2);
    let cut = engine::run(&p, &o).unwrap();
    assert_eq!(cut[0].status, Status::Stopped);
    let run = cut[0].dir.clone();
    // visible while training: the first two epochs are on file
    assert_same(&run, &read_events(&python, &run), false);
    // records the resumed run must not keep: epochs 1 and 2 again and epochs 3 and 4 of another
    // run, as a crash after writing events but before saving the state would leave them
    let event_file = |run: &Path| std::fs::read_dir(run.join("tensorboard/a")).unwrap().next().unwrap().unwrap().path();
    let f = event_file(&run);
    let mut bytes = std::fs::read(&f).unwrap();
    bytes.extend(std::fs::read(event_file(&full[0].dir)).unwrap());
    std::fs::write(&f, bytes).unwrap();
    let mut o = opts(PEERS);
    o.resume = true;
    assert_eq!(engine::run(&p, &o).unwrap()[0].status, Status::Complete);
    assert_eq!(event_file(&run), f, "the resumed run continues the same file");
    assert_same(&run, &read_events(&python, &run), false);
}

#[test]
fn stages_prefix_the_tags_and_no_tensorboard_writes_none() {
    let src = r#"Experiment(
        name: "staged",
        data: (source: Mnist1d(num_samples: 1000), train_limit: 300, test_limit: 100),
        nodes: [Node(id: "teacher", model: Mlp(hidden: [16])), Node(id: "student", model: Mlp(hidden: [8]))],
        edges: [
            Edge(to: "teacher", loss: CrossEntropy),
            Edge(to: "student", loss: CrossEntropy),
            Edge(from: ["teacher"], to: "student", loss: SoftTarget(temperature: 4.0)),
        ],
        stages: [Stage(name: "teacher", train: ["teacher"], epochs: 1), Stage(name: "student", train: ["student"], epochs: 2)],
        training: (batch_size: 50, optimizer: Sgd(lr: 0.1)),
    )"#;
    let tmp = tempfile::tempdir().unwrap();
    let mut o = opts(src);
    o.tensorboard = false;
    let off = engine::run(&plan(src, &tmp.path().join("off")), &o).unwrap();
    assert!(!off[0].dir.join("tensorboard").exists(), "--no-tensorboard wrote event files");
    let Some(python) = tb_python() else {
        common::skip("stages_prefix_the_tags_and_no_tensorboard_writes_none", "no Python with the tensorboard package (.venv-tb or COHORT_TB_PYTHON)");
        return;
    };
    let on = engine::run(&plan(src, &tmp.path().join("on")), &opts(src)).unwrap();
    let events = read_events(&python, &on[0].dir);
    assert!(events.contains_key(&("teacher".into(), "student/test/accuracy".into(), 0)), "the fixed teacher's evaluation before the student stage");
    assert_same(&on[0].dir, &events, true);
}
