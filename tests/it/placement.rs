//! Node placement (`Node(backend: …, device: …)`): a node computes on its own device and the
//! detached outputs cross to the devices of the nodes that read them. The cross-device tests
//! put one node on ndarray beside flex — two CPU backends, so that the transfers run on a
//! machine without GPUs (`ndarray` is a default feature).

use std::path::Path;

use cohort::engine;

use crate::common::{metric_rows, opts, plan};

/// A DML pair on MNIST-1D (an MLP with dropout, a 1-D CNN); `b_place` goes into node b's
/// fields, `training` into `training`.
fn pair(b_place: &str, training: &str) -> String {
    format!(
        r#"Experiment(
            name: "pair",
            data: (source: Mnist1d(num_samples: 2000), validation: 0.1, train_limit: 1000, test_limit: 200),
            nodes: [
                Node(id: "a", model: Mlp(hidden: [32], dropout: 0.1)),
                Node(id: "b", model: Cnn1d(channels: [16, 16]), {b_place}),
            ],
            edges: [
                Edge(to: "a", loss: CrossEntropy),
                Edge(to: "b", loss: CrossEntropy),
                Mutual(peers: ["a", "b"], temperature: 2.0),
            ],
            training: (epochs: 4, batch_size: 50, optimizer: Adam(lr: 0.01), seeds: [3], {training}),
        )"#
    )
}

/// A GPU index on a CPU backend is refused before anything is written, naming the node.
#[test]
fn a_cpu_backend_has_a_single_device() {
    let src = pair("device: 1", "");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("results");
    let err = engine::run(&plan(&src, &out), &opts(&src)).unwrap_err().to_string();
    assert!(err.contains("node `b`") && err.contains("device 1") && err.contains("CPU"), "{err}");
    assert!(!out.exists(), "a results folder was made for a run that cannot start");
    // the same for the run-wide device
    let src = pair("", "device: 2");
    let err = engine::run(&plan(&src, &out), &opts(&src)).unwrap_err().to_string();
    assert!(err.contains("device 2"), "{err}");
}

