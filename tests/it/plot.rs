//! Charts and comparisons rendered from small fixture files written here.

use std::collections::BTreeMap;
use std::path::Path;

use cohort::config;
use cohort::plot::{self, compare};
use cohort::results::{Best, Manifest, MetricRow, NodeSummary, RunStatus, StageSummary, Summary, write_metrics, write_summary};

const EXPERIMENT: &str = r#"Experiment(
    name: "fixture",
    data: (source: Mnist1d()),
    nodes: [
        Node(id: "teacher", model: Cnn1d(channels: [8])),
        Node(id: "alice", model: Mlp(hidden: [8])),
        Node(id: "bob", model: Mlp(hidden: [8])),
    ],
    edges: [
        Edge(to: "teacher", loss: CrossEntropy),
        Edge(to: "alice", loss: CrossEntropy),
        Edge(to: "bob", loss: CrossEntropy),
        Edge(from: ["teacher"], to: "alice", loss: SoftTarget(temperature: 4.0), weight: 0.7),
        Mutual(peers: ["alice", "bob"]),
    ],
    stages: [Stage(name: "teach", train: ["teacher"]), Stage(name: "peers", train: ["alice", "bob"])],
)"#;

fn row(stage: &str, epoch: usize, node: &str, split: &str, metric: &str, value: f64) -> MetricRow {
    MetricRow { stage: stage.into(), epoch, node: node.into(), split: split.into(), metric: metric.into(), value }
}

/// A run folder with metrics.csv and manifest.ron, as `cohort run` writes them.
fn fixture_run(dir: &Path, shift: f64) {
    let mut rows = Vec::new();
    for e in 1..=3 {
        let x = e as f64;
        rows.push(row("teach", e, "teacher", "test", "accuracy", 0.5 + 0.1 * x + shift));
        rows.push(row("teach", e, "teacher", "test", "loss", 1.5 - 0.3 * x));
    }
    rows.push(row("peers", 0, "teacher", "test", "accuracy", 0.8));
    for e in 1..=4 {
        let x = e as f64;
        for (node, off) in [("alice", 0.0), ("bob", 0.02), ("ensemble", 0.03)] {
            rows.push(row("peers", e, node, "test", "accuracy", 0.4 + 0.1 * x + off + shift));
            rows.push(row("peers", e, node, "test", "loss", 2.0 - 0.3 * x - off));
        }
        rows.push(row("peers", e, "cohort", "test", "agreement", 0.7 + 0.05 * x));
        rows.push(row("peers", e, "cohort", "test", "pairwise_kl", 0.5 / x));
    }
    write_metrics(&dir.join("metrics.csv"), &rows).unwrap();
    let plan = config::plan_from_str(EXPERIMENT, Path::new("fixture.ron")).unwrap();
    let manifest = Manifest {
        experiment: "fixture".into(),
        experiment_file: "fixture.ron".into(),
        experiment_sha256: "0".repeat(64),
        seed: 0,
        backend: "flex".into(),
        threads: 1,
        cpu: String::new(),
        cohort_version: "0.1.0".into(),
        git_revision: "unknown".into(),
        data_root: "data".into(),
        plan,
    };
    manifest.write(&dir.join("manifest.ron")).unwrap();
}

fn assert_png(p: &Path) {
    let bytes = std::fs::read(p).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{} is not a PNG", p.display());
    assert!(bytes.len() > 5000, "{} is suspiciously small", p.display());
}

fn svg(p: &Path) -> String {
    let text = std::fs::read_to_string(p).unwrap();
    assert!(text.contains("<svg") && text.trim_end().ends_with("</svg>"), "{} is not an SVG", p.display());
    text
}

