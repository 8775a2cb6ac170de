//! A researcher's own data: NumPy `.npy`/`.npz`, CSV and image folders. Each source reads small
//! real files written here with the format's crate (npyz, csv, image) and gives the tensors
//! written; bad files (wrong shape, label out of range, NaN, truncated, empty class folder) give
//! a clear error naming the file, with exit status 2 (found while checking the experiment) or 1
//! (found while loading), never a panic; `cohort data export` writes files these sources read
//! back unchanged.

use std::path::Path;
use std::process::{Command, Output};

use cohort::data::DataSource;
use cohort::data::arrays::{Layout, NpySpec, NpzSpec};
use cohort::data::images::{Color, ImageFolderSpec};
use cohort::data::table::CsvSpec;
use npyz::WriterBuilder;

fn cohort(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cohort")).args(args).current_dir(dir).output().unwrap()
}

/// Writes an `.npy` array of `shape` with the crate.
fn npy<T: npyz::AutoSerialize + Copy>(path: &Path, shape: &[u64], values: &[T]) {
    let f = std::fs::File::create(path).unwrap();
    let mut w = npyz::WriteOptions::<T>::new().default_dtype().shape(shape).writer(std::io::BufWriter::new(f)).begin_nd().unwrap();
    w.extend(values.iter().copied()).unwrap();
    w.finish().unwrap();
}

/// Writes an `.npz` archive (compressed, as `np.savez_compressed`) of the four arrays.
fn npz(path: &Path, x_train: (&[u64], &[u8]), y_train: &[i64], x_test: (&[u64], &[u8]), y_test: &[i64]) {
    let mut z = npyz::npz::NpzWriter::create(path).unwrap();
    let opts = || npyz::zip::write::FileOptions::default().compression_method(npyz::zip::CompressionMethod::Deflated);
    for (name, (shape, x), y) in [("train", x_train, y_train), ("test", x_test, y_test)] {
        let mut w = z.array::<u8>(&format!("x_{name}"), opts()).unwrap().default_dtype().shape(shape).begin_nd().unwrap();
        w.extend(x.iter().copied()).unwrap();
        w.finish().unwrap();
        let mut w = z.array::<i64>(&format!("y_{name}"), opts()).unwrap().default_dtype().shape(&[y.len() as u64]).begin_nd().unwrap();
        w.extend(y.iter().copied()).unwrap();
        w.finish().unwrap();
    }
}

#[test]
fn npz_images_in_nhwc_come_out_as_chw_in_unit_range() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("d.npz");
    // 2 training images of 2×1 pixels × 3 channels (NHWC), 1 test image
    let x_train: Vec<u8> = (0..12).map(|v| v * 20).collect();
    npz(&path, (&[2, 2, 1, 3], &x_train), &[1, 0], (&[1, 2, 1, 3], &[255; 6]), &[2]);
    let source = DataSource::Npz(NpzSpec {
        file: path,
        classes: 3,
        x_train: "x_train".into(),
        y_train: "y_train".into(),
        x_test: "x_test".into(),
        y_test: "y_test".into(),
        layout: None,
    });
    assert_eq!(source.input_shape().unwrap(), (vec![3, 2, 1], 3));
    let s = source.load(tmp.path()).unwrap();
    assert_eq!(s.train.shape, vec![3, 2, 1]);
    assert_eq!(s.train.labels, vec![1, 0]);
    // sample 0: pixels (0,20,40), (60,80,100) → planes R [0,60], G [20,80], B [40,100], ÷ 255
    let want: Vec<f32> = [0, 60, 20, 80, 40, 100].iter().map(|&v| v as f32 / 255.0).collect();
    assert_eq!(s.train.row(0), &want[..]);
    assert_eq!(s.test.row(0), &[1.0; 6]);
}

