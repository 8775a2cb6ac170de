//! The engine end to end on small MNIST-1D runs: files, determinism, the effect of the
//! exchange, detached fixed sources, resume, divergence, and the quick start's accuracy.

use std::path::Path;

use cohort::config::{self, Plan};
use cohort::engine::{self, Status};
use cohort::results;

use crate::common::{opts, plan};

/// Two small MLP peers on 600 MNIST-1D samples; `edges` and `update` vary.
fn peers(edges: &str, update: &str, epochs: usize) -> String {
    format!(
        r#"Experiment(
            name: "peers",
            data: (source: Mnist1d(num_samples: 1000), validation: 0.1, train_limit: 600, test_limit: 200),
            nodes: [
                Node(id: "a", model: Mlp(hidden: [32], dropout: 0.1)),
                Node(id: "b", model: Mlp(hidden: [32])),
            ],
            edges: [
                Edge(to: "a", loss: CrossEntropy),
                Edge(to: "b", loss: CrossEntropy),
                {edges}
            ],
            training: (epochs: {epochs}, batch_size: 50, optimizer: Adam(lr: 0.01), update: {update}, seeds: [3]),
        )"#
    )
}

/// Logits of node `a` loaded from `checkpoint` on 100 test samples.
fn predictions(p: &Plan, checkpoint: &Path) -> Vec<f32> {
    let (device, _) = engine::backend_device();
    let m = engine::load_checkpoint(&p.nodes[0].model, &p.input_shape, p.classes, checkpoint, &device).unwrap();
    let data = cohort::data::prepare(&p.data, Path::new("data"), 0).unwrap();
    engine::eval::predict(&m, &data.test, 100, &device).values
}

fn metrics_bytes(dir: &Path) -> Vec<u8> {
    std::fs::read(dir.join("metrics.csv")).unwrap()
}

#[test]
fn run_writes_results_and_is_deterministic() {
    let src = peers(r#"Mutual(peers: ["a", "b"])"#, "Simultaneous", 2);
    let tmp = tempfile::tempdir().unwrap();
    let p = plan(&src, &tmp.path().join("one"));
    let out = engine::run(&p, &opts(&src)).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].status, Status::Complete);
    let dir = &out[0].dir;
    assert!(dir.ends_with("peers/seed-3"));
    for f in ["metrics.csv", "summary.json", "manifest.ron", "log.txt", "checkpoints/a.bpk", "checkpoints/b.bpk"] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    assert!(!dir.join("state").exists(), "state is removed once the run is complete");
    let rows = results::read_metrics(&dir.join("metrics.csv")).unwrap();
    for node in ["a", "b", "ensemble"] {
        for split in ["validation", "test"] {
            assert!(rows.iter().any(|r| r.node == node && r.split == split && r.metric == "accuracy" && r.epoch == 2));
        }
    }
    assert!(rows.iter().any(|r| r.node == "cohort" && r.metric == "agreement"));
    assert!(rows.iter().filter(|r| r.metric == "loss").all(|r| r.value.is_finite()));
    let summary = results::read_summary(&dir.join("summary.json")).unwrap();
    assert_eq!(summary.status, results::RunStatus::Complete);
    assert!(summary.stages[0].nodes["a"].best_validation.is_some());
    let manifest = std::fs::read_to_string(dir.join("manifest.ron")).unwrap();
    for key in ["experiment_sha256", "backend: \"flex\"", "git_revision", "threads", "seed: 3"] {
        assert!(manifest.contains(key), "manifest lacks {key}");
    }
    // the same seed twice: byte-identical metrics
    let p2 = plan(&src, &tmp.path().join("two"));
    let out2 = engine::run(&p2, &opts(&src)).unwrap();
    assert_eq!(metrics_bytes(dir), metrics_bytes(&out2[0].dir));
    // an existing complete run is not silently overwritten
    let err = engine::run(&p, &opts(&src)).unwrap_err().to_string();
    assert!(err.contains("--overwrite"), "{err}");
}

