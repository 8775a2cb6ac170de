//! Weights from and to PyTorch, against tests/fixtures/pytorch/ (written by
//! scripts/make-pytorch-fixture.py with PyTorch 2.9: RepDistiller's resnet8, its `state_dict` as
//! `.safetensors` and inside a RepDistiller-style training checkpoint `{"model": state_dict,
//! "epoch": 240}` as `.pth`, fixed inputs and PyTorch's logits for them).
//!
//! Semantics: eval mode (`model.eval()` in PyTorch; a network on a device without autodiff in
//! cohort) normalises with the batch-norm running statistics, which come from the file; train
//! mode (`model.train()`; an autodiff device) with the batch's own statistics. Both must give
//! PyTorch's logits to 1e-4.

use std::path::{Path, PathBuf};
use std::process::Command;

use burn::tensor::{Device, Tensor, TensorData};
use cohort::config::ModelSpec;
use cohort::models::Network;
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pytorch").join(name)
}

fn io() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("io.json")).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .flat_map(|x| if let Some(a) = x.as_array() { a.iter().map(|y| y.as_f64().unwrap() as f32).collect() } else { vec![x.as_f64().unwrap() as f32] })
        .collect()
}

fn spec(model: &str) -> ModelSpec {
    cohort::config::ron_options().from_str(model).unwrap()
}

fn network(model: &str, device: &Device) -> Network {
    Network::init(&spec(model), &[3, 32, 32], 10, device)
}

/// Logits of `net` for the fixture's inputs, flat.
fn logits(net: &Network, device: &Device) -> Vec<f32> {
    let x = floats(&io()["inputs"]);
    let n = x.len() / 3072;
    let x = Tensor::<2>::from_data(TensorData::new(x, [n, 3072]), device);
    net.forward(x).into_data().try_into_vec::<f32>().unwrap()
}

fn assert_close(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len());
    let worst = got.iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(worst <= 1e-4, "{what}: largest difference {worst} (got {:?}…, PyTorch {:?}…)", &got[..4], &want[..4]);
    println!("{what}: largest difference from PyTorch's logits {worst:.2e}");
}

const RESNET8: &str = "ResNet(blocks: [1, 1, 1], widths: [16, 32, 64])";

#[test]
fn pytorch_weights_give_pytorchs_logits_in_eval_and_train_mode() {
    let _rng = crate::common::rng();
    let io = io();
    assert_eq!(io["model"].as_str().unwrap(), RESNET8);
    for file in ["resnet8.pth", "resnet8.safetensors"] {
        let eval = Device::flex();
        let net = network(RESNET8, &eval).load_torch(&fixture(file)).unwrap_or_else(|p| panic!("{file}: {p:#?}"));
        assert_close(&logits(&net, &eval), &floats(&io["eval_logits"]), &format!("{file}, eval mode"));
        let train = Device::flex().autodiff();
        let net = network(RESNET8, &train).load_torch(&fixture(file)).unwrap();
        assert_close(&logits(&net, &train), &floats(&io["train_logits"]), &format!("{file}, train mode"));
    }
}

#[test]
fn a_mismatch_lists_every_offending_key() {
    let _rng = crate::common::rng();
    let device = Device::flex();
    // one more block in the first stage: its 10 tensors are missing from the file
    let problems = network("ResNet(blocks: [2, 1, 1], widths: [16, 32, 64])", &device).load_torch(&fixture("resnet8.pth")).unwrap_err();
    let missing: Vec<&String> = problems.iter().filter(|p| p.starts_with("missing: `layer1.1.")).collect();
    assert_eq!(missing.len(), 10, "{problems:#?}");
    assert!(problems.iter().any(|p| p == "missing: `layer1.1.bn2.running_var` (not in the file)"), "{problems:#?}");
    assert_eq!(problems.len(), 10, "{problems:#?}");
    // a narrower last stage: every tensor of stage 3 and the classifier has the wrong shape
    let problems = network("ResNet(blocks: [1, 1, 1], widths: [16, 32, 48])", &device).load_torch(&fixture("resnet8.safetensors")).unwrap_err();
    for key in ["layer3.0.conv1.weight", "layer3.0.bn2.running_mean", "layer3.0.downsample.0.weight"] {
        assert!(problems.iter().any(|p| p.contains(key)), "{key} not listed in {problems:#?}");
    }
    // shapes in PyTorch's layout ([out, in] for a linear layer); the bias, [10] in both, fits
    assert!(problems.contains(&"wrong shape: `fc.weight` is [10, 64] in the file, the network's is [10, 48]".to_string()), "{problems:#?}");
    assert!(!problems.iter().any(|p| p.contains("fc.bias")), "{problems:#?}");
    // an architecture without a reference definition says so
    let problems = network("Cnn2d(channels: [4], hidden: 8)", &device).load_torch(&fixture("resnet8.pth")).unwrap_err();
    assert!(problems[0].contains("no reference PyTorch definition"), "{problems:?}");
}

