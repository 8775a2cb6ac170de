//! The `cohort` binary as a user meets it: exit codes, messages, exported files.

use std::path::Path;
use std::process::{Command, Output};

use crate::common;

fn cohort(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cohort")).args(args).current_dir(env!("CARGO_MANIFEST_DIR")).output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[test]
fn check_accepts_the_shipped_experiments() {
    let mut args = vec!["check"];
    let files: Vec<String> = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "ron"))
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    args.extend(files.iter().map(String::as_str));
    let o = cohort(&args);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[test]
fn check_exits_2_with_line_and_column() {
    for (file, pos) in [("misspelled-field", "19:9"), ("negative-temperature", "15:56"), ("unknown-node", "14:18")] {
        let path = format!("tests/fixtures/bad/{file}.ron");
        let o = cohort(&["check", &path]);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(text(&o).contains(&format!("{path}:{pos}:")), "{}", text(&o));
    }
    // one bad file among good ones still fails the whole check
    let o = cohort(&["check", "experiments/quickstart.ron", "tests/fixtures/bad/unknown-node.ron"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("ok: experiments/quickstart.ron"));
    let o = cohort(&["check", "no/such/file.ron"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("cannot read the experiment file"), "{}", text(&o));
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    assert_eq!(cohort(&["frobnicate"]).status.code(), Some(2));
    let o = cohort(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    for cmd in ["check", "run", "data"] {
        assert!(text(&o).contains(cmd));
    }
    let o = cohort(&["data", "export", "--help"]);
    assert!(text(&o).contains("label first"), "{}", text(&o));
}

#[test]
fn data_export_mnist1d_writes_full_precision_csv() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("d");
    let o = cohort(&["data", "export", "mnist1d", "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let reference = cohort::data::mnist1d::generate(&Default::default());
    for (name, split, rows) in [("train.csv", &reference.train, 4000), ("test.csv", &reference.test, 1000)] {
        let mut r = csv::Reader::from_path(out.join(name)).unwrap();
        let header = r.headers().unwrap().clone();
        assert_eq!(header.len(), 41);
        assert_eq!((&header[0], &header[1], &header[40]), ("label", "x0", "x39"));
        let records: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
        assert_eq!(records.len(), rows);
        for (i, rec) in records.iter().enumerate() {
            assert_eq!(rec[0].parse::<u8>().unwrap(), split.labels[i]);
            // values read back bit-identical
            let vals: Vec<f32> = rec.iter().skip(1).map(|v| v.parse().unwrap()).collect();
            assert_eq!(vals, split.row(i));
        }
    }
    let first: Vec<u8> = csv::Reader::from_path(out.join("train.csv")).unwrap().records().take(10).map(|r| r.unwrap()[0].parse().unwrap()).collect();
    assert_eq!(first, vec![2, 6, 4, 5, 6, 6, 6, 0, 3, 1]);
}

#[test]
fn missing_data_names_the_fetch_command() {
    let tmp = tempfile::tempdir().unwrap();
    let o = cohort(&["--data-dir", tmp.path().to_str().unwrap(), "data", "export", "mnist", "--out", tmp.path().join("o").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("cohort data fetch mnist"), "{}", text(&o));
}

/// Regression: a run whose data cannot be loaded left an "interrupted" run folder behind, so the
/// corrected rerun was refused until --resume or --overwrite. The data is now loaded and checked
/// before any folder is made.
#[test]
fn a_run_without_its_data_leaves_no_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("m.ron");
    let src = format!(
        r#"Experiment(name: "m", data: (source: Mnist(dir: {:?})), nodes: [Node(id: "a", model: Mlp(hidden: [8]))],
            edges: [Edge(to: "a", loss: CrossEntropy)], training: (epochs: 1), output: {:?})"#,
        tmp.path().join("no-mnist-here"),
        tmp.path().join("out")
    );
    std::fs::write(&path, src).unwrap();
    let o = cohort(&["run", path.to_str().unwrap(), "--no-progress", "--no-plot"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("cohort data fetch mnist"), "{}", text(&o));
    assert!(!tmp.path().join("out/m").exists(), "nothing was made for a run that could not start");
}

/// An experiment whose results go under `out`; 8 short epochs.
fn long_run(out: &Path) -> String {
    format!(
        r#"Experiment(
            name: "interrupt",
            data: (source: Mnist1d(), test_limit: 300),
            nodes: [Node(id: "a", model: Mlp(hidden: [64], dropout: 0.1)), Node(id: "b", model: Mlp(hidden: [64]))],
            edges: [Edge(to: "a", loss: CrossEntropy), Edge(to: "b", loss: CrossEntropy), Mutual(peers: ["a", "b"])],
            training: (epochs: 8, batch_size: 25, optimizer: Sgd(lr: 0.05, momentum: 0.9), update: Sequential, seeds: [5]),
            output: "{}",
        )"#,
        out.display()
    )
}

/// Starts `cohort run FILE --no-progress --no-plot` with its stdout piped, stderr discarded.
fn spawn_run(file: &Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_cohort"))
        .args(["run", file.to_str().unwrap(), "--no-progress", "--no-plot"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// Starts `cohort run FILE` and kills it with `signal` once it has printed `after` epochs.
fn interrupt_after(file: &Path, signal: &str, after: usize) -> std::process::ExitStatus {
    use std::io::{BufRead, BufReader};
    let mut child = spawn_run(file);
    let stdout = child.stdout.take().unwrap();
    let mut seen = 0;
    // keep reading to the end: the child's last words must not hit a closed pipe
    for line in BufReader::new(stdout).lines() {
        if line.unwrap().contains("] epoch ") {
            seen += 1;
            if seen == after {
                let pid = child.id().to_string();
                Command::new("kill").args([signal, &pid]).status().unwrap();
            }
        }
    }
    child.wait().unwrap()
}

fn reference_metrics(tmp: &Path) -> Vec<u8> {
    let out = tmp.join("reference");
    let file = tmp.join("reference.ron");
    std::fs::write(&file, long_run(&out)).unwrap();
    let o = cohort(&["run", file.to_str().unwrap(), "--no-progress", "--no-plot"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    std::fs::read(out.join("interrupt/seed-5/metrics.csv")).unwrap()
}

#[test]
fn sigkill_mid_run_then_resume_gives_identical_metrics() {
    let tmp = tempfile::tempdir().unwrap();
    let reference = reference_metrics(tmp.path());
    let out = tmp.path().join("killed");
    let file = tmp.path().join("killed.ron");
    std::fs::write(&file, long_run(&out)).unwrap();
    let status = interrupt_after(&file, "-KILL", 3);
    assert!(!status.success());
    let run = out.join("interrupt/seed-5");
    assert!(!run.join("summary.json").exists(), "a killed run has no summary");
    // whatever was on disk is whole: metrics.csv parses and holds complete epochs only
    let rows = cohort::results::read_metrics(&run.join("metrics.csv")).unwrap();
    assert!(rows.iter().all(|r| r.value.is_finite()));
    let o = cohort(&["run", file.to_str().unwrap(), "--no-progress", "--no-plot"]);
    assert_eq!(o.status.code(), Some(1), "without --resume the run is protected: {}", text(&o));
    assert!(text(&o).contains("--resume"));
    let o = cohort(&["run", file.to_str().unwrap(), "--resume", "--no-progress", "--no-plot"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(std::fs::read(run.join("metrics.csv")).unwrap(), reference, "resumed metrics differ from the uninterrupted run");
    let leftovers: Vec<String> = std::fs::read_dir(&run)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.') || n.contains("tmp") || n == "state" || n == "state.old")
        .collect();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
}

#[test]
fn sigterm_stops_cleanly_with_exit_130_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let reference = reference_metrics(tmp.path());
    let out = tmp.path().join("term");
    let file = tmp.path().join("term.ron");
    std::fs::write(&file, long_run(&out)).unwrap();
    let status = interrupt_after(&file, "-TERM", 2);
    assert_eq!(status.code(), Some(130));
    let run = out.join("interrupt/seed-5");
    assert!(run.join("state/progress.json").exists());
    assert!(std::fs::read_to_string(run.join("log.txt")).unwrap().contains("interrupted"));
    let o = cohort(&["run", file.to_str().unwrap(), "--resume", "--no-progress", "--no-plot"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(std::fs::read(run.join("metrics.csv")).unwrap(), reference);
}

/// A sweep of 2 values × 2 seeds: the shards 0/2 and 1/2 together produce exactly the runs of
/// the unsharded sweep (with identical metrics), and so does `--jobs 2` (two worker processes,
/// one thread each); rerunning skips complete runs.
#[test]
fn sweep_shards_cover_the_unsharded_sweep_and_reruns_skip() {
    let tmp = tempfile::tempdir().unwrap();
    let file = |out: &str| {
        let path = tmp.path().join(format!("{out}.ron"));
        let src = format!(
            r#"Experiment(
                name: "sw",
                data: (source: Mnist1d(num_samples: 1000), train_limit: 200, test_limit: 100),
                nodes: [Node(id: "a", model: Mlp(hidden: [16])), Node(id: "b", model: Mlp(hidden: [16]))],
                edges: [Edge(to: "a", loss: CrossEntropy), Edge(to: "b", loss: CrossEntropy), Mutual(peers: ["a", "b"])],
                training: (epochs: 1, batch_size: 50, optimizer: Adam(lr: 0.01)),
                output: {:?},
            )"#,
            tmp.path().join(out)
        );
        std::fs::write(&path, src).unwrap();
        path.display().to_string()
    };
    let sweep = |f: &str, extra: &[&str]| {
        let mut args = vec!["sweep", f, "--grid", "edges[2].weight=0.5,1.0", "--seeds", "0,1", "--no-plot"];
        args.extend_from_slice(extra);
        let o = cohort(&args);
        assert!(o.status.success(), "{}", text(&o));
        text(&o)
    };
    let (whole, split) = (file("whole"), file("split"));
    sweep(&whole, &[]);
    let listed = sweep(&split, &["--shard", "0/2", "--list"]);
    assert!(listed.contains("4 run(s), 2 here"), "{listed}");
    sweep(&split, &["--shard", "0/2"]);
    sweep(&split, &["--shard", "1/2"]);
    let runs = |out: &str| -> Vec<(String, Vec<u8>)> {
        let mut v = Vec::new();
        for exp in std::fs::read_dir(tmp.path().join(out)).unwrap() {
            let exp = exp.unwrap().path();
            for run in std::fs::read_dir(&exp).unwrap() {
                let run = run.unwrap().path();
                assert!(run.join("summary.json").is_file(), "{} incomplete", run.display());
                let name = format!("{}/{}", exp.file_name().unwrap().to_string_lossy(), run.file_name().unwrap().to_string_lossy());
                v.push((name, std::fs::read(run.join("metrics.csv")).unwrap()));
            }
        }
        v.sort();
        v
    };
    let (a, b) = (runs("whole"), runs("split"));
    let names: Vec<&str> = a.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["sw.weight-0.5/seed-0", "sw.weight-0.5/seed-1", "sw.weight-1.0/seed-0", "sw.weight-1.0/seed-1"]);
    assert_eq!(a, b, "sharded runs differ from the unsharded sweep");
    let jobs = file("jobs");
    let relayed = sweep(&jobs, &["--jobs", "2"]);
    assert!(relayed.contains("2 worker processes") && relayed.contains("[job 0] ") && relayed.contains("[job 1] "), "{relayed}");
    assert_eq!(runs("jobs"), a, "runs of --jobs 2 differ from the unsharded sweep");
    let again = sweep(&split, &["--shard", "1/2"]);
    assert_eq!(again.matches("already complete").count(), 2, "{again}");
}

/// `cohort eval` counts test errors per class as the run's own evaluation does, and a logit
/// offset moves predictions (a huge offset on class 0 makes every prediction 0).
#[test]
fn eval_counts_errors_and_applies_logit_offsets() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("e.ron");
    let src = format!(
        r#"Experiment(
            name: "ev",
            data: (source: Mnist1d(num_samples: 1000), train_limit: 300, test_limit: 150),
            nodes: [Node(id: "a", model: Mlp(hidden: [16]))],
            edges: [Edge(to: "a", loss: CrossEntropy)],
            training: (epochs: 2, batch_size: 50, optimizer: Adam(lr: 0.01)),
            output: {:?},
        )"#,
        tmp.path().join("out")
    );
    std::fs::write(&path, src).unwrap();
    assert!(cohort(&["run", path.to_str().unwrap(), "--no-progress", "--no-plot"]).status.success());
    let run = tmp.path().join("out/ev/seed-0");
    let json = |extra: &[&str]| -> serde_json::Value {
        let mut args = vec!["eval", run.to_str().unwrap(), "--node", "a", "--json"];
        args.extend_from_slice(extra);
        let o = cohort(&args);
        assert!(o.status.success(), "{}", text(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let plain = json(&[]);
    let summary: serde_json::Value = serde_json::from_slice(&std::fs::read(run.join("summary.json")).unwrap()).unwrap();
    let run_acc = summary["stages"][0]["nodes"]["a"]["last"]["test_accuracy"].as_f64().unwrap();
    let reported = plain["accuracy"].as_f64().unwrap();
    assert!((run_acc - reported).abs() < 1e-9, "eval accuracy {reported} vs the run's {run_acc}");
    let per_class: Vec<u64> = plain["errors_per_class"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    assert_eq!(per_class.iter().sum::<u64>(), plain["errors"].as_u64().unwrap());
    let all_zero = json(&["--logit-bias", "0=1e6"]);
    let counts: Vec<u64> = all_zero["samples_per_class"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    assert_eq!(all_zero["errors"].as_u64().unwrap(), 150 - counts[0]);
    let bad = cohort(&["eval", run.to_str().unwrap(), "--node", "nope"]);
    assert!(!bad.status.success() && text(&bad).contains("the run's nodes are a"), "{}", text(&bad));
    // invalid arguments exit 2 and name the argument, whether the value is malformed or out of range
    let r = run.to_str().unwrap();
    for (args, named) in [
        (vec!["eval", r, "--node", "x", "--logit-bias", "bad"], "--logit-bias bad"),
        (vec!["eval", r, "--node", "a", "--logit-bias", "10=1"], "--logit-bias 10=1"),
        (vec!["eval", r, "--node", "a", "--logit-bias", "3=inf"], "--logit-bias 3=inf"),
        (vec!["eval", r, "--node", "nope"], "no node `nope`"),
        (vec!["export-logits", r, "--node", "a", "--out", "x.json", "--temperature", "0"], "--temperature 0"),
        (
            vec!["bench", "--models", "resnet50"],
            "no benchmark model `resnet50`; there are mlp-1200, cnn-32-64, cnn1d-32, resnet32, wrn-16-2, resnet8x4, resnet32x4, vgg8, mobilenetv2, shufflenetv2",
        ),
    ] {
        let o = cohort(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        assert!(text(&o).contains(named), "{args:?}: {}", text(&o));
    }
    let o = cohort(&["eval", r, "--node", "a", "--logit-bias", "bad"]);
    insta::assert_snapshot!("eval-bad-logit-bias", text(&o).replace(r, "[RUN]"));
}

/// A reader that goes away (`cohort ... | head`) ends the process quietly, without a panic.
#[test]
fn closed_stdout_ends_quietly() {
    use std::io::Read;
    let seeds: Vec<String> = (0..5000).map(|s| s.to_string()).collect();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cohort"))
        .args(["sweep", "experiments/quickstart.ron", "--list", "--seeds", &seeds.join(",")])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 64];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap(); // then the pipe closes
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(!out.status.success());
}

/// Offline transfer: a student trained from exported (softened) teacher outputs matches, on the
/// same seed, the student trained from the live frozen teacher; a damaged file or one computed
/// on other data is refused.
#[test]
fn offline_student_from_exported_logits_matches_live_teacher() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let write = |name: &str, body: &str| {
        let path = tmp.path().join(format!("{name}.ron"));
        std::fs::write(&path, body.replace("OUT", &format!("{out:?}"))).unwrap();
        path.display().to_string()
    };
    let data = r#"data: (source: Mnist1d(), train_limit: 2000, test_limit: 500)"#;
    let teacher = write(
        "teacher",
        &format!(
            r#"Experiment(name: "t", {data},
        nodes: [Node(id: "teacher", model: Cnn1d(channels: [16, 16]))],
        edges: [Edge(to: "teacher", loss: CrossEntropy)],
        training: (epochs: 15, batch_size: 50, optimizer: Adam(lr: 0.005)), output: OUT)"#
        ),
    );
    assert!(cohort(&["run", &teacher, "--no-progress", "--no-plot"]).status.success());
    let logits = tmp.path().join("teacher.logits.json");
    let o = cohort(&["export-logits", out.join("t/seed-0").to_str().unwrap(), "--node", "teacher", "--temperature", "4", "--out", logits.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let student = |name: &str, source: &str| {
        write(
            name,
            &format!(
                r#"Experiment(name: "{name}", {data},
            nodes: [{source}, Node(id: "student", model: Cnn1d(channels: [8, 8]))],
            edges: [Edge(to: "student", loss: CrossEntropy, weight: 0.3),
                    Edge(from: ["teacher"], to: "student", loss: SoftTarget(temperature: 4.0), weight: 0.7)],
            training: (epochs: 15, batch_size: 50, optimizer: Adam(lr: 0.005)), output: OUT)"#
            ),
        )
    };
    let ckpt = out.join("t/seed-0/checkpoints/teacher.bpk");
    let live = student("live", &format!(r#"Node(id: "teacher", model: Cnn1d(channels: [16, 16]), frozen: true, checkpoint: {ckpt:?})"#));
    let offline = student("offline", &format!(r#"Node(id: "teacher", model: Recorded(file: {logits:?}))"#));
    for f in [&live, &offline] {
        let o = cohort(&["run", f, "--no-progress", "--no-plot"]);
        assert!(o.status.success(), "{}", text(&o));
    }
    let acc = |name: &str| -> f64 {
        let s: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join(name).join("seed-0/summary.json")).unwrap()).unwrap();
        s["stages"][0]["nodes"]["student"]["last"]["test_accuracy"].as_f64().unwrap()
    };
    let (a, b) = (acc("live"), acc("offline"));
    assert!(a > 0.5 && b > 0.5, "the distilled students learned (live teacher {a}, exported outputs {b})");
    // the exported outputs are the teacher's, and they read back as the same targets: the raw
    // logits bit for bit, the probabilities at T = 4 to f32 rounding, and the recorded source's
    // rows give softmax(rows/T) = the exported probabilities
    let run = out.join("t/seed-0");
    let manifest = cohort::results::Manifest::read(&run.join("manifest.ron")).unwrap();
    let train = cohort::data::prepare(&manifest.plan.data, &cohort::data::data_root(None), 0).unwrap().train;
    let (device, _) = cohort::engine::backend_device();
    let net = cohort::engine::load_checkpoint(&manifest.plan.nodes[0].model, &manifest.plan.input_shape, 10, &ckpt, &device).unwrap();
    let live_logits = cohort::engine::eval::predict(&net, &train, 1000, &device).values;
    let raw = tmp.path().join("teacher.raw.json");
    assert!(cohort(&["export-logits", run.to_str().unwrap(), "--node", "teacher", "--out", raw.to_str().unwrap()]).status.success());
    let values = |path: &Path| -> Vec<f32> {
        let f: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        f["values"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect()
    };
    assert_eq!(values(&raw), live_logits, "raw logits exported bit for bit");
    let softened = |rows: &[f32]| -> Vec<f64> {
        rows.chunks(10)
            .flat_map(|r| {
                let m = r.iter().cloned().fold(f32::MIN, f32::max) as f64;
                let e: Vec<f64> = r.iter().map(|&v| ((v as f64 - m) / 4.0).exp()).collect();
                let sum: f64 = e.iter().sum();
                e.into_iter().map(move |x| x / sum)
            })
            .collect()
    };
    let exported = values(&logits);
    let close = |a: &[f64], b: &[f32], what: &str| {
        assert_eq!(a.len(), b.len());
        let worst = a.iter().zip(b).map(|(x, &y)| (x - y as f64).abs()).fold(0.0, f64::max);
        assert!(worst <= 1e-6, "{what}: off by {worst:e}");
    };
    close(&softened(&live_logits), &exported, "exported probabilities vs the teacher's softmax(v/4)");
    let recorded = cohort::engine::recorded::Recorded::load(&logits, "teacher", &train).unwrap();
    let rows = recorded.rows(&(0..train.len()).collect::<Vec<_>>());
    close(&softened(&rows), &exported, "the recorded source's targets vs the exported probabilities");
    // other data: refused with the reason
    let other = std::fs::read_to_string(&offline).unwrap().replace("train_limit: 2000", "train_limit: 1900").replace("\"offline\"", "\"other\"");
    std::fs::write(&offline, other).unwrap();
    let o = cohort(&["run", &offline, "--no-progress", "--no-plot"]);
    assert!(!o.status.success() && text(&o).contains("different training split"), "{}", text(&o));
    // a damaged file: refused
    let damaged = std::fs::read_to_string(&logits).unwrap().replacen("\"values\":[0.", "\"values\":[1.", 1);
    std::fs::write(&logits, damaged).unwrap();
    let again = std::fs::read_to_string(&offline).unwrap().replace("train_limit: 1900", "train_limit: 2000").replace("\"other\"", "\"damaged\"");
    std::fs::write(&offline, again).unwrap();
    let o = cohort(&["run", &offline, "--no-progress", "--no-plot"]);
    assert!(!o.status.success() && text(&o).contains("checksum"), "{}", text(&o));
}

/// Asking for a backend this binary was not built with fails before any result folder exists.
#[cfg(not(feature = "cuda"))]
#[test]
fn a_backend_not_compiled_in_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("b.ron");
    let src = format!(
        r#"Experiment(name: "b", data: (source: Mnist1d(num_samples: 1000), train_limit: 100),
            nodes: [Node(id: "a", model: Mlp(hidden: [8]))], edges: [Edge(to: "a", loss: CrossEntropy)],
            training: (epochs: 1), output: {:?})"#,
        tmp.path().join("out")
    );
    std::fs::write(&path, src).unwrap();
    let o = cohort(&["run", path.to_str().unwrap(), "--backend", "cuda", "--no-progress"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("--features cuda"), "{}", text(&o));
    assert!(!tmp.path().join("out").exists());
    let o = cohort(&["run", path.to_str().unwrap(), "--backend", "gpu"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

/// A full disk (a 100 KiB tmpfs) ends the run with a clear error naming the file, and what was
/// written before stays whole (atomic writes). Needs permission to mount a tmpfs (root in CI);
/// skipped with a message otherwise.
#[test]
fn a_full_disk_is_a_clear_error_and_corrupts_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let disk = tmp.path().join("disk");
    std::fs::create_dir(&disk).unwrap();
    let mounted = Command::new("mount").args(["-t", "tmpfs", "-o", "size=100k", "tmpfs"]).arg(&disk).output();
    if !mounted.as_ref().is_ok_and(|o| o.status.success()) {
        common::skip("a_full_disk_is_a_clear_error_and_corrupts_nothing", "cannot mount a tmpfs here (needs root)");
        return;
    }
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _guard = Unmount(disk.clone());
    let path = tmp.path().join("d.ron");
    let src = format!(
        r#"Experiment(name: "d", data: (source: Mnist1d(num_samples: 1000), train_limit: 200, test_limit: 100),
            nodes: [Node(id: "a", model: Mlp(hidden: [256]))], edges: [Edge(to: "a", loss: CrossEntropy)],
            training: (epochs: 3, batch_size: 50), output: {:?})"#,
        disk.join("results")
    );
    std::fs::write(&path, src).unwrap();
    let o = cohort(&["run", path.to_str().unwrap(), "--no-progress", "--no-plot"]);
    let msg = text(&o);
    assert_eq!(o.status.code(), Some(1), "{msg}");
    assert!(msg.contains("No space left on device") && msg.contains("results/d/seed-0") && msg.contains("--resume"), "{msg}");
    let run = disk.join("results/d/seed-0");
    assert!(!run.join("summary.json").exists(), "a failed run has no summary");
    // whatever was written is whole: the manifest parses, metrics.csv (if any) reads back
    assert!(std::fs::read_to_string(run.join("manifest.ron")).unwrap().contains("experiment_sha256"));
    if run.join("metrics.csv").exists() {
        let rows = cohort::results::read_metrics(&run.join("metrics.csv")).unwrap();
        assert!(rows.iter().all(|r| r.value.is_finite()));
    }
}

/// A second Ctrl-C does not wait for the step in progress: the process exits at once (130),
/// without the graceful stop's message, and the last complete epoch is still resumable.
#[test]
fn second_interrupt_exits_at_once_and_stays_resumable() {
    use std::io::{BufRead, BufReader};
    // The two signals go 20 ms apart (two pending SIGINTs would merge into one) into a step of
    // ~1 s; should the step end in between (the graceful path), the scenario is retried.
    for attempt in 0..3 {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("slow.ron");
        let out = tmp.path().join("out");
        std::fs::write(
            &file,
            format!(
                r#"Experiment(name: "slow", data: (source: Mnist1d(), test_limit: 100),
                    nodes: [Node(id: "a", model: Cnn1d(channels: [128, 128, 128]))], edges: [Edge(to: "a", loss: CrossEntropy)],
                    training: (epochs: 20, batch_size: 2000), output: {out:?})"#
            ),
        )
        .unwrap();
        let mut child = spawn_run(&file);
        let pid = child.id().to_string();
        for line in BufReader::new(child.stdout.take().unwrap()).lines() {
            if line.unwrap().contains("] epoch 1/") {
                Command::new("sh").args(["-c", &format!("kill -INT {pid}; sleep 0.02; kill -INT {pid}")]).status().unwrap();
            }
        }
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(130));
        let run = out.join("slow/seed-0");
        let log = std::fs::read_to_string(run.join("log.txt")).unwrap();
        if log.contains("interrupted") {
            eprintln!("attempt {attempt}: the step ended between the two signals; retrying");
            continue;
        }
        assert!(run.join("state/progress.json").exists(), "epoch 1 stays saved");
        assert!(!run.join("summary.json").exists());
        return;
    }
    panic!("the second interrupt never cut a step short in 3 attempts");
}

/// KTG's gate search as a random sweep: `--random 8` over 4^6 gate assignments lists 8 distinct
/// experiments; the same command lists the same 8 in the same order; three shards list each
/// once; another `--sample-seed` draws another sample.
#[test]
fn random_sweep_over_gates_is_reproducible_and_sharded() {
    let gates = "Through,Cutoff,PositiveLinear,NegativeLinear";
    let axes: Vec<String> = (3..9).map(|k| format!("edges[{k}].gate={gates}")).collect();
    let list = |extra: &[&str]| -> Vec<String> {
        let mut args = vec!["sweep", "experiments/ktg.ron", "--random", "8", "--seeds", "0", "--list"];
        for a in &axes {
            args.extend(["--grid", a.as_str()]);
        }
        args.extend_from_slice(extra);
        let out = cohort(&args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).lines().filter(|l| l.trim_start().starts_with('#')).map(|l| l.trim().to_string()).collect()
    };
    let first = list(&[]);
    assert_eq!(first.len(), 8, "{first:?}");
    let distinct: std::collections::HashSet<&String> = first.iter().collect();
    assert_eq!(distinct.len(), 8);
    // names too long for a folder carry a fingerprint; the listing spells the point out
    assert!(first.iter().all(|l| l.contains("ktg.point-") && l.contains("edges[8].gate=")), "{first:?}");
    assert_eq!(list(&[]), first, "a second invocation draws the same sample");
    let mut sharded: Vec<String> = (0..3).flat_map(|i| list(&["--shard", &format!("{i}/3")])).collect();
    let mut sorted = first.clone();
    sharded.sort();
    sorted.sort();
    assert_eq!(sharded, sorted, "the shards cover the sample once");
    assert_ne!(list(&["--sample-seed", "1"]), first);
}

/// `cohort run FILE --set PATH=VALUE` trains exactly what the file edited by hand trains, keeps
/// the name (unless `name` is set), records the value in the manifest, and a bad `--set` exits 2
/// naming it.
#[test]
fn run_with_set_equals_the_edited_file() {
    let tmp = tempfile::tempdir().unwrap();
    let file = |stem: &str, lr: &str| {
        let path = tmp.path().join(format!("{stem}.ron"));
        let src = format!(
            r#"Experiment(
                name: "setx",
                data: (source: Mnist1d(num_samples: 1000), train_limit: 200, test_limit: 100),
                nodes: [Node(id: "a", model: Mlp(hidden: [16]))],
                edges: [Edge(to: "a", loss: CrossEntropy)],
                training: (epochs: 2, batch_size: 50, optimizer: Sgd(lr: {lr}, momentum: 0.9), seeds: [0]),
                output: {:?},
            )"#,
            tmp.path().join(stem)
        );
        std::fs::write(&path, src).unwrap();
        path.display().to_string()
    };
    let (base, edited) = (file("base", "0.01"), file("edited", "0.2"));
    let o = cohort(&["run", &edited, "--no-progress", "--no-plot", "--no-tensorboard"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = cohort(&["run", &base, "--set", "training.optimizer.lr=0.2", "--set", "name=renamed", "--no-progress", "--no-plot", "--no-tensorboard"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let metrics = |p: std::path::PathBuf| std::fs::read(p.join("seed-0/metrics.csv")).unwrap();
    assert_eq!(metrics(tmp.path().join("base/renamed")), metrics(tmp.path().join("edited/setx")), "--set trains what the edited file trains");
    let manifest = std::fs::read_to_string(tmp.path().join("base/renamed/seed-0/manifest.ron")).unwrap();
    assert!(manifest.contains("[set: training.optimizer.lr=0.2, name=renamed]"), "{manifest}");
    for (set, says) in
        [("training.nope=1", "--set training.nope=1:"), ("training.optimizer.lr=-1", "--set training.optimizer.lr=-1:"), ("lr", "expected PATH=VALUE")]
    {
        let o = cohort(&["run", &base, "--set", set, "--no-progress"]);
        assert_eq!(o.status.code(), Some(2), "{set}: {}", text(&o));
        assert!(text(&o).contains(says), "{set}: {}", text(&o));
    }
}

/// `cohort verify` retrains a run from its manifest (here one made with `--set`, which the
/// manifest's plan records) and finds it identical; a figure edited in its metrics.csv (the
/// last digit of one loss) is named, with exit status 1; a folder that is not a run is a clear
/// error.
#[test]
fn verify_reruns_from_the_manifest_and_names_a_changed_figure() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("v.ron");
    let src = format!(
        r#"Experiment(
            name: "v",
            data: (source: Mnist1d(num_samples: 1000), train_limit: 200, test_limit: 100, validation: 0.1),
            nodes: [Node(id: "a", model: Mlp(hidden: [16])), Node(id: "b", model: Mlp(hidden: [8]))],
            edges: [Edge(to: "a", loss: CrossEntropy), Edge(to: "b", loss: CrossEntropy), Edge(to: "b", from: ["a"], loss: MutualKl(temperature: 2.0))],
            training: (epochs: 2, batch_size: 50, optimizer: Sgd(lr: 0.01, momentum: 0.9), seeds: [3]),
            output: {:?},
        )"#,
        tmp.path().join("out")
    );
    std::fs::write(&file, src).unwrap();
    let o = cohort(&["run", &file.display().to_string(), "--set", "training.optimizer.lr=0.05", "--no-progress", "--no-plot", "--no-tensorboard"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // the experiment file is gone: the manifest alone must be enough
    std::fs::remove_file(&file).unwrap();
    let run = tmp.path().join("out/v/seed-3");
    let keep = tmp.path().join("rerun");
    let o = cohort(&["verify", &run.display().to_string(), "--keep", &keep.display().to_string()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("identical:"), "{}", text(&o));
    assert_eq!(std::fs::read(run.join("metrics.csv")).unwrap(), std::fs::read(keep.join("0/v/seed-3/metrics.csv")).unwrap());

    let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let line = metrics.lines().find(|l| l.starts_with("main,2,b,train,loss,")).expect("a loss row of epoch 2").to_string();
    let value: f64 = line.rsplit(',').next().unwrap().parse().unwrap();
    let nudged = f64::from_bits(value.to_bits() + 1);
    std::fs::write(run.join("metrics.csv"), metrics.replace(&line, &format!("main,2,b,train,loss,{nudged}"))).unwrap();
    let o = cohort(&["verify", &run.display().to_string()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("DIFFERS") && text(&o).contains(&format!("main,2,b,train,loss: recorded {nudged}, now {value}")), "{}", text(&o));

    let o = cohort(&["verify", &tmp.path().display().to_string()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("has no metrics.csv"), "{}", text(&o));
}