#[test]
fn the_exchange_changes_training_and_update_orders_differ() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |name: &str, edges: &str, update: &str| {
        let src = peers(edges, update, 1);
        engine::run(&plan(&src, &tmp.path().join(name)), &opts(&src)).unwrap()[0].dir.clone()
    };
    let independent = metrics_bytes(&run("ind", "", "Simultaneous"));
    let dml = metrics_bytes(&run("dml", r#"Mutual(peers: ["a", "b"])"#, "Simultaneous"));
    let dml_seq = metrics_bytes(&run("seq", r#"Mutual(peers: ["a", "b"])"#, "Sequential"));
    assert_ne!(independent, dml);
    assert_ne!(dml, dml_seq);
    // without an exchange the update order cannot matter
    assert_eq!(independent, metrics_bytes(&run("ind-seq", "", "Sequential")));
}

/// A source trained in stage 1 stays bit-identical while stage 2 distils it into a student.
#[test]
fn fixed_sources_are_not_changed_by_distillation() {
    let src = r#"Experiment(
        name: "chain",
        data: (source: Mnist1d(num_samples: 1000), train_limit: 400, test_limit: 100),
        nodes: [Node(id: "teacher", model: Mlp(hidden: [32])), Node(id: "student", model: Mlp(hidden: [8]))],
        edges: [
            Edge(to: "teacher", loss: CrossEntropy),
            Edge(to: "student", loss: CrossEntropy, weight: 0.5),
            Edge(from: ["teacher"], to: "student", loss: SoftTarget(temperature: 4.0), weight: 0.5),
        ],
        stages: [Stage(name: "teacher", train: ["teacher"], epochs: 1), Stage(name: "student", train: ["student"], epochs: 2)],
        training: (batch_size: 50, optimizer: Sgd(lr: 0.1, momentum: 0.9)),
    )"#;
    let tmp = tempfile::tempdir().unwrap();
    let p = plan(src, tmp.path());
    let mut o = opts(src);
    o.stop_after_epochs = Some(2); // teacher epoch + first student epoch
    let out = engine::run(&p, &o).unwrap();
    assert_eq!(out[0].status, Status::Stopped);
    let dir = &out[0].dir;
    let after_stage1 = std::fs::read(dir.join("checkpoints/teacher.bpk")).unwrap();
    let after_student_epoch = std::fs::read(dir.join("state/teacher.bpk")).unwrap();
    assert_eq!(after_stage1, after_student_epoch, "the teacher's weights changed during distillation");
    // the fixed teacher is evaluated once before the student stage (epoch 0)
    let rows = results::read_metrics(&dir.join("metrics.csv")).unwrap();
    assert!(rows.iter().any(|r| r.stage == "student" && r.epoch == 0 && r.node == "teacher" && r.metric == "accuracy"));
}

#[test]
fn resume_after_interruption_matches_uninterrupted_run() {
    let src = peers(r#"Mutual(peers: ["a", "b"])"#, "Sequential", 3);
    let tmp = tempfile::tempdir().unwrap();
    let full = engine::run(&plan(&src, &tmp.path().join("full")), &opts(&src)).unwrap();
    let p = plan(&src, &tmp.path().join("cut"));
    let mut o = opts(&src);
    o.stop_after_epochs = Some(2);
    assert_eq!(engine::run(&p, &o).unwrap()[0].status, Status::Stopped);
    // without --resume the interrupted run is protected
    assert!(engine::run(&p, &opts(&src)).unwrap_err().to_string().contains("--resume"));
    let mut o = opts(&src);
    o.resume = true;
    let resumed = engine::run(&p, &o).unwrap();
    assert_eq!(resumed[0].status, Status::Complete);
    assert_eq!(metrics_bytes(&full[0].dir), metrics_bytes(&resumed[0].dir));
    // same final weights (the files differ only in burn's random parameter ids)
    assert_eq!(predictions(&p, &full[0].dir.join("checkpoints/a.bpk")), predictions(&p, &resumed[0].dir.join("checkpoints/a.bpk")));
    // resuming a complete run skips it
    assert_eq!(engine::run(&p, &o).unwrap()[0].status, Status::AlreadyComplete);
}

#[test]
fn divergence_stops_the_run_cleanly() {
    let src = peers("", "Simultaneous", 2).replace("Adam(lr: 0.01)", "Sgd(lr: 1000.0)");
    let tmp = tempfile::tempdir().unwrap();
    let out = engine::run(&plan(&src, tmp.path()), &opts(&src)).unwrap();
    let Status::Diverged(d) = &out[0].status else { panic!("expected divergence, got {:?}", out[0].status) };
    assert_eq!(d.stage, "main");
    let summary = results::read_summary(&out[0].dir.join("summary.json")).unwrap();
    assert_eq!(summary.status, results::RunStatus::Diverged);
    assert_eq!(summary.diverged.as_ref(), Some(d));
    // the other seeds of the run still run
    let src2 = src.replace("seeds: [3]", "seeds: [3, 4]");
    let out2 = engine::run(&plan(&src2, &tmp.path().join("two")), &opts(&src2)).unwrap();
    assert_eq!(out2.len(), 2);
    assert!(out2.iter().all(|o| o.dir.join("summary.json").exists()));
}

#[test]
fn unwritable_output_is_a_clear_error() {
    let src = peers("", "Simultaneous", 1);
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("not-a-folder");
    std::fs::write(&file, "x").unwrap();
    let err = engine::run(&plan(&src, &file.join("results")), &opts(&src)).unwrap_err().to_string();
    assert!(err.contains("not-a-folder"), "{err}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "x", "nothing was overwritten");
}

/// The README's quick start: 2 DML peers (1-D CNN) on MNIST-1D reach >= 80 % test accuracy.
#[test]
fn quickstart_peers_reach_80_percent() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/quickstart.ron");
    let (mut p, text) = config::load_plan(&path).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    p.output = tmp.path().to_path_buf();
    let out = engine::run(&p, &opts(&text)).unwrap();
    let summary = results::read_summary(&out[0].dir.join("summary.json")).unwrap();
    for peer in ["peer1", "peer2"] {
        let acc = summary.stages[0].nodes[peer].last["test_accuracy"];
        assert!(acc >= 0.80, "{peer} reached only {acc}");
    }
}

/// Isolation: a node trained next to an independent peer (no exchange) trains bit-identically
/// whatever that peer is — weights (burn initialises parameters lazily: regression test for
/// weights that depended on what the other node drew first), graphs, optimisers and dropout
/// streams of peers do not touch each other.
#[test]
fn independent_peers_do_not_influence_each_other() {
    let two = r#"Experiment(
        name: "pair",
        data: (source: Mnist1d(num_samples: 1000), train_limit: 300, test_limit: 50),
        nodes: [Node(id: "x", model: Mlp(hidden: [16], dropout: 0.2)), Node(id: "y", model: Mlp(hidden: [24], dropout: 0.1))],
        edges: [Edge(to: "x", loss: CrossEntropy), Edge(to: "y", loss: CrossEntropy)],
        training: (epochs: 2, batch_size: 30, optimizer: Adam(lr: 0.01), concurrency: Serial, seeds: [1]),
    )"#;
    let tmp = tempfile::tempdir().unwrap();
    let p2 = plan(two, &tmp.path().join("two"));
    let out2 = engine::run(&p2, &opts(two)).unwrap();
    // the peer x replaced by a different architecture: its work changes, y's must not
    let other = two.replace("Mlp(hidden: [16], dropout: 0.2)", "Mlp(hidden: [48, 8], dropout: 0.5)");
    let p3 = plan(&other, &tmp.path().join("other"));
    let out3 = engine::run(&p3, &opts(&other)).unwrap();
    let rows = |d: &Path| -> Vec<String> {
        results::read_metrics(&d.join("metrics.csv")).unwrap().into_iter().filter(|r| r.node == "y").map(|r| format!("{r:?}")).collect()
    };
    assert_eq!(rows(&out2[0].dir), rows(&out3[0].dir), "peer y's training changed with its independent neighbour");
}

/// Parallel peers (one thread each) and serial peers compute the same cohort step: identical
/// metrics for a DML pair with dropout.
#[test]
fn threads_and_serial_execution_agree() {
    let base = peers(r#"Mutual(peers: ["a", "b"])"#, "Simultaneous", 2);
    let tmp = tempfile::tempdir().unwrap();
    let mut dirs = Vec::new();
    for c in ["Threads", "Serial"] {
        let src = base.replace("update: Simultaneous,", &format!("update: Simultaneous, concurrency: {c},"));
        dirs.push(engine::run(&plan(&src, &tmp.path().join(c)), &opts(&src)).unwrap()[0].dir.clone());
    }
    assert_eq!(metrics_bytes(&dirs[0]), metrics_bytes(&dirs[1]));
}

/// Column norms of the first hidden layer's weight `[40, 32]` of node `a` in `checkpoint`.
fn hidden_column_norms(p: &Plan, checkpoint: &Path) -> Vec<f32> {
    use burn::module::{Module, ModuleVisitor, Param};
    use burn::tensor::Tensor;
    struct First(Option<Vec<f32>>);
    impl ModuleVisitor for First {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let w = param.val();
            if self.0.is_none() && w.dims().len() == 2 {
                let device = w.device();
                let t: Tensor<2> = Tensor::from_data(w.into_data(), &device);
                self.0 = Some(t.powi_scalar(2).sum_dim(0).sqrt().into_data().try_into_vec::<f32>().unwrap());
            }
        }
    }
    let (device, _) = engine::backend_device();
    let m = engine::load_checkpoint(&p.nodes[0].model, &p.input_shape, p.classes, checkpoint, &device).unwrap();
    let mut v = First(None);
    m.visit(&mut v);
    v.0.unwrap()
}

#[test]
fn max_norm_bounds_the_hidden_units_incoming_weights() {
    let run = |model: &str, name: &str| {
        let src = format!(
            r#"Experiment(
                name: "{name}",
                data: (source: Mnist1d(num_samples: 1000), validation: 0.1, train_limit: 300, test_limit: 100),
                nodes: [Node(id: "a", model: {model})],
                edges: [Edge(to: "a", loss: CrossEntropy)],
                training: (epochs: 1, batch_size: 50, optimizer: Sgd(lr: 0.5, momentum: 0.9), seeds: [1]),
            )"#
        );
        let tmp = tempfile::tempdir().unwrap();
        let p = plan(&src, tmp.path());
        let out = engine::run(&p, &opts(&src)).unwrap();
        hidden_column_norms(&p, &out[0].dir.join("checkpoints/a.bpk"))
    };
    let free = run("Mlp(hidden: [32])", "free");
    let c = 0.6;
    assert!(free.iter().any(|&n| n > c * 1.2), "without the constraint some unit grows past {c}: {free:?}");
    let bounded = run("Mlp(hidden: [32], max_norm: 0.6)", "bounded");
    assert!(bounded.iter().all(|&n| n <= c + 1e-5), "{bounded:?}");
    assert!(bounded.iter().any(|&n| n > c - 1e-4), "the bound is reached: {bounded:?}");
}

/// CRD between two DML peers (both directions), interrupted after an epoch and resumed: the
/// memory banks and their constants travel with the run's state and the negatives are drawn
/// from the run's streams, so the resumed run's metrics are the uninterrupted run's byte for byte
/// (a bank restarted from its initial draw, or constants fixed anew, would change them).
#[test]
fn crd_resumes_with_its_memory_bank() {
    let src = r#"Experiment(
        name: "crd-resume",
        data: (source: Mnist1d(num_samples: 1000), train_limit: 200, test_limit: 50),
        nodes: [Node(id: "a", model: Mlp(hidden: [16])), Node(id: "b", model: Mlp(hidden: [16]))],
        edges: [
            Edge(to: "a", loss: CrossEntropy), Edge(to: "b", loss: CrossEntropy),
            Mutual(peers: ["a", "b"]),
            Edge(from: ["b"], to: "a", loss: Crd(from_tap: "hidden1", to_tap: "hidden1", dim: 8, negatives: 64), weight: 0.8),
            Edge(from: ["a"], to: "b", loss: Crd(from_tap: "hidden1", to_tap: "hidden1", dim: 8, negatives: 64), weight: 0.8),
        ],
        training: (epochs: 3, batch_size: 50, optimizer: Adam(lr: 0.01), seeds: [2]),
    )"#;
    let tmp = tempfile::tempdir().unwrap();
    let full = engine::run(&plan(src, &tmp.path().join("full")), &opts(src)).unwrap();
    assert_eq!(full[0].status, Status::Complete);
    let p = plan(src, &tmp.path().join("cut"));
    let mut o = opts(src);
    o.stop_after_epochs = Some(1);
    assert_eq!(engine::run(&p, &o).unwrap()[0].status, Status::Stopped);
    let mut o = opts(src);
    o.resume = true;
    let resumed = engine::run(&p, &o).unwrap();
    assert_eq!(resumed[0].status, Status::Complete);
    let text = String::from_utf8(metrics_bytes(&full[0].dir)).unwrap();
    assert!(text.contains("loss:Crd("), "the term's rows");
    assert_eq!(metrics_bytes(&full[0].dir), metrics_bytes(&resumed[0].dir));
}

