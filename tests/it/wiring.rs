//! The engine's wiring of every configured loss, checked exactly: one training step of tiny
//! networks with plain SGD (no momentum, no dropout, one batch holding the whole training
//! split), and every parameter after the step compared with an independent computation written
//! here in f64 from the same initial weights — forward pass, each term's gradient with respect
//! to the logits (derived by hand, see `docs/losses.md`), backward pass and update. A term wired
//! to the wrong source, temperature, weight, ramp or head, an ensemble with or without the
//! node's own output, or a sequential peer that reads a stale output, moves the parameters
//! elsewhere and fails the comparison.

use std::path::Path;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor};
use cohort::config::{ModelSpec, Plan};
use cohort::engine::{self, Status};
use cohort::models::Network;

use crate::common;
use crate::common::{opts, plan};

type Matrix = Vec<Vec<f64>>;

/// Every float parameter of a module, in visit order, as f64.
struct Collect(Vec<Vec<f64>>);

impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
        self.0.push(p.val().into_data().try_into_vec::<f32>().unwrap().into_iter().map(f64::from).collect());
    }
}

fn params<M: Module>(m: &M) -> Vec<Vec<f64>> {
    let mut c = Collect(Vec::new());
    m.visit(&mut c);
    c.0
}

/// One engine step of the experiment `src`: the training split `(x, y)`, every node's
/// parameters before the step and, for trained nodes, after it (with their hint adapters).
struct Stepped {
    plan: Plan,
    x: Matrix,
    y: Vec<usize>,
    before: Vec<Vec<Vec<f64>>>,
    after: Vec<Vec<Vec<f64>>>,
    adapters_before: Vec<Vec<Vec<f64>>>,
    adapters_after: Vec<Vec<Vec<f64>>>,
}

/// Runs `src` (2 epochs, stopped after the first: one step, the state kept) and reads back the
/// parameters.
fn step(src: &str, out: &Path) -> Stepped {
    let plan = plan(src, out);
    assert_eq!(plan.seeds.len(), 1);
    let seed = plan.seeds[0];
    let data = cohort::data::prepare(&plan.data, Path::new("data"), seed).unwrap();
    assert_eq!(data.train.len(), plan.batch_size, "one step per epoch: the batch is the training split");
    let x: Matrix = (0..data.train.len()).map(|i| data.train.row(i).iter().map(|&v| f64::from(v)).collect()).collect();
    let y: Vec<usize> = data.train.labels.iter().map(|&l| l as usize).collect();
    let initial = engine::initial_models(&plan, seed, data.train.len()).unwrap();
    let mut o = opts(src);
    o.stop_after_epochs = Some(1);
    let outcome = engine::run(&plan, &o).unwrap();
    assert_eq!(outcome[0].status, Status::Stopped);
    let state = cohort::results::RunDir::at(&outcome[0].dir).state();
    let (mut before, mut after, mut adapters_before, mut adapters_after) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (n, node) in plan.nodes.iter().enumerate() {
        let t = initial[n].as_ref().expect("no recorded sources here");
        before.push(params(&t.net));
        adapters_before.push(params(&t.adapters));
        if node.fixed {
            after.push(Vec::new());
            adapters_after.push(Vec::new());
            continue;
        }
        after.push(params(&t.net.clone().try_load_file(state.network(&node.id)).unwrap()));
        let adapters = if t.adapters.is_empty() { Vec::new() } else { params(&t.adapters.clone().try_load_file(state.adapters(&node.id)).unwrap()) };
        adapters_after.push(adapters);
    }
    Stepped { plan, x, y, before, after, adapters_before, adapters_after }
}

impl Stepped {
    fn node(&self, id: &str) -> usize {
        self.plan.nodes.iter().position(|n| n.id == id).unwrap()
    }
    fn lr(&self) -> f64 {
        match &self.plan.nodes[0].optimizer {
            cohort::config::OptimizerSpec::Sgd { lr, .. } => lr.get(),
            _ => panic!("the wiring tests use plain SGD"),
        }
    }
}

/// `x·W + b` with `W` `[in, out]` row-major (burn's `Linear`).
fn linear(x: &Matrix, w: &[f64], b: &[f64]) -> Matrix {
    let out = b.len();
    x.iter().map(|row| (0..out).map(|o| b[o] + row.iter().enumerate().map(|(i, v)| v * w[i * out + o]).sum::<f64>()).collect()).collect()
}

/// `(xᵀ·G, Σ_b G_b)`: the gradients of a linear layer's weight and bias for `∂L/∂y = G`.
fn linear_grads(x: &Matrix, g: &Matrix) -> (Vec<f64>, Vec<f64>) {
    let (inp, out) = (x[0].len(), g[0].len());
    let mut dw = vec![0.0; inp * out];
    let mut db = vec![0.0; out];
    for (row, gr) in x.iter().zip(g) {
        for o in 0..out {
            db[o] += gr[o];
            for i in 0..inp {
                dw[i * out + o] += row[i] * gr[o];
            }
        }
    }
    (dw, db)
}

/// `∂L/∂x = G·Wᵀ` of a linear layer.
fn linear_input_grad(g: &Matrix, w: &[f64], inp: usize) -> Matrix {
    let out = g[0].len();
    g.iter().map(|gr| (0..inp).map(|i| (0..out).map(|o| gr[o] * w[i * out + o]).sum()).collect()).collect()
}

fn softmax(z: &Matrix, t: f64) -> Matrix {
    z.iter()
        .map(|row| {
            let m = row.iter().cloned().fold(f64::MIN, f64::max);
            let e: Vec<f64> = row.iter().map(|v| ((v - m) / t).exp()).collect();
            let s: f64 = e.iter().sum();
            e.into_iter().map(|v| v / s).collect()
        })
        .collect()
}

fn mean(ms: &[Matrix]) -> Matrix {
    let k = ms.len() as f64;
    (0..ms[0].len()).map(|b| (0..ms[0][0].len()).map(|c| ms.iter().map(|m| m[b][c]).sum::<f64>() / k).collect()).collect()
}

fn add(acc: &mut Matrix, g: Matrix, scale: f64) {
    for (a, r) in acc.iter_mut().zip(g) {
        for (x, v) in a.iter_mut().zip(r) {
            *x += scale * v;
        }
    }
}

fn zeros(b: usize, c: usize) -> Matrix {
    vec![vec![0.0; c]; b]
}

/// `∂/∂z` of `CE(y, softmax(z))`, batch mean: `(softmax(z) − onehot(y))/B`.
fn ce_grad(z: &Matrix, y: &[usize]) -> Matrix {
    let b = z.len() as f64;
    softmax(z, 1.0).into_iter().zip(y).map(|(mut p, &t)| (p[t] -= 1.0, p.into_iter().map(|v| v / b).collect()).1).collect()
}

/// `∂/∂z` of `T²·KL(p ‖ softmax(z/T))`, batchmean: `T·(softmax(z/T) − p)/B`.
fn kl_grad(z: &Matrix, p: &Matrix, t: f64) -> Matrix {
    let b = z.len() as f64;
    softmax(z, t).iter().zip(p).map(|(q, p)| q.iter().zip(p).map(|(q, p)| t * (q - p) / b).collect()).collect()
}

/// KDCL's min-logit ensemble: per sample each member's logits minus its true-class logit, the
/// element-wise minimum over members, then `softmax(·/T)`.
fn min_logit(members: &[Matrix], y: &[usize], t: f64) -> Matrix {
    let m: Matrix =
        (0..y.len()).map(|b| (0..members[0][0].len()).map(|c| members.iter().map(|v| v[b][c] - v[b][y[b]]).fold(f64::INFINITY, f64::min)).collect()).collect();
    softmax(&m, t)
}

/// ONE's sigmoid ramp-up factor in epoch `e` (from 0) of `n` ramp epochs.
fn ramp(e: usize, n: usize) -> f64 {
    if n == 0 { 1.0 } else { (-5.0 * (1.0 - (e as f64 / n as f64).min(1.0)).powi(2)).exp() }
}

/// Logits of a linear node (`Mlp(hidden: [])`) with parameters `p` (weight, bias).
fn logits(x: &Matrix, p: &[Vec<f64>]) -> Matrix {
    linear(x, &p[0], &p[1])
}

/// Parameters after one SGD step of a linear node whose logits have gradient `g`.
fn sgd_linear(x: &Matrix, p: &[Vec<f64>], g: &Matrix, lr: f64) -> Vec<Vec<f64>> {
    let (dw, db) = linear_grads(x, g);
    vec![p[0].iter().zip(&dw).map(|(w, d)| w - lr * d).collect(), p[1].iter().zip(&db).map(|(w, d)| w - lr * d).collect()]
}

/// The engine's update equals the reference update, parameter by parameter, up to f32
/// rounding: `|Δ_engine − Δ_ref| ≤ 1e-4·max|Δ_ref| + 1e-6`.
fn assert_same_step(what: &str, before: &[Vec<f64>], engine: &[Vec<f64>], reference: &[Vec<f64>]) {
    assert_eq!(engine.len(), reference.len(), "{what}: parameter count");
    let delta = |a: &[f64], b: &[f64]| -> Vec<f64> { a.iter().zip(b).map(|(x, y)| x - y).collect() };
    let scale = reference.iter().zip(before).flat_map(|(r, b)| delta(r, b)).fold(0.0f64, |m, d| m.max(d.abs()));
    assert!(scale > 1e-4, "{what}: the reference step moves nothing ({scale:e}); the test would prove nothing");
    for (k, ((e, r), b)) in engine.iter().zip(reference).zip(before).enumerate() {
        for (i, (de, dr)) in delta(e, b).iter().zip(delta(r, b)).enumerate() {
            assert!((de - dr).abs() <= 1e-4 * scale + 1e-6, "{what}: parameter {k}[{i}] moved by {de:e}, the reference by {dr:e} (largest move {scale:e})");
        }
    }
}

/// Asserts that two reference updates differ clearly (so a test can tell them apart).
fn assert_distinct(what: &str, before: &[Vec<f64>], a: &[Vec<f64>], b: &[Vec<f64>]) {
    let gap = a.iter().zip(b).flat_map(|(x, y)| x.iter().zip(y).map(|(x, y)| (x - y).abs())).fold(0.0f64, f64::max);
    let scale = a.iter().zip(before).flat_map(|(x, y)| x.iter().zip(y).map(|(x, y)| (x - y).abs())).fold(0.0f64, f64::max);
    assert!(gap > 1e-2 * scale, "{what}: the alternatives differ by only {gap:e} (step {scale:e})");
}

const DATA: &str = "(source: Mnist1d(num_samples: 1000), train_limit: 16, test_limit: 20)";

fn experiment(nodes: &str, edges: &str, update: &str) -> String {
    format!(
        r#"Experiment(
            name: "wiring",
            data: {DATA},
            nodes: [{nodes}],
            edges: [{edges}],
            training: (epochs: 2, batch_size: 16, optimizer: Sgd(lr: 0.5), update: {update}, seeds: [5]),
        )"#
    )
}

