//! Every architecture builds for its input shape, returns `[B, classes]` logits, exposes exactly
//! the taps its spec lists with the documented ranks, and round-trips through a checkpoint.

use std::path::Path;

use burn::module::Module;
use burn::tensor::{Device, Distribution, Tensor};
use cohort::config::{self, ModelSpec};
use cohort::models::{Network, Tap, Taps};

fn model(src: &str) -> ModelSpec {
    config::ron_options().from_str(src).unwrap()
}

fn check(spec: &ModelSpec, shape: &[usize]) {
    let d = Device::flex();
    let net = Network::init(spec, shape, 10, &d);
    let x = Tensor::<2>::random([3, shape.iter().product()], Distribution::Normal(0.0, 1.0), &d);
    let names = spec.taps(shape);
    let mut taps = Taps::new(&names);
    let z = net.forward_taps(x.clone(), &mut taps);
    assert_eq!(z.dims(), [3, 10], "{spec}");
    let got: Vec<&str> = taps.got.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(got, names.iter().map(String::as_str).collect::<Vec<_>>(), "{spec}");
    let declared = spec.tap_shapes(shape);
    for ((name, t), (dname, dshape)) in taps.got.iter().zip(&declared) {
        let dims: Vec<usize> = match t {
            Tap::Flat(t) => t.dims().to_vec(),
            Tap::Seq(t) => t.dims().to_vec(),
            Tap::Map(t) => t.dims().to_vec(),
        };
        assert_eq!(dims[0], 3, "{spec} tap {name}");
        // the shapes the resolver checks feature losses with are the real ones
        assert_eq!((name, &dims[1..]), (dname, &dshape[..]), "{spec} tap {name}");
    }
    assert_eq!(declared.len(), taps.got.len(), "{spec}");
    // a checkpoint restores the same function
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.bpk");
    net.clone().save_file(&path).unwrap();
    let fresh = Network::init(spec, shape, 10, &d).try_load_file(&path).unwrap();
    let (a, b) = (net.valid().forward(x.clone()), fresh.valid().forward(x));
    assert_eq!(a.into_data().try_into_vec::<f32>().unwrap(), b.into_data().try_into_vec::<f32>().unwrap(), "{spec}");
}

#[test]
fn every_model_builds_runs_and_exposes_its_taps() {
    let _rng = crate::common::rng();
    check(&model("Mlp(hidden: [16, 8], dropout: 0.2)"), &[40]);
    check(&model("Mlp(hidden: [])"), &[1, 28, 28]);
    check(&model("Cnn1d(channels: [4, 4, 4], kernel: 5)"), &[40]);
    check(&model("Cnn1d(channels: [4, 8], kernel: 3)"), &[37]);
    check(&model("Cnn2d(channels: [4, 8], hidden: 16, dropout: 0.1)"), &[1, 28, 28]);
    check(&model("Cnn2d(channels: [4], hidden: 8)"), &[3, 32, 32]);
    check(&model("ResNet(blocks: [1, 1], widths: [4, 8])"), &[3, 32, 32]);
    check(&model("ResNet(blocks: [1, 1, 1, 1], widths: [4, 4, 8, 8])"), &[1, 28, 28]);
    check(&model("Cnn2d(channels: [4, 4, 4], hidden: 8)"), &[1, 28, 28]);
}

#[test]
fn model_taps_are_validated_against_the_architecture() {
    let _rng = crate::common::rng();
    let src = r#"Experiment(
        name: "t",
        data: (source: Mnist1d()),
        nodes: [Node(id: "a", model: Mlp(hidden: [8])), Node(id: "b", model: Cnn1d(channels: [4]))],
        edges: [
            Edge(to: "a", loss: CrossEntropy),
            Edge(to: "b", loss: CrossEntropy),
            Edge(from: ["b"], to: "a", loss: Hint(from_tap: "block2", to_tap: "hidden1")),
        ],
    )"#;
    let err = config::plan_from_str(src, Path::new("t.ron")).unwrap_err().to_string();
    assert!(err.contains("node `b` has no tap `block2`") && err.contains("its taps are: block1"), "{err}");
}