/// The same experiment with every node on flex and with `moved` on ndarray trains alike: the
/// same initial weights (drawn on the run's device, then moved) and dropout masks, so the two
/// runs differ only by the backends' rounding: ~1e-8 relative on the losses in the first
/// epochs, growing as training amplifies it (at most 4e-7 in these 4-epoch runs, 7e-5 after 6).
/// Losses within 1e-4 relative, other metrics within 0.01 (2 of 200 test samples). Targets lost
/// on the way (replaced by zeros, tried once) move the first epoch's training loss by 1.2 %
/// (peers) and 16 % (fixed teacher).
#[cfg(feature = "ndarray")]
fn assert_placement_does_not_change_training(name: &str, src: &str, moved: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let one = engine::run(&plan(src, &tmp.path().join("one")), &opts(src)).unwrap();
    let placed = src.replace(&format!(r#"Node(id: "{moved}", "#), &format!(r#"Node(id: "{moved}", backend: Ndarray, "#));
    assert_ne!(placed, src, "node {moved} not found");
    let two = engine::run(&plan(&placed, &tmp.path().join("two")), &opts(&placed)).unwrap();
    let (a, b) = (metric_rows(&one[0].dir), metric_rows(&two[0].dir));
    assert_eq!(a.len(), b.len(), "{name}: different metric rows");
    let mut worst = 0.0f64;
    for ((ka, va), (kb, vb)) in a.iter().zip(&b) {
        assert_eq!(ka, kb, "{name}");
        // losses are smooth in the weights; accuracy, agreement and the binned ECE can jump when
        // one sample crosses a boundary
        let tolerance = if ka.ends_with(" loss") || ka.ends_with(" lr") { 1e-4 * va.abs().max(1e-3) } else { 0.01 };
        assert!((va - vb).abs() <= tolerance, "{name}: {ka}: {va} on one backend, {vb} with {moved} on ndarray");
        if ka.ends_with(" loss") {
            worst = worst.max((va - vb).abs() / va.abs().max(1e-3));
        }
    }
    // the check compares trained networks, not two near-chance ones (chance: 0.10)
    let best = a.iter().filter(|(k, _)| k.contains(" test accuracy")).map(|(_, v)| *v).fold(0.0, f64::max);
    assert!(best >= 0.35, "{name}: best test accuracy {best}: the runs learned too little to compare");
    eprintln!("{name}: largest relative loss difference {worst:.1e}, best test accuracy {best}");
    let manifest = std::fs::read_to_string(two[0].dir.join("manifest.ron")).unwrap();
    assert!(manifest.contains(&format!("node `{moved}`: ndarray")), "{name}: the manifest does not record the placement");
}

/// Peers on two backends, in every execution mode: simultaneous on one thread, simultaneous on
/// a thread each (outputs cross as data), sequential (a refreshed output crosses mid-step).
#[cfg(feature = "ndarray")]
#[test]
fn peers_on_two_backends_train_like_peers_on_one() {
    for (name, training) in [
        ("serial", "update: Simultaneous, concurrency: Serial"),
        ("threads", "update: Simultaneous, concurrency: Threads"),
        ("sequential", "update: Sequential"),
    ] {
        assert_placement_does_not_change_training(name, &pair("", training), "b");
    }
}

/// A teacher trained on another backend, then fixed (eval mode on its own device): its logits
/// and its feature tap cross to the student (soft targets and a hint through an adapter).
#[cfg(feature = "ndarray")]
#[test]
fn a_fixed_teacher_on_another_backend_teaches_logits_and_features() {
    let src = r#"Experiment(
        name: "chain",
        data: (source: Mnist1d(num_samples: 2000), train_limit: 1000, test_limit: 200),
        nodes: [Node(id: "teacher", model: Cnn1d(channels: [8, 8])), Node(id: "student", model: Cnn1d(channels: [4, 4]))],
        edges: [
            Edge(to: "teacher", loss: CrossEntropy),
            Edge(to: "student", loss: CrossEntropy, weight: 0.5),
            Edge(from: ["teacher"], to: "student", loss: SoftTarget(temperature: 4.0), weight: 0.5),
            Edge(from: ["teacher"], to: "student", loss: Hint(from_tap: "block1", to_tap: "block1"), weight: 0.1),
        ],
        stages: [Stage(name: "teacher", train: ["teacher"], epochs: 4), Stage(name: "student", train: ["student"], epochs: 3)],
        training: (batch_size: 50, optimizer: Adam(lr: 0.01), seeds: [1]),
    )"#;
    assert_placement_does_not_change_training("fixed teacher", src, "teacher");
}

/// A run with a node on another backend, stopped after 2 epochs and resumed (its weights and
/// Adam moments reloaded onto ndarray), ends bit-identical to the uninterrupted run.
#[cfg(feature = "ndarray")]
#[test]
fn a_placed_node_resumes_where_it_stopped() {
    let src = pair("backend: Ndarray", "update: Simultaneous, concurrency: Serial");
    let tmp = tempfile::tempdir().unwrap();
    let whole = engine::run(&plan(&src, &tmp.path().join("whole")), &opts(&src)).unwrap();
    let p = plan(&src, &tmp.path().join("parts"));
    let mut o = opts(&src);
    o.stop_after_epochs = Some(2);
    assert_eq!(engine::run(&p, &o).unwrap()[0].status, engine::Status::Stopped);
    o.stop_after_epochs = None;
    o.resume = true;
    let parts = engine::run(&p, &o).unwrap();
    assert_eq!(parts[0].status, engine::Status::Complete);
    let csv = |d: &Path| std::fs::read(d.join("metrics.csv")).unwrap();
    assert_eq!(csv(&whole[0].dir), csv(&parts[0].dir), "the resumed run differs from the uninterrupted one");
}