/// A frozen linear teacher: fresh random weights saved as `<dir>/<id>.bpk`.
fn teacher(dir: &Path, id: &str) -> String {
    let spec: ModelSpec = cohort::config::ron_options().from_str("Mlp(hidden: [])").unwrap();
    let device = Device::flex();
    let _rng = common::rng();
    device.seed(id.len() as u64 * 7919);
    let path = dir.join(format!("{id}.bpk"));
    Network::init(&spec, &[40], 10, &device).save_file(&path).unwrap();
    format!(r#"Node(id: "{id}", model: Mlp(hidden: []), frozen: true, checkpoint: {:?})"#, path)
}

/// Cross-entropy (weight α) plus soft targets from two frozen teachers with source weights 3:1
/// at T = 4 (weight 1 − α), and a second student with a ramped-up soft target from one teacher.
#[test]
fn soft_targets_from_weighted_teachers_with_weight_and_ramp() {
    let tmp = tempfile::tempdir().unwrap();
    let nodes = format!(
        r#"{}, {}, Node(id: "s", model: Mlp(hidden: [])), Node(id: "r", model: Mlp(hidden: []))"#,
        teacher(tmp.path(), "t1"),
        teacher(tmp.path(), "teacher2")
    );
    let edges = r#"
        Edge(to: "s", loss: CrossEntropy, weight: 0.3),
        Edge(from: ["t1", "teacher2"], to: "s", loss: SoftTarget(temperature: 4, source_weights: [3, 1]), weight: 0.7),
        Edge(to: "r", loss: CrossEntropy),
        Edge(from: ["teacher2"], to: "r", loss: SoftTarget(temperature: 2), weight: 2.0, ramp_up_epochs: 3),
    "#;
    let s = step(&experiment(&nodes, edges, "Simultaneous"), &tmp.path().join("out"));
    let (t1, t2, st, r) = (s.node("t1"), s.node("teacher2"), s.node("s"), s.node("r"));
    let v1 = logits(&s.x, &s.before[t1]);
    let v2 = logits(&s.x, &s.before[t2]);
    // student s: 0.3·CE + 0.7·T²·KL(0.75·p1 + 0.25·p2 ‖ q), T = 4
    let z = logits(&s.x, &s.before[st]);
    let target = {
        let (p1, p2) = (softmax(&v1, 4.0), softmax(&v2, 4.0));
        p1.iter().zip(&p2).map(|(a, b)| a.iter().zip(b).map(|(a, b)| 0.75 * a + 0.25 * b).collect()).collect::<Matrix>()
    };
    let mut g = zeros(z.len(), 10);
    add(&mut g, ce_grad(&z, &s.y), 0.3);
    add(&mut g, kl_grad(&z, &target, 4.0), 0.7);
    let reference = sgd_linear(&s.x, &s.before[st], &g, s.lr());
    assert_same_step("student s", &s.before[st], &s.after[st], &reference);
    // the teachers swapped would be another step
    let swapped = {
        let (p1, p2) = (softmax(&v1, 4.0), softmax(&v2, 4.0));
        let t: Matrix = p1.iter().zip(&p2).map(|(a, b)| a.iter().zip(b).map(|(a, b)| 0.25 * a + 0.75 * b).collect()).collect();
        let mut g = zeros(z.len(), 10);
        add(&mut g, ce_grad(&z, &s.y), 0.3);
        add(&mut g, kl_grad(&z, &t, 4.0), 0.7);
        sgd_linear(&s.x, &s.before[st], &g, s.lr())
    };
    assert_distinct("source weights", &s.before[st], &reference, &swapped);
    // student r: CE + 2·ramp(0 of 3)·T²·KL(p2 ‖ q), T = 2
    let z = logits(&s.x, &s.before[r]);
    let mut g = ce_grad(&z, &s.y);
    add(&mut g, kl_grad(&z, &softmax(&v2, 2.0), 2.0), 2.0 * ramp(0, 3));
    assert_same_step("student r", &s.before[r], &s.after[r], &sgd_linear(&s.x, &s.before[r], &g, s.lr()));
}

/// Deep mutual learning among three peers at T = 2: peer k gets CE + w·(1/2)·Σ_{l≠k} T²·KL(p_l ‖ p_k).
fn mutual(update: &str) -> Stepped {
    let tmp = tempfile::tempdir().unwrap();
    let nodes = r#"Node(id: "a", model: Mlp(hidden: [])), Node(id: "b", model: Mlp(hidden: [])), Node(id: "c", model: Mlp(hidden: []))"#;
    let edges = r#"
        Edge(to: "a", loss: CrossEntropy), Edge(to: "b", loss: CrossEntropy), Edge(to: "c", loss: CrossEntropy),
        Mutual(peers: ["a", "b", "c"], temperature: 2, weight: 0.8),
    "#;
    step(&experiment(nodes, edges, update), &tmp.path().join("out"))
}

/// The DML step of peer `k` given every peer's current parameters `p`.
fn dml_step(s: &Stepped, k: usize, p: &[Vec<Vec<f64>>]) -> Vec<Vec<f64>> {
    let z = logits(&s.x, &p[k]);
    let others: Vec<Matrix> = (0..3).filter(|&l| l != k).map(|l| softmax(&logits(&s.x, &p[l]), 2.0)).collect();
    let mut g = ce_grad(&z, &s.y);
    add(&mut g, kl_grad(&z, &mean(&others), 2.0), 0.8);
    sgd_linear(&s.x, &p[k], &g, s.lr())
}

#[test]
fn mutual_learning_simultaneous_uses_the_pre_step_outputs() {
    let s = mutual("Simultaneous");
    for k in 0..3 {
        assert_same_step(&format!("peer {k}"), &s.before[k], &s.after[k], &dml_step(&s, k, &s.before));
    }
}

/// The DML paper's algorithm: peer a steps, then b learns from a's refreshed output, then c
/// from both refreshed outputs. The test fails if a later peer saw a stale (pre-step) output.
#[test]
fn mutual_learning_sequential_sees_the_refreshed_outputs() {
    let s = mutual("Sequential");
    let mut p = s.before.clone();
    for k in 0..3 {
        let next = dml_step(&s, k, &p);
        if k > 0 {
            assert_distinct(&format!("peer {k}: refreshed vs stale sources"), &s.before[k], &next, &dml_step(&s, k, &s.before));
        }
        assert_same_step(&format!("peer {k}"), &s.before[k], &s.after[k], &next);
        p[k] = next;
    }
}

/// The three ensemble targets, each with and without the node's own (detached) output:
/// a ← MeanProbs(b, c), b ← MeanLogits(a, c), c ← MinLogit(a, b), at T = 3, plus CE.
fn ensembles(include_self: bool) {
    let tmp = tempfile::tempdir().unwrap();
    let nodes = r#"Node(id: "a", model: Mlp(hidden: [])), Node(id: "b", model: Mlp(hidden: [])), Node(id: "c", model: Mlp(hidden: []))"#;
    let edges = format!(
        r#"
        Edge(to: "a", loss: CrossEntropy), Edge(to: "b", loss: CrossEntropy), Edge(to: "c", loss: CrossEntropy),
        Edge(from: ["b", "c"], to: "a", loss: Ensemble(temperature: 3, combine: MeanProbs, include_self: {include_self})),
        Edge(from: ["a", "c"], to: "b", loss: Ensemble(temperature: 3, combine: MeanLogits, include_self: {include_self}), weight: 1.5),
        Edge(from: ["a", "b"], to: "c", loss: Ensemble(temperature: 3, combine: MinLogit, include_self: {include_self})),
    "#
    );
    let s = step(&experiment(nodes, &edges, "Simultaneous"), &tmp.path().join("out"));
    let z: Vec<Matrix> = (0..3).map(|k| logits(&s.x, &s.before[k])).collect();
    let members = |k: usize, from: [usize; 2]| -> Vec<Matrix> {
        let mut m: Vec<Matrix> = from.iter().map(|&l| z[l].clone()).collect();
        if include_self {
            m.push(z[k].clone());
        }
        m
    };
    let targets = [
        mean(&members(0, [1, 2]).iter().map(|v| softmax(v, 3.0)).collect::<Vec<_>>()),
        softmax(&mean(&members(1, [0, 2])), 3.0),
        min_logit(&members(2, [0, 1]), &s.y, 3.0),
    ];
    for (k, (target, weight)) in targets.iter().zip([1.0, 1.5, 1.0]).enumerate() {
        let mut g = ce_grad(&z[k], &s.y);
        add(&mut g, kl_grad(&z[k], target, 3.0), weight);
        let what = format!("peer {k}, include_self {include_self}");
        assert_same_step(&what, &s.before[k], &s.after[k], &sgd_linear(&s.x, &s.before[k], &g, s.lr()));
    }
}

#[test]
fn ensemble_targets_without_the_node_itself() {
    ensembles(false);
}

#[test]
fn ensemble_targets_with_the_node_itself() {
    ensembles(true);
}

/// FitNets: a student MLP (one hidden layer of 5) learns CE plus a hint from a frozen teacher's
/// hidden layer (6 units) through a learned linear adapter 5 → 6; the student's layers and the
/// adapter all move.
#[test]
fn hint_through_the_adapter_reaches_the_hidden_layer() {
    let tmp = tempfile::tempdir().unwrap();
    let spec: ModelSpec = cohort::config::ron_options().from_str("Mlp(hidden: [6])").unwrap();
    let path = tmp.path().join("t.bpk");
    {
        let _rng = common::rng(); // no run on another test thread draws meanwhile
        Network::init(&spec, &[40], 10, &Device::flex()).save_file(&path).unwrap();
    }
    let nodes = format!(r#"Node(id: "t", model: Mlp(hidden: [6]), frozen: true, checkpoint: {path:?}), Node(id: "s", model: Mlp(hidden: [5]))"#);
    let edges = r#"
        Edge(to: "s", loss: CrossEntropy),
        Edge(from: ["t"], to: "s", loss: Hint(from_tap: "hidden1", to_tap: "hidden1"), weight: 0.5),
    "#;
    let s = step(&experiment(&nodes, edges, "Simultaneous"), &tmp.path().join("out"));
    let (t, st) = (s.node("t"), s.node("s"));
    let relu = |m: Matrix| -> Matrix { m.into_iter().map(|r| r.into_iter().map(|v| v.max(0.0)).collect()).collect() };
    // teacher's hint u = relu(x·W1 + b1)
    let u = relu(linear(&s.x, &s.before[t][0], &s.before[t][1]));
    // student: pre = x·W1 + b1, h = relu(pre), z = h·W2 + b2; adapter r(h) = h·A + a
    let p = &s.before[st];
    let pre = linear(&s.x, &p[0], &p[1]);
    let h = relu(pre.clone());
    let z = linear(&h, &p[2], &p[3]);
    let ad = &s.adapters_before[st];
    let rh = linear(&h, &ad[0], &ad[1]);
    let b = s.x.len() as f64;
    // hint = ½·(1/B)·Σ‖u − r(h)‖², weight 0.5: ∂/∂r(h) = 0.5·(r(h) − u)/B
    let g_r: Matrix = rh.iter().zip(&u).map(|(r, u)| r.iter().zip(u).map(|(r, u)| 0.5 * (r - u) / b).collect()).collect();
    let g_z = ce_grad(&z, &s.y);
    let (dw2, db2) = linear_grads(&h, &g_z);
    let (da, dab) = linear_grads(&h, &g_r);
    let mut g_h = linear_input_grad(&g_z, &p[2], 5);
    add(&mut g_h, linear_input_grad(&g_r, &ad[0], 5), 1.0);
    let g_pre: Matrix = g_h.iter().zip(&pre).map(|(g, p)| g.iter().zip(p).map(|(g, p)| if *p > 0.0 { *g } else { 0.0 }).collect()).collect();
    let (dw1, db1) = linear_grads(&s.x, &g_pre);
    let lr = s.lr();
    let upd = |w: &[f64], d: &[f64]| -> Vec<f64> { w.iter().zip(d).map(|(w, d)| w - lr * d).collect() };
    let reference = vec![upd(&p[0], &dw1), upd(&p[1], &db1), upd(&p[2], &dw2), upd(&p[3], &db2)];
    assert_same_step("student", p, &s.after[st], &reference);
    assert_same_step("adapter", ad, &s.adapters_after[st], &[upd(&ad[0], &da), upd(&ad[1], &dab)]);
}

/// Regression: the sequential refresh of a peer's output was a second training-mode pass of the
/// peer itself, so a ResNet peer's batch-norm running statistics were updated twice per step.
/// The first peer's step does not depend on the order (it reads the other's pre-step output
/// either way), so its parameters and running statistics must be the same bits in both orders.
#[test]
fn sequential_refresh_updates_batch_norm_statistics_once() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |update: &str| {
        let src = format!(
            r#"Experiment(
                name: "bn-{update}",
                data: (source: Cifar10(dir: {:?}), train_limit: 8, test_limit: 8),
                nodes: [Node(id: "a", model: ResNet(blocks: [1], widths: [4])), Node(id: "b", model: ResNet(blocks: [1], widths: [4]))],
                edges: [Edge(to: "a", loss: CrossEntropy), Edge(to: "b", loss: CrossEntropy), Mutual(peers: ["a", "b"])],
                training: (epochs: 2, batch_size: 8, optimizer: Sgd(lr: 0.1), update: {update}, concurrency: Serial, seeds: [1]),
            )"#,
            tmp.path().join("cifar")
        );
        step(&src, &tmp.path().join("out"))
    };
    write_cifar(&tmp.path().join("cifar"));
    let (sim, seq) = (run("Simultaneous"), run("Sequential"));
    let a = sim.node("a");
    assert_eq!(sim.before[a], seq.before[a]);
    assert_eq!(sim.after[a], seq.after[a], "peer a, its running statistics included, is the same after one step in both orders");
    let b = sim.node("b");
    assert_ne!(sim.after[b], seq.after[b], "peer b learns from a's refreshed output in the sequential order");
}