#[test]
fn max_norm_scales_only_long_columns_and_keeps_the_parameter() {
    let _rng = crate::common::rng();
    use burn::nn::LinearConfig;
    use burn::tensor::TensorData;
    let d = Device::flex().autodiff();
    let mut layer = LinearConfig::new(2, 2).init(&d);
    let id = layer.weight.id;
    // column 0 = (3, 4): norm 5 → scaled to norm 1 = (0.6, 0.8); column 1 = (0.1, 0.1): kept
    layer.weight = layer.weight.map(|w| Tensor::<2>::from_data(TensorData::new(vec![3.0f32, 0.1, 4.0, 0.1], [2, 2]), &w.device()).require_grad());
    let out = cohort::models::max_norm_columns(layer, 1.0);
    assert_eq!(out.weight.id, id, "the optimiser state stays attached");
    assert!(out.weight.val().is_require_grad());
    let w: Vec<f32> = out.weight.val().into_data().try_into_vec::<f32>().unwrap();
    for (got, want) in w.iter().zip([0.6f32, 0.1, 0.8, 0.1]) {
        assert!((got - want).abs() < 1e-6, "{w:?}");
    }
}

/// The patches path of `first_conv` (the backends without cohort's kernel: on flex f32 tensors
/// `kernels::conv` computes it, tested in tests/kernels.rs).
#[test]
#[cfg(feature = "ndarray")]
#[allow(deprecated)] // Device::ndarray: a CPU backend without cohort's kernels
fn first_conv_as_patches_matches_the_convolution_and_its_weight_gradient() {
    use burn::nn::PaddingConfig2d;
    use burn::nn::conv::Conv2dConfig;
    let d = Device::ndarray().autodiff();
    d.seed(3);
    for cin in [1, 3] {
        let conv = Conv2dConfig::new([cin, 5], [3, 3]).with_padding(PaddingConfig2d::Same).init(&d);
        let x = Tensor::<4>::random([4, cin, 9, 7], Distribution::Normal(0.0, 1.0), &d);
        assert!(cohort::models::first_conv_applies(&conv, &x), "the patches path is the one tested");
        assert!(!cohort::models::first_conv_applies(&conv, &x.clone().require_grad()));
        let (a, b) = (conv.forward(x.clone()), cohort::models::first_conv(&conv, x));
        let vals = |t: Tensor<4>| t.into_data().try_into_vec::<f32>().unwrap();
        for (p, q) in vals(a.clone()).iter().zip(vals(b.clone())) {
            assert!((p - q).abs() < 1e-5, "forward {p} vs {q}");
        }
        // a loss that weighs every output differently, so that dW and db are not symmetric
        let weights = Tensor::<4>::random(a.dims(), Distribution::Normal(0.0, 1.0), &d);
        let (ga, gb) = ((a * weights.clone()).sum().backward(), (b * weights).sum().backward());
        let grad = |g: &burn::tensor::Gradients| {
            let w: Vec<f32> = conv.weight.grad(g).unwrap().into_data().try_into_vec().unwrap();
            let b: Vec<f32> = conv.bias.as_ref().unwrap().grad(g).unwrap().into_data().try_into_vec().unwrap();
            [w, b].concat()
        };
        for (p, q) in grad(&ga).iter().zip(grad(&gb)) {
            assert!((p - q).abs() <= 1e-4 * (1.0 + p.abs()), "gradient {p} vs {q}");
        }
    }
}

/// Every zoo architecture has exactly the parameter count of its reference PyTorch definition
/// (RepDistiller's `models/`, counted by scripts/zoo-param-counts.py into the fixture).
#[test]
fn zoo_parameter_counts_match_the_reference_definitions() {
    let _rng = crate::common::rng();
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/zoo-param-counts.json")).unwrap();
    let zoo: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    assert!(zoo.len() >= 13);
    let d = Device::flex();
    for entry in zoo {
        let spec = model(entry["model"].as_str().unwrap());
        let classes = entry["classes"].as_u64().unwrap() as usize;
        let count = spec.parameters(&[3, 32, 32], classes, &d).unwrap();
        assert_eq!(count as u64, entry["parameters"].as_u64().unwrap(), "{} ({spec})", entry["name"]);
    }
}