#[test]
fn exported_weights_carry_the_reference_names_shapes_and_values() {
    let _rng = crate::common::rng();
    let device = Device::flex();
    let net = network(RESNET8, &device).load_torch(&fixture("resnet8.pth")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out.safetensors");
    net.save_torch_safetensors(&out).unwrap();
    let (ours, theirs) = (std::fs::read(&out).unwrap(), std::fs::read(fixture("resnet8.safetensors")).unwrap());
    let (ours, theirs) = (safetensors::SafeTensors::deserialize(&ours).unwrap(), safetensors::SafeTensors::deserialize(&theirs).unwrap());
    let names = |s: &safetensors::SafeTensors| {
        let mut v: Vec<(String, Vec<usize>)> = s.tensors().into_iter().map(|(n, t)| (n, t.shape().to_vec())).collect();
        v.sort();
        v
    };
    let mut want: Vec<(String, Vec<usize>)> = io()["state_dict"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e[0].as_str().unwrap().to_string(), e[1].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect()))
        .collect();
    want.sort();
    assert_eq!(names(&ours), want, "names and shapes differ from the state_dict's");
    assert_eq!(names(&theirs), want);
    for (name, t) in theirs.tensors() {
        if !name.ends_with("num_batches_tracked") {
            assert_eq!(ours.tensor(&name).unwrap().data(), t.data(), "{name}: values differ after the round trip");
        }
    }
}

/// The fixture's inputs as a one-split data set labelled with PyTorch's predictions.
fn write_npz(path: &Path, io: &Value) {
    use npyz::WriterBuilder;
    let x = floats(&io["inputs"]);
    let n = x.len() / 3072;
    let labels: Vec<i64> = floats(&io["eval_logits"]).chunks(10).map(|r| (0..10).max_by(|&a, &b| r[a].total_cmp(&r[b])).unwrap() as i64).collect();
    let mut z = npyz::npz::NpzWriter::create(path).unwrap();
    for split in ["train", "test"] {
        let opts = npyz::zip::write::FileOptions::default();
        let mut w = z.array::<f32>(&format!("x_{split}"), opts).unwrap().default_dtype().shape(&[n as u64, 3, 32, 32]).begin_nd().unwrap();
        w.extend(x.iter().copied()).unwrap();
        w.finish().unwrap();
        let mut w = z.array::<i64>(&format!("y_{split}"), opts).unwrap().default_dtype().shape(&[n as u64]).begin_nd().unwrap();
        w.extend(labels.iter().copied()).unwrap();
        w.finish().unwrap();
    }
}