/// An `Ema` node with `batch_stats` teaches in training mode: at the first step the average is
/// a copy of its node's initial weights, so a peer distilling from it takes the same step as a
/// peer distilling from the node itself (whose pre-step output is a training-mode pass, batch
/// statistics); without `batch_stats` the average teaches with its running statistics and the
/// step differs.
#[test]
fn ema_with_batch_stats_teaches_in_training_mode() {
    let tmp = tempfile::tempdir().unwrap();
    write_cifar(&tmp.path().join("cifar"));
    let run = |name: &str, nodes: &str, source: &str| {
        let src = format!(
            r#"Experiment(
                name: "{name}",
                data: (source: Cifar10(dir: {:?}), train_limit: 8, test_limit: 8),
                nodes: [Node(id: "a", model: ResNet(blocks: [1], widths: [4])), Node(id: "b", model: ResNet(blocks: [1], widths: [4])){nodes}],
                edges: [Edge(to: "a", loss: CrossEntropy), Edge(to: "b", loss: CrossEntropy), Edge(from: ["{source}"], to: "b", loss: SoftTarget(temperature: 2.0))],
                training: (epochs: 2, batch_size: 8, optimizer: Sgd(lr: 0.1), concurrency: Serial, seeds: [1]),
            )"#,
            tmp.path().join("cifar")
        );
        step(&src, &tmp.path().join(name))
    };
    let from_node = run("from-node", "", "a");
    let batch = run("ema-batch", r#", Node(id: "m", model: Ema(of: "a", decay: 0.9, batch_stats: true))"#, "m");
    let eval = run("ema-eval", r#", Node(id: "m", model: Ema(of: "a", decay: 0.9))"#, "m");
    let b = from_node.node("b");
    assert_eq!(from_node.before[b], batch.before[b]);
    for (g, w) in batch.after[b].iter().flatten().zip(from_node.after[b].iter().flatten()) {
        assert!((g - w).abs() <= 1e-6 * (1.0 + w.abs()), "b's step from the average in training mode: {g} vs {w}");
    }
    assert_distinct("average teaching in eval mode vs in training mode", &batch.before[b], &eval.after[b], &batch.after[b]);
}

/// A frozen teacher with `batch_stats: true` teaches with its training-mode output (batch norm
/// with the batch's statistics, as mdistiller's OFD runs its teacher): the student's step equals
/// its step from the same network trainable beside it (whose pre-step output is its
/// training-mode output), and differs from the step from the frozen teacher in eval mode.
#[test]
fn frozen_teacher_with_batch_stats_teaches_in_training_mode() {
    let tmp = tempfile::tempdir().unwrap();
    write_cifar(&tmp.path().join("cifar"));
    let spec: ModelSpec = cohort::config::ron_options().from_str("ResNet(blocks: [1], widths: [4])").unwrap();
    let path = tmp.path().join("t.bpk");
    {
        let _rng = common::rng(); // no run on another test thread draws meanwhile
        let device = Device::flex();
        device.seed(77);
        Network::init(&spec, &[3, 32, 32], 10, &device).save_file(&path).unwrap();
    }
    let run = |name: &str, teacher: &str| {
        let src = format!(
            r#"Experiment(
                name: "{name}",
                data: (source: Cifar10(dir: {:?}), train_limit: 8, test_limit: 8),
                nodes: [Node(id: "t", model: ResNet(blocks: [1], widths: [4]), checkpoint: {path:?}{teacher}), Node(id: "b", model: ResNet(blocks: [1], widths: [4]))],
                edges: [{own}Edge(to: "b", loss: CrossEntropy), Edge(from: ["t"], to: "b", loss: SoftTarget(temperature: 2.0))],
                training: (epochs: 2, batch_size: 8, optimizer: Sgd(lr: 0.1), concurrency: Serial, seeds: [1]),
            )"#,
            tmp.path().join("cifar"),
            own = if teacher.is_empty() { r#"Edge(to: "t", loss: CrossEntropy), "# } else { "" }
        );
        step(&src, &tmp.path().join(name))
    };
    let trainable = run("trainable", "");
    let batch = run("frozen-batch", ", frozen: true, batch_stats: true");
    let eval = run("frozen-eval", ", frozen: true");
    let b = trainable.node("b");
    assert_eq!(trainable.before[b], batch.before[b]);
    for (g, w) in batch.after[b].iter().flatten().zip(trainable.after[b].iter().flatten()) {
        assert!((g - w).abs() <= 1e-6 * (1.0 + w.abs()), "b's step from the frozen teacher in training mode: {g} vs {w}");
    }
    assert_distinct("frozen teacher in eval mode vs in training mode", &batch.before[b], &eval.after[b], &batch.after[b]);
}

/// A CIFAR-10 binary file set of 10 random images per split (2 per training file; the real
/// format).
fn write_cifar(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let mut state = 12345u64;
    let mut record = |label: u8| -> Vec<u8> {
        let mut r = vec![label];
        r.extend((0..3072).map(|_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 56) as u8
        }));
        r
    };
    for (name, n) in
        [("data_batch_1.bin", 2), ("data_batch_2.bin", 2), ("data_batch_3.bin", 2), ("data_batch_4.bin", 2), ("data_batch_5.bin", 2), ("test_batch.bin", 10)]
    {
        let bytes: Vec<u8> = (0..n).flat_map(|i| record(i as u8 % 10)).collect();
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

/// LFME: five domain experts (each trained on its own domain of the batch only) and a target
/// trained on all domains with CE + MSE(target logits, softmax of the sample's own-domain
/// expert). Needs MNIST (Rotated MNIST is built from it).
#[test]
fn lfme_routes_each_sample_to_its_domain_expert() {
    if !cohort::data::data_root(None).join("mnist").is_dir() {
        common::skip("lfme_routes_each_sample_to_its_domain_expert", "MNIST absent; run `cohort data fetch mnist` (CI does)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let experts: Vec<String> = (0..5).map(|d| format!(r#"Node(id: "e{d}", model: Mlp(hidden: []), train_on: Subset(domains: [{d}]))"#)).collect();
    let src = format!(
        r#"Experiment(
            name: "lfme",
            data: (source: RotatedMnist(test_domain: 5), train_limit: 16, test_limit: 20),
            nodes: [{}, Node(id: "t", model: Mlp(hidden: []))],
            edges: [
                Edge(to: "e0", loss: CrossEntropy), Edge(to: "e1", loss: CrossEntropy), Edge(to: "e2", loss: CrossEntropy),
                Edge(to: "e3", loss: CrossEntropy), Edge(to: "e4", loss: CrossEntropy),
                Edge(to: "t", loss: CrossEntropy),
                Edge(from: ["e0", "e1", "e2", "e3", "e4"], to: "t", loss: Lfme, weight: 0.5),
            ],
            training: (epochs: 2, batch_size: 16, optimizer: Sgd(lr: 0.5), seeds: [2]),
        )"#,
        experts.join(", ")
    );
    let s = step(&src, &tmp.path().join("out"));
    let domains = cohort::data::prepare(&s.plan.data, Path::new("data"), 2).unwrap().train.domains;
    let (b, c) = (s.x.len(), 10);
    // experts: CE over their own rows
    for d in 0..5 {
        let e = s.node(&format!("e{d}"));
        let rows: Vec<usize> = (0..b).filter(|&i| domains[i] as usize == d).collect();
        assert!(!rows.is_empty());
        let x: Matrix = rows.iter().map(|&i| s.x[i].clone()).collect();
        let y: Vec<usize> = rows.iter().map(|&i| s.y[i]).collect();
        let g = ce_grad(&logits(&x, &s.before[e]), &y);
        assert_same_step(&format!("expert of domain {d}"), &s.before[e], &s.after[e], &sgd_linear(&x, &s.before[e], &g, s.lr()));
    }
    // target: CE + 0.5·mean_{b,c}(z − p_{d(b)})², p from the pre-step experts
    let t = s.node("t");
    let z = logits(&s.x, &s.before[t]);
    let expert_probs: Vec<Matrix> = (0..5).map(|d| softmax(&logits(&s.x, &s.before[s.node(&format!("e{d}"))]), 1.0)).collect();
    let mut g = ce_grad(&z, &s.y);
    for i in 0..b {
        for k in 0..c {
            g[i][k] += 0.5 * 2.0 * (z[i][k] - expert_probs[domains[i] as usize][i][k]) / (b * c) as f64;
        }
    }
    assert_same_step("LFME target", &s.before[t], &s.after[t], &sgd_linear(&s.x, &s.before[t], &g, s.lr()));
}

/// Hydra heads: the output (log of the head mean) learns CE; each head m learns from the
/// node's own detached output (ONE's `OwnOutput`, T = 3, head m's weight m). Backpropagated by
/// hand through the head mean, the heads and the shared body.
#[test]
fn hydra_heads_learn_from_the_own_output() {
    let tmp = tempfile::tempdir().unwrap();
    let nodes = r#"Node(id: "h", model: Hydra(body: [6], heads: 2, head_hidden: 4))"#;
    let edges = r#"
        Edge(to: "h", loss: CrossEntropy),
        Edge(to: "h", loss: OwnOutput(temperature: 3), head: 1, weight: 1.0),
        Edge(to: "h", loss: OwnOutput(temperature: 3), head: 2, weight: 2.0),
    "#;
    let s = step(&experiment(nodes, edges, "Simultaneous"), &tmp.path().join("out"));
    let p = &s.before[0];
    let (bsz, m) = (s.x.len() as f64, 2usize);
    let relu = |v: &Matrix| -> Matrix { v.iter().map(|r| r.iter().map(|x| x.max(0.0)).collect()).collect() };
    let mask = |g: &Matrix, pre: &Matrix| -> Matrix {
        g.iter().zip(pre).map(|(g, p)| g.iter().zip(p).map(|(g, p)| if *p > 0.0 { *g } else { 0.0 }).collect()).collect()
    };
    // forward: params are [W0, b0] then per head [U, c, V, d]
    let pre_a = linear(&s.x, &p[0], &p[1]);
    let a = relu(&pre_a);
    let head = |k: usize| -> (Matrix, Matrix, Matrix) {
        let pre = linear(&a, &p[2 + 4 * k], &p[3 + 4 * k]);
        let u = relu(&pre);
        let h = linear(&u, &p[4 + 4 * k], &p[5 + 4 * k]);
        (pre, u, h)
    };
    let heads: Vec<(Matrix, Matrix, Matrix)> = (0..m).map(head).collect();
    let probs: Vec<Matrix> = heads.iter().map(|(_, _, h)| softmax(h, 1.0)).collect();
    let mean_p = mean(&probs); // softmax of the output
    let o: Matrix = mean_p.iter().map(|r| r.iter().map(|v| v.ln()).collect()).collect();
    // ∂L/∂o from CE: (P − onehot)/B
    let g_o: Matrix = mean_p.iter().zip(&s.y).map(|(r, &t)| r.iter().enumerate().map(|(j, v)| (v - if j == t { 1.0 } else { 0.0 }) / bsz).collect()).collect();
    let lr = s.lr();
    let mut reference = vec![Vec::new(); p.len()];
    let mut g_a = zeros(s.x.len(), 6);
    for (k, (pre, u, h)) in heads.iter().enumerate() {
        // through o = log mean_m softmax(h_m): ∂L/∂h_kj = (1/M)(G_j p_kj/P_j − p_kj Σ_c G_c p_kc/P_c)
        let pk = &probs[k];
        let mut g_h: Matrix = (0..s.x.len())
            .map(|b| {
                let dot: f64 = (0..10).map(|c| g_o[b][c] * pk[b][c] / mean_p[b][c]).sum();
                (0..10).map(|j| (g_o[b][j] * pk[b][j] / mean_p[b][j] - pk[b][j] * dot) / m as f64).collect()
            })
            .collect();
        // OwnOutput on head k+1 with weight k+1: T·(softmax(h/T) − softmax(o/T))/B
        add(&mut g_h, kl_grad(h, &softmax(&o, 3.0), 3.0), (k + 1) as f64);
        let (dv, dd) = linear_grads(u, &g_h);
        let g_pre = mask(&linear_input_grad(&g_h, &p[4 + 4 * k], 4), pre);
        let (du, dc) = linear_grads(&a, &g_pre);
        add(&mut g_a, linear_input_grad(&g_pre, &p[2 + 4 * k], 6), 1.0);
        for (slot, grad) in [(2, du), (3, dc), (4, dv), (5, dd)] {
            let i = slot + 4 * k;
            reference[i] = p[i].iter().zip(&grad).map(|(w, g)| w - lr * g).collect();
        }
    }
    let (dw0, db0) = linear_grads(&s.x, &mask(&g_a, &pre_a));
    reference[0] = p[0].iter().zip(&dw0).map(|(w, g)| w - lr * g).collect();
    reference[1] = p[1].iter().zip(&db0).map(|(w, g)| w - lr * g).collect();
    assert_same_step("hydra", p, &s.after[0], &reference);
}

/// Attention transfer between 1-D feature maps: a frozen teacher CNN (3 channels) and a student
/// CNN (2 channels), both one block of kernel 1 (so the convolution is a per-position affine
/// map, easy to differentiate by hand), CE plus 4·AT(block1 → block1).
#[test]
fn attention_transfer_between_feature_maps() {
    let tmp = tempfile::tempdir().unwrap();
    let spec: ModelSpec = cohort::config::ron_options().from_str("Cnn1d(channels: [3], kernel: 1)").unwrap();
    let path = tmp.path().join("t.bpk");
    {
        let _rng = common::rng(); // no run on another test thread draws meanwhile
        Network::init(&spec, &[40], 10, &Device::flex()).save_file(&path).unwrap();
    }
    let nodes = format!(
        r#"Node(id: "t", model: Cnn1d(channels: [3], kernel: 1), frozen: true, checkpoint: {path:?}), Node(id: "s", model: Cnn1d(channels: [2], kernel: 1))"#
    );
    let edges = r#"
        Edge(to: "s", loss: CrossEntropy),
        Edge(from: ["t"], to: "s", loss: Attention(from_tap: "block1", to_tap: "block1"), weight: 4.0),
    "#;
    let s = step(&experiment(&nodes, edges, "Simultaneous"), &tmp.path().join("out"));
    let (t, st) = (s.node("t"), s.node("s"));
    let (b, l) = (s.x.len(), 40);
    // block1[b][c][l] = relu(w_c·x_bl + bias_c); params [weight [C,1,1], bias [C], out W, out b]
    let block = |p: &[Vec<f64>]| -> (Vec<Matrix>, Vec<Matrix>) {
        let c = p[1].len();
        let pre: Vec<Matrix> = s.x.iter().map(|x| (0..c).map(|ch| x.iter().map(|v| p[0][ch] * v + p[1][ch]).collect()).collect()).collect();
        let h = pre.iter().map(|m| m.iter().map(|r| r.iter().map(|v| v.max(0.0)).collect()).collect()).collect();
        (pre, h)
    };
    // at(x)_b = a_b/‖a_b‖ with a_bl = mean_c x_bcl²
    let attention = |h: &[Matrix]| -> (Matrix, Vec<f64>) {
        let a: Matrix = h.iter().map(|m| (0..l).map(|k| m.iter().map(|r| r[k] * r[k]).sum::<f64>() / m.len() as f64).collect()).collect();
        let norms: Vec<f64> = a.iter().map(|r| r.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-12)).collect();
        (a.iter().zip(&norms).map(|(r, n)| r.iter().map(|v| v / n).collect()).collect(), norms)
    };
    let (_, hu) = block(&s.before[t]);
    let (at_u, _) = attention(&hu);
    let p = &s.before[st];
    let (pre, h) = block(p);
    let (at_v, norms) = attention(&h);
    let flat: Matrix = h.iter().map(|m| m.concat()).collect(); // [C·L], channel-major
    let z = linear(&flat, &p[2], &p[3]);
    let g_z = ce_grad(&z, &s.y);
    let (dw, db) = linear_grads(&flat, &g_z);
    let g_flat = linear_input_grad(&g_z, &p[2], 2 * l);
    let mut dwc = [0.0; 2];
    let mut dbc = [0.0; 2];
    for i in 0..b {
        // ∂/∂at = 4·2(at_v − at_u)/(B·L); through the normalisation: (g − at·(g·at))/‖a‖
        let g_at: Vec<f64> = (0..l).map(|k| 4.0 * 2.0 * (at_v[i][k] - at_u[i][k]) / (b * l) as f64).collect();
        let dot: f64 = g_at.iter().zip(&at_v[i]).map(|(g, a)| g * a).sum();
        let g_a: Vec<f64> = (0..l).map(|k| (g_at[k] - at_v[i][k] * dot) / norms[i]).collect();
        for ch in 0..2 {
            for k in 0..l {
                // a = mean_c h²: ∂a/∂h = 2h/C; plus the classifier's gradient; then the ReLU
                let g_h = g_a[k] * 2.0 * h[i][ch][k] / 2.0 + g_flat[i][ch * l + k];
                let g_pre = if pre[i][ch][k] > 0.0 { g_h } else { 0.0 };
                dwc[ch] += g_pre * s.x[i][k];
                dbc[ch] += g_pre;
            }
        }
    }
    let lr = s.lr();
    let upd = |w: &[f64], d: &[f64]| -> Vec<f64> { w.iter().zip(d).map(|(w, d)| w - lr * d).collect() };
    let reference = vec![upd(&p[0], &dwc), upd(&p[1], &dbc), upd(&p[2], &dw), upd(&p[3], &db)];
    assert_same_step("student", p, &s.after[st], &reference);
}

/// `views: PerNode` (KDCL): each trained node learns from its own augmented view of the same
/// samples, drawn from its own stream; the reference rebuilds each view with the documented
/// draws and fails if a node saw the shared view or another node's.
#[test]
fn per_node_views_give_each_node_its_own_augmentation() {
    use cohort::data::batch::{epoch_batches, gather};
    use cohort::data::spec::Augment;
    use cohort::random::legacy::LegacyRandomState;
    use cohort::random::{Stream, epoch_key, node_stream_seed, stream_seed};
    let tmp = tempfile::tempdir().unwrap();
    let src = r#"Experiment(
        name: "views",
        data: (source: Mnist1d(num_samples: 1000), train_limit: 16, test_limit: 20, augment: [Jitter(pixels: 3)], views: PerNode),
        nodes: [Node(id: "a", model: Mlp(hidden: [])), Node(id: "b", model: Mlp(hidden: []))],
        edges: [Edge(to: "a", loss: CrossEntropy), Edge(to: "b", loss: CrossEntropy)],
        training: (epochs: 2, batch_size: 16, optimizer: Sgd(lr: 0.5), seeds: [4]),
    )"#;
    let s = step(src, &tmp.path().join("out"));
    let train = cohort::data::prepare(&s.plan.data, Path::new("data"), 4).unwrap().train;
    let idx = &epoch_batches(16, 16, 4, epoch_key(0, 0))[0];
    let augment = [Augment::Jitter { pixels: 3 }];
    let view = |rng: &mut LegacyRandomState| -> (Matrix, Vec<usize>) {
        let b = gather(&train, idx, &augment, Some(rng));
        (b.inputs.chunks(40).map(|r| r.iter().map(|&v| f64::from(v)).collect()).collect(), b.labels.iter().map(|&l| l as usize).collect())
    };
    let (shared, _) = view(&mut LegacyRandomState::new(stream_seed(4, Stream::Jitter, epoch_key(0, 0))));
    let mut seen = Vec::new();
    for id in ["a", "b"] {
        let n = s.node(id);
        let (x, y) = view(&mut LegacyRandomState::new(node_stream_seed(4, Stream::Jitter, epoch_key(0, 0), n)));
        assert_ne!(x, shared, "node {id}'s view is its own");
        let reference = sgd_linear(&x, &s.before[n], &ce_grad(&logits(&x, &s.before[n]), &y), s.lr());
        let with_shared = sgd_linear(&shared, &s.before[n], &ce_grad(&logits(&shared, &s.before[n]), &y), s.lr());
        assert_distinct(&format!("node {id}: own view vs shared view"), &s.before[n], &reference, &with_shared);
        assert_same_step(&format!("node {id}"), &s.before[n], &s.after[n], &reference);
        seen.push(x);
    }
    assert_ne!(seen[0], seen[1], "the two nodes' views differ");
}