#[test]
fn npy_vectors_keep_their_dtype_values_and_fortran_arrays_are_reordered() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |n: &str| tmp.path().join(n);
    npy(&p("x.npy"), &[3, 2], &[0.5f64, -1.0, 2.0, 3.0, 1e-3, 7.0]);
    npy(&p("y.npy"), &[3, 1], &[2.0f32, 0.0, 1.0]);
    npy(&p("xt.npy"), &[1, 2], &[4i16, -5]);
    npy(&p("yt.npy"), &[1], &[1u8]);
    let spec = NpySpec { x_train: p("x.npy"), y_train: p("y.npy"), x_test: p("xt.npy"), y_test: p("yt.npy"), classes: 3, layout: Some(Layout::Nchw) };
    let s = DataSource::Npy(spec.clone()).load(tmp.path()).unwrap();
    assert_eq!(s.train.features, vec![0.5, -1.0, 2.0, 3.0, 1e-3, 7.0]);
    assert_eq!(s.train.labels, vec![2, 0, 1]);
    assert_eq!((s.test.features.clone(), s.test.labels.clone()), (vec![4.0, -5.0], vec![1]));
    // the same training features stored column-major (np.asfortranarray) read the same
    let f = std::fs::File::create(p("x.npy")).unwrap();
    let mut w =
        npyz::WriteOptions::<f64>::new().default_dtype().order(npyz::Order::Fortran).shape(&[3, 2]).writer(std::io::BufWriter::new(f)).begin_nd().unwrap();
    w.extend([0.5, 2.0, 1e-3, -1.0, 3.0, 7.0]).unwrap();
    w.finish().unwrap();
    assert_eq!(DataSource::Npy(spec).load(tmp.path()).unwrap().train.features, vec![0.5, -1.0, 2.0, 3.0, 1e-3, 7.0]);
}

#[test]
fn csv_columns_are_chosen_by_name_and_reshaped() {
    let tmp = tempfile::tempdir().unwrap();
    let write = |name: &str, rows: &[[&str; 6]]| {
        let mut w = csv::Writer::from_path(tmp.path().join(name)).unwrap();
        w.write_record(["id", "a", "b", "c", "d", "class"]).unwrap();
        for r in rows {
            w.write_record(r).unwrap();
        }
        w.flush().unwrap();
    };
    write("train.csv", &[["x1", "1", "2", "3", "4", "1"], ["x2", "5", "6", "7", "8.5", "0"]]);
    write("test.csv", &[["x3", "0", "0", "0", "-1", "1"]]);
    let spec = CsvSpec {
        train: tmp.path().join("train.csv"),
        test: tmp.path().join("test.csv"),
        classes: 2,
        label_column: "class".into(),
        features: Some(vec!["a".into(), "b".into(), "c".into(), "d".into()]),
        shape: Some(vec![1, 2, 2]),
    };
    assert_eq!(DataSource::Csv(spec.clone()).input_shape().unwrap(), (vec![1, 2, 2], 2));
    let s = DataSource::Csv(spec.clone()).load(tmp.path()).unwrap();
    assert_eq!((s.train.features.clone(), s.train.labels.clone()), (vec![1., 2., 3., 4., 5., 6., 7., 8.5], vec![1, 0]));
    assert_eq!(s.test.row(0), &[0., 0., 0., -1.]);
    // without `features:` the `id` column is a feature, and not a number
    let e = DataSource::Csv(CsvSpec { features: None, shape: None, ..spec }).load(tmp.path()).unwrap_err().to_string();
    assert!(e.contains("train.csv") && e.contains("line 2, column `id`") && e.contains("not a number"), "{e}");
}

/// Saves a `w`×`h` image whose pixel (x, y) is `f(x, y)`.
fn image(path: &Path, w: u32, h: u32, f: impl Fn(u32, u32) -> [u8; 3]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    image::RgbImage::from_fn(w, h, |x, y| image::Rgb(f(x, y))).save(path).unwrap();
}