/// The zoo's networks run on CIFAR-shaped inputs and expose their taps with the declared shapes.
#[test]
fn zoo_networks_build_run_and_expose_their_taps() {
    let _rng = crate::common::rng();
    check(&model("ResNet(blocks: [1, 1, 1], widths: [16, 32, 64])"), &[3, 32, 32]);
    check(&model("ResNet(blocks: [1, 1, 1], widths: [64, 128, 256], stem: 32)"), &[3, 32, 32]);
    check(&model("Wrn(depth: 10, widen: 1)"), &[3, 32, 32]);
    check(&model("Wrn(depth: 10, widen: 2, dropout: 0.3)"), &[3, 32, 32]);
    check(&model("Vgg(depth: 8)"), &[3, 32, 32]);
    check(&model("MobileNetV2(expansion: 2, width: 0.25)"), &[3, 32, 32]);
    check(&model("ShuffleNetV2(size: 0.2)"), &[3, 32, 32]);
    check(&model("ShuffleNetV1(groups: 3)"), &[3, 32, 32]);
    check(&model("BranchedResNet(blocks: [1, 1, 1], widths: [16, 32, 64], branches: 3, gate: true)"), &[3, 32, 32]);
}

/// Branch m of a network branched at a tap is the unbranched network made of the trunk and
/// branch m's tail (weights moved over by name), for every branchable architecture (the whole
/// zoo); for a ResNet
/// the node's output is also checked: the branches' mean probability, or with the gate the gated
/// sum of their logits with a softmax of ReLU(BN(linear map)) of the pooled trunk features.
#[test]
fn each_branch_is_the_network_on_the_shared_trunk() {
    let _rng = crate::common::rng();
    use burn::store::ModuleSnapshot;
    use burn::tensor::activation::{log_softmax, softmax};
    // the weights of branch `m` (from 0) of a network branched after `k` stages, named as in the
    // unbranched network: the trunk's as they are, the branch's with its stages counted from `k`
    // (the first index after the stages' field `stages`)
    let branch_as_whole = |branched: &Network, m: usize, k: usize, stages: &str| {
        let prefix = format!("branches.{m}.");
        branched
            .collect(None, None, true)
            .into_iter()
            .filter_map(|mut t| {
                t.name = if let Some(rest) = t.name.strip_prefix(&prefix) {
                    match rest.strip_prefix(&format!("{stages}.")) {
                        Some(r) => {
                            let (j, tail) = r.split_once('.').unwrap();
                            format!("{stages}.{}.{tail}", j.parse::<usize>().unwrap() + k)
                        }
                        None => rest.to_string(),
                    }
                } else {
                    t.name.strip_prefix("trunk.")?.to_string()
                };
                Some(t)
            })
            .collect::<Vec<_>>()
    };
    let d = Device::flex();
    for (of, at, k, stages, shape) in [
        ("Cnn1d(channels: [4, 4, 4])", "block2", 2, "blocks", vec![40]),
        ("Mlp(hidden: [8, 8, 6])", "hidden2", 2, "hidden", vec![12]),
        ("Wrn(depth: 10, widen: 1)", "group1", 1, "groups", vec![3, 8, 8]),
        ("ResNet(blocks: [1, 2], widths: [4, 8])", "stage1", 1, "stages", vec![3, 8, 8]),
        ("Vgg(depth: 8)", "block2", 2, "blocks", vec![3, 32, 32]),
        ("Cnn2d(channels: [4, 4, 4], hidden: 8)", "block1", 1, "blocks", vec![1, 8, 8]),
        ("MobileNetV2(expansion: 2, width: 0.25)", "group5", 5, "groups", vec![3, 32, 32]),
        ("ShuffleNetV2(size: 0.2)", "stage2", 2, "stages", vec![3, 8, 8]),
        ("ShuffleNetV1(groups: 3)", "stage1", 1, "stages", vec![3, 8, 8]),
    ] {
        let x = Tensor::<2>::random([4, shape.iter().product()], Distribution::Normal(0.0, 1.0), &d);
        let branched = Network::init(&model(&format!("Branched(of: {of}, at: \"{at}\", branches: 3)")), &shape, 10, &d);
        let heads: Vec<String> = (1..=3).map(|m| format!("head{m}")).collect();
        let mut taps = Taps::new(&heads);
        branched.forward_taps(x.clone(), &mut taps);
        for m in 0..3 {
            let Tap::Flat(head) = &taps.got[m].1 else { panic!("a head's logits are flat") };
            let mut plain = Network::init(&model(of), &shape, 10, &d);
            let r = plain.apply(branch_as_whole(&branched, m, k, stages), None, None, true);
            assert!(r.missing.is_empty() && r.errors.is_empty() && r.unused.is_empty(), "{of}: {r}");
            let diff = (plain.forward(x.clone()) - head.clone()).abs().max().into_scalar::<f32>();
            assert!(diff < 1e-5, "{of}, branch {}: {diff}", m + 1);
        }
    }
    let shape = [3, 8, 8];
    let x = Tensor::<2>::random([4, 192], Distribution::Normal(0.0, 1.0), &d);
    let branched = Network::init(&model("BranchedResNet(blocks: [1, 2], widths: [4, 8], branches: 3, gate: true)"), &shape, 10, &d);
    let heads: Vec<String> = (1..=3).map(|m| format!("head{m}")).collect();
    let mut taps = Taps::new(&heads);
    let out = branched.forward_taps(x.clone(), &mut taps);
    let head = |m: usize| match &taps.got[m].1 {
        Tap::Flat(t) => t.clone(),
        _ => panic!("a head's logits are flat"),
    };
    // the gated ensemble, computed here from the heads and the gate's weights
    let trunk = {
        let mut t = Taps::new(&["stage1".to_string()]);
        branched.forward_taps(x.clone(), &mut t);
        match &t.got[0].1 {
            Tap::Map(m) => m.clone().mean_dims(&[2, 3]).flatten::<2>(1, 3),
            _ => panic!("a stage is a map"),
        }
    };
    let gate = branched.collect(None, None, true).into_iter().filter(|t| t.name.starts_with("gate.")).collect::<Vec<_>>();
    let data = |n: &str| {
        let t = gate.iter().find(|t| t.name == n).unwrap();
        let values: Vec<f32> = t.to_bytes().unwrap().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
        let shape: Vec<usize> = t.shape.to_vec();
        let shape = if shape.len() == 1 { vec![1, shape[0]] } else { shape };
        Tensor::<2>::from_data(burn::tensor::TensorData::new(values, shape), &d)
    };
    // a fresh batch norm in eval mode: x / sqrt(1 + 1e-5)
    let g = softmax((trunk.matmul(data("gate.fc.weight")) + data("gate.fc.bias")).div_scalar((1.0f64 + 1e-5).sqrt()).clamp_min(0.0), 1);
    let want = (0..3).map(|m| head(m) * g.clone().slice([0..4, m..m + 1])).reduce(|a, b| a + b).unwrap();
    let diff = (out - want).abs().max().into_scalar::<f32>();
    assert!(diff < 1e-5, "gated ensemble: {diff}");
    // without the gate: log of the branches' mean probability
    let plain_mean = Network::init(&model("BranchedResNet(blocks: [1, 2], widths: [4, 8], branches: 3)"), &shape, 10, &d);
    let mut taps = Taps::new(&heads);
    let out = plain_mean.forward_taps(x, &mut taps);
    let p = (0..3).map(|m| match &taps.got[m].1 {
        Tap::Flat(t) => softmax(t.clone(), 1),
        _ => unreachable!(),
    });
    let want = p.reduce(|a, b| a + b).unwrap().div_scalar(3.0).log();
    let diff = (log_softmax(out, 1) - want).abs().max().into_scalar::<f32>();
    assert!(diff < 1e-5, "branch mean: {diff}");
}