/// Parameters after one plain SGD step on `loss`, its gradient taken by central differences
/// (step 1e-6) over every parameter: an independent reference for any term's wiring.
fn sgd_by_central_differences(params: &[Vec<f64>], lr: f64, loss: &dyn Fn(&[Vec<f64>]) -> f64) -> Vec<Vec<f64>> {
    let h = 1e-6;
    (0..params.len())
        .map(|k| {
            (0..params[k].len())
                .map(|i| {
                    let (mut up, mut down) = (params.to_vec(), params.to_vec());
                    up[k][i] += h;
                    down[k][i] -= h;
                    params[k][i] - lr * (loss(&up) - loss(&down)) / (2.0 * h)
                })
                .collect()
        })
        .collect()
}

/// `∂f/∂z` by central differences (an independent computation of any logit loss's gradient).
fn numeric_grad(z: &Matrix, f: &dyn Fn(&Matrix) -> f64) -> Matrix {
    let h = 1e-5;
    let mut g = zeros(z.len(), z[0].len());
    for b in 0..z.len() {
        for c in 0..z[0].len() {
            let (mut up, mut down) = (z.clone(), z.clone());
            up[b][c] += h;
            down[b][c] -= h;
            g[b][c] = (f(&up) - f(&down)) / (2.0 * h);
        }
    }
    g
}

/// DKD in f64 (eq. (7) of Zhao et al. 2022), batch mean.
fn dkd_f64(v: &Matrix, z: &Matrix, y: &[usize], alpha: f64, beta: f64, t: f64) -> f64 {
    let (p, q) = (softmax(v, t), softmax(z, t));
    let mut s = 0.0;
    for b in 0..z.len() {
        let (pt, qt) = (p[b][y[b]], q[b][y[b]]);
        let tckd = pt * (pt / qt).ln() + (1.0 - pt) * ((1.0 - pt) / (1.0 - qt)).ln();
        let nckd: f64 = (0..z[0].len()).filter(|&c| c != y[b]).map(|c| (p[b][c] / (1.0 - pt)) * ((p[b][c] / (1.0 - pt)) / (q[b][c] / (1.0 - qt))).ln()).sum();
        s += alpha * tckd + beta * nckd;
    }
    t * t * s / z.len() as f64
}

/// DIST in f64 (eq. (9) of Huang et al. 2022, the official code's ε).
fn dist_f64(v: &Matrix, z: &Matrix, beta: f64, gamma: f64, tau: f64) -> f64 {
    let (ys, yt) = (softmax(z, tau), softmax(v, tau));
    let pearson = |a: &[f64], b: &[f64]| {
        let (ma, mb) = (a.iter().sum::<f64>() / a.len() as f64, b.iter().sum::<f64>() / b.len() as f64);
        let ab: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
        let (aa, bb): (f64, f64) = (a.iter().map(|x| (x - ma).powi(2)).sum(), b.iter().map(|y| (y - mb).powi(2)).sum());
        ab / (aa.sqrt() * bb.sqrt() + 1e-8)
    };
    let (n, c) = (z.len(), z[0].len());
    let inter = 1.0 - (0..n).map(|b| pearson(&ys[b], &yt[b])).sum::<f64>() / n as f64;
    let col = |m: &Matrix, k: usize| m.iter().map(|r| r[k]).collect::<Vec<f64>>();
    let intra = 1.0 - (0..c).map(|k| pearson(&col(&ys, k), &col(&yt, k))).sum::<f64>() / c as f64;
    tau * tau * (beta * inter + gamma * intra)
}

/// Each row z-scored with the unbiased std (Sun et al. 2024).
fn zscore(z: &Matrix) -> Matrix {
    z.iter()
        .map(|r| {
            let m = r.iter().sum::<f64>() / r.len() as f64;
            let s = (r.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (r.len() - 1) as f64).sqrt();
            r.iter().map(|x| (x - m) / (s + 1e-7)).collect()
        })
        .collect()
}

/// `T²·KL(p ‖ softmax(z/T))`, batch mean, in f64.
fn kl_f64(p: &Matrix, z: &Matrix, t: f64) -> f64 {
    let q = softmax(z, t);
    let s: f64 = p.iter().zip(&q).map(|(p, q)| p.iter().zip(q).map(|(p, q)| if *p > 0.0 { p * (p / q).ln() } else { 0.0 }).sum::<f64>()).sum();
    t * t * s / z.len() as f64
}