/// More CRD negatives than a sample of the largest class has samples of other classes to draw
/// from is refused once the data is loaded, before any folder is made: exit 2, the term's place
/// and the largest value that fits.
#[test]
fn crd_refuses_more_negatives_than_the_split_offers() {
    let src = r#"Experiment(
        name: "crd-too-many",
        data: (source: Mnist1d(num_samples: 1000), train_limit: 40, test_limit: 20),
        nodes: [Node(id: "a", model: Mlp(hidden: [8])), Node(id: "b", model: Mlp(hidden: [8]))],
        edges: [
            Edge(to: "a", loss: CrossEntropy), Edge(to: "b", loss: CrossEntropy),
            Edge(from: ["b"], to: "a", loss: Crd(from_tap: "hidden1", to_tap: "hidden1", negatives: 16384)),
        ],
        training: (epochs: 1, batch_size: 20, optimizer: Adam(lr: 0.01), seeds: [0]),
    )"#;
    let tmp = tempfile::tempdir().unwrap();
    let err = engine::run(&plan(src, tmp.path()), &opts(src)).unwrap_err();
    assert!(matches!(err, engine::EngineError::TermData { .. }), "{err}");
    let text = err.to_string();
    assert!(text.starts_with("edges[2].loss: 16384 negatives per sample"), "{text}");
    assert!(text.contains("set `negatives:` to at most"), "{text}");
    assert_eq!(cohort::error::Error::from(err).exit_code(), 2);
    assert!(!tmp.path().join("crd-too-many").exists(), "nothing written");
}