/// PCL's fusion on a `BranchedResNet` reads each branch's pooled features: with one branch and
/// the fusion classifier given that branch's classifier weights (moved over by name), the node's
/// output equals the branch's logits. (The concatenation order over several branches is checked
/// exactly on a `Hydra` by `tests/wiring.rs`.)
#[test]
fn the_fusion_classifier_reads_the_branches_pooled_features() {
    let _rng = crate::common::rng();
    use burn::store::ModuleSnapshot;
    let d = Device::flex();
    let shape = [3, 8, 8];
    let x = Tensor::<2>::random([4, 192], Distribution::Normal(0.0, 1.0), &d);
    let mut fused = Network::init(&model("BranchedResNet(blocks: [1, 2], widths: [4, 8], branches: 1, fusion: true)"), &shape, 10, &d);
    let before = fused.forward(x.clone());
    let classifier: Vec<_> = fused
        .collect(None, None, true)
        .into_iter()
        .filter_map(|mut t| {
            t.name = t.name.strip_prefix("branches.0.out.").map(|rest| format!("fusion.fc.{rest}"))?;
            Some(t)
        })
        .collect();
    assert_eq!(classifier.len(), 2, "weight and bias");
    let r = fused.apply(classifier, None, None, true);
    assert!(r.errors.is_empty() && r.unused.is_empty(), "both tensors applied: {r}");
    let mut taps = Taps::new(&["head1".to_string()]);
    let out = fused.forward_taps(x, &mut taps);
    let head = match &taps.got[0].1 {
        Tap::Flat(t) => t.clone(),
        _ => panic!("a head's logits are flat"),
    };
    assert!((before - head.clone()).abs().max().into_scalar::<f32>() > 1e-3, "a fresh fusion classifier differs from the branch's");
    let diff = (out - head).abs().max().into_scalar::<f32>();
    assert!(diff < 1e-5, "fusion with the branch's classifier: {diff}");
}

