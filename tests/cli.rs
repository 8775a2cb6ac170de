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