/// DKD, DIST and a logit-standardised soft target from a frozen teacher: each student's step
/// against the gradient of the f64 loss by central differences.
#[test]
fn dkd_dist_and_standardised_soft_targets() {
    let tmp = tempfile::tempdir().unwrap();
    let nodes = format!(r#"{}, Node(id: "s", model: Mlp(hidden: [])), Node(id: "r", model: Mlp(hidden: []))"#, teacher(tmp.path(), "t"));
    let edges = r#"
        Edge(to: "s", loss: CrossEntropy),
        Edge(from: ["t"], to: "s", loss: Dkd(alpha: 1, beta: 8, temperature: 4), weight: 0.5),
        Edge(to: "r", loss: CrossEntropy),
        Edge(from: ["t"], to: "r", loss: Dist(beta: 1, gamma: 2, temperature: 2)),
        Edge(from: ["t"], to: "r", loss: SoftTarget(temperature: 3, standardize: true), weight: 0.25),
    "#;
    let s = step(&experiment(&nodes, edges, "Simultaneous"), &tmp.path().join("out"));
    let v = logits(&s.x, &s.before[s.node("t")]);
    let y = s.y.clone();
    let st = s.node("s");
    let z = logits(&s.x, &s.before[st]);
    let mut g = ce_grad(&z, &y);
    add(&mut g, numeric_grad(&z, &|z| dkd_f64(&v, z, &y, 1.0, 8.0, 4.0)), 0.5);
    assert_same_step("DKD student", &s.before[st], &s.after[st], &sgd_linear(&s.x, &s.before[st], &g, s.lr()));
    let r = s.node("r");
    let z = logits(&s.x, &s.before[r]);
    let mut g = ce_grad(&z, &y);
    add(&mut g, numeric_grad(&z, &|z| dist_f64(&v, z, 1.0, 2.0, 2.0)), 1.0);
    let target = softmax(&zscore(&v), 3.0);
    add(&mut g, numeric_grad(&z, &|z| kl_f64(&target, &zscore(z), 3.0)), 0.25);
    assert_same_step("DIST + standardised KD student", &s.before[r], &s.after[r], &sgd_linear(&s.x, &s.before[r], &g, s.lr()));
}

/// Knowledge Transfer Graph gates (Minami et al. 2020) in step 0 of epoch 0: `PositiveLinear`
/// (0/E) and the paper's per-iteration `Linear` (0/k_end) switch their term off — the labels'
/// cross-entropy too —, `NegativeLinear` (1 − 0/E) keeps it whole, `Cutoff` is 0, and `Correct`
/// keeps each sample's soft-target loss where the teacher's argmax is the label (the batch mean
/// over all samples, the others 0). The factors later in training from the formulas.
#[test]
fn ktg_gates_scale_the_weight_by_training_progress() {
    use cohort::config::{Gate, Progress};
    let at = Progress { epoch: 3, epochs: 4, step: 1, steps: 5 };
    let gates = [Gate::Through, Gate::Cutoff, Gate::PositiveLinear, Gate::NegativeLinear, Gate::Linear, Gate::Correct];
    assert_eq!(gates.map(|g| g.factor(at)), [1.0, 0.0, 0.75, 0.25, 16.0 / 20.0, 1.0]);
    let tmp = tempfile::tempdir().unwrap();
    let nodes = format!(
        r#"{}, Node(id: "up", model: Mlp(hidden: [])), Node(id: "down", model: Mlp(hidden: [])), Node(id: "off", model: Mlp(hidden: []))"#,
        teacher(tmp.path(), "t")
    );
    let edges = r#"
        Edge(to: "up", loss: CrossEntropy), Edge(to: "down", loss: CrossEntropy), Edge(to: "off", loss: CrossEntropy),
        Edge(from: ["t"], to: "up", loss: SoftTarget(temperature: 2), gate: PositiveLinear),
        Edge(from: ["t"], to: "down", loss: SoftTarget(temperature: 2), gate: NegativeLinear),
        Edge(from: ["t"], to: "off", loss: SoftTarget(temperature: 2), gate: Cutoff),
        Edge(to: "linear", loss: CrossEntropy, gate: Linear),
        Edge(from: ["t"], to: "linear", loss: SoftTarget(temperature: 2)),
        Edge(to: "correct", loss: CrossEntropy),
        Edge(from: ["t"], to: "correct", loss: SoftTarget(temperature: 2), gate: Correct),
    "#;
    let nodes = format!(r#"{nodes}, Node(id: "linear", model: Mlp(hidden: [])), Node(id: "correct", model: Mlp(hidden: []))"#);
    let s = step(&experiment(&nodes, edges, "Simultaneous"), &tmp.path().join("out"));
    let v = logits(&s.x, &s.before[s.node("t")]);
    let p = softmax(&v, 2.0);
    for (id, g) in [("up", 0.0), ("down", 1.0), ("off", 0.0)] {
        let n = s.node(id);
        let z = logits(&s.x, &s.before[n]);
        let mut grad = ce_grad(&z, &s.y);
        add(&mut grad, kl_grad(&z, &p, 2.0), g);
        assert_same_step(id, &s.before[n], &s.after[n], &sgd_linear(&s.x, &s.before[n], &grad, s.lr()));
    }
    // the labels' term gated off, the soft target whole
    let n = s.node("linear");
    let z = logits(&s.x, &s.before[n]);
    assert_same_step("linear", &s.before[n], &s.after[n], &sgd_linear(&s.x, &s.before[n], &kl_grad(&z, &p, 2.0), s.lr()));
    // the soft target on the rows the teacher gets right only
    let n = s.node("correct");
    let z = logits(&s.x, &s.before[n]);
    let right: Vec<bool> =
        v.iter().zip(&s.y).map(|(row, &y)| row.iter().enumerate().fold((0, f64::MIN), |b, (k, &x)| if x > b.1 { (k, x) } else { b }).0 == y).collect();
    let hits = right.iter().filter(|r| **r).count();
    assert!(hits > 0 && hits < right.len(), "the test needs a teacher right on some rows and wrong on others ({hits} of {})", right.len());
    let mut kl = kl_grad(&z, &p, 2.0);
    for (row, keep) in kl.iter_mut().zip(&right) {
        if !keep {
            row.iter_mut().for_each(|g| *g = 0.0);
        }
    }
    let mut grad = ce_grad(&z, &s.y);
    add(&mut grad, kl, 1.0);
    assert_same_step("correct", &s.before[n], &s.after[n], &sgd_linear(&s.x, &s.before[n], &grad, s.lr()));
}

/// The correct gate needs one source whose logits the edge's loss reads: elsewhere a positioned
/// error.
#[test]
fn the_correct_gate_needs_a_single_logit_source() {
    let tmp = tempfile::tempdir().unwrap();
    let nodes = format!(r#"{}, Node(id: "s", model: Mlp(hidden: []))"#, teacher(tmp.path(), "t"));
    let edges = r#"Edge(to: "s", loss: CrossEntropy, gate: Correct)"#;
    let err = cohort::config::plan_from_str(&experiment(&nodes, edges, "Simultaneous"), Path::new("x.ron")).unwrap_err().to_string();
    assert!(err.contains("edges[0].gate") && err.contains("one source whose logits"), "{err}");
}

/// An `Ema` node (Mean Teacher; PCL's temporal mean): after each of its node's steps its
/// weights are `d·θ_ema + (1 − d)·θ` (closed form after k steps: `d^k·θ_0 + (1 − d)·Σ_i
/// d^(k−i)·θ_i`), and a peer distilling from it reads the average as it stands before the
/// step (not the tracked node, not a stale copy). Run as three one-step epochs, stopped and
/// resumed after each: the resumed run's checkpoints equal an uninterrupted run's, byte for byte.
#[test]
fn ema_node_averages_its_node_and_teaches_with_the_current_average() {
    ema_case(false);
    // Mean Teacher's warm-up: the decay after the n-th step is min(1 − 1/(n + 1), d)
    ema_case(true);
}

fn ema_case(warmup: bool) {
    let tmp = tempfile::tempdir().unwrap();
    let d: f64 = 0.75;
    let decay = |n: usize| if warmup { d.min(1.0 - 1.0 / (n as f64 + 1.0)) } else { d };
    let src = format!(
        r#"Experiment(
            name: "ema",
            data: {DATA},
            nodes: [
                Node(id: "a", model: Mlp(hidden: [])),
                Node(id: "m", model: Ema(of: "a", decay: {d}, warmup: {warmup})),
                Node(id: "b", model: Mlp(hidden: [])),
            ],
            edges: [
                Edge(to: "a", loss: CrossEntropy),
                Edge(to: "b", loss: CrossEntropy),
                Edge(from: ["m"], to: "b", loss: SoftTarget(temperature: 2)),
            ],
            training: (epochs: 3, batch_size: 16, optimizer: Sgd(lr: 0.5), seeds: [5]),
        )"#
    );
    let p = plan(&src, &tmp.path().join("stepwise"));
    let (a, m, b) = (0, 1, 2);
    assert_eq!(p.nodes[m].model, p.nodes[a].model, "an Ema node has its node's architecture");
    let data = cohort::data::prepare(&p.data, Path::new("data"), 5).unwrap();
    let x: Matrix = (0..data.train.len()).map(|i| data.train.row(i).iter().map(|&v| f64::from(v)).collect()).collect();
    let y: Vec<usize> = data.train.labels.iter().map(|&l| l as usize).collect();
    let initial = engine::initial_models(&p, 5, data.train.len()).unwrap();
    let net = |n: usize| initial[n].as_ref().unwrap().net.clone();
    assert_eq!(params(&net(m)), params(&net(a)), "the average starts as a copy");
    // three epochs of one step each, stopped after every one
    let mut o = opts(&src);
    o.stop_after_epochs = Some(1);
    let mut seen = vec![[0, 1, 2].map(|n| params(&net(n)))];
    for epoch in 1..=3 {
        o.resume = epoch > 1;
        o.stop_after_epochs = (epoch < 3).then_some(1);
        let out = engine::run(&p, &o).unwrap();
        let dir = cohort::results::RunDir::at(&out[0].dir);
        let file = |id: &str| if epoch < 3 { dir.state().network(id) } else { dir.checkpoint(id) };
        seen.push([a, m, b].map(|n| params(&net(n).try_load_file(file(&p.nodes[n].id)).unwrap())));
    }
    let close = |what: &str, got: &[Vec<f64>], want: &[Vec<f64>]| {
        for (g, w) in got.iter().flatten().zip(want.iter().flatten()) {
            assert!((g - w).abs() <= 1e-6 * (1.0 + w.abs()), "{what}: {g} vs {w}");
        }
    };
    let mut average = seen[0][a].clone();
    for k in 1..=3 {
        // θ_k = d_k·θ_(k−1) + (1 − d_k)·a_k from the tracked node's weights after each step (with
        // a constant decay: d^k·θ_0 + (1 − d)·Σ_j d^(k−j)·a_j)
        let dk = decay(k);
        average = average.iter().zip(&seen[k][a]).map(|(m, w)| m.iter().zip(w).map(|(m, w)| dk * m + (1.0 - dk) * w).collect()).collect();
        close(&format!("average after step {k} (warm-up {warmup})"), &seen[k][m], &average);
        // b's step k distils from the average after step k − 1
        let z = logits(&x, &seen[k - 1][b]);
        let mut g = ce_grad(&z, &y);
        add(&mut g, kl_grad(&z, &softmax(&logits(&x, &seen[k - 1][m]), 2.0), 2.0), 1.0);
        let reference = sgd_linear(&x, &seen[k - 1][b], &g, 0.5);
        assert_same_step(&format!("b, step {k}"), &seen[k - 1][b], &seen[k][b], &reference);
        if k == 3 {
            let mut stale = ce_grad(&z, &y);
            add(&mut stale, kl_grad(&z, &softmax(&logits(&x, &seen[k - 1][a]), 2.0), 2.0), 1.0);
            assert_distinct("average vs tracked node as the source", &seen[k - 1][b], &reference, &sgd_linear(&x, &seen[k - 1][b], &stale, 0.5));
        }
    }
    // resumed after every epoch = uninterrupted (every weight bit for bit)
    let mut whole = p.clone();
    whole.output = tmp.path().join("whole");
    let out = engine::run(&whole, &opts(&src)).unwrap();
    let stepwise = cohort::results::RunDir::new(&p.output, &p.name, 5);
    for (n, id) in ["a", "m", "b"].into_iter().enumerate() {
        let weights = |d: &cohort::results::RunDir| params(&net(n).try_load_file(d.checkpoint(id)).unwrap());
        assert!(weights(&cohort::results::RunDir::at(&out[0].dir)) == weights(&stepwise), "the resumed run's {id} differs from the uninterrupted run's");
    }
    assert_eq!(std::fs::read(out[0].dir.join("metrics.csv")).unwrap(), std::fs::read(stepwise.root.join("metrics.csv")).unwrap());
}

/// Parameters after one SGD step of a `Hydra(body: [])` head (Linear → ReLU → Linear, params
/// `[W1, b1, W2, b2]`) whose logits have gradient `g`.
fn sgd_head(x: &Matrix, p: &[Vec<f64>], g: &Matrix, lr: f64) -> Vec<Vec<f64>> {
    let hidden = p[1].len();
    let pre = linear(x, &p[0], &p[1]);
    let a: Matrix = pre.iter().map(|r| r.iter().map(|v| v.max(0.0)).collect()).collect();
    let (dw2, db2) = linear_grads(&a, g);
    let ga: Matrix =
        linear_input_grad(g, &p[2], hidden).iter().zip(&pre).map(|(r, q)| r.iter().zip(q).map(|(v, z)| if *z > 0.0 { *v } else { 0.0 }).collect()).collect();
    let (dw1, db1) = linear_grads(x, &ga);
    [(&p[0], dw1), (&p[1], db1), (&p[2], dw2), (&p[3], db2)].into_iter().map(|(w, d)| w.iter().zip(&d).map(|(w, d)| w - lr * d).collect()).collect()
}

/// Logits of a `Hydra(body: [])` head with parameters `[W1, b1, W2, b2]`.
fn head_logits(x: &Matrix, p: &[Vec<f64>]) -> Matrix {
    let a: Matrix = linear(x, &p[0], &p[1]).iter().map(|r| r.iter().map(|v| v.max(0.0)).collect()).collect();
    linear(&a, &p[2], &p[3])
}

/// CL-ILR (Song & Chai 2018): head 1 learns from the labels and from the mean of heads 2 and 3's
/// logits (T = 2, weight 0.7), head 2 from the mean of heads 1 and 3's probabilities (T = 3),
/// head 3 from nothing (it must not move); every target detached.
#[test]
fn other_heads_target_is_built_from_the_other_heads_only() {
    let tmp = tempfile::tempdir().unwrap();
    let nodes = r#"Node(id: "h", model: Hydra(body: [], heads: 3, head_hidden: 4))"#;
    let edges = r#"
        Edge(to: "h", head: 1, loss: CrossEntropy),
        Edge(to: "h", head: 1, loss: OtherHeads(temperature: 2), weight: 0.7),
        Edge(to: "h", head: 2, loss: OtherHeads(temperature: 3, combine: MeanProbs)),
    "#;
    let s = step(&experiment(nodes, edges, "Simultaneous"), &tmp.path().join("out"));
    let (before, after) = (&s.before[0], &s.after[0]);
    let head = |p: &[Vec<f64>], m: usize| p[4 * m..4 * m + 4].to_vec();
    let z: Vec<Matrix> = (0..3).map(|m| head_logits(&s.x, &head(before, m))).collect();
    let mean_logits = |a: &Matrix, b: &Matrix| -> Matrix { a.iter().zip(b).map(|(r, q)| r.iter().zip(q).map(|(u, v)| (u + v) / 2.0).collect()).collect() };
    let mut g1 = ce_grad(&z[0], &s.y);
    add(&mut g1, kl_grad(&z[0], &softmax(&mean_logits(&z[1], &z[2]), 2.0), 2.0), 0.7);
    let reference1 = sgd_head(&s.x, &head(before, 0), &g1, s.lr());
    assert_same_step("head 1", &head(before, 0), &head(after, 0), &reference1);
    // the node's own head in its target would be another step
    let mut with_self = ce_grad(&z[0], &s.y);
    let all: Matrix = (0..z[0].len()).map(|b| (0..10).map(|c| (z[0][b][c] + z[1][b][c] + z[2][b][c]) / 3.0).collect()).collect();
    add(&mut with_self, kl_grad(&z[0], &softmax(&all, 2.0), 2.0), 0.7);
    assert_distinct("other heads vs all heads", &head(before, 0), &reference1, &sgd_head(&s.x, &head(before, 0), &with_self, s.lr()));
    let g2 = kl_grad(&z[1], &mean(&[softmax(&z[0], 3.0), softmax(&z[2], 3.0)]), 3.0);
    assert_same_step("head 2", &head(before, 1), &head(after, 1), &sgd_head(&s.x, &head(before, 1), &g2, s.lr()));
    assert_eq!(head(before, 2), head(after, 2), "head 3 has no term and receives no gradient through the others' targets");
}

/// CL-ILR's backpropagation rescaling: with `backprop_rescale` the heads take the same step and
/// the shared body exactly 1/H of it (H = 3 heads, each trained on the labels).
#[test]
fn backprop_rescaling_divides_the_body_gradient_by_the_heads() {
    let run = |rescale: bool| {
        let tmp = tempfile::tempdir().unwrap();
        let nodes = format!(r#"Node(id: "h", model: Hydra(body: [6], heads: 3, head_hidden: 4, backprop_rescale: {rescale}))"#);
        let edges = r#"Edge(to: "h", head: 1, loss: CrossEntropy), Edge(to: "h", head: 2, loss: CrossEntropy), Edge(to: "h", head: 3, loss: CrossEntropy)"#;
        step(&experiment(&nodes, edges, "Simultaneous"), &tmp.path().join("out"))
    };
    let (plain, scaled) = (run(false), run(true));
    assert_eq!(plain.before[0], scaled.before[0], "same initial weights");
    let before = &plain.before[0];
    // body: weight and bias (2 tensors); then the heads
    let scaled_reference: Vec<Vec<f64>> = (0..before.len())
        .map(|k| {
            let f = if k < 2 { 1.0 / 3.0 } else { 1.0 };
            before[k].iter().zip(&plain.after[0][k]).map(|(b, a)| b + f * (a - b)).collect()
        })
        .collect();
    assert_same_step("rescaled Hydra", before, &scaled.after[0], &scaled_reference);
    assert_distinct("rescaled vs plain body", &before[..2], &scaled_reference[..2], &plain.after[0][..2]);
}

/// CE of `softmax(z)`, batch mean, in f64.
fn ce_f64(z: &Matrix, y: &[usize]) -> f64 {
    softmax(z, 1.0).iter().zip(y).map(|(p, &t)| -p[t].ln()).sum::<f64>() / z.len() as f64
}

/// OKDDip (Chen et al. 2020): peer a learns from `CE + 0.5·T²·KL(softmax(t/T) ‖ softmax(z_a/T))`
/// with `t = Σ_j α_j z_j` over the members j, `α = softmax_j(⟨W_q f_a, W_k f_j⟩)`, f the `hidden1`
/// features (a's tracked, b's and c's detached): the members are b and c (the paper's form, the
/// default), or a itself too (`include_self: true`, its logits detached), or a itself with its
/// logits tracked (`detach_own: false`, the authors' code). The engine's step of a's network
/// *and* of its projections W_q, W_k equals a plain SGD step on the gradient of that loss
/// computed in f64 by central differences over every parameter, in each form; and the three
/// forms step differently.
#[test]
fn peer_attention_trains_the_peer_and_its_projections() {
    let forms = [("", false, true), (", include_self: true", true, true), (", include_self: true, detach_own: false", true, false)];
    let steps: Vec<Vec<Vec<f64>>> = forms.iter().map(|&(options, include_self, detach_own)| peer_attention_step(options, include_self, detach_own)).collect();
    assert_distinct("other peers vs self included", &steps[0], &steps[0], &steps[1]);
    assert_distinct("own logits detached vs tracked", &steps[1], &steps[1], &steps[2]);
}

/// One engine step of peer a under `PeerAttention(…{options})` checked against the f64
/// reference; returns a's parameters after it (network, then projections).
fn peer_attention_step(options: &str, include_self: bool, detach_own: bool) -> Vec<Vec<f64>> {
    let tmp = tempfile::tempdir().unwrap();
    let nodes = r#"Node(id: "a", model: Mlp(hidden: [4])), Node(id: "b", model: Mlp(hidden: [4])), Node(id: "c", model: Mlp(hidden: [4]))"#;
    let edges = format!(
        r#"
        Edge(to: "a", loss: CrossEntropy), Edge(to: "b", loss: CrossEntropy), Edge(to: "c", loss: CrossEntropy),
        Edge(from: ["b", "c"], to: "a", loss: PeerAttention(temperature: 2, tap: "hidden1", dim: 2{options}), weight: 0.5),
    "#
    );
    let s = step(&experiment(nodes, &edges, "Simultaneous"), &tmp.path().join("out"));
    let relu = |m: Matrix| -> Matrix { m.into_iter().map(|r| r.into_iter().map(|v| v.max(0.0)).collect()).collect() };
    // (features, logits) of an Mlp(hidden: [4]) with parameters [W1, b1, W2, b2]
    let forward = |p: &[Vec<f64>]| -> (Matrix, Matrix) {
        let h = relu(linear(&s.x, &p[0], &p[1]));
        let z = linear(&h, &p[2], &p[3]);
        (h, z)
    };
    let (a, b, c) = (s.node("a"), s.node("b"), s.node("c"));
    let (fb, zb) = forward(&s.before[b]);
    let (fc, zc) = forward(&s.before[c]);
    let za_detached = forward(&s.before[a]).1;
    let (t, y) = (2.0, s.y.clone());
    // the loss of a as a function of [W1, b1, W2, b2, W_q, W_k]
    let loss = |p: &[Vec<f64>]| -> f64 {
        let (fa, za) = forward(&p[..4]);
        let proj = |f: &Matrix, w: &[f64]| linear(f, w, &[0.0, 0.0]);
        let q = proj(&fa, &p[4]);
        let own = if detach_own { &za_detached } else { &za };
        let (keys, members): (Vec<Matrix>, Vec<&Matrix>) = if include_self {
            (vec![proj(&fa, &p[5]), proj(&fb, &p[5]), proj(&fc, &p[5])], vec![own, &zb, &zc])
        } else {
            (vec![proj(&fb, &p[5]), proj(&fc, &p[5])], vec![&zb, &zc])
        };
        let target: Matrix = (0..za.len())
            .map(|n| {
                let e: Vec<f64> = keys.iter().map(|k| q[n].iter().zip(&k[n]).map(|(u, v)| u * v).sum()).collect();
                let alpha = &softmax(&vec![e], 1.0)[0];
                (0..10).map(|k| (0..members.len()).map(|j| alpha[j] * members[j][n][k]).sum()).collect()
            })
            .collect();
        ce_f64(&za, &y) + 0.5 * kl_f64(&softmax(&target, t), &za, t)
    };
    let mut all: Vec<Vec<f64>> = s.before[a].clone();
    all.extend(s.adapters_before[a].clone());
    assert_eq!(all.len(), 6, "network [W1, b1, W2, b2] and the projections [W_q, W_k]");
    let reference = sgd_by_central_differences(&all, s.lr(), &loss);
    let mut engine = s.after[a].clone();
    engine.extend(s.adapters_after[a].clone());
    assert_same_step(&format!("peer a with its projections{options}"), &all, &engine, &reference);
    assert_same_step(&format!("the projections alone{options}"), &all[4..], &engine[4..], &reference[4..]);
    engine
}

/// OKDDip on the branches of one node (`BranchAttention`, the authors' network): a
/// `Branched(of: Mlp(hidden: [4, 3]), at: "hidden1", branches: 4)` — trunk `h = relu(x W1 + b1)`,
/// branch m `f_m = relu(h W2m + b2m)`, `z_m = f_m W3m + b3m` — learns
/// `Σ_m CE(z_m) + 0.5·Σ_{m∈{1,2,3}} T²·KL(softmax(t_m/T) ‖ softmax(z_m/T))`, `t_m = Σ_j α_mj z_j`,
/// `α_m = softmax_j(⟨W_q f_m, W_k f_j⟩)` with one W_q, W_k for the three peers, j over the other
/// peers (the default), or over all three (`include_self: true`), or with the members' logits
/// detached (`detach_members: true`); branch 4 (a leader) only learns its CE. The engine's step
/// of the whole network *and* of the shared projections equals plain SGD on the gradient of
/// that loss in f64 by central differences (nothing detached but what the option names: the KL
/// pulls the other branch too), in each form; the forms step differently.
#[test]
fn branch_attention_trains_the_branches_and_the_shared_projections() {
    let forms = [("", false, false), (", include_self: true", true, false), (", include_self: true, detach_members: true", true, true)];
    let steps: Vec<Vec<Vec<f64>>> = forms.iter().map(|&(options, include_self, detach)| branch_attention_step(options, include_self, detach)).collect();
    assert_distinct("other peers vs self included", &steps[0], &steps[0], &steps[1]);
    assert_distinct("members tracked vs detached", &steps[1], &steps[1], &steps[2]);
}

fn branch_attention_step(options: &str, include_self: bool, detach: bool) -> Vec<Vec<f64>> {
    let tmp = tempfile::tempdir().unwrap();
    let nodes = r#"Node(id: "n", model: Branched(of: Mlp(hidden: [4, 3]), at: "hidden1", branches: 4))"#;
    let edges = format!(
        r#"
        Edge(to: "n", head: 1, loss: CrossEntropy), Edge(to: "n", head: 2, loss: CrossEntropy), Edge(to: "n", head: 3, loss: CrossEntropy),
        Edge(to: "n", head: 4, loss: CrossEntropy),
        Edge(to: "n", loss: BranchAttention(temperature: 2, peers: [1, 2, 3], dim: 2{options}), weight: 0.5),
    "#
    );
    let s = step(&experiment(nodes, &edges, "Simultaneous"), &tmp.path().join("out"));
    let n = s.node("n");
    assert_eq!(s.before[n].len(), 18, "the trunk [W1, b1] and four branches [W2, b2, W3, b3]");
    assert_eq!(s.adapters_before[n].len(), 2, "one pair of projections [W_q, W_k] for every branch");
    let relu = |m: Matrix| -> Matrix { m.into_iter().map(|r| r.into_iter().map(|v| v.max(0.0)).collect()).collect() };
    // every branch's (features, logits) for the network's parameters
    let forward = |p: &[Vec<f64>]| -> Vec<(Matrix, Matrix)> {
        let h = relu(linear(&s.x, &p[0], &p[1]));
        (0..4)
            .map(|m| {
                let q = &p[2 + 4 * m..6 + 4 * m];
                let f = relu(linear(&h, &q[0], &q[1]));
                let z = linear(&f, &q[2], &q[3]);
                (f, z)
            })
            .collect()
    };
    let detached = forward(&s.before[n]);
    let t = 2.0;
    let loss = |p: &[Vec<f64>]| -> f64 {
        let branches = forward(&p[..18]);
        let proj = |f: &Matrix, w: &[f64]| linear(f, w, &[0.0, 0.0]);
        let mut l: f64 = branches.iter().map(|(_, z)| ce_f64(z, &s.y)).sum();
        for m in 0..3 {
            let members: Vec<usize> = (0..3).filter(|&j| include_self || j != m).collect();
            let q = proj(&branches[m].0, &p[18]);
            let keys: Vec<Matrix> = members.iter().map(|&j| proj(&branches[j].0, &p[19])).collect();
            let logits: Vec<&Matrix> = members.iter().map(|&j| if detach { &detached[j].1 } else { &branches[j].1 }).collect();
            let target: Matrix = (0..s.y.len())
                .map(|b| {
                    let e: Vec<f64> = keys.iter().map(|k| q[b].iter().zip(&k[b]).map(|(u, v)| u * v).sum()).collect();
                    let alpha = &softmax(&vec![e], 1.0)[0];
                    (0..10).map(|c| (0..members.len()).map(|j| alpha[j] * logits[j][b][c]).sum()).collect()
                })
                .collect();
            l += 0.5 * kl_f64(&softmax(&target, t), &branches[m].1, t);
        }
        l
    };
    let mut all: Vec<Vec<f64>> = s.before[n].clone();
    all.extend(s.adapters_before[n].clone());
    let reference = sgd_by_central_differences(&all, s.lr(), &loss);
    let mut engine = s.after[n].clone();
    engine.extend(s.adapters_after[n].clone());
    assert_same_step(&format!("the branched network with its projections{options}"), &all, &engine, &reference);
    assert_same_step(&format!("the projections alone{options}"), &all[18..], &engine[18..], &reference[18..]);
    engine
}

/// SwitOKD's rule in f64, written from the paper (eqs. (5)–(9)): expert mode when the gap
/// `mean ‖p_s − p_t‖₁` exceeds `δ = ‖p_s − y‖₁ − exp(−t/(t + s))·‖p_t − y‖₁` (batch means) and
/// the teacher is closer to the labels than the student.
fn switokd_expert(t: &Matrix, s: &Matrix, y: &[usize]) -> bool {
    let (pt, ps) = (softmax(t, 1.0), softmax(s, 1.0));
    let b = y.len() as f64;
    let to_label =
        |p: &Matrix| p.iter().zip(y).map(|(r, &l)| r.iter().enumerate().map(|(c, v)| if c == l { 1.0 - v } else { *v }).sum::<f64>()).sum::<f64>() / b;
    let gap = pt.iter().zip(&ps).map(|(a, b)| a.iter().zip(b).map(|(u, v)| (u - v).abs()).sum::<f64>()).sum::<f64>() / b;
    let (sy, ty) = (to_label(&ps), to_label(&pt));
    gap > sy - (-ty / (ty + sy)).exp() * ty && ty < sy
}

/// SwitOKD (Qian et al. 2022): a teacher and a student in DML (T = 1), the teacher switching
/// with the student. Fresh networks are in learning mode (both step). A teacher trained
/// beforehand on every class, facing a student trained beforehand on one class only (so
/// confidently wrong on the others), is in expert mode: it does not move, the student still
/// takes its DML step, and `expert_mode` is logged as 1 for the epoch.
#[test]
fn switokd_teacher_pauses_in_expert_mode_only() {
    let tmp = tempfile::tempdir().unwrap();
    let probe = plan(&experiment(r#"Node(id: "a", model: Mlp(hidden: []))"#, r#"Edge(to: "a", loss: CrossEntropy)"#, "Simultaneous"), tmp.path());
    let first_class = cohort::data::prepare(&probe.data, Path::new("data"), 5).unwrap().train.labels[0];
    let pre = format!(
        r#"Experiment(name: "pre", data: {DATA},
            nodes: [Node(id: "t", model: Mlp(hidden: [])), Node(id: "s", model: Mlp(hidden: []), train_on: Subset(classes: [{first_class}]))],
            edges: [Edge(to: "t", loss: CrossEntropy), Edge(to: "s", loss: CrossEntropy)],
            training: (epochs: 40, batch_size: 16, optimizer: Sgd(lr: 0.5), seeds: [5]))"#
    );
    let out = engine::run(&plan(&pre, &tmp.path().join("pre")), &opts(&pre)).unwrap();
    let trained = |id: &str| format!(", checkpoint: {:?}", out[0].dir.join(format!("checkpoints/{id}.bpk")));
    let edges = r#"Edge(to: "t", loss: CrossEntropy), Edge(to: "s", loss: CrossEntropy), Mutual(peers: ["t", "s"])"#;
    for expert in [false, true] {
        let (ckt, cks) = if expert { (trained("t"), trained("s")) } else { (String::new(), String::new()) };
        let nodes = format!(r#"Node(id: "t", model: Mlp(hidden: []), switch_with: "s"{ckt}), Node(id: "s", model: Mlp(hidden: []){cks})"#);
        let dir = tmp.path().join(if expert { "expert" } else { "learning" });
        let s = step(&experiment(&nodes, edges, "Simultaneous"), &dir);
        let (t, st) = (s.node("t"), s.node("s"));
        let (zt, zs) = (logits(&s.x, &s.before[t]), logits(&s.x, &s.before[st]));
        assert_eq!(switokd_expert(&zt, &zs, &s.y), expert, "the rule itself, on these networks");
        let step_of = |z: &Matrix, other: &Matrix, p: &[Vec<f64>]| {
            let mut g = ce_grad(z, &s.y);
            add(&mut g, kl_grad(z, &softmax(other, 1.0), 1.0), 1.0);
            sgd_linear(&s.x, p, &g, s.lr())
        };
        assert_same_step("student", &s.before[st], &s.after[st], &step_of(&zs, &zt, &s.before[st]));
        if expert {
            assert_eq!(s.after[t], s.before[t], "in expert mode the teacher pauses");
        } else {
            assert_same_step("teacher in learning mode", &s.before[t], &s.after[t], &step_of(&zt, &zs, &s.before[t]));
        }
        let metrics = std::fs::read_to_string(dir.join("wiring/seed-5/metrics.csv")).unwrap();
        let logged: Vec<f64> = metrics.lines().filter_map(|l| l.strip_prefix("main,1,t,train,expert_mode,")).map(|v| v.parse().unwrap()).collect();
        assert_eq!(logged, vec![if expert { 1.0 } else { 0.0 }], "the expert-mode fraction of epoch 1 in metrics.csv");
    }
}

/// PCL (Wu & Gong 2021) on one multi-branch node, `Hydra(body: [], heads: 2, head_hidden: 3,
/// fusion: true)`, with its temporal mean `m = Ema(of: "h")`. Branch k has features
/// `f_k = relu(U_k x + c_k)` and logits `h_k = V_k f_k + d_k`; the node's output is the peer
/// ensemble teacher `z_e = W_e [f_1; f_2] + b_e`. The loss of h is
/// `CE(z_e) + Σ_k CE(h_k) + 0.5·Σ_k T²·KL(softmax(z_e/T) ‖ softmax(h_k/T))` (the fusion's
/// output detached in the target: `OwnOutput`) `+ 0.7·T²·KL(softmax(h̃_2/T) ‖ softmax(h_1/T))`
/// with `h̃_2` branch 2 of the temporal mean (`from_head: 2`; before the first step the mean is
/// the initial network). The engine's step equals plain SGD on the gradient of that f64 loss by
/// central differences over every parameter — the fusion classifier's, and the branches'
/// through it. Reading the mean's branch 1 or its output instead would be another step.
#[test]
fn pcl_fusion_teacher_and_temporal_mean_branches() {
    let tmp = tempfile::tempdir().unwrap();
    let nodes = r#"Node(id: "h", model: Hydra(body: [], heads: 2, head_hidden: 3, fusion: true)), Node(id: "m", model: Ema(of: "h", decay: 0.9))"#;
    let edges = r#"
        Edge(to: "h", loss: CrossEntropy),
        Edge(to: "h", head: 1, loss: CrossEntropy),
        Edge(to: "h", head: 2, loss: CrossEntropy),
        Edge(to: "h", head: 1, loss: OwnOutput(temperature: 3), weight: 0.5),
        Edge(to: "h", head: 2, loss: OwnOutput(temperature: 3), weight: 0.5),
        Edge(from: ["m"], from_head: 2, to: "h", head: 1, loss: SoftTarget(temperature: 3), weight: 0.7),
    "#;
    let s = step(&experiment(nodes, edges, "Simultaneous"), &tmp.path().join("out"));
    let (h, t) = (s.node("h"), 3.0);
    let before = &s.before[h];
    assert_eq!(before.len(), 10, "two heads [U, c, V, d] and the fusion [W_e, b_e]");
    let relu = |m: Matrix| -> Matrix { m.into_iter().map(|r| r.into_iter().map(|v| v.max(0.0)).collect()).collect() };
    // (features, logits) of each branch, and the fusion's output
    let forward = |p: &[Vec<f64>]| -> (Vec<Matrix>, Matrix) {
        let f: Vec<Matrix> = (0..2).map(|k| relu(linear(&s.x, &p[4 * k], &p[4 * k + 1]))).collect();
        let z: Vec<Matrix> = (0..2).map(|k| linear(&f[k], &p[4 * k + 2], &p[4 * k + 3])).collect();
        let cat: Matrix = f[0].iter().zip(&f[1]).map(|(a, b)| a.iter().chain(b).copied().collect()).collect();
        (z, linear(&cat, &p[8], &p[9]))
    };
    let (mean_heads, mean_output) = forward(before);
    let fused_detached = forward(before).1;
    let loss = |p: &[Vec<f64>], teacher: &Matrix| -> f64 {
        let (z, e) = forward(p);
        let mut l = ce_f64(&e, &s.y);
        for zk in &z {
            l += ce_f64(zk, &s.y) + 0.5 * kl_f64(&softmax(&fused_detached, t), zk, t);
        }
        l + 0.7 * kl_f64(&softmax(teacher, t), &z[0], t)
    };
    let sgd = |teacher: &Matrix| sgd_by_central_differences(before, s.lr(), &|p: &[Vec<f64>]| loss(p, teacher));
    let reference = sgd(&mean_heads[1]);
    assert_same_step("PCL node", before, &s.after[h], &reference);
    assert_same_step("the fusion classifier", &before[8..], &s.after[h][8..], &reference[8..]);
    assert_distinct("the mean's branch 2 vs its branch 1", before, &reference, &sgd(&mean_heads[0]));
    assert_distinct("the mean's branch 2 vs its output", before, &reference, &sgd(&mean_output));
}

/// Label smoothing (weight 0.7) on a linear node: its step is SGD on `0.7·(softmax(z) −
/// ((1 − ε)·onehot(y) + ε/C))/B`, and its value is recorded as its own term row.
#[test]
fn label_smoothing_is_cross_entropy_with_softened_targets() {
    let tmp = tempfile::tempdir().unwrap();
    let nodes = r#"Node(id: "a", model: Mlp(hidden: []))"#;
    let edges = r#"Edge(to: "a", loss: LabelSmoothing(epsilon: 0.2), weight: 0.7)"#;
    let s = step(&experiment(nodes, edges, "Simultaneous"), &tmp.path().join("out"));
    let z = logits(&s.x, &s.before[0]);
    let b = z.len() as f64;
    let classes = z[0].len() as f64;
    let g: Matrix = softmax(&z, 1.0)
        .iter()
        .zip(&s.y)
        .map(|(p, &t)| p.iter().enumerate().map(|(c, p)| 0.7 * (p - (if c == t { 0.8 } else { 0.0 } + 0.2 / classes)) / b).collect())
        .collect();
    assert_same_step("label smoothing", &s.before[0], &s.after[0], &sgd_linear(&s.x, &s.before[0], &g, s.lr()));
    // plain cross-entropy would step differently
    let mut ce = ce_grad(&z, &s.y);
    ce.iter_mut().flatten().for_each(|v| *v *= 0.7);
    assert_distinct(
        "label smoothing vs cross-entropy",
        &s.before[0],
        &sgd_linear(&s.x, &s.before[0], &g, s.lr()),
        &sgd_linear(&s.x, &s.before[0], &ce, s.lr()),
    );
    let rows = cohort::results::read_metrics(&tmp.path().join("out/wiring/seed-5/metrics.csv")).unwrap();
    assert!(rows.iter().any(|r| r.metric == "loss:LabelSmoothing(ε=0.2)" && r.split == "train"), "the term's row");
}

/// The feature and relational terms in an engine step (their formulas are tested against the
/// authors' code in tests/it/losses.rs): students learn CE plus one term each from a frozen
/// teacher's tap to their own (an MLP's hidden layer; NST and VID a 1-D CNN's block; FSP the
/// pairs of two blocks, the student's of another kernel size; AB a block's pre-activation through
/// its connector; FitNets in RepDistiller's form a block through ConvReg; TeacherFree
/// from the labels alone; CTKD from the teacher's logits), and each student's step — and its
/// term's learned part (CC's embeddings, VID's regressor and variances, CTKD's θ with its reversed
/// gradient, AB's connector: its running statistics aside) — equals plain SGD on that sum computed here from
/// the same networks: the right taps, the teacher's side detached, the weight applied.
#[test]
fn relational_terms_read_the_named_taps_of_both_nodes() {
    use cohort::losses::activation_boundary::{activation_boundary_loss, connect};
    use cohort::losses::adapter::Adapter;
    use cohort::losses::correlation::embed;
    use cohort::losses::hint::{hint_mse, regress};
    use cohort::losses::vid::common_positions;
    use cohort::losses::{
        cc_authors_loss, cc_taylor_loss, cross_entropy, curriculum_kd, fsp_loss, nst_loss, pkt_loss, reversal_weight, rkd_loss, similarity_loss, teacher_free,
        vid_loss,
    };
    use cohort::models::{Tap, Taps};
    let tmp = tempfile::tempdir().unwrap();
    let spec: ModelSpec = cohort::config::ron_options().from_str("Mlp(hidden: [6])").unwrap();
    let device = Device::flex();
    let path = tmp.path().join("t.bpk");
    let conv: ModelSpec = cohort::config::ron_options().from_str("Cnn1d(channels: [6], kernel: 3)").unwrap();
    let conv_path = tmp.path().join("tc.bpk");
    let two: ModelSpec = cohort::config::ron_options().from_str("Cnn1d(channels: [3, 4], kernel: 3)").unwrap();
    let two_path = tmp.path().join("t2.bpk");
    {
        let _rng = common::rng(); // no run on another test thread draws meanwhile
        device.seed(4242);
        Network::init(&spec, &[40], 10, &device).save_file(&path).unwrap();
        Network::init(&conv, &[40], 10, &device).save_file(&conv_path).unwrap();
        Network::init(&two, &[40], 10, &device).save_file(&two_path).unwrap();
    }
    let nodes = format!(
        r#"Node(id: "t", model: Mlp(hidden: [6]), frozen: true, checkpoint: {path:?}),
        Node(id: "tc", model: Cnn1d(channels: [6], kernel: 3), frozen: true, checkpoint: {conv_path:?}),
        Node(id: "sp", model: Mlp(hidden: [5])), Node(id: "pkt", model: Mlp(hidden: [4])), Node(id: "rkd", model: Mlp(hidden: [3])),
        Node(id: "nst", model: Cnn1d(channels: [4], kernel: 3)),
        Node(id: "cc", model: Mlp(hidden: [5])), Node(id: "cca", model: Mlp(hidden: [4])),
        Node(id: "vid", model: Cnn1d(channels: [3], kernel: 3)), Node(id: "tf", model: Mlp(hidden: [4])),
        Node(id: "ctkd", model: Mlp(hidden: [4])),
        Node(id: "t2", model: Cnn1d(channels: [3, 4], kernel: 3), frozen: true, checkpoint: {two_path:?}),
        Node(id: "fsp", model: Cnn1d(channels: [3, 4], kernel: 5)),
        Node(id: "ab", model: Cnn1d(channels: [4], kernel: 3)),
        Node(id: "fit", model: Cnn1d(channels: [5], kernel: 3)),
        Node(id: "crd", model: Mlp(hidden: [4])),
        Node(id: "rev", model: Cnn1d(channels: [2, 3], kernel: 3)),
        Node(id: "ft", model: Cnn1d(channels: [3], kernel: 3)),
        Node(id: "svd", model: Cnn1d(channels: [5, 5], kernel: 3))"#
    );
    let edges = r#"
        Edge(to: "sp", loss: CrossEntropy), Edge(to: "pkt", loss: CrossEntropy), Edge(to: "rkd", loss: CrossEntropy),
        Edge(from: ["t"], to: "sp", loss: Similarity(from_tap: "hidden1", to_tap: "hidden1"), weight: 2),
        Edge(from: ["t"], to: "pkt", loss: Pkt(from_tap: "hidden1", to_tap: "hidden1"), weight: 3),
        Edge(from: ["t"], to: "rkd", loss: Rkd(from_tap: "hidden1", to_tap: "hidden1", distance: 25, angle: 50), weight: 0.5),
        Edge(to: "nst", loss: CrossEntropy),
        Edge(from: ["tc"], to: "nst", loss: Nst(from_tap: "block1", to_tap: "block1"), weight: 4),
        Edge(to: "cc", loss: CrossEntropy), Edge(to: "cca", loss: CrossEntropy), Edge(to: "vid", loss: CrossEntropy),
        Edge(from: ["t"], to: "cc", loss: Correlation(from_tap: "hidden1", to_tap: "hidden1", form: Taylor(gamma: 0.4, order: 2)), weight: 5),
        Edge(from: ["t"], to: "cca", loss: Correlation(from_tap: "hidden1", to_tap: "hidden1", form: Authors(dim: 3)), weight: 0.7),
        Edge(from: ["tc"], to: "vid", loss: Vid(from_tap: "block1", to_tap: "block1", mid: 2), weight: 1.5),
        Edge(to: "tf", loss: CrossEntropy, weight: 0.9),
        Edge(to: "tf", loss: TeacherFree(correct: 0.99, temperature: 20, multiplier: 100), weight: 0.1),
        Edge(to: "ctkd", loss: CrossEntropy),
        Edge(from: ["t"], to: "ctkd", loss: CurriculumTemperature(t_end: 2.0, decay_loops: 1), weight: 0.9),
        Edge(to: "fsp", loss: CrossEntropy),
        Edge(from: ["t2"], to: "fsp", loss: Fsp(from_taps: ["block1", "block2"], to_taps: ["block1", "block2"]), weight: 2.5),
        Edge(to: "ab", loss: CrossEntropy),
        Edge(from: ["tc"], to: "ab", loss: ActivationBoundary(from_tap: "block1_pre", to_tap: "block1_pre", margin: 0.5), weight: 30),
        Edge(to: "fit", loss: CrossEntropy),
        Edge(from: ["tc"], to: "fit", loss: Hint(from_tap: "block1", to_tap: "block1", form: RepDistiller), weight: 3),
        Edge(to: "crd", loss: CrossEntropy),
        Edge(to: "rev", loss: CrossEntropy),
        Edge(to: "ft", loss: CrossEntropy),
        Edge(from: ["tc"], to: "ft", loss: FactorTransfer(from_tap: "block1", to_tap: "block1", part: Paraphrase), weight: 1.5),
        Edge(from: ["tc"], to: "ft", loss: FactorTransfer(from_tap: "block1", to_tap: "block1", part: Translate), weight: 20),
        Edge(from: ["t2"], to: "rev", loss: ReviewKd(from_taps: ["block1_pre", "block2_pre"], to_taps: ["block1", "block2"], warmup: 3), weight: 2),
        Edge(to: "svd", loss: CrossEntropy),
        Edge(from: ["t2"], to: "svd", loss: Kdsvd(from_taps: ["block1", "block2"], to_taps: ["block1", "block2"]), weight: 3),
        Edge(from: ["t"], to: "crd", loss: Crd(from_tap: "hidden1", to_tap: "hidden1", dim: 3, negatives: 6, temperature: 0.5, momentum: 0.5), weight: 0.8),
    "#;
    let src = experiment(&nodes, edges, "Simultaneous");
    let s = step(&src, &tmp.path().join("out"));
    let initial = engine::initial_models(&s.plan, s.plan.seeds[0], s.x.len()).unwrap();
    let d = Device::flex().autodiff();
    // the batch in the engine's order: CC's authors' form pairs consecutive samples
    let order = cohort::data::batch::epoch_batches(s.x.len(), s.x.len(), s.plan.seeds[0], cohort::random::epoch_key(0, 0)).remove(0);
    let flat: Vec<f32> = order.iter().flat_map(|&i| s.x[i].iter().map(|&v| v as f32)).collect();
    let x = Tensor::<2>::from_data(burn::tensor::TensorData::new(flat, [s.x.len(), s.x[0].len()]), &d);
    let y = Tensor::<1, burn::tensor::Int>::from_data(burn::tensor::TensorData::new(order.iter().map(|&i| s.y[i] as i64).collect::<Vec<_>>(), [s.y.len()]), &d);
    let tap = |net: &Network, x: Tensor<2>, name: &str| {
        let mut taps = Taps::new(&[name.to_string()]);
        let z = net.forward_taps(x, &mut taps);
        (z, taps.take(name).expect("the tap asked for"))
    };
    let flat = |t: Tap| match t {
        Tap::Flat(h) => h,
        _ => panic!("an MLP's hidden layer is flat"),
    };
    let teacher = |id: &str, name: &str| tap(&initial[s.node(id)].as_ref().unwrap().net, x.clone(), name).1.detach();
    let (th, tc, tc_pre) = (flat(teacher("t", "hidden1")), teacher("tc", "block1"), teacher("tc", "block1_pre"));
    let tz = tap(&initial[s.node("t")].as_ref().unwrap().net, x.clone(), "hidden1").0.detach();
    let blocks = |net: &Network| {
        let names = ["block1".to_string(), "block2".to_string()];
        let mut taps = Taps::new(&names);
        let z = net.forward_taps(x.clone(), &mut taps);
        (z, names.iter().map(|n| taps.take(n).expect("the taps asked for")).collect::<Vec<_>>())
    };
    let t2 = blocks(&initial[s.node("t2")].as_ref().unwrap().net).1.into_iter().map(Tap::detach).collect::<Vec<_>>();
    // plain SGD: p − lr·∂L/∂p, parameter by parameter in visit order (`None`: a tensor without
    // a gradient, a batch norm's running statistics)
    struct Grads<'a>(&'a burn::tensor::Gradients, Vec<Option<Vec<f64>>>);
    impl ModuleVisitor for Grads<'_> {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            self.1.push(p.val().grad(self.0).map(|g| g.into_data().try_into_vec::<f32>().unwrap().into_iter().map(f64::from).collect()));
        }
    }
    // the entries that have a gradient: before, after, gradient
    let learned = |before: &[Vec<f64>], after: &[Vec<f64>], g: &[Option<Vec<f64>>]| {
        let keep = |v: &[Vec<f64>]| v.iter().zip(g).filter(|(_, g)| g.is_some()).map(|(v, _)| v.clone()).collect::<Vec<_>>();
        (keep(before), keep(after), g.iter().flatten().cloned().collect::<Vec<_>>())
    };
    let sgd = |before: &[Vec<f64>], g: &[Vec<f64>]| -> Vec<Vec<f64>> {
        before.iter().zip(g).map(|(p, g)| p.iter().zip(g).map(|(p, g)| p - s.lr() * g).collect()).collect()
    };
    for (id, weight) in [
        ("sp", 2.0),
        ("pkt", 3.0),
        ("rkd", 0.5),
        ("nst", 4.0),
        ("cc", 5.0),
        ("cca", 0.7),
        ("vid", 1.5),
        ("tf", 0.1),
        ("ctkd", 0.9),
        ("fsp", 2.5),
        ("ab", 30.0),
        ("fit", 3.0),
        ("crd", 0.8),
        ("rev", 2.0),
        ("ft", 1.0),
        ("svd", 3.0),
    ] {
        let n = s.node(id);
        let trainee = initial[n].as_ref().unwrap();
        let net = trainee.net.clone();
        let name = match id {
            "nst" | "vid" | "fsp" | "fit" | "rev" | "ft" | "svd" => "block1",
            "ab" => "block1_pre",
            _ => "hidden1",
        };
        let (z, h) = tap(&net, x.clone(), name);
        let ce = if id == "tf" { cross_entropy(z.clone(), y.clone()).mul_scalar(0.9) } else { cross_entropy(z.clone(), y.clone()) };
        let term = match (id, trainee.adapters.first()) {
            ("sp", _) => similarity_loss(th.clone(), flat(h)),
            ("pkt", _) => pkt_loss(th.clone(), flat(h)),
            ("rkd", _) => rkd_loss(th.clone(), flat(h), 25.0, 50.0),
            ("nst", _) => nst_loss(tc.clone().channels_by_positions(), h.channels_by_positions()),
            ("cc", _) => cc_taylor_loss(th.clone(), flat(h), 0.4, 2),
            ("cca", Some(Adapter::Embed(e))) => cc_authors_loss(embed(&e.source, th.clone()), embed(&e.own, flat(h))),
            ("vid", Some(Adapter::Variational(v))) => {
                let (t, h) = common_positions(tc.clone(), h);
                vid_loss(t.channels_by_positions(), v.mean(h.channels_by_positions()), v.variance())
            }
            ("tf", _) => teacher_free(z, y.clone(), 0.99, 20.0, 100.0),
            // the first epoch of a one-epoch schedule: λ = −1, θ's gradient reversed whole
            ("ctkd", Some(Adapter::Temperature(th))) => curriculum_kd(z, tz.clone(), th.val(), reversal_weight(1, 0.0, -1.0, 1), 1.0, 2.0).0,
            ("fsp", _) => fsp_loss(&t2, &blocks(&net).1),
            // KDSVD between the teacher's two blocks and the student's (k = 1, 4 vectors)
            ("svd", _) => cohort::losses::kdsvd_loss(&t2, &blocks(&net).1, 1),
            // the 4-channel student's pre-activation through its connector (1×1 + batch norm) to
            // the teacher's 6
            ("ab", Some(a @ Adapter::Connector(_))) => {
                activation_boundary_loss(connect(Some(a), h).channels_by_positions().flatten(1, 2), tc_pre.clone().channels_by_positions().flatten(1, 2), 0.5)
            }
            // RepDistiller's FitNets: ConvReg (1×1 + batch norm + ReLU) from 5 to 6 channels, MSE
            ("fit", Some(a @ Adapter::Connector(_))) => {
                hint_mse(tc.clone().channels_by_positions().flatten(1, 2), regress(a, h).channels_by_positions().flatten(1, 2))
            }
            // CRD: both embeddings, the memory bank as drawn, the engine's negatives for this
            // node's first term in the first step (the split's labels, the batch's indices)
            ("crd", Some(Adapter::Contrast(c))) => {
                use cohort::losses::contrastive::{contrast_indices, embed};
                let noise = cohort::random::stream_seed(s.plan.seeds[0], cohort::random::Stream::Dropout, cohort::random::epoch_key(0, 0)) as u64;
                let labels: Vec<u8> = s.y.iter().map(|&l| l as u8).collect();
                let contrast = contrast_indices(&order, &labels, 6, cohort::engine::step::term_draws(noise, n, 0, 0));
                let ints = |v: Vec<i64>| Tensor::<1, burn::tensor::Int>::from_data(burn::tensor::TensorData::new(v.clone(), [v.len()]), &d);
                let rows = ints(order.iter().map(|&i| i as i64).collect());
                c.step(embed(&c.embed_own, flat(h)), embed(&c.embed_source, th.clone()), rows, ints(contrast), 0.5, 0.5)
            }
            // ReviewKD: the student's two blocks fused deepest first into the teacher's two
            // pre-activations, epoch 1 of a 3-epoch warm-up (⅓)
            ("rev", Some(Adapter::Review(r))) => {
                use cohort::losses::review::{as_map, hcl_loss};
                let pre = |net: &Network, names: [&str; 2]| {
                    let names = names.map(String::from);
                    let mut taps = Taps::new(&names);
                    net.forward_taps(x.clone(), &mut taps);
                    names.iter().map(|n| as_map(taps.take(n).expect("the taps asked for"))).collect::<Vec<_>>()
                };
                let t = pre(&initial[s.node("t2")].as_ref().unwrap().net, ["block1_pre", "block2_pre"]).into_iter().map(|t| t.detach()).collect::<Vec<_>>();
                let out: Vec<[usize; 2]> = t.iter().map(|t| [t.dims()[2], t.dims()[3]]).collect();
                hcl_loss(&r.forward(pre(&net, ["block1", "block2"]), &out), &t).mul_scalar(1.0 / 3.0)
            }
            // FT: both parts' terms on one paraphraser and translator (one slot): the
            // reconstruction of the teacher's block (weight 1.5) and the transfer (weight 20)
            ("ft", Some(Adapter::Factor(f))) => {
                use cohort::losses::factor_transfer::factor_loss;
                use cohort::losses::review::as_map;
                let t = as_map(tc.clone());
                let rec = (f.reconstruct(t.clone()) - t.clone()).powi_scalar(2).mean();
                rec.mul_scalar(1.5) + factor_loss(f.translate(as_map(h)), f.encode(t).detach()).mul_scalar(20.0)
            }
            (other, a) => panic!("{other}: unexpected adapter {a:?}"),
        };
        let loss = ce + term.mul_scalar(weight);
        let grads = loss.backward();
        let mut g = Grads(&grads, Vec::new());
        net.visit(&mut g);
        let mut ga = Grads(&grads, Vec::new());
        for a in &trainee.adapters {
            a.visit(&mut ga);
        }
        assert_eq!(ga.1.len(), s.adapters_before[n].len(), "{id}: the learned part's parameters");
        assert!(trainee.adapters.len() <= 1, "{id}: one slot (FT's two terms share theirs)");
        assert_eq!(
            !ga.1.is_empty(),
            matches!(id, "cca" | "vid" | "ctkd" | "ab" | "fit" | "crd" | "rev" | "ft"),
            "{id}: CC's authors' form, VID, CTKD, AB, RepDistiller's FitNets, CRD, ReviewKD and FT learn a part beside the network, the others none"
        );
        if id == "crd" {
            // the memory bank and its constants after the step (no gradient): as updated here
            let updated = trainee.adapters.iter().flat_map(params).collect::<Vec<_>>();
            let states: Vec<(usize, &Vec<f64>)> = updated.iter().enumerate().filter(|(k, _)| ga.1[*k].is_none()).collect();
            assert_eq!(states.len(), 3, "crd: two banks and the constants");
            for (k, want) in states {
                assert_eq!(&s.adapters_before[n][k].len(), &want.len());
                assert_ne!(&s.adapters_before[n][k], want, "crd: state {k} moves in the step");
                for (g, w) in s.adapters_after[n][k].iter().zip(want) {
                    assert!((g - w).abs() <= 1e-5 * w.abs().max(1.0), "crd: state {k}: {g} vs {w}");
                }
            }
        }
        let (before, after, g) = learned(&s.before[n], &s.after[n], &g.1);
        assert_eq!(before.len(), s.before[n].len(), "{id}: every network parameter has a gradient");
        assert_same_step(id, &before, &after, &sgd(&before, &g));
        if !ga.1.is_empty() {
            let (before, after, g) = learned(&s.adapters_before[n], &s.adapters_after[n], &ga.1);
            assert!(!g.is_empty(), "{id}: its learned part has gradients");
            assert_same_step(&format!("{id}'s learned part"), &before, &after, &sgd(&before, &g));
        }
    }
}

/// OFD in an engine step: a ResNet student's stage-1 pre-activation through its connector
/// against a frozen ResNet teacher's, with the margin the engine reads from the teacher's batch
/// norm before that tap at the stage's start; the student's step and its connector's equal plain
/// SGD on CE + 0.5 × the term computed here (the teacher in eval mode, detached).
#[test]
fn ofd_reads_the_margin_from_the_sources_batch_norm() {
    use cohort::losses::adapter::Adapter;
    use cohort::losses::overhaul::{margins, ofd_loss};
    use cohort::losses::review::as_map;
    use cohort::models::Taps;
    let tmp = tempfile::tempdir().unwrap();
    write_cifar(&tmp.path().join("cifar"));
    let spec: ModelSpec = cohort::config::ron_options().from_str("ResNet(blocks: [1], widths: [4])").unwrap();
    let path = tmp.path().join("t.bpk");
    {
        let _rng = common::rng();
        Device::flex().seed(77);
        Network::init(&spec, &[3, 32, 32], 10, &Device::flex()).save_file(&path).unwrap();
    }
    let src = format!(
        r#"Experiment(
            name: "ofd",
            data: (source: Cifar10(dir: {:?}), train_limit: 8, test_limit: 8),
            nodes: [Node(id: "t", model: ResNet(blocks: [1], widths: [4]), frozen: true, checkpoint: {path:?}),
                    Node(id: "s", model: ResNet(blocks: [1], widths: [3]))],
            edges: [Edge(to: "s", loss: CrossEntropy), Edge(from: ["t"], to: "s", loss: Ofd(from_tap: "stage1_pre", to_tap: "stage1_pre"), weight: 0.5)],
            training: (epochs: 2, batch_size: 8, optimizer: Sgd(lr: 0.1), seeds: [1]),
        )"#,
        tmp.path().join("cifar")
    );
    let s = step(&src, &tmp.path().join("out"));
    let initial = engine::initial_models(&s.plan, 1, s.x.len()).unwrap();
    let d = Device::flex().autodiff();
    let order = cohort::data::batch::epoch_batches(s.x.len(), s.x.len(), 1, cohort::random::epoch_key(0, 0)).remove(0);
    let flat: Vec<f32> = order.iter().flat_map(|&i| s.x[i].iter().map(|&v| v as f32)).collect();
    let x = Tensor::<2>::from_data(burn::tensor::TensorData::new(flat.clone(), [s.x.len(), s.x[0].len()]), &d);
    let y = Tensor::<1, burn::tensor::Int>::from_data(burn::tensor::TensorData::new(order.iter().map(|&i| s.y[i] as i64).collect::<Vec<_>>(), [s.y.len()]), &d);
    let name = ["stage1_pre".to_string()];
    // the teacher in eval mode, as a frozen source
    let teacher = &initial[s.node("t")].as_ref().unwrap().net;
    let mut taps = Taps::new(&name);
    let plain = Device::flex();
    teacher.valid().forward_taps(Tensor::<2>::from_data(burn::tensor::TensorData::new(flat, [s.x.len(), s.x[0].len()]), &plain), &mut taps);
    let t = as_map(taps.take("stage1_pre").unwrap());
    let t = Tensor::<4>::from_data(t.into_data(), &d);
    let (gamma, beta) = teacher.bn_before("stage1_pre").expect("a ResNet's stage pre-activation has a batch norm before it");
    let m = margins(&gamma, &beta);
    let student = initial[s.node("s")].as_ref().unwrap();
    let Some(Adapter::Overhaul(c)) = student.adapters.first() else { panic!("OFD's connector") };
    let mut taps = Taps::new(&name);
    let z = student.net.forward_taps(x, &mut taps);
    let v = as_map(taps.take("stage1_pre").unwrap());
    let margin = Tensor::<1>::from_data(burn::tensor::TensorData::new(m.clone(), [m.len()]), &d);
    let loss = cohort::losses::cross_entropy(z, y) + ofd_loss(c.forward(v), t, margin).mul_scalar(0.5);
    let grads = loss.backward();
    struct Grads<'a>(&'a burn::tensor::Gradients, Vec<Option<Vec<f64>>>);
    impl ModuleVisitor for Grads<'_> {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            self.1.push(p.val().grad(self.0).map(|g| g.into_data().try_into_vec::<f32>().unwrap().into_iter().map(f64::from).collect()));
        }
    }
    let n = s.node("s");
    for (what, module, before, after) in [
        ("student", &student.net as &dyn std::any::Any, &s.before[n], &s.after[n]),
        ("connector", c as &dyn std::any::Any, &s.adapters_before[n], &s.adapters_after[n]),
    ] {
        let mut g = Grads(&grads, Vec::new());
        if let Some(net) = module.downcast_ref::<Network>() {
            net.visit(&mut g);
        } else if let Some(c) = module.downcast_ref::<cohort::losses::overhaul::OfdConnector>() {
            c.visit(&mut g);
        }
        let keep = |v: &[Vec<f64>]| v.iter().zip(&g.1).filter(|(_, g)| g.is_some()).map(|(v, _)| v.clone()).collect::<Vec<_>>();
        let (b, a) = (keep(before), keep(after));
        let gs: Vec<Vec<f64>> = g.1.iter().flatten().cloned().collect();
        assert!(!gs.is_empty(), "{what}: gradients");
        let want: Vec<Vec<f64>> = b.iter().zip(&gs).map(|(p, g)| p.iter().zip(g).map(|(p, g)| p - 0.1 * g).collect()).collect();
        assert_same_step(what, &b, &a, &want);
    }
    // the margin the engine set: the last float state of the connector after the step
    let engine_margin = s.adapters_after[n].last().unwrap();
    for (g, w) in engine_margin.iter().zip(&m) {
        assert!((g - *w as f64).abs() <= 1e-6, "margin {g} vs {w}");
    }
}
