//! Data: the MNIST-1D generator against the published generator's output, loaders on fixture
//! files, splits, batching, and MNIST when it has been fetched.

use std::path::{Path, PathBuf};

use cohort::config::values::Fraction;
use cohort::config::{Cifar10Spec, DataSource, DataSpec as Data, MnistSpec, Normalization};
use cohort::data::spec::Augment;
use cohort::data::{
    self, DataError,
    mnist1d::{Mnist1dParams, generate},
};
use serde_json::Value;

use crate::common;

fn reference() -> Value {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mnist1d_reference.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn params_from(args: &Value) -> Mnist1dParams {
    let f = |k: &str| args[k].as_f64().unwrap();
    let u = |k: &str| args[k].as_u64().unwrap() as usize;
    Mnist1dParams {
        num_samples: u("num_samples"),
        train_split: f("train_split"),
        padding: (args["padding"][0].as_u64().unwrap() as usize, args["padding"][1].as_u64().unwrap() as usize),
        scale_coeff: f("scale_coeff"),
        max_translation: u("max_translation"),
        corr_noise_scale: f("corr_noise_scale"),
        iid_noise_scale: f("iid_noise_scale"),
        shear_scale: f("shear_scale"),
        final_seq_length: u("final_seq_length"),
        seed: u("seed") as u32,
    }
}

/// Compares our generator with numpy/scipy's (values written by scripts/mnist1d-reference.py
/// with the `mnist1d` package): labels exactly, features to 1e-5 (f32 storage).
fn compare(case: &str) {
    let r = &reference()[case];
    let p = params_from(&r["args"]);
    let s = generate(&p);
    assert_eq!(s.train.len() as u64, r["n_train"].as_u64().unwrap());
    assert_eq!(s.test.len() as u64, r["n_test"].as_u64().unwrap());
    let ints = |v: &Value| v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect::<Vec<_>>();
    let head = ints(&r["y_train_head"]);
    assert_eq!(s.train.labels[..head.len()].iter().map(|&l| l as usize).collect::<Vec<_>>(), head);
    let head = ints(&r["y_test_head"]);
    assert_eq!(s.test.labels[..head.len()].iter().map(|&l| l as usize).collect::<Vec<_>>(), head);
    assert_eq!(s.train.class_counts(), ints(&r["train_class_counts"]));
    for (split, key) in [(&s.train, "x_train_rows"), (&s.test, "x_test_rows")] {
        for (i, row) in r[key].as_object().unwrap() {
            let i: usize = i.parse().unwrap();
            for (k, want) in row.as_array().unwrap().iter().enumerate() {
                let (got, want) = (split.row(i)[k] as f64, want.as_f64().unwrap());
                assert!((got - want).abs() < 1e-5, "{case} {key}[{i}][{k}]: {got} vs {want}");
            }
        }
    }
    for (split, key) in [(&s.train, "x_train"), (&s.test, "x_test")] {
        let sum: f64 = split.features.iter().map(|&v| v as f64).sum();
        let sumsq: f64 = split.features.iter().map(|&v| (v as f64).powi(2)).sum();
        let n = split.features.len() as f64;
        // per-value agreement ~1e-7 (f32) gives sums within n·1e-6
        assert!((sum - r[format!("{key}_sum")].as_f64().unwrap()).abs() < n * 1e-6, "{case} {key} sum {sum}");
        assert!((sumsq - r[format!("{key}_sumsq")].as_f64().unwrap()).abs() < n * 1e-6, "{case} {key} sumsq {sumsq}");
    }
}

#[test]
fn mnist1d_default_matches_published_generator() {
    compare("default");
    // the reference values of docs/data.md (MNIST-1D), independently of the JSON file
    let s = generate(&Mnist1dParams::default());
    assert_eq!(&s.train.labels[..10], &[2, 6, 4, 5, 6, 6, 6, 0, 3, 1]);
    assert_eq!(s.train.class_counts(), vec![398, 396, 411, 394, 394, 402, 401, 404, 402, 398]);
    for (got, want) in s.train.row(0)[..3].iter().zip([-0.332006, -0.47191, -0.778697]) {
        assert!((*got as f64 - want).abs() < 1e-5);
    }
}

#[test]
fn mnist1d_custom_parameters_match_published_generator() {
    compare("custom");
}

#[test]
fn mnist1d_parameters_are_checked() {
    let bad = Mnist1dParams { num_samples: 55, ..Default::default() };
    assert!(bad.check().unwrap_err().contains("multiple of 10"));
    let bad = Mnist1dParams { padding: (10, 5), ..Default::default() };
    assert!(bad.check().unwrap_err().contains("padding"));
}

fn data_spec(source: DataSource) -> Data {
    Data {
        source,
        validation: Fraction::new(0.0).unwrap(),
        train_limit: None,
        test_limit: None,
        jitter: 0,
        augment: Vec::new(),
        views: Default::default(),
        normalize: Normalization::Standardize,
    }
}

#[test]
fn validation_hold_out_is_seeded_and_disjoint() {
    let mut spec = data_spec(DataSource::Mnist1d(Mnist1dParams::default()));
    spec.validation = Fraction::new(0.25).unwrap();
    let a = data::prepare(&spec, Path::new("unused"), 3).unwrap();
    assert_eq!((a.train.len(), a.validation.len(), a.test.len()), (3000, 1000, 1000));
    let b = data::prepare(&spec, Path::new("unused"), 3).unwrap();
    assert_eq!(a, b);
    let c = data::prepare(&spec, Path::new("unused"), 4).unwrap();
    assert_ne!(a.validation.labels, c.validation.labels);
    // the two parts partition the original training split: each sample's index in the full
    // split (found by its exact features, all distinct) is in exactly one part
    let full = generate(&Mnist1dParams::default());
    let key = |row: &[f32]| row.iter().map(|v| v.to_bits()).collect::<Vec<u32>>();
    let index: std::collections::HashMap<Vec<u32>, usize> = (0..full.train.len()).map(|i| (key(full.train.row(i)), i)).collect();
    assert_eq!(index.len(), full.train.len(), "the samples are distinct, so a row names its index");
    let indices = |s: &data::Samples| -> Vec<usize> { (0..s.len()).map(|i| index[&key(s.row(i))]).collect() };
    let (train, validation) = (indices(&a.train), indices(&a.validation));
    let mut all: Vec<usize> = train.iter().chain(&validation).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..full.train.len()).collect::<Vec<_>>(), "train and validation are disjoint and cover the split");
    assert!(train.windows(2).all(|w| w[0] < w[1]) && validation.windows(2).all(|w| w[0] < w[1]), "each part keeps the file order");
    spec.train_limit = Some(100);
    spec.test_limit = Some(10);
    let d = data::prepare(&spec, Path::new("unused"), 3).unwrap();
    assert_eq!((d.train.len(), d.test.len()), (100, 10));
}

