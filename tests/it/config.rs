//! Experiment files: the shipped examples are valid; each kind of mistake is reported with
//! file:line:column, the offending line and a hint (reviewed snapshots in tests/it/snapshots/).

use std::path::{Path, PathBuf};

use cohort::config::{self, LossSpec, UpdateOrder};

/// The .ron files under `dir`, recursively, sorted.
fn files_in(dir: &str) -> Vec<PathBuf> {
    fn walk(d: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "ron") {
                out.push(p);
            }
        }
    }
    let mut v = Vec::new();
    walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join(dir), &mut v);
    v.sort();
    v
}

fn rel(p: &Path) -> PathBuf {
    p.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap().to_path_buf()
}

#[test]
fn shipped_experiments_are_valid() {
    let files = files_in("experiments");
    assert!(files.len() >= 10);
    for f in files {
        if let Err(e) = config::load_plan(&f) {
            panic!("{e}");
        }
    }
}

#[test]
fn every_bad_fixture_is_rejected_with_a_position() {
    for f in files_in("tests/fixtures/bad") {
        let src = std::fs::read_to_string(&f).unwrap();
        let err = config::plan_from_str(&src, &rel(&f)).expect_err(&format!("{} should be invalid", f.display()));
        assert!(err.diagnostics.iter().all(|d| d.pos.is_some()), "{err}");
        assert!(err.diagnostics.iter().all(|d| d.hint.is_some()), "every mistake comes with a hint: {err}");
        let name = f.file_stem().unwrap().to_string_lossy().into_owned();
        insta::assert_snapshot!(name, err.to_string());
    }
}

/// The three mistakes the foundation issue names, asserted without snapshots.
#[test]
fn required_mistakes_report_line_and_column() {
    let cases = [
        ("misspelled-field.ron", "19:9", "unknown field `batch_sise`"),
        ("negative-temperature.ron", "15:56", "temperature must be"),
        ("unknown-node.ron", "14:18", "unknown node `peer3`"),
    ];
    for (file, pos, msg) in cases {
        let path = Path::new("tests/fixtures/bad").join(file);
        let src = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(&path)).unwrap();
        let text = config::plan_from_str(&src, &path).unwrap_err().to_string();
        assert!(text.contains(&format!("{}:{pos}: {msg}", path.display())), "{text}");
    }
}

#[test]
fn defaults_and_expansion() {
    let src = r#"Experiment(
        name: "t",
        data: (source: Mnist1d(num_samples: 100)),
        nodes: [
            Node(id: "a", model: Mlp(hidden: [4])),
            Node(id: "b", model: Mlp(hidden: [4]), optimizer: Sgd(lr: 0.1, momentum: 0.9)),
            Node(id: "c", model: Mlp(hidden: []), checkpoint: "c.bpk"),
        ],
        edges: [
            Edge(to: "a", loss: CrossEntropy),
            Edge(to: "b", loss: CrossEntropy),
            Mutual(peers: ["a", "b"], temperature: 2.0),
            Edge(from: ["c", "b"], to: "a", loss: SoftTarget(temperature: 3.0, source_weights: [3.0, 1.0]), weight: 0.5),
        ],
    )"#;
    let plan = config::plan_from_str(src, Path::new("t.ron")).unwrap();
    assert_eq!(plan.input_shape, vec![40]);
    assert_eq!(plan.batch_size, 128);
    assert_eq!(plan.seeds, vec![0]);
    assert_eq!(plan.stages.len(), 1);
    let st = &plan.stages[0];
    assert_eq!(st.train, vec![0, 1]); // `c` only serves as a source (checkpoint)
    assert_eq!(st.update, UpdateOrder::Simultaneous);
    assert_eq!(st.epochs, 10);
    // mutual expands to one MutualKl term per peer, sources = the other peers
    let mutual: Vec<_> = st.terms.iter().filter(|t| matches!(t.loss, LossSpec::MutualKl { .. })).collect();
    assert_eq!(mutual.len(), 2);
    assert_eq!((mutual[0].to, mutual[0].from.clone()), (0, vec![1]));
    assert_eq!((mutual[1].to, mutual[1].from.clone()), (1, vec![0]));
    // source weights normalised
    let soft = st.terms.iter().find(|t| matches!(t.loss, LossSpec::SoftTarget { .. })).unwrap();
    match &soft.loss {
        LossSpec::SoftTarget(st) => {
            assert_eq!(st.source_weights.iter().map(|w| w.get()).collect::<Vec<_>>(), vec![0.75, 0.25]);
        }
        _ => unreachable!(),
    }
    assert_eq!(soft.weight, 0.5);
    // per-node optimiser overrides the shared default; explicit PyTorch defaults elsewhere
    assert!(plan.nodes[1].optimizer.to_string().starts_with("Sgd(lr 0.1, momentum 0.9"));
    assert_eq!(plan.nodes[0].optimizer.to_string(), "Adam(lr 0.001, betas (0.9, 0.999), eps 1e-8, weight decay 0)");
}

