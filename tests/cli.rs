//! The `cohort` binary as a user meets it: exit codes, messages, exported files.

use std::path::Path;
use std::process::{Command, Output};

fn cohort(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cohort"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
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

/// Starts `cohort run FILE` and kills it with `signal` once it has printed `after` epochs.
fn interrupt_after(file: &Path, signal: &str, after: usize) -> std::process::ExitStatus {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_cohort"))
        .args(["run", file.to_str().unwrap(), "--no-progress", "--no-plot"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
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