// ---- CIFAR-10 on fixture files written here

fn write_cifar(dir: &Path, records_per_file: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let names = ["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"];
    for (f, name) in names.iter().enumerate() {
        let mut bytes = Vec::new();
        for r in 0..records_per_file {
            bytes.push(((f + r) % 10) as u8);
            // R plane = 10, G plane = 20, B plane = pixel index % 256
            bytes.extend(std::iter::repeat_n(10u8, 1024));
            bytes.extend(std::iter::repeat_n(20u8, 1024));
            bytes.extend((0..1024).map(|k| (k % 256) as u8));
        }
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

#[test]
fn cifar10_loads_records_in_channel_order() {
    let tmp = tempfile::tempdir().unwrap();
    write_cifar(tmp.path(), 3);
    let s = DataSource::Cifar10(Cifar10Spec { dir: Some(tmp.path().into()) }).load(Path::new("unused")).unwrap();
    assert_eq!((s.train.len(), s.test.len()), (15, 3));
    assert_eq!(s.train.shape, vec![3, 32, 32]);
    assert_eq!(&s.train.labels[..4], &[0, 1, 2, 1]);
    let row = s.train.row(0);
    assert_eq!(row[0], 10.0 / 255.0);
    assert_eq!(row[1024], 20.0 / 255.0);
    assert_eq!(row[2048 + 300], (300 % 256) as f32 / 255.0);
    // per-channel standardisation uses the training statistics
    let spec = data_spec(DataSource::Cifar10(Cifar10Spec { dir: Some(tmp.path().into()) }));
    let p = data::prepare(&spec, Path::new("unused"), 0).unwrap();
    assert_eq!(p.train.row(0)[0], 0.0); // constant channel: mean removed
}

/// Regression: jitter after standardisation filled the uncovered border with 0, which after
/// standardisation is the mean pixel, not the background. The border is now a raw 0 pixel,
/// scaled: `(0 − mean_c)/std_c` per channel.
#[test]
fn jitter_fills_the_border_with_the_scaled_background() {
    let tmp = tempfile::tempdir().unwrap();
    write_cifar(tmp.path(), 3);
    let spec = data_spec(DataSource::Cifar10(Cifar10Spec { dir: Some(tmp.path().into()) }));
    let p = data::prepare(&spec, Path::new("unused"), 0).unwrap();
    // the blue plane varies (pixel index % 256 over 255): its background is far from 0
    let stats = {
        let raw = DataSource::Cifar10(Cifar10Spec { dir: Some(tmp.path().into()) }).load(Path::new("unused")).unwrap().train;
        raw.channel_stats()
    };
    let blue = (-stats[2].0 / stats[2].1) as f32;
    assert!(blue < -1.0, "{blue}");
    assert_eq!(p.train.background[2], blue);
    // jitter 1: some draw shifts the image down, and the uncovered top row of the blue plane
    // (in the image: 0, 1, …, 31 over 255, scaled) is the background throughout
    assert!(p.train.row(0)[2048..2080].iter().any(|&v| v != blue));
    let mut rng = cohort::random::legacy::LegacyRandomState::new(7);
    let moved = (0..64)
        .map(|_| data::batch::gather(&p.train, &[0], &[Augment::Jitter { pixels: 1 }], Some(&mut rng)).inputs)
        .find(|x| x[2048..2080].iter().all(|&v| v == blue));
    assert!(moved.is_some(), "a shift down uncovers the top row, filled with the background");
}

#[test]
fn cifar10_bad_files_are_named_with_a_fix() {
    let tmp = tempfile::tempdir().unwrap();
    write_cifar(tmp.path(), 2);
    let f = tmp.path().join("data_batch_3.bin");
    let bytes = std::fs::read(&f).unwrap();
    std::fs::write(&f, &bytes[..bytes.len() - 7]).unwrap();
    let err = DataSource::Cifar10(Cifar10Spec { dir: Some(tmp.path().into()) }).load(Path::new("x")).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DataError::Corrupt { .. }), "{msg}");
    assert!(msg.contains("data_batch_3.bin") && msg.contains("3073") && msg.contains("fix:"), "{msg}");
    std::fs::remove_file(tmp.path().join("test_batch.bin")).unwrap();
    std::fs::write(&f, &bytes).unwrap();
    let msg = DataSource::Cifar10(Cifar10Spec { dir: Some(tmp.path().into()) }).load(Path::new("x")).unwrap_err().to_string();
    assert!(msg.contains("test_batch.bin") && msg.contains("missing"), "{msg}");
}