#[test]
fn run_charts_are_drawn_from_the_files() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("fixture").join("seed-0");
    std::fs::create_dir_all(&run).unwrap();
    fixture_run(&run, 0.0);
    let files = plot::plot_run(&run).unwrap();
    assert_eq!(files.len(), 6);
    for kind in ["curves", "cohort", "topology"] {
        assert_png(&run.join(format!("charts/{kind}.png")));
    }
    let curves = svg(&run.join("charts/curves.svg"));
    for text in ["teacher", "alice", "bob", "ensemble", "test accuracy (%)", "test loss", "epoch", "teach", "peers"] {
        assert!(curves.contains(text), "curves.svg lacks {text:?}");
    }
    let cohort = svg(&run.join("charts/cohort.svg"));
    for text in ["agreement", "pairwise KL", "nats", "epoch"] {
        assert!(cohort.contains(text), "cohort.svg lacks {text:?}");
    }
    let topo = svg(&run.join("charts/topology.svg"));
    for text in ["teacher", "alice", "bob", "SoftTarget(T=4) ×0.7", "MutualKl(T=1) ×1", "CE ×1", "stage 2: peers"] {
        assert!(topo.contains(text), "topology.svg lacks {text:?}");
    }
    // no temporary files are left behind
    let leftovers: Vec<_> =
        std::fs::read_dir(run.join("charts")).unwrap().filter_map(Result::ok).filter(|e| e.file_name().to_string_lossy().starts_with('.')).collect();
    assert!(leftovers.is_empty());
}

#[test]
fn experiment_folder_gets_seed_band_chart() {
    let tmp = tempfile::tempdir().unwrap();
    let exp = tmp.path().join("fixture");
    for (s, shift) in [(0, 0.0), (1, 0.01), (2, -0.01)] {
        let run = exp.join(format!("seed-{s}"));
        std::fs::create_dir_all(&run).unwrap();
        fixture_run(&run, shift);
    }
    plot::plot_path(&exp).unwrap();
    assert_png(&exp.join("charts/seeds.png"));
    let text = svg(&exp.join("charts/seeds.svg"));
    assert!(text.contains("alice (mean ± std, 3 seeds)"), "seeds.svg lacks the legend");
    assert!(plot::plot_path(tmp.path()).is_err(), "a folder without runs is an error");
}

fn summary(seed: u64, nodes: &[(&str, f64, f64)], status: RunStatus) -> Summary {
    let mut map = BTreeMap::new();
    for (n, last, best) in nodes {
        let mut s = NodeSummary::default();
        s.last.insert("test_accuracy".into(), *last);
        s.best_test = Some(Best { epoch: 3, accuracy: *best, test_accuracy: *best });
        map.insert(n.to_string(), s);
    }
    Summary {
        experiment: "x".into(),
        seed,
        status,
        diverged: None,
        stages: vec![StageSummary { name: "main".into(), epochs: 3, nodes: map }],
        timing: None,
        git_revision: None,
    }
}

#[test]
fn compare_reports_mean_std_and_excluded_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let write = |exp: &str, seed: u64, s: Option<Summary>| {
        let d = tmp.path().join(exp).join(format!("seed-{seed}"));
        std::fs::create_dir_all(&d).unwrap();
        if let Some(s) = s {
            write_summary(&d.join("summary.json"), &s).unwrap();
        }
    };
    write("independent", 0, Some(summary(0, &[("a", 0.80, 0.82), ("b", 0.78, 0.80)], RunStatus::Complete)));
    write("independent", 1, Some(summary(1, &[("a", 0.84, 0.85), ("b", 0.80, 0.81)], RunStatus::Complete)));
    write("independent", 2, None); // interrupted
    write("dml", 0, Some(summary(0, &[("a", 0.90, 0.91), ("b", 0.88, 0.90), ("ensemble", 0.91, 0.92)], RunStatus::Complete)));
    write("dml", 1, Some(summary(1, &[("a", 0.1, 0.1)], RunStatus::Diverged)));
    let exps: Vec<_> = ["independent", "dml"].iter().map(|e| compare::collect(&tmp.path().join(e)).unwrap()).collect();
    let rows = compare::rows(&exps, compare::Select::Final, None, &[]).unwrap();
    let a = rows.iter().find(|r| r.experiment == "independent" && r.node == "a").unwrap();
    // mean 0.82, sample std sqrt(((0.02)² + (0.02)²)/1) = 0.028284…
    assert!((a.last.mean - 0.82).abs() < 1e-12 && (a.last.std - 0.02f64.hypot(0.02)).abs() < 1e-12 && a.last.n == 2);
    assert!((a.best.mean - 0.835).abs() < 1e-12);
    let md = compare::markdown(&rows, &exps, compare::Select::Final, None);
    assert!(md.contains("| independent | a | 82.00 ± 2.83 | 83.50 ± 2.12 | 2 |"), "{md}");
    assert!(md.contains("| dml | ensemble | 91.00 ± 0.00 | 92.00 ± 0.00 | 1 |"), "{md}");
    assert!(md.contains("independent/seed-2: no summary.json"), "{md}");
    assert!(md.contains("dml/seed-1: diverged"), "{md}");
    let out = tmp.path().join("cmp");
    let dots = compare::Dots::new("independent vs dml", &rows, compare::Select::Final);
    assert_eq!(dots.size().1, 110 + 22 * rows.len() as u32, "a line per row");
    plot::png_and_svg(&out.join("compare"), dots.size(), &dots).unwrap();
    assert_png(&out.join("compare.png"));
    let text = svg(&out.join("compare.svg"));
    for t in ["independent · a (n=2)", "dml · ensemble (n=1)", "final test acc. (%)"] {
        assert!(text.contains(t), "compare.svg lacks {t:?}");
    }
}

