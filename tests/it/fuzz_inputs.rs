//! Every input format cohort reads, fuzzed as experiment files are (tests/it/properties.rs):
//! seeded mutations (truncations, bit flips, header edits, spliced garbage) of a valid file of
//! each format go through its reader — the data-source trait for data sets, the weights loaders,
//! recorded outputs, manifests — and a reader may only answer `Ok` or an error that names the
//! file. A panic fails the test, and the test binary's allocator (tests/it/main.rs) aborts on any
//! single allocation over 2 GiB, so a size taken from an unchecked header field fails it too.
//! Failures print the format and the case number (the mutations are reproducible).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use cohort::config::{DataSource, MnistSpec};
use cohort::data::arrays::{Layout, NpySpec, NpzSpec, write_npy, write_npz};
use cohort::data::images::{Color, ImageFolderSpec, write_image_folder};
use cohort::data::table::CsvSpec;
use cohort::data::{Samples, Splits};
use cohort::random::legacy::LegacyRandomState;

/// Cases per format (each a fresh mutation of the valid file).
const CASES: usize = 300;

/// A small split: `n` samples of `shape`, 3 classes, values in [0, 1].
fn samples(n: usize, shape: &[usize]) -> Samples {
    let d: usize = shape.iter().product();
    Samples {
        features: (0..n * d).map(|i| ((i * 37) % 256) as f32 / 255.0).collect(),
        labels: (0..n).map(|i| (i % 3) as u8).collect(),
        shape: shape.to_vec(),
        classes: 3,
        domains: Vec::new(),
        background: Vec::new(),
    }
}

fn splits(shape: &[usize]) -> Splits {
    Splits { train: samples(6, shape), test: samples(3, shape) }
}

/// One mutation of `bytes`: a truncation, bit flips, a header field set to an extreme, a run of
/// bytes removed, or garbage spliced in.
fn mutate(bytes: &[u8], rng: &mut LegacyRandomState) -> Vec<u8> {
    let mut b = bytes.to_vec();
    let n = b.len().max(1);
    match rng.choice(5) {
        0 => b.truncate(rng.choice(n)),
        1 => {
            for _ in 0..1 + rng.choice(8) {
                let at = rng.choice(n).min(b.len().saturating_sub(1));
                if !b.is_empty() {
                    b[at] ^= 1 << rng.choice(8);
                }
            }
        }
        2 => {
            // a header field (the first 128 bytes) overwritten with an extreme value
            let at = rng.choice(n.min(128)).min(b.len().saturating_sub(1));
            let extreme: &[u8] = [&[0xff; 8][..], &[0; 8], &[0x7f, 0xff, 0xff, 0xff], b"99999999999"][rng.choice(4)];
            for (k, &x) in extreme.iter().enumerate() {
                if at + k < b.len() {
                    b[at + k] = x;
                }
            }
        }
        3 if !b.is_empty() => {
            let at = rng.choice(b.len());
            let end = (at + 1 + rng.choice(64)).min(b.len());
            b.drain(at..end);
        }
        _ => {
            let at = rng.choice(n).min(b.len());
            let junk: Vec<u8> = (0..1 + rng.choice(32)).map(|_| rng.choice(256) as u8).collect();
            b.splice(at..at, junk);
        }
    }
    b
}

/// Mutates file `target` (valid content `valid`) `CASES` times and calls `read` on each: it must
/// not panic, and an error must name one of `names` (the file, or its folder).
fn fuzz(format: &str, target: &Path, valid: &[u8], names: &[&str], read: impl Fn() -> Result<(), String>) {
    let mut rng = LegacyRandomState::new(0x00f0_22ed);
    let (mut ok, mut failed) = (0, 0);
    for case in 0..CASES {
        std::fs::write(target, mutate(valid, &mut rng)).unwrap();
        match catch_unwind(AssertUnwindSafe(&read)) {
            Ok(Ok(())) => ok += 1,
            Ok(Err(msg)) => {
                failed += 1;
                assert!(names.iter().any(|n| msg.contains(n)), "{format}, case {case}: the error does not name the file ({names:?}): {msg}");
            }
            Err(_) => panic!("{format}, case {case}: the reader panicked"),
        }
    }
    std::fs::write(target, valid).unwrap();
    assert!(read().is_ok(), "{format}: the valid file is read again");
    assert!(failed > CASES / 4, "{format}: only {failed} of {CASES} mutations were rejected ({ok} read): the mutations are too weak to test anything");
}

/// Reads a data source whole: its shape from the headers, then its splits.
fn read_source(source: &DataSource, root: &Path) -> Result<(), String> {
    source.input_shape().map_err(|e| e.to_string())?;
    source.load(root).map(|_| ()).map_err(|e| e.to_string())
}