// ---- MNIST

#[test]
fn missing_mnist_names_the_fetch_command() {
    let err = DataSource::Mnist(MnistSpec { dir: Some("/nonexistent/mnist".into()) }).load(Path::new("x")).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DataError::Missing { .. }));
    assert!(msg.contains("cohort data fetch mnist"), "{msg}");
}

#[test]
fn damaged_mnist_file_is_rejected_by_checksum() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, _) in data::idx::MNIST_FILES {
        // a well-formed but wrong file: header of 1 item
        let mut v = vec![0, 0, 8, if name.contains("images") { 3 } else { 1 }];
        let dims: &[u32] = if name.contains("images") { &[1, 28, 28] } else { &[1] };
        for d in dims {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v.extend(std::iter::repeat_n(0u8, dims.iter().product::<u32>() as usize));
        std::fs::write(tmp.path().join(name), v).unwrap();
    }
    let msg = data::idx::load_mnist(tmp.path()).unwrap_err().to_string();
    assert!(msg.contains("SHA-256") && msg.contains("train-images-idx3-ubyte"), "{msg}");
}

#[test]
fn mnist_loads_after_fetch() {
    // tests run in the package root, so this is `$COHORT_DATA/mnist` or `./data/mnist`
    let dir: PathBuf = data::data_root(None).join("mnist");
    if !dir.is_dir() {
        common::skip("mnist_loads_after_fetch", &format!("{} absent; run `cohort data fetch mnist` (CI does)", dir.display()));
        return;
    }
    let s = data::idx::load_mnist(&dir).unwrap();
    assert_eq!((s.train.len(), s.test.len()), (60000, 10000));
    assert_eq!(s.train.shape, vec![1, 28, 28]);
    assert_eq!(&s.train.labels[..8], &[5, 0, 4, 1, 9, 2, 1, 3]);
    assert_eq!(&s.test.labels[..8], &[7, 2, 1, 0, 4, 1, 4, 9]);
    assert_eq!(s.train.class_counts(), vec![5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]);
    let mean = s.train.features.iter().map(|&v| v as f64).sum::<f64>() / s.train.features.len() as f64;
    assert!((mean - 0.1307).abs() < 1e-3, "mean pixel {mean}");
}