/// CL-ILR's backpropagation rescaling: the same forward pass, and every gradient that reaches
/// the shared trunk (here: the input's) divided by the number of branches.
#[test]
fn backprop_rescaling_divides_the_trunks_gradient_by_the_branches() {
    let _rng = crate::common::rng();
    let d = Device::flex().autodiff();
    let x = Tensor::<2>::random([2, 192], Distribution::Normal(0.0, 1.0), &d);
    use burn::store::ModuleSnapshot;
    let mut result = Vec::new();
    let first = Network::init(&model("BranchedResNet(blocks: [1, 1], widths: [4, 8], branches: 3)"), &[3, 8, 8], 10, &d);
    for rescale in [false, true] {
        // the same weights in both
        let mut net =
            Network::init(&model(&format!("BranchedResNet(blocks: [1, 1], widths: [4, 8], branches: 3, backprop_rescale: {rescale})")), &[3, 8, 8], 10, &d);
        assert!(net.apply(first.collect(None, None, true), None, None, true).errors.is_empty());
        let x = x.clone().detach().require_grad();
        let y = net.forward(x.clone());
        let g = (y.clone() * y.clone()).sum().backward();
        let grad: Vec<f32> = x.grad(&g).unwrap().into_data().try_into_vec().unwrap();
        result.push((y.into_data().try_into_vec::<f32>().unwrap(), grad));
    }
    assert_eq!(result[0].0, result[1].0, "the forward pass changed");
    for (a, b) in result[0].1.iter().zip(&result[1].1) {
        assert!((a / 3.0 - b).abs() <= 1e-4 * a.abs().max(1e-3), "{a} / 3 vs {b}");
    }
}

