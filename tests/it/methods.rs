//! Every method's example experiment runs end to end on tiny data (smoke tests), plus the
//! behaviours that only show in a run: training subsets, hint adapters across a resume.

use std::path::{Path, PathBuf};

use cohort::config::{self, Plan};
use cohort::engine::{self, Status};
use cohort::results;

use crate::common;
use crate::common::opts;

fn example(name: &str) -> (Plan, String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments").join(name);
    let (plan, text) = config::load_plan(&path).unwrap_or_else(|e| panic!("{e}"));
    (plan, text)
}

/// `plan` cut down to a few steps: 300 training and 100 test samples, one epoch per stage,
/// one seed, results under `out`.
fn tiny(mut plan: Plan, out: &Path) -> Plan {
    plan.data.train_limit = Some(300);
    plan.data.test_limit = Some(100);
    for st in &mut plan.stages {
        st.epochs = 1;
    }
    plan.seeds = vec![0];
    plan.output = out.to_path_buf();
    plan
}

/// Whether MNIST is there for `test`; a skip ([`common::skip`]) when it is not.
fn mnist_present(test: &str) -> bool {
    let dir: PathBuf = cohort::data::data_root(None).join("mnist");
    if !dir.is_dir() {
        common::skip(test, &format!("{} absent; run `cohort data fetch mnist` (CI does)", dir.display()));
    }
    dir.is_dir()
}

/// Runs the example `name` tiny and checks the run's files and that every trained node of
/// every stage has a finite training loss and a checkpoint.
fn smoke(name: &str) {
    smoke_adjusted(name, |_| ());
}

/// [`smoke`] with the tiny plan adjusted by `adjust` first.
fn smoke_adjusted(name: &str, adjust: impl Fn(&mut Plan)) {
    let tmp = tempfile::tempdir().unwrap();
    let (plan, text) = example(name);
    let mut plan = tiny(plan, tmp.path());
    adjust(&mut plan);
    let out = engine::run(&plan, &opts(&text)).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(out[0].status, Status::Complete, "{name}");
    let dir = &out[0].dir;
    for f in ["metrics.csv", "summary.json", "manifest.ron"] {
        assert!(dir.join(f).is_file(), "{name}: {f} missing");
    }
    let rows = results::read_metrics(&dir.join("metrics.csv")).unwrap();
    for st in &plan.stages {
        for &n in &st.train {
            let id = &plan.nodes[n].id;
            let losses: Vec<f64> =
                rows.iter().filter(|r| r.stage == st.name && &r.node == id && r.split == "train" && r.metric == "loss").map(|r| r.value).collect();
            assert!(!losses.is_empty() && losses.iter().all(|l| l.is_finite()), "{name}: {id} in {}: losses {losses:?}", st.name);
            assert!(dir.join("checkpoints").join(format!("{id}.bpk")).is_file(), "{name}: checkpoint of {id}");
            assert!(rows.iter().any(|r| &r.node == id && r.split == "test" && r.metric == "accuracy"), "{name}: {id} evaluated");
        }
    }
}

#[test]
fn fitnets_hints_run() {
    smoke("fitnets.ron");
}

#[test]
fn attention_transfer_runs() {
    smoke("attention-transfer.ron");
}

/// RKD between two DML peers, in both directions: a relational loss of the offline tables online.
#[test]
fn relational_terms_between_peers_run() {
    smoke("online-relational.ron");
}

/// CRD between two DML peers, in both directions, and offline: the banks of the cut-down split
/// (300 samples), 100 negatives each instead of the files' 1200 (which the split could not offer).
#[test]
fn contrastive_terms_between_peers_run() {
    let fewer = |plan: &mut Plan| {
        for t in plan.stages.iter_mut().flat_map(|s| s.terms.iter_mut()) {
            if let cohort::losses::LossSpec::Crd(c) = &mut t.loss {
                c.negatives = 100;
            }
        }
    };
    smoke_adjusted("online-contrastive.ron", fewer);
    smoke_adjusted("offline/crd.ron", fewer);
}

/// FT: the paraphraser's init stage, then the transfer through the same paraphraser.
#[test]
fn factor_transfer_runs() {
    smoke("offline/ft.ron");
}

/// ReviewKD on the 1-D CNN's three blocks (sequences read as maps of width 1).
#[test]
fn review_kd_runs() {
    smoke("offline/reviewkd.ron");
}

/// KDSVD on the 1-D CNN's three blocks (each a channels × positions matrix).
#[test]
fn kdsvd_runs() {
    smoke("offline/kdsvd.ron");
}

/// The offline files with an init stage (AB's and FSP's) and RepDistiller's FitNets.
#[test]
fn offline_init_stages_and_repdistiller_fitnets_run() {
    smoke("offline/ab.ron");
    smoke("offline/fsp.ron");
    smoke("offline/fitnets.ron");
}

#[test]
fn online_teacher_runs() {
    smoke("online-teacher.ron");
}

#[test]
fn peer_feature_exchange_runs() {
    smoke("dml-features.ron");
}

#[test]
fn multi_teacher_runs() {
    smoke("multi-teacher.ron");
}

#[test]
fn kdcl_ensemble_runs() {
    smoke("kdcl.ron");
}

#[test]
fn hydra_runs_and_reports_every_head() {
    smoke("hydra.ron");
    let tmp = tempfile::tempdir().unwrap();
    let (plan, text) = example("hydra.ron");
    let plan = tiny(plan, tmp.path());
    let out = engine::run(&plan, &opts(&text)).unwrap();
    let rows = results::read_metrics(&out[0].dir.join("metrics.csv")).unwrap();
    for m in 1..=4 {
        assert!(rows.iter().any(|r| r.node == format!("hydra.head{m}") && r.split == "test" && r.metric == "accuracy"), "head {m} evaluated");
    }
    let agreement = rows.iter().find(|r| r.node == "hydra" && r.metric == "head_agreement").expect("head agreement");
    assert!((0.0..=1.0).contains(&agreement.value));
}