// ---- CIFAR-100 on fixture files written here

/// Record r of split `s` (0 train, 1 test): coarse label r % 20, fine label (7r + s) % 100,
/// pixel k of plane c = (r + 3c + k) % 256.
fn write_cifar100(dir: &Path, records: usize) {
    crate::common::write_cifar100(dir, records, |s, r| {
        ((r % 20) as u8, ((7 * r + s) % 100) as u8, (0..3072).map(|k| ((r + 3 * (k / 1024) + k % 1024) % 256) as u8).collect())
    });
}

fn cifar100(dir: &Path, labels: cohort::data::cifar::Cifar100Labels) -> DataSource {
    DataSource::Cifar100(cohort::config::Cifar100Spec { dir: Some(dir.into()), labels })
}

#[test]
fn cifar100_loads_pixels_and_fine_or_coarse_labels() {
    use cohort::data::cifar::Cifar100Labels::{Coarse, Fine};
    let tmp = tempfile::tempdir().unwrap();
    write_cifar100(tmp.path(), 25);
    let fine = cifar100(tmp.path(), Fine).load(Path::new("unused")).unwrap();
    assert_eq!((fine.train.len(), fine.test.len(), fine.train.classes), (25, 25, 100));
    assert_eq!(fine.train.shape, vec![3, 32, 32]);
    assert_eq!(&fine.train.labels[..4], &[0, 7, 14, 21]);
    assert_eq!(&fine.test.labels[..3], &[1, 8, 15]);
    let row = fine.train.row(2);
    assert_eq!(row[5], 7.0 / 255.0); // plane 0, pixel 5: (2 + 5) % 256
    assert_eq!(row[1024 + 5], 10.0 / 255.0); // plane 1: (2 + 3 + 5)
    assert_eq!(row[2048 + 300], 52.0 / 255.0); // plane 2: (2 + 6 + 300) % 256
    let coarse = cifar100(tmp.path(), Coarse).load(Path::new("unused")).unwrap();
    assert_eq!(coarse.train.classes, 20);
    assert_eq!(&coarse.train.labels[..4], &[0, 1, 2, 3]);
    assert_eq!(coarse.train.labels[21], 1);
    assert_eq!(coarse.train.features, fine.train.features);
    assert_eq!(cifar100(tmp.path(), Fine).input_shape().unwrap(), (vec![3, 32, 32], 100));
    assert_eq!(cifar100(tmp.path(), Coarse).input_shape().unwrap(), (vec![3, 32, 32], 20));
}

#[test]
fn cifar100_bad_files_are_named_with_a_fix() {
    use cohort::data::cifar::Cifar100Labels::Fine;
    let tmp = tempfile::tempdir().unwrap();
    write_cifar100(tmp.path(), 2);
    let f = tmp.path().join("train.bin");
    let bytes = std::fs::read(&f).unwrap();
    std::fs::write(&f, &bytes[..bytes.len() - 1]).unwrap();
    let err = cifar100(tmp.path(), Fine).load(Path::new("x")).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DataError::Corrupt { .. }) && msg.contains("train.bin") && msg.contains("3074") && msg.contains("fix:"), "{msg}");
    // a fine label out of range (a CIFAR-10 file, say) is named
    let mut bad = bytes.clone();
    bad[1] = 100;
    std::fs::write(&f, &bad).unwrap();
    let msg = cifar100(tmp.path(), Fine).load(Path::new("x")).unwrap_err().to_string();
    assert!(msg.contains("train.bin") && msg.contains("label 100 outside 0..=99"), "{msg}");
    std::fs::remove_file(tmp.path().join("test.bin")).unwrap();
    std::fs::write(&f, &bytes).unwrap();
    let err = cifar100(tmp.path(), Fine).load(Path::new("x")).unwrap_err();
    assert!(matches!(err, DataError::Missing { .. }) && err.to_string().contains("test.bin") && err.to_string().contains("cifar-100-binary"), "{err}");
}