/// With a validation split the table adds the test accuracy at the best-validation epoch (a
/// selection that never sees the test split) beside the optimistic best-on-test.
#[test]
fn compare_reports_the_validation_selected_epoch() {
    let tmp = tempfile::tempdir().unwrap();
    for (seed, selected) in [(0u64, 0.70), (1, 0.74)] {
        let mut s = summary(seed, &[("a", 0.80, 0.82)], RunStatus::Complete);
        s.stages[0].nodes.get_mut("a").unwrap().best_validation = Some(Best { epoch: 2, accuracy: 0.9, test_accuracy: selected });
        let d = tmp.path().join("val").join(format!("seed-{seed}"));
        std::fs::create_dir_all(&d).unwrap();
        write_summary(&d.join("summary.json"), &s).unwrap();
    }
    let exps = vec![compare::collect(&tmp.path().join("val")).unwrap()];
    let md = compare::markdown(&compare::rows(&exps, compare::Select::Final, None, &[]).unwrap(), &exps, compare::Select::Final, None);
    assert!(md.contains("| test acc. at best-validation epoch (%) |"), "{md}");
    assert!(md.contains("| val | a | 80.00 ± 0.00 | 72.00 ± 2.83 | 82.00 ± 0.00 | 2 |"), "{md}");
}