#[test]
fn one_gated_branches_run() {
    smoke("one.ron");
}

#[test]
fn logit_losses_run() {
    smoke("dkd.ron");
    smoke("dist.ron");
    smoke("kd-standardized.ron");
}

#[test]
fn lfme_on_rotated_mnist_runs() {
    if mnist_present("lfme_on_rotated_mnist_runs") {
        smoke("lfme-rotated-mnist.ron");
        smoke("erm-rotated-mnist.ron");
    }
}

/// A node trained on classes 0 and 1 only never learns to predict another class, while
/// evaluation still uses every test sample.
#[test]
fn a_node_trains_only_on_its_subset() {
    let src = r#"Experiment(
        name: "subset",
        data: (source: Mnist1d(num_samples: 1000), train_limit: 600, test_limit: 200),
        nodes: [
            Node(id: "two", model: Mlp(hidden: [32]), train_on: Subset(classes: [0, 1])),
            Node(id: "no3", model: Mlp(hidden: [32]), train_on: Subset(exclude_classes: [3])),
        ],
        edges: [Edge(to: "two", loss: CrossEntropy), Edge(to: "no3", loss: CrossEntropy)],
        training: (epochs: 5, batch_size: 50, optimizer: Adam(lr: 0.01), seeds: [1]),
    )"#;
    let tmp = tempfile::tempdir().unwrap();
    let mut plan = config::plan_from_str(src, Path::new("test.ron")).unwrap();
    plan.output = tmp.path().to_path_buf();
    let out = engine::run(&plan, &opts(src)).unwrap();
    assert_eq!(out[0].status, Status::Complete);
    let (device, _) = engine::backend_device();
    let data = cohort::data::prepare(&plan.data, Path::new("data"), 1).unwrap();
    let predicted = |node: usize| -> Vec<usize> {
        let m = engine::load_checkpoint(
            &plan.nodes[node].model,
            &plan.input_shape,
            plan.classes,
            &out[0].dir.join(format!("checkpoints/{}.bpk", plan.nodes[node].id)),
            &device,
        )
        .unwrap();
        let v = engine::eval::predict(&m, &data.test, 100, &device).values;
        v.chunks(10).map(|r| (0..10).max_by(|&a, &b| r[a].total_cmp(&r[b])).unwrap()).collect()
    };
    let two = predicted(0);
    assert!(two.iter().all(|&c| c <= 1), "a node trained on classes 0 and 1 predicted {:?}", two.iter().filter(|&&c| c > 1).collect::<Vec<_>>());
    let no3 = predicted(1);
    let threes = no3.iter().filter(|&&c| c == 3).count();
    assert!(threes * 20 < no3.len(), "a node that never saw a 3 predicted 3 for {threes} of {} samples", no3.len());
    assert!(no3.iter().any(|&c| c > 1), "the other node is not restricted");
}

/// The hint adapters are part of the resumable state: a run stopped and resumed gives the
/// same metrics as an uninterrupted one.
#[test]
fn hint_adapters_survive_a_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let (plan, text) = example("online-teacher.ron");
    let mut plan = tiny(plan, &tmp.path().join("a"));
    plan.stages[0].epochs = 3;
    let full = engine::run(&plan, &opts(&text)).unwrap();
    plan.output = tmp.path().join("b");
    let mut o = opts(&text);
    o.stop_after_epochs = Some(1);
    let first = engine::run(&plan, &o).unwrap();
    assert_eq!(first[0].status, Status::Stopped);
    assert!(first[0].dir.join("state/student.adapters.bpk").is_file(), "adapters saved in the state");
    o.stop_after_epochs = None;
    o.resume = true;
    let second = engine::run(&plan, &o).unwrap();
    assert_eq!(second[0].status, Status::Complete);
    let bytes = |d: &Path| std::fs::read(d.join("metrics.csv")).unwrap();
    assert_eq!(bytes(&full[0].dir), bytes(&second[0].dir));
}

/// The online methods of #18: PCL (its fusion teacher and its `Ema` temporal mean, checkpointed
/// and evaluated branch by branch), CL-ILR, OKDDip, SwitOKD (its expert-mode share logged) and the KTG file.
#[test]
fn online_methods_run() {
    for name in ["cl-ilr.ron", "okddip.ron", "switokd.ron", "ktg.ron"] {
        smoke(name);
    }
    smoke("pcl.ron");
    let tmp = tempfile::tempdir().unwrap();
    let (plan, text) = example("pcl.ron");
    let out = engine::run(&tiny(plan, tmp.path()), &opts(&text)).unwrap();
    let rows = results::read_metrics(&out[0].dir.join("metrics.csv")).unwrap();
    assert!(out[0].dir.join("checkpoints/mean.bpk").is_file(), "checkpoint of the temporal mean");
    for id in ["pcl", "mean", "mean.head1", "mean.head2", "mean.head3"] {
        assert!(rows.iter().any(|r| r.node == id && r.split == "test" && r.metric == "accuracy"), "{id} evaluated");
    }
    let (plan, text) = example("switokd.ron");
    let out = engine::run(&tiny(plan, &tmp.path().join("sw")), &opts(&text)).unwrap();
    let rows = results::read_metrics(&out[0].dir.join("metrics.csv")).unwrap();
    assert!(rows.iter().any(|r| r.node == "teacher" && r.metric == "expert_mode" && (0.0..=1.0).contains(&r.value)), "expert-mode share logged");
}