#[test]
fn image_folders_are_sorted_resized_and_centre_cropped() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    // classes by sorted folder name: cat = 0, dog = 1; files by sorted name
    image(&t.join("train/dog/b.png"), 2, 2, |_, _| [255, 0, 0]);
    image(&t.join("train/dog/a.png"), 2, 2, |x, y| [0, (x * 255) as u8, (y * 255) as u8]);
    image(&t.join("train/cat/z.jpg"), 2, 2, |_, _| [128, 128, 128]);
    std::fs::write(t.join("train/cat/notes.txt"), "ignored").unwrap();
    // a 6×2 image: resized to 6×2 (short side 2 already), centre-cropped to columns 2..4
    image(&t.join("test/dog/wide.png"), 6, 2, |x, _| [(x * 40) as u8, 0, 0]);
    let spec = ImageFolderSpec { train: t.join("train"), test: t.join("test"), size: 2, color: Color::Rgb };
    assert_eq!(DataSource::ImageFolder(spec.clone()).input_shape().unwrap(), (vec![3, 2, 2], 2));
    let s = DataSource::ImageFolder(spec.clone()).load(t).unwrap();
    assert_eq!(s.train.labels, vec![0, 1, 1]);
    // JPEG is lossy: the grey cat is close to 128
    assert!(s.train.row(0).iter().all(|&v| (v - 128.0 / 255.0).abs() < 0.02), "{:?}", s.train.row(0));
    assert_eq!(s.train.row(1), &[0., 0., 0., 0., 0., 1., 0., 1., 0., 0., 1., 1.]);
    assert_eq!(s.train.row(2), &[1., 1., 1., 1., 0., 0., 0., 0., 0., 0., 0., 0.]);
    assert_eq!(s.test.row(0)[..4], [80. / 255., 120. / 255., 80. / 255., 120. / 255.]);
    // grey: one channel
    let g = DataSource::ImageFolder(ImageFolderSpec { color: Color::Gray, ..spec }).load(t).unwrap();
    assert_eq!(g.train.shape, vec![1, 2, 2]);
}

const EXPERIMENT: &str = r#"Experiment(
    name: "own",
    data: (source: SOURCE),
    nodes: [Node(id: "net", model: Mlp(hidden: [8]))],
    edges: [Edge(to: "net", loss: CrossEntropy)],
    output: "res",
    training: (epochs: 1, batch_size: 2, optimizer: Sgd(lr: 0.1), seeds: [0]),
)"#;