/// `--baseline` adds each row's difference to the baseline's row of the same node, with Welch's
/// interval and p (the statistic itself is checked against SciPy in tests/it/stats.rs), and
/// `--select best-val` / `last:K` compare on another per-seed figure; `--json` carries it all.
#[test]
fn compare_against_a_baseline_on_a_selected_figure() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = [("base", [0.70, 0.72, 0.71]), ("method", [0.75, 0.78, 0.76])];
    for (exp, finals) in runs {
        for (seed, last) in finals.into_iter().enumerate() {
            let mut s = summary(seed as u64, &[("a", last, last + 0.01)], RunStatus::Complete);
            s.stages[0].nodes.get_mut("a").unwrap().best_validation = Some(Best { epoch: 2, accuracy: 0.9, test_accuracy: last - 0.05 });
            let d = tmp.path().join(exp).join(format!("seed-{seed}"));
            std::fs::create_dir_all(&d).unwrap();
            write_summary(&d.join("summary.json"), &s).unwrap();
            // three epochs of test accuracy: last − 0.02, last − 0.01, last
            let rows: Vec<MetricRow> = (1..=3).map(|e| row("main", e, "a", "test", "accuracy", last - 0.01 * (3 - e) as f64)).collect();
            write_metrics(&d.join("metrics.csv"), &rows).unwrap();
        }
    }
    let exps: Vec<_> = ["base", "method"].iter().map(|e| compare::collect(&tmp.path().join(e)).unwrap()).collect();
    let baseline: compare::Baseline = "base".parse().unwrap();
    let rows = compare::rows(&exps, compare::Select::Final, Some(&baseline), &[]).unwrap();
    let m = rows.iter().find(|r| r.experiment == "method").unwrap();
    let w = m.versus.as_ref().unwrap().welch.unwrap();
    let want = cohort::stats::welch(&[0.75, 0.78, 0.76], &[0.70, 0.72, 0.71]).unwrap();
    assert_eq!(w, want);
    assert!(w.ci95.0 > 0.0 && w.p < 0.05, "{w:?}");
    let md = compare::markdown(&rows, &exps, compare::Select::Final, Some(&baseline));
    assert!(md.contains("| difference to base, same node (points) [95 % CI] | Welch p |"), "{md}");
    let expected = format!(
        "| method | a | 76.33 ± 1.53 | 71.33 ± 1.53 | 77.33 ± 1.53 | 3 | {:+.2} [{:+.2}, {:+.2}] | 0.011 |",
        100.0 * w.diff,
        100.0 * w.ci95.0,
        100.0 * w.ci95.1
    );
    assert!(md.contains(&expected), "{md}");
    // the baseline against itself: no difference, p = 1
    assert!(md.lines().any(|l| l.starts_with("| base | a | 71.00 ± 1.00 |") && l.contains("| +0.00 [-") && l.ends_with("| 1.000 |")), "{md}");
    // the validation-selected figure (last − 0.05) and the mean of the last 2 epochs (last − 0.005)
    let rows = compare::rows(&exps, "best-val".parse().unwrap(), Some(&baseline), &[]).unwrap();
    let m = rows.iter().find(|r| r.experiment == "method").unwrap();
    assert!((m.figure.as_ref().unwrap().mean - (0.76333333333 - 0.05)).abs() < 1e-9);
    let rows = compare::rows(&exps, "last:2".parse().unwrap(), None, &[]).unwrap();
    let m = rows.iter().find(|r| r.experiment == "method").unwrap();
    assert!((m.figure.as_ref().unwrap().mean - (0.76333333333 - 0.005)).abs() < 1e-9, "{:?}", m.figure);
    assert!("last:0".parse::<compare::Select>().is_err() && "best".parse::<compare::Select>().is_err());
    // JSON: the per-seed values and the comparison
    let json: serde_json::Value =
        serde_json::from_str(&compare::json(&compare::rows(&exps, compare::Select::Final, Some(&baseline), &[]).unwrap(), &exps)).unwrap();
    let method = json["rows"].as_array().unwrap().iter().find(|r| r["experiment"] == "method").unwrap();
    assert_eq!(method["final"]["values"].as_array().unwrap().len(), 3);
    assert_eq!(method["versus"]["baseline"], "base:a");
    assert!(method["versus"]["welch"]["p"].as_f64().unwrap() < 0.05);
}