/// RandomCrop(32, padding 4) then HorizontalFlip(0.5) move pixels exactly as torchvision's
/// transforms would with the same draws: the expected images are built here from a padded copy.
#[test]
fn crop_and_flip_move_pixels_as_specified() {
    use cohort::data::cifar::Cifar100Labels::Fine;
    let tmp = tempfile::tempdir().unwrap();
    write_cifar100(tmp.path(), 4);
    let mut spec = data_spec(cifar100(tmp.path(), Fine));
    spec.normalize = Normalization::UnitRange; // background 0: the zero padding
    spec.augment = vec![Augment::RandomCrop { size: 32, padding: 4 }, Augment::HorizontalFlip { p: Fraction::new(0.5).unwrap() }];
    let p = data::prepare(&spec, Path::new("unused"), 0).unwrap();
    let augment = spec.augmentations();
    let mut rng = cohort::random::legacy::LegacyRandomState::new(12);
    let batch = data::batch::gather(&p.train, &[0, 1, 2, 3], &augment, Some(&mut rng));
    // the same draws, sample by sample: top, left, then the flip
    let mut draws = cohort::random::legacy::LegacyRandomState::new(12);
    let mut flips = 0;
    for (n, got) in batch.inputs.chunks(3072).enumerate() {
        let (top, left) = (draws.choice(9), draws.choice(9));
        let flip = draws.rand() < 0.5;
        flips += usize::from(flip);
        let img = p.train.row(n);
        for c in 0..3 {
            for y in 0..32 {
                for x in 0..32 {
                    // the window of the image padded by 4, then the mirror image
                    let xs = if flip { 31 - x } else { x };
                    let (py, px) = (y + top, xs + left);
                    let expected = if (4..36).contains(&py) && (4..36).contains(&px) { img[c * 1024 + (py - 4) * 32 + (px - 4)] } else { 0.0 };
                    assert_eq!(got[c * 1024 + y * 32 + x], expected, "sample {n}, channel {c}, ({y}, {x}), top {top}, left {left}, flip {flip}");
                }
            }
        }
    }
    assert!(flips > 0 && flips < 4, "the fixed seed draws some flips and some not ({flips} of 4)");
    // evaluation never augments
    assert_eq!(data::batch::gather(&p.train, &[0], &[], None).inputs, p.train.row(0));
}

/// `PerChannel(mean, std)` scales pixels in [0, 1] as torchvision's `Normalize` does, with the
/// given statistics (not the training split's), and its background is `(0 − mean)/std`.
#[test]
fn per_channel_normalisation_uses_the_given_statistics() {
    use cohort::data::cifar::Cifar100Labels::Fine;
    let tmp = tempfile::tempdir().unwrap();
    write_cifar100(tmp.path(), 3);
    let mut spec = data_spec(cifar100(tmp.path(), Fine));
    let (mean, std) = (vec![0.5071, 0.4865, 0.4409], vec![0.2673, 0.2564, 0.2762]);
    spec.normalize = Normalization::PerChannel { mean: mean.clone(), std: std.clone() };
    let p = data::prepare(&spec, Path::new("unused"), 0).unwrap();
    let raw = cifar100(tmp.path(), Fine).load(Path::new("unused")).unwrap();
    for (k, c) in [(5, 0), (1024 + 77, 1), (2048 + 300, 2)] {
        let expected = ((raw.train.row(1)[k] as f64 - mean[c]) / std[c]) as f32;
        assert_eq!(p.train.row(1)[k], expected);
        assert_eq!(p.test.row(0)[k], ((raw.test.row(0)[k] as f64 - mean[c]) / std[c]) as f32);
    }
    assert_eq!(p.train.background, vec![(-mean[0] / std[0]) as f32, (-mean[1] / std[1]) as f32, (-mean[2] / std[2]) as f32]);
    // one statistic per channel, checked when the file is read
    spec.normalize = Normalization::PerChannel { mean: vec![0.5], std: vec![0.25] };
    assert!(spec.normalization_problem(&[3, 32, 32]).is_some_and(|(m, _)| m.contains("1 means and 1 stds for 3 channel(s)")));
}