#[test]
fn a_pytorch_teacher_checkpoint_runs_in_an_experiment_and_exports_back() {
    let _rng = crate::common::rng();
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    write_npz(&t.join("d.npz"), &io());
    let experiment = format!(
        r#"Experiment(
            name: "torch",
            data: (source: Npz(file: "d.npz", classes: 10), normalize: UnitRange),
            nodes: [
                Node(id: "teacher", model: {RESNET8}, frozen: true, checkpoint: "{}"),
                Node(id: "student", model: Mlp(hidden: [8])),
            ],
            edges: [Edge(to: "student", loss: CrossEntropy), Edge(from: ["teacher"], to: "student", loss: SoftTarget(temperature: 4.0))],
            output: "res",
            training: (epochs: 1, batch_size: 2, optimizer: Sgd(lr: 0.01), seeds: [0]),
        )"#,
        fixture("resnet8.pth").display()
    );
    std::fs::write(t.join("e.ron"), experiment).unwrap();
    let cohort = |args: &[&str]| Command::new(env!("CARGO_BIN_EXE_cohort")).args(args).current_dir(t).output().unwrap();
    let out = cohort(&["run", "e.ron", "--no-progress", "--no-plot"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // the frozen teacher, evaluated before training, predicts PyTorch's labels exactly
    let metrics = std::fs::read_to_string(t.join("res/torch/seed-0/metrics.csv")).unwrap();
    assert!(metrics.contains("main,0,teacher,test,accuracy,1"), "{metrics}");
    // and a run's node goes back out with PyTorch's names: the teacher's weights are the file's
    let out = cohort(&["export-weights", "res/torch/seed-0", "--node", "teacher", "--format", "safetensors", "--out", "t.safetensors"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (ours, theirs) = (std::fs::read(t.join("t.safetensors")).unwrap(), std::fs::read(fixture("resnet8.safetensors")).unwrap());
    let (ours, theirs) = (safetensors::SafeTensors::deserialize(&ours).unwrap(), safetensors::SafeTensors::deserialize(&theirs).unwrap());
    assert_eq!(ours.tensor("layer2.0.downsample.1.running_var").unwrap().data(), theirs.tensor("layer2.0.downsample.1.running_var").unwrap().data());
    // the run's splits as its networks saw them (here UnitRange: the inputs themselves)
    let out = cohort(&["data", "export", "--run", "res/torch/seed-0", "--format", "npz", "--out", "prepared"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut npz = npyz::npz::NpzArchive::open(t.join("prepared/data.npz")).unwrap();
    let x: Vec<f32> = npz.by_name("x_test").unwrap().unwrap().into_vec().unwrap();
    assert_eq!(x, floats(&io()["inputs"]));
    // an architecture without PyTorch names is refused with exit status 2
    let out = cohort(&["export-weights", "res/torch/seed-0", "--node", "student", "--out", "s.safetensors"]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no reference PyTorch definition") || String::from_utf8_lossy(&out.stderr).contains("has none"));
}

/// `uniform` of scripts/make-pytorch-fixture.py: `n` numbers in [-1, 1) from an integer hash.
fn uniform(n: usize, t: u64) -> Vec<f64> {
    (0..n as u64)
        .map(|k| {
            let m = 0xFFFF_FFFFu64;
            let mut h = (k.wrapping_mul(2_654_435_761).wrapping_add(40503 * t + 12345)) & m;
            h ^= h >> 15;
            h = h.wrapping_mul(2_246_822_519) & m;
            h ^= h >> 13;
            h as f64 / 4_294_967_296.0 * 2.0 - 1.0
        })
        .collect()
}

/// `synthetic` of scripts/make-pytorch-fixture.py: tensor number `t` of a state_dict.
fn synthetic(name: &str, shape: &[usize], t: usize) -> Vec<f32> {
    let n: usize = shape.iter().product();
    uniform(n, t as u64)
        .into_iter()
        .map(|u| {
            let v = if name.ends_with("running_var") {
                1.0 + 0.5 * u.abs()
            } else if name.ends_with("running_mean") || name.ends_with("bias") {
                0.1 * u
            } else if shape.len() == 1 {
                1.0 + 0.2 * u
            } else {
                u * (3.0 / (n / shape[0]) as f64).sqrt()
            };
            v as f32
        })
        .collect()
}

#[test]
fn every_zoo_network_takes_its_reference_state_dict() {
    let _rng = crate::common::rng();
    let zoo: Value = serde_json::from_str(&std::fs::read_to_string(fixture("zoo.json")).unwrap()).unwrap();
    let device = Device::flex();
    let inputs: Vec<f32> = uniform(2 * 3072, 1_000_000).into_iter().map(|v| v as f32).collect();
    let tmp = tempfile::tempdir().unwrap();
    for entry in zoo.as_array().unwrap() {
        let name = entry["name"].as_str().unwrap();
        let state: Vec<(String, Vec<usize>)> = entry["state_dict"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e[0].as_str().unwrap().to_string(), e[1].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect()))
            .collect();
        // the reference state_dict with synthetic weights, as safetensors
        let values: Vec<(String, Vec<usize>, Vec<u8>, safetensors::Dtype)> = state
            .iter()
            .enumerate()
            .map(|(t, (k, shape))| {
                if k.ends_with("num_batches_tracked") {
                    (k.clone(), shape.clone(), 0i64.to_le_bytes().to_vec(), safetensors::Dtype::I64)
                } else {
                    (k.clone(), shape.clone(), synthetic(k, shape, t).iter().flat_map(|v| v.to_le_bytes()).collect(), safetensors::Dtype::F32)
                }
            })
            .collect();
        let views: Vec<(String, safetensors::tensor::TensorView<'_>)> =
            values.iter().map(|(k, s, b, d)| (k.clone(), safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap())).collect();
        let file = tmp.path().join(format!("{name}.safetensors"));
        std::fs::write(&file, safetensors::serialize(views, None).unwrap()).unwrap();
        let net =
            Network::init(&spec(entry["model"].as_str().unwrap()), &[3, 32, 32], 10, &device).load_torch(&file).unwrap_or_else(|p| panic!("{name}: {p:#?}"));
        let got = net.forward(Tensor::<2>::from_data(TensorData::new(inputs.clone(), [2, 3072]), &device)).into_data().try_into_vec::<f32>().unwrap();
        let want = floats(&entry["logits"]);
        let scale = want.iter().fold(1.0f32, |m, v| m.max(v.abs()));
        let worst = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(worst <= 1e-4 * scale, "{name}: largest difference {worst} (largest logit {scale})");
        println!("{name}: largest difference from PyTorch's logits {worst:.2e} (largest logit {scale:.2})");
        // and back out: the same names and shapes as the reference's state_dict
        let out = tmp.path().join(format!("{name}.out.safetensors"));
        let mut written = net.save_torch_safetensors(&out).unwrap();
        written.sort();
        let mut want_names = state.clone();
        want_names.sort();
        assert_eq!(written, want_names, "{name}: exported names or shapes differ");
    }
}