/// `--group NAME=ID,…` adds a row per experiment whose per-seed values are the mean over the
/// listed nodes it has, compared with the baseline's row of that name.
#[test]
fn a_group_row_averages_its_nodes_per_seed() {
    let tmp = tempfile::tempdir().unwrap();
    // base: one node `a`; method: two nodes `b.head1`, `b.head2`
    type Nodes<'a> = &'a [(&'a str, [f64; 3])];
    let runs: [(&str, Nodes); 2] = [("base", &[("a", [0.70, 0.72, 0.71])]), ("method", &[("b.head1", [0.74, 0.78, 0.76]), ("b.head2", [0.76, 0.80, 0.78])])];
    for (exp, nodes) in runs {
        for seed in 0..3 {
            let figures: Vec<(&str, f64, f64)> = nodes.iter().map(|(n, v)| (*n, v[seed], v[seed] + 0.01)).collect();
            let s = summary(seed as u64, &figures, RunStatus::Complete);
            let d = tmp.path().join(exp).join(format!("seed-{seed}"));
            std::fs::create_dir_all(&d).unwrap();
            write_summary(&d.join("summary.json"), &s).unwrap();
        }
    }
    let exps: Vec<_> = ["base", "method"].iter().map(|e| compare::collect(&tmp.path().join(e)).unwrap()).collect();
    let group: compare::Group = "peers=a,b.head1,b.head2".parse().unwrap();
    let baseline: compare::Baseline = "base".parse().unwrap();
    let rows = compare::rows(&exps, compare::Select::Final, Some(&baseline), &[group]).unwrap();
    let g = rows.iter().find(|r| r.experiment == "method" && r.node == "peers").unwrap();
    let want = [0.75, 0.79, 0.77];
    for (v, w) in g.last.values.iter().zip(want) {
        assert!((v - w).abs() < 1e-12, "{:?}", g.last.values);
    }
    let b = rows.iter().find(|r| r.experiment == "base" && r.node == "peers").unwrap();
    assert_eq!(b.last.values, vec![0.70, 0.72, 0.71], "one member: its own values");
    let w = g.versus.as_ref().unwrap().welch.unwrap();
    assert_eq!(w, cohort::stats::welch(&g.last.values, &[0.70, 0.72, 0.71]).unwrap());
    assert!("peers".parse::<compare::Group>().is_err() && "=a".parse::<compare::Group>().is_err() && "p=".parse::<compare::Group>().is_err());
}

/// A run with term rows gets `charts/terms`: its terms per epoch, and with OKDDip's diagnostics
/// the self-attention and entropy panels; a run without (made before the rows) gets none.
#[test]
fn term_chart_shows_each_term_and_the_attention() {
    let mut rows = Vec::new();
    for e in 1..=3 {
        rows.push(row("main", e, "a", "train", "loss:CrossEntropy", 1.0 / e as f64));
        rows.push(row("main", e, "a", "train", "loss:PeerAttention(h, dim 2, T=3, incl. self)<-b", 0.0));
        rows.push(row("main", e, "a", "train", "self_attention:PeerAttention(h, dim 2, T=3, incl. self)<-b", 0.5 + 0.2 * e as f64));
        rows.push(row("main", e, "a", "train", "attention_entropy:PeerAttention(h, dim 2, T=3, incl. self)<-b", 0.1));
    }
    let c = plot::curves::term_curves("t", &rows).expect("term rows give the chart");
    assert_eq!(c.panels.len(), 3);
    assert_eq!(c.panels[0].lines.len(), 2, "CE and the attention term");
    assert_eq!(c.panels[1].lines[0].points, vec![(1.0, 0.7), (2.0, 0.9), (3.0, 0.5 + 0.2 * 3.0)]);
    let without: Vec<MetricRow> = rows.iter().filter(|r| r.metric.starts_with("loss:CrossEntropy")).cloned().collect();
    assert_eq!(plot::curves::term_curves("t", &without).unwrap().panels.len(), 1, "no attention panels without diagnostics");
    let none: Vec<MetricRow> = vec![row("main", 1, "a", "train", "loss", 1.0)];
    assert!(plot::curves::term_curves("t", &none).is_none());
}

/// `last:K` of a node trained in an earlier stage and then only evaluated as a source (a
/// teacher, once, at epoch 0 of the student's stage) is the mean of its own stage's last K epochs.
#[test]
fn last_epochs_of_a_teacher_come_from_its_own_stage() {
    let tmp = tempfile::tempdir().unwrap();
    for seed in 0..2u64 {
        let mut s = summary(seed, &[("t", 0.9, 0.9)], RunStatus::Complete);
        s.stages[0].name = "teacher".into();
        let mut student = summary(seed, &[("t", 0.9, 0.9), ("s", 0.6, 0.6)], RunStatus::Complete).stages.remove(0);
        student.name = "student".into();
        s.stages.push(student);
        let d = tmp.path().join("x").join(format!("seed-{seed}"));
        std::fs::create_dir_all(&d).unwrap();
        write_summary(&d.join("summary.json"), &s).unwrap();
        let mut rows: Vec<MetricRow> = [0.8, 0.85, 0.9].iter().enumerate().map(|(e, &a)| row("teacher", e + 1, "t", "test", "accuracy", a)).collect();
        rows.push(row("student", 0, "t", "test", "accuracy", 0.9));
        rows.extend([0.5, 0.55, 0.6].iter().enumerate().map(|(e, &a)| row("student", e + 1, "s", "test", "accuracy", a)));
        write_metrics(&d.join("metrics.csv"), &rows).unwrap();
    }
    let exps = vec![compare::collect(&tmp.path().join("x")).unwrap()];
    let rows = compare::rows(&exps, "last:2".parse().unwrap(), None, &[]).unwrap();
    let figure = |node: &str| rows.iter().find(|r| r.node == node).unwrap().figure.clone().unwrap();
    assert_eq!(figure("t").n, 2);
    assert!((figure("t").mean - 0.875).abs() < 1e-9, "{:?}", figure("t"));
    assert!((figure("s").mean - 0.575).abs() < 1e-9, "{:?}", figure("s"));
}