/// `BranchedResNet` is the generic branching of a ResNet after its second-to-last stage: the
/// same parameters by name, and the same output. Before the special case was replaced (after
/// 1098101), both were built side by side from one seed, one test alone in the process (the
/// generator is global): the same parameter count, and bit-identical logits and input gradients,
/// for each of these three; the counts are the special case's.
#[test]
fn branched_resnet_is_a_resnet_branched_after_its_second_to_last_stage() {
    let _rng = crate::common::rng();
    use burn::store::ModuleSnapshot;
    let d = Device::flex().autodiff();
    let shape = [3, 8, 8];
    for (special, generic, count) in [
        (
            "BranchedResNet(blocks: [1, 2], widths: [4, 8], branches: 3, gate: true)",
            "Branched(of: ResNet(blocks: [1, 2], widths: [4, 8]), at: \"stage1\", branches: 3, gate: true)",
            7095,
        ),
        (
            "BranchedResNet(blocks: [5, 5, 5], widths: [16, 32, 64], branches: 3, gate: true)",
            "Branched(of: ResNet(blocks: [5, 5, 5], widths: [16, 32, 64]), at: \"stage2\", branches: 3, gate: true)",
            1_175_639,
        ),
        (
            "BranchedResNet(blocks: [1, 1], widths: [4, 8], branches: 2, fusion: true, backprop_rescale: true)",
            "Branched(of: ResNet(blocks: [1, 1], widths: [4, 8]), at: \"stage1\", branches: 2, fusion: true, backprop_rescale: true)",
            2658,
        ),
    ] {
        let a = Network::init(&model(special), &shape, 10, &d);
        let mut b = Network::init(&model(generic), &shape, 10, &d);
        assert_eq!((a.parameters(), b.parameters()), (count, count), "{special}");
        let r = b.apply(a.collect(None, None, true), None, None, true);
        assert!(r.missing.is_empty() && r.errors.is_empty() && r.unused.is_empty(), "the same parameter names: {r}");
        let x = Tensor::<2>::random([4, 192], Distribution::Normal(0.0, 1.0), &d);
        assert_eq!(a.forward(x.clone()).into_data(), b.forward(x).into_data(), "{generic}");
    }
}

/// The pre-activation taps (`block<i>_pre` of a 1-D CNN, `stage<i>_pre` of a ResNet,
/// `group<i>_pre` of a WRN: what activation-boundary distillation reads) are the features before
/// the ReLU whose output the plain tap is — for the CNN and the ResNet, the ReLU of the pre tap is
/// the tap — and asking for them leaves the network's output unchanged (the ResNet and the WRN
/// then compute that ReLU apart from their fused batch-norm kernels), in training mode.
#[test]
fn pre_activation_taps_are_the_features_before_the_relu() {
    let _rng = crate::common::rng();
    use burn::tensor::activation::relu;
    let d = Device::flex().autodiff();
    for (spec, shape, pairs) in [
        ("Cnn1d(channels: [4, 5], kernel: 3)", vec![12], vec![("block1_pre", Some("block1")), ("block2_pre", Some("block2"))]),
        ("ResNet(blocks: [2, 1], widths: [4, 8])", vec![3, 8, 8], vec![("stage1_pre", Some("stage1")), ("stage2_pre", Some("stage2"))]),
        // a WRN's group taps are its groups' residual sums, before any ReLU, as RepDistiller's
        // feat[1..=3] (wrn.py: `f1 = out` after `self.block1`): negative entries too
        ("Wrn(depth: 10, widen: 1)", vec![3, 8, 8], vec![("group1_pre", None), ("group2_pre", None), ("group3_pre", None), ("group1", None), ("group3", None)]),
    ] {
        let net = Network::init(&model(spec), &shape, 10, &d);
        let x = Tensor::<2>::random([4, shape.iter().product()], Distribution::Normal(0.0, 1.0), &d);
        let plain = net.forward_taps(x.clone(), &mut Taps::new(&[]));
        let names: Vec<String> = pairs.iter().flat_map(|(pre, post)| std::iter::once(pre.to_string()).chain(post.map(String::from))).collect();
        let mut taps = Taps::new(&names);
        let with = net.forward_taps(x, &mut taps);
        let diff = (plain - with).abs().max().into_scalar::<f32>();
        assert!(diff < 1e-5, "{spec}: the output with the pre-activation taps asked for: {diff}");
        for (pre, post) in pairs {
            let z = taps.get(pre).unwrap_or_else(|| panic!("{spec}: tap {pre}")).clone().channels_by_positions();
            assert!(z.clone().lower_elem(0.0).any().into_scalar::<bool>(), "{spec}: {pre} has negative entries (before a ReLU)");
            if let Some(post) = post {
                let h = taps.get(post).unwrap().clone().channels_by_positions();
                let diff = (relu(z) - h).abs().max().into_scalar::<f32>();
                assert!(diff < 1e-6, "{spec}: relu({pre}) = {post}: {diff}");
            }
        }
    }
}