fn name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn mutated_npz_archives_are_rejected_with_their_name() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("d.npz");
    write_npz(&splits(&[1, 4, 4]), &file).unwrap();
    let valid = std::fs::read(&file).unwrap();
    let source = DataSource::Npz(NpzSpec {
        file: file.clone(),
        classes: 3,
        x_train: "x_train".into(),
        y_train: "y_train".into(),
        x_test: "x_test".into(),
        y_test: "y_test".into(),
        layout: Some(Layout::Nchw),
    });
    fuzz("npz", &file, &valid, &[&name(&file)], || read_source(&source, tmp.path()));
}

#[test]
fn mutated_npy_arrays_are_rejected_with_their_name() {
    let tmp = tempfile::tempdir().unwrap();
    let s = splits(&[1, 4, 4]);
    write_npy(&s.train, tmp.path(), "train").unwrap();
    write_npy(&s.test, tmp.path(), "test").unwrap();
    let npy: Vec<PathBuf> = std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().path()).collect();
    let find = |part: &str| npy.iter().find(|p| name(p).contains(part)).unwrap_or_else(|| panic!("no {part} file in {npy:?}")).clone();
    let spec =
        NpySpec { x_train: find("x_train"), y_train: find("y_train"), x_test: find("x_test"), y_test: find("y_test"), classes: 3, layout: Some(Layout::Nchw) };
    for target in [spec.x_train.clone(), spec.y_test.clone()] {
        let valid = std::fs::read(&target).unwrap();
        let source = DataSource::Npy(spec.clone());
        fuzz("npy", &target, &valid, &[&name(&target)], || read_source(&source, tmp.path()));
    }
}

#[test]
fn mutated_csv_tables_are_rejected_with_their_name() {
    let tmp = tempfile::tempdir().unwrap();
    let s = splits(&[4]);
    let (train, test) = (tmp.path().join("train.csv"), tmp.path().join("test.csv"));
    cohort::data::export::write_csv(&s.train, &train).unwrap();
    cohort::data::export::write_csv(&s.test, &test).unwrap();
    let valid = std::fs::read(&train).unwrap();
    let source = DataSource::Csv(CsvSpec { train: train.clone(), test, classes: 3, label_column: "label".into(), features: None, shape: None });
    fuzz("csv", &train, &valid, &[&name(&train)], || read_source(&source, tmp.path()));
}

#[test]
fn mutated_png_images_are_rejected_with_their_name() {
    let tmp = tempfile::tempdir().unwrap();
    let s = splits(&[3, 4, 4]);
    let (train, test) = (tmp.path().join("train"), tmp.path().join("test"));
    write_image_folder(&s.train, &train).unwrap();
    write_image_folder(&s.test, &test).unwrap();
    let class0 = std::fs::read_dir(&train).unwrap().map(|e| e.unwrap().path()).find(|p| p.is_dir()).unwrap();
    let image = std::fs::read_dir(&class0).unwrap().map(|e| e.unwrap().path()).next().unwrap();
    let valid = std::fs::read(&image).unwrap();
    let source = DataSource::ImageFolder(ImageFolderSpec { train, test, size: 4, color: Color::Rgb });
    fuzz("png", &image, &valid, &[&name(&image)], || read_source(&source, tmp.path()));
}

/// An IDX file: magic, dimensions, then bytes.
fn idx(ndims: u8, dims: &[u32], body: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0, 8, ndims];
    for d in dims {
        b.extend(d.to_be_bytes());
    }
    b.extend(body);
    b
}

#[test]
fn mutated_idx_files_are_rejected_with_their_name() {
    let tmp = tempfile::tempdir().unwrap();
    let files = [
        ("train-images-idx3-ubyte", idx(3, &[4, 28, 28], &[7; 4 * 784])),
        ("train-labels-idx1-ubyte", idx(1, &[4], &[0, 1, 2, 3])),
        ("t10k-images-idx3-ubyte", idx(3, &[2, 28, 28], &[9; 2 * 784])),
        ("t10k-labels-idx1-ubyte", idx(1, &[2], &[4, 5])),
    ];
    for (n, b) in &files {
        std::fs::write(tmp.path().join(n), b).unwrap();
    }
    // through the data source, every file is first checked against MNIST's published digest:
    // a mutated file is rejected there, by name
    let source = DataSource::Mnist(MnistSpec { dir: Some(tmp.path().into()) });
    let mut rng = LegacyRandomState::new(3);
    for (n, b) in &files {
        std::fs::write(tmp.path().join(n), mutate(b, &mut rng)).unwrap();
        let msg = catch_unwind(AssertUnwindSafe(|| source.load(tmp.path()))).expect("no panic").unwrap_err().to_string();
        assert!(msg.contains("idx") && msg.contains(&tmp.path().display().to_string()), "{msg}");
    }
    // the IDX parser itself, past the digest check
    for (n, b) in &files {
        let ndims = b[3];
        let mut rng = LegacyRandomState::new(7);
        for case in 0..CASES {
            let m = mutate(b, &mut rng);
            let path = tmp.path().join(n);
            match catch_unwind(|| cohort::data::idx::parse_idx(&m, ndims, &path).map(|_| ()).map_err(|e| e.to_string())) {
                Ok(Err(msg)) => assert!(msg.contains(n), "idx {n}, case {case}: {msg}"),
                Ok(Ok(())) => {}
                Err(_) => panic!("idx {n}, case {case}: parse_idx panicked"),
            }
        }
    }
}