/// Runs an experiment with `source` in `dir`: (exit code, stderr); the run must not panic.
fn run(dir: &Path, source: &str) -> (i32, String) {
    std::fs::write(dir.join("e.ron"), EXPERIMENT.replace("SOURCE", source)).unwrap();
    let out = cohort(dir, &["run", "e.ron", "--no-progress", "--overwrite"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!err.contains("panicked"), "{err}");
    (out.status.code().unwrap(), err)
}

/// What is wrong, how the bad file is made, the data source, the exit status, the message and
/// the file it names.
type BadCase<'a> = (&'a str, Box<dyn Fn() + 'a>, String, i32, &'a str, &'a str);

#[test]
fn bad_data_files_are_named_with_a_fix_and_never_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let npy_source = |x: &str| format!(r#"Npy(x_train: "{x}", y_train: "y.npy", x_test: "x.npy", y_test: "y.npy", classes: 3)"#);
    npy(&t.join("x.npy"), &[4, 2], &[0f32, 1., 2., 3., 4., 5., 6., 7.]);
    npy(&t.join("y.npy"), &[4], &[0i64, 1, 2, 1]);
    assert_eq!(run(t, &npy_source("x.npy")).0, 0, "the good files train");
    // (what, how the bad file is made, the source, exit status, message, the file it names)
    let cases: Vec<BadCase> = vec![
        ("wrong shape", Box::new(|| npy(&t.join("bad.npy"), &[4], &[0f32; 4])), npy_source("bad.npy"), 2, "expected [N, D]", "bad.npy"),
        (
            "label out of range",
            Box::new(|| npy(&t.join("bad.npy"), &[4, 2], &[0f32; 8])),
            npy_source("bad.npy").replace("classes: 3", "classes: 2"),
            1,
            "label 2 of sample 2 is not a class in 0..2",
            "y.npy",
        ),
        (
            "NaN",
            Box::new(|| npy(&t.join("bad.npy"), &[4, 2], &[0., 1., 2., f32::NAN, 4., 5., 6., 7.])),
            npy_source("bad.npy"),
            1,
            "sample 1, feature 1 is NaN",
            "bad.npy",
        ),
        (
            "truncated",
            Box::new(|| {
                let b = std::fs::read(t.join("x.npy")).unwrap();
                std::fs::write(t.join("bad.npy"), &b[..b.len() - 5]).unwrap();
            }),
            npy_source("bad.npy"),
            1,
            "truncated",
            "bad.npy",
        ),
        ("missing", Box::new(|| ()), npy_source("absent.npy"), 2, "absent.npy is missing", "absent.npy"),
        (
            "empty class folder",
            Box::new(|| {
                image(&t.join("img/train/a/1.png"), 2, 2, |_, _| [0, 0, 0]);
                std::fs::create_dir_all(t.join("img/train/b")).unwrap();
                image(&t.join("img/test/a/1.png"), 2, 2, |_, _| [0, 0, 0]);
            }),
            r#"ImageFolder(train: "img/train", test: "img/test", size: 2)"#.to_string(),
            1,
            "empty class folder",
            "img/train/b",
        ),
        (
            "label outside the classes in a CSV file",
            Box::new(|| std::fs::write(t.join("bad.csv"), "label,x0\n0,1.5\n7,2\n").unwrap()),
            r#"Csv(train: "bad.csv", test: "bad.csv", classes: 3)"#.to_string(),
            1,
            "line 3: label `7` is not a class in 0..3",
            "bad.csv",
        ),
    ];
    for (what, make, source, code, needle, file) in cases {
        make();
        let (got, err) = run(t, &source);
        assert_eq!(got, code, "{what}: {err}");
        assert!(err.contains(needle), "{what}: {err}");
        assert!(err.contains("fix:") || err.contains("hint:"), "{what}: no fix in {err}");
        assert!(err.contains(file), "{what}: {file} is not named in {err}");
    }
}

#[test]
fn exported_files_read_back_as_the_data_set() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let mnist1d = DataSource::Mnist1d(Default::default()).load(t).unwrap();
    for format in ["csv", "npz", "npy"] {
        let out = cohort(t, &["data", "export", "mnist1d", "--format", format, "--out", format]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let csv = CsvSpec { train: t.join("csv/train.csv"), test: t.join("csv/test.csv"), classes: 10, label_column: "label".into(), features: None, shape: None };
    let npz = NpzSpec {
        file: t.join("npz/data.npz"),
        classes: 10,
        x_train: "x_train".into(),
        y_train: "y_train".into(),
        x_test: "x_test".into(),
        y_test: "y_test".into(),
        layout: None,
    };
    let p = |n: &str| t.join("npy").join(n);
    let npy = NpySpec { x_train: p("x_train.npy"), y_train: p("y_train.npy"), x_test: p("x_test.npy"), y_test: p("y_test.npy"), classes: 10, layout: None };
    for source in [DataSource::Csv(csv), DataSource::Npz(npz), DataSource::Npy(npy)] {
        let back = source.load(t).unwrap();
        assert_eq!(back.train.features, mnist1d.train.features, "{}", source.label());
        assert_eq!((&back.train.labels, &back.test.labels, &back.test.features), (&mnist1d.train.labels, &mnist1d.test.labels, &mnist1d.test.features));
    }
    // images: an image folder exported from an experiment's image folder reads back the same
    image(&t.join("imgs/train/a/1.png"), 3, 3, |x, y| [(x * 50) as u8, (y * 70) as u8, 9]);
    image(&t.join("imgs/train/b/1.png"), 3, 3, |x, _| [0, 0, (x * 100) as u8]);
    image(&t.join("imgs/test/b/2.png"), 3, 3, |_, _| [1, 2, 3]);
    let source = r#"ImageFolder(train: "imgs/train", test: "imgs/test", size: 3)"#;
    std::fs::write(t.join("e.ron"), EXPERIMENT.replace("SOURCE", source)).unwrap();
    let out = cohort(t, &["data", "export", "--experiment", "e.ron", "--format", "image-folder", "--out", "again"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let spec = |root: &str| ImageFolderSpec { train: t.join(root).join("train"), test: t.join(root).join("test"), size: 3, color: Color::Rgb };
    let (a, b) = (DataSource::ImageFolder(spec("imgs")).load(t).unwrap(), DataSource::ImageFolder(spec("again")).load(t).unwrap());
    assert_eq!((a.train.features, a.train.labels, a.test.labels), (b.train.features, b.train.labels, b.test.labels));
}