/// `generations: 3` on a stage: two more stages after it, each training a new copy of the node
/// (its model and optimiser) with the stage's terms, the source replaced by the generation before
/// — and a run trains them in that order, the third generation's term reading the second.
#[test]
fn born_again_generations_expand_into_stages_taught_by_the_last() {
    let src = r#"Experiment(
        name: "t",
        data: (source: Mnist1d(num_samples: 100), train_limit: 20, test_limit: 20),
        nodes: [
            Node(id: "t", model: Mlp(hidden: [4])),
            Node(id: "s", model: Mlp(hidden: [3]), optimizer: Sgd(lr: 0.1, momentum: 0.9)),
        ],
        edges: [
            Edge(to: "t", loss: CrossEntropy),
            Edge(to: "s", loss: CrossEntropy, weight: 0.5),
            Edge(from: ["t"], to: "s", loss: SoftTarget(temperature: 2.0), weight: 0.5, stages: ["s"]),
        ],
        stages: [Stage(name: "t", train: ["t"]), Stage(name: "s", train: ["s"], generations: 3, epochs: 1)],
        training: (epochs: 1, batch_size: 10),
    )"#;
    let plan = config::plan_from_str(src, Path::new("t.ron")).unwrap();
    let ids: Vec<&str> = plan.nodes.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(ids, ["t", "s", "s-gen2", "s-gen3"]);
    let names: Vec<&str> = plan.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["t", "s", "s-gen2", "s-gen3"]);
    for (g, (node, teacher)) in [(1usize, 0usize), (2, 1), (3, 2)].into_iter().enumerate() {
        let st = &plan.stages[g + 1];
        assert_eq!(st.train, vec![node]);
        assert_eq!(st.epochs, 1);
        assert_eq!(plan.nodes[node].model, plan.nodes[1].model);
        assert_eq!(plan.nodes[node].optimizer, plan.nodes[1].optimizer);
        let terms: Vec<(usize, Vec<usize>, f64)> = st.terms.iter().map(|t| (t.to, t.from.clone(), t.weight)).collect();
        assert_eq!(terms, vec![(node, vec![], 0.5), (node, vec![teacher], 0.5)], "generation {}", g + 1);
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut plan = plan;
    plan.output = tmp.path().to_path_buf();
    let out = cohort::engine::run(&plan, &crate::common::opts(src)).unwrap();
    let rows = cohort::results::read_metrics(&out[0].dir.join("metrics.csv")).unwrap();
    for (stage, metric) in [("s", "loss:SoftTarget(T=2)<-t"), ("s-gen2", "loss:SoftTarget(T=2)<-s"), ("s-gen3", "loss:SoftTarget(T=2)<-s-gen2")] {
        assert!(rows.iter().any(|r| r.stage == stage && r.metric == metric && r.value.is_finite()), "{stage}: {metric}");
    }
    assert!(out[0].dir.join("checkpoints/s-gen3.bpk").exists());
}

#[test]
fn all_errors_of_a_file_are_reported_together() {
    let src = r#"Experiment(
        name: "t",
        data: (source: Mnist1d()),
        nodes: [Node(id: "a", model: Mlp(hidden: [4]))],
        edges: [
            Edge(to: "x", loss: CrossEntropy),
            Edge(from: ["y"], to: "a", loss: SoftTarget(temperature: 2.0)),
        ],
    )"#;
    let err = config::plan_from_str(src, Path::new("t.ron")).unwrap_err();
    let msgs: Vec<String> = err.diagnostics.iter().map(|d| d.message.clone()).collect();
    assert!(msgs.iter().any(|m| m.contains("unknown node `x`")), "{msgs:?}");
    assert!(msgs.iter().any(|m| m.contains("unknown node `y`")), "{msgs:?}");
}

/// `cohort check` warns (without failing) when SGD trains a batch-norm network without weight
/// decay, naming the node; every shipped CIFAR-100 recipe sets its weight decay.
#[test]
fn sgd_without_weight_decay_on_batch_norm_is_warned() {
    for f in files_in("experiments/cifar100") {
        let (p, _) = config::load_plan(&f).unwrap();
        assert_eq!(p.warnings(), Vec::<String>::new(), "{}", f.display());
    }
    let text = std::fs::read_to_string("experiments/cifar100/independent-resnet32.ron").unwrap().replace(", weight_decay: 0.0005", "");
    let p = config::plan_from_str(&text, Path::new("x.ron")).unwrap();
    let w = p.warnings();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("node `net`") && w[0].contains("weight_decay"), "{}", w[0]);
}