#[test]
fn mutated_cifar_records_are_rejected_with_their_name() {
    let tmp = tempfile::tempdir().unwrap();
    let record = |label: u8| std::iter::once(label).chain((0..3072).map(|i| (i % 251) as u8)).collect::<Vec<u8>>();
    let batch: Vec<u8> = (0..3).flat_map(|k| record(k as u8)).collect();
    for n in ["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"] {
        std::fs::write(tmp.path().join(n), &batch).unwrap();
    }
    let source = DataSource::Cifar10(cohort::config::Cifar10Spec { dir: Some(tmp.path().into()) });
    let target = tmp.path().join("data_batch_3.bin");
    fuzz("cifar", &target, &batch, &["data_batch_3.bin"], || read_source(&source, tmp.path()));
}

/// The ResNet-8 of the PyTorch fixtures (10 classes).
fn resnet8() -> (cohort::models::ModelSpec, Vec<usize>) {
    let spec: cohort::models::ModelSpec = cohort::config::ron_options().from_str("ResNet(blocks: [1, 1, 1], widths: [16, 32, 64])").unwrap();
    (spec, vec![3, 32, 32])
}

#[test]
fn mutated_weights_files_are_rejected_with_their_name() {
    let tmp = tempfile::tempdir().unwrap();
    let (spec, shape) = resnet8();
    let device = burn::tensor::Device::flex();
    for fixture in ["resnet8.safetensors", "resnet8.pth"] {
        let valid = std::fs::read(Path::new("tests/fixtures/pytorch").join(fixture)).unwrap();
        let target = tmp.path().join(fixture);
        std::fs::write(&target, &valid).unwrap();
        fuzz(fixture, &target, &valid, &[fixture], || {
            cohort::engine::load_initial(&spec, &shape, 10, "n", &target, &device).map(|_| ()).map_err(|e| e.to_string())
        });
    }
}

#[test]
fn mutated_burnpack_checkpoints_are_rejected_with_their_name() {
    use burn::module::Module;
    let tmp = tempfile::tempdir().unwrap();
    let (spec, shape) = resnet8();
    let device = burn::tensor::Device::flex();
    let target = tmp.path().join("n.bpk");
    let net = {
        let _rng = crate::common::rng(); // no run on another test thread draws meanwhile
        cohort::models::Network::init(&spec, &shape, 10, &device)
    };
    std::fs::write(&target, &net.into_record().into_bytes().unwrap()[..]).unwrap();
    let valid = std::fs::read(&target).unwrap();
    fuzz("burnpack", &target, &valid, &["n.bpk"], || {
        cohort::engine::load_checkpoint(&spec, &shape, 10, &target, &device).map(|_| ()).map_err(|e| e.to_string())
    });
}

#[test]
fn mutated_manifests_are_rejected_with_their_name() {
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("manifest.ron");
    let valid = std::fs::read("results/examples/runs/quickstart/seed-0/manifest.ron").unwrap();
    fuzz("manifest", &target, &valid, &["manifest.ron"], || cohort::results::Manifest::read(&target).map(|_| ()).map_err(|e| e.to_string()));
}

#[test]
fn mutated_recorded_outputs_are_rejected_with_their_name() {
    let tmp = tempfile::tempdir().unwrap();
    let s = samples(5, &[4]);
    let spec: cohort::config::DataSpec = cohort::config::ron_options().from_str("(source: Mnist1d())").unwrap();
    let logits: Vec<f32> = (0..15).map(|i| i as f32 / 7.0).collect();
    let target = tmp.path().join("t.logits.json");
    cohort::engine::recorded::RecordedFile::new("x", "teacher", 0, &spec, &s, &logits, None).write(&target).unwrap();
    let valid = std::fs::read(&target).unwrap();
    fuzz("recorded", &target, &valid, &["t.logits.json"], || {
        cohort::engine::recorded::Recorded::load(&target, "student", &s).map(|_| ()).map_err(|e| e.to_string())
    });
}
