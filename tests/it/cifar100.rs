//! The CIFAR-100 benchmark's experiment files (`experiments/cifar100/`) run end to end on a small
//! generated CIFAR-100 file set in the real binary format, and a ResNet-32 DML pair learns.

use std::path::Path;

use cohort::config::{self, Cifar100Spec, DataSource};
use cohort::engine::{self, Status};

use crate::common;

/// `records` images per split whose pixels encode the fine label (plane c, pixel k:
/// 10·label + 3c + k mod 7), with coarse label = fine / 5.
fn write_cifar100(dir: &Path, records: usize) {
    common::write_cifar100(dir, records, |_, r| {
        let fine = (r % 10) as u8;
        (fine / 5, fine, (0..3072).map(|k| 10 * fine + 3 * (k / 1024) as u8 + (k % 7) as u8).collect())
    });
}

/// The plan of `experiments/cifar100/<file>` on the generated files, shrunk: `limit` training
/// and test images, `batch`, `epochs` per stage, results under `out`.
fn shrunk(file: &str, data: &Path, out: &Path, limit: usize, batch: usize, epochs: usize) -> (config::Plan, String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/cifar100").join(file);
    let (mut plan, text) = config::load_plan(&path).unwrap_or_else(|e| panic!("{e}"));
    let DataSource::Cifar100(Cifar100Spec { labels, .. }) = plan.data.source.clone() else { panic!("{file} is not a CIFAR-100 experiment") };
    plan.data.source = DataSource::Cifar100(Cifar100Spec { dir: Some(data.to_path_buf()), labels });
    plan.data.train_limit = Some(limit);
    plan.data.test_limit = Some(limit);
    plan.batch_size = batch;
    for st in &mut plan.stages {
        st.epochs = epochs;
    }
    plan.seeds = vec![0];
    plan.output = out.to_path_buf();
    // CRD's 16384 negatives of other classes: one, all the two-sample split offers
    for t in plan.stages.iter_mut().flat_map(|s| s.terms.iter_mut()) {
        if let cohort::losses::LossSpec::Crd(c) = &mut t.loss {
            c.negatives = 1;
        }
    }
    // a teacher frozen from another recipe's run (`results/cifar100/<run>/…`): that run's here
    for node in &mut plan.nodes {
        if let Some(rest) = node.checkpoint.as_ref().and_then(|c| c.strip_prefix("results/cifar100").ok()) {
            node.checkpoint = Some(out.join(rest));
        }
    }
    (plan, text)
}

#[test]
fn every_cifar100_experiment_runs_a_step_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    write_cifar100(&tmp.path().join("cifar100"), 4);
    let mut files: Vec<String> = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/cifar100"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".ron"))
        .collect();
    // the recipes whose teacher is another recipe's (frozen from its checkpoint) after the others
    let borrows =
        |f: &String| std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/cifar100").join(f)).unwrap().contains("checkpoint:");
    files.sort_by_key(|f| (borrows(f), f.clone()));
    assert!(files.len() >= 6, "{files:?}");
    for file in files {
        let (plan, text) = shrunk(&file, &tmp.path().join("cifar100"), &tmp.path().join("out"), 2, 2, 1);
        let out = engine::run(&plan, &common::opts(&text)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(out[0].status, Status::Complete, "{file}");
        let rows = cohort::results::read_metrics(&out[0].dir.join("metrics.csv")).unwrap();
        for st in &plan.stages {
            for &n in &st.train {
                let id = &plan.nodes[n].id;
                assert!(rows.iter().any(|r| &r.node == id && r.split == "train" && r.metric == "loss" && r.value.is_finite()), "{file}: {id}");
            }
        }
    }
}

/// Two ResNet-32 peers with the DML recipe (SGD Nesterov, lr 0.1, random crop and flip) on 40
/// generated images: the training loss falls over 3 epochs (a smoke test, not a benchmark).
#[test]
fn resnet32_dml_pair_learns_on_generated_cifar100() {
    let tmp = tempfile::tempdir().unwrap();
    write_cifar100(&tmp.path().join("cifar100"), 40);
    let (plan, text) = shrunk("dml-resnet32x2.ron", &tmp.path().join("cifar100"), &tmp.path().join("out"), 40, 8, 3);
    let out = engine::run(&plan, &common::opts(&text)).unwrap();
    let rows = cohort::results::read_metrics(&out[0].dir.join("metrics.csv")).unwrap();
    for peer in ["peer1", "peer2"] {
        let loss = |e: usize| rows.iter().find(|r| r.node == peer && r.split == "train" && r.metric == "loss" && r.epoch == e).unwrap().value;
        assert!(loss(3) < loss(1), "{peer}: training loss {} -> {}", loss(1), loss(3));
    }
}
