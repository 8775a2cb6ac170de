//! `cohort bench`: steps per second of a K-peer DML cohort step (forward, exchange, loss,
//! backward, optimiser step for every peer) at batch 128, serial vs parallel peers, with the
//! ratios the performance targets are stated in (README, "Performance"). Timing lives here and in
//! `scripts/bench.sh`, never in tests.

use std::collections::HashMap;
use std::time::Instant;

use super::trainee::Trainee;
use crate::config::values::Temperature;
use crate::config::{Concurrency, ModelSpec, OptimizerSpec, PlanStage, Term, UpdateOrder};
use crate::data::Samples;
use crate::data::batch::gather;
use crate::losses::{CrossEntropy, LossSpec, MutualKl};
use crate::models::{Network, Noise};

use super::step::{NodeNeeds, StepContext, train_step};
use super::{Placement, optim, thread_pools};

/// One measurement.
#[derive(Clone, Debug)]
pub struct Measurement {
    /// Model label.
    pub model: String,
    /// Peers.
    pub peers: usize,
    /// `serial` or `threads`.
    pub mode: &'static str,
    /// Cohort steps per second.
    pub steps_per_s: f64,
}

/// A benchmark model: its label, architecture, sample shape, classes and the largest cohort
/// measured (the CIFAR networks only up to 2 peers: their steps take seconds here).
#[derive(Clone, Debug)]
pub struct BenchModel {
    /// Label in the report.
    pub label: &'static str,
    /// Architecture.
    pub spec: ModelSpec,
    /// Sample shape (`[C, H, W]`, `[L]` for the 1-D CNN).
    pub shape: Vec<usize>,
    /// Classes.
    pub classes: usize,
    /// Largest K measured.
    pub max_peers: usize,
}

/// The benchmark models: the MLP 784-1200-1200-10 and a small CNN on 1×28×28 inputs (10
/// classes), the quick start's 1-D CNN on MNIST-1D's 40-long sequences (10 classes), and the
/// CIFAR-100 networks on 3×32×32 inputs (100 classes): ResNet-32 and WRN-16-2 (the online
/// papers'), the KD tables' pair ResNet-32x4 → ResNet-8x4, and their students VGG-8, MobileNetV2
/// (×0.5) and ShuffleNetV2 (depthwise convolutions).
pub fn models() -> Vec<BenchModel> {
    let parse = |s: &str| crate::config::ron_options().from_str::<ModelSpec>(s).expect("valid model");
    let m = |label, spec: &str, shape: &[usize], classes, max_peers| BenchModel { label, spec: parse(spec), shape: shape.to_vec(), classes, max_peers };
    vec![
        m("mlp-1200", "Mlp(hidden: [1200, 1200])", &[1, 28, 28], 10, usize::MAX),
        m("cnn-32-64", "Cnn2d(channels: [32, 64], hidden: 128)", &[1, 28, 28], 10, usize::MAX),
        m("cnn1d-32", "Cnn1d(channels: [32, 32, 32], kernel: 5)", &[40], 10, 3),
        m("resnet32", "ResNet(blocks: [5, 5, 5], widths: [16, 32, 64])", &[3, 32, 32], 100, 2),
        m("wrn-16-2", "Wrn(depth: 16, widen: 2)", &[3, 32, 32], 100, 2),
        m("resnet8x4", "ResNet(blocks: [1, 1, 1], widths: [64, 128, 256], stem: 32)", &[3, 32, 32], 100, 2),
        m("resnet32x4", "ResNet(blocks: [5, 5, 5], widths: [64, 128, 256], stem: 32)", &[3, 32, 32], 100, 2),
        m("vgg8", "Vgg(depth: 8)", &[3, 32, 32], 100, 2),
        m("mobilenetv2", "MobileNetV2(expansion: 6, width: 0.5)", &[3, 32, 32], 100, 2),
        m("shufflenetv2", "ShuffleNetV2(size: 1.0)", &[3, 32, 32], 100, 2),
    ]
}

/// A `k`-peer DML cohort of one benchmark model on a fixed random batch of 128 inputs, ready to
/// take steps (also used by `cargo bench`, benches/cohort_step.rs).
pub struct BenchCohort {
    places: Vec<super::Placement>,
    samples: Samples,
    stage: PlanStage,
    models: Vec<Option<Trainee>>,
    needs: HashMap<usize, NodeNeeds>,
    optimizers: HashMap<usize, burn::optim::ModuleOptimizer>,
    lr: HashMap<usize, f64>,
    fixed: HashMap<usize, super::step::Fixed>,
    pools: Option<Vec<rayon::ThreadPool>>,
    steps: usize,
}

impl BenchCohort {
    /// `k` peers of `spec` on `place`, each with CE + mutual KL from the others, SGD with momentum.
    pub fn new(model: &BenchModel, k: usize, concurrency: Concurrency, place: &Placement) -> Self {
        let spec = &model.spec;
        let place = place.clone();
        let device = place.train.clone();
        let shape = model.shape.clone();
        let (batch, classes) = (128, model.classes);
        let mut noise = Noise::new(7);
        let samples = Samples {
            features: (0..batch * shape.iter().product::<usize>()).map(|_| noise.next_f32()).collect(),
            labels: (0..batch).map(|i| (i % classes) as u8).collect(),
            shape: shape.clone(),
            classes,
            domains: Vec::new(),
            background: Vec::new(),
        };
        let t = Temperature::new(1.0).expect("valid");
        let mut terms = Vec::new();
        let term = |to: usize, from: Vec<usize>, loss: LossSpec| Term {
            to,
            from,
            loss,
            weight: 1.0,
            ramp_up_epochs: 0,
            gate: Default::default(),
            origin: "bench".into(),
            head: None,
            from_head: None,
            stages: Vec::new(),
        };
        for n in 0..k {
            terms.push(term(n, vec![], CrossEntropy.into()));
            let others: Vec<usize> = (0..k).filter(|&m| m != n).collect();
            if !others.is_empty() {
                terms.push(term(n, others, MutualKl { temperature: t, standardize: false }.into()));
            }
        }
        let stage = PlanStage { name: "bench".into(), train: (0..k).collect(), epochs: 1, update: UpdateOrder::Simultaneous, terms };
        let sgd: OptimizerSpec = crate::config::ron_options().from_str("Sgd(lr: 0.01, momentum: 0.9)").expect("valid");
        let models = (0..k).map(|_| Some(Trainee::new(Network::init(spec, &shape, classes, &device), &[], &device))).collect();
        let pools = thread_pools(concurrency, &stage);
        Self {
            places: vec![place; k],
            samples,
            stage,
            models,
            needs: (0..k).map(|n| (n, NodeNeeds::default())).collect(),
            optimizers: (0..k).map(|n| (n, optim::build(&sgd))).collect(),
            lr: (0..k).map(|n| (n, 0.01)).collect(),
            fixed: HashMap::new(),
            pools,
            steps: 0,
        }
    }

    /// Waits for the device's queued work (a GPU computes asynchronously).
    pub fn sync(&self) {
        // a device that cannot sync has nothing queued that a timing could miss
        let _ = self.places[0].plain.sync();
    }

    /// Whether the peers step on parallel threads.
    pub fn parallel(&self) -> bool {
        self.pools.is_some()
    }

    /// One cohort step: every peer's forward, the exchange, every peer's loss, backward and
    /// optimiser step.
    pub fn step(&mut self) {
        let idx: Vec<usize> = (0..self.samples.len()).collect();
        let ctx = StepContext {
            stage: &self.stage,
            epoch: 0,
            step: self.steps,
            steps: usize::MAX,
            noise_seed: 1,
            places: &self.places,
            fixed: &self.fixed,
            needs: &self.needs,
            lr: &self.lr,
            pools: self.pools.as_deref(),
            switch: &HashMap::new(),
            split_labels: &self.samples.labels,
        };
        train_step(&ctx, gather(&self.samples, &idx, &[], None), &mut self.models, &mut self.optimizers).expect("finite loss");
        self.steps += 1;
    }
}

/// Measures a `k`-peer DML cohort of `spec` on `place`: after 3 warm-up steps, `repeat` windows
/// of `steps` steps each, each ended by waiting for the device; the fastest window counts (best
/// of R: interference only slows a window down).
pub fn measure(model: &BenchModel, k: usize, concurrency: Concurrency, steps: usize, repeat: usize, place: &Placement) -> Measurement {
    let mut cohort = BenchCohort::new(model, k, concurrency, place);
    for _ in 0..3 {
        cohort.step();
    }
    cohort.sync();
    let mut best = 0.0f64;
    for _ in 0..repeat.max(1) {
        let start = Instant::now();
        for _ in 0..steps {
            cohort.step();
        }
        cohort.sync();
        best = best.max(steps as f64 / start.elapsed().as_secs_f64());
    }
    Measurement { model: model.label.into(), peers: k, mode: if cohort.parallel() { "threads" } else { "serial" }, steps_per_s: best }
}

/// A steps/s figure to three significant digits (0.52, 7.41, 73.9): one decimal would print a
/// CIFAR network's 0.52 and 0.64 alike.
fn rate(x: f64) -> String {
    let decimals = if x >= 10.0 {
        1
    } else if x >= 1.0 {
        2
    } else {
        3
    };
    format!("{x:.decimals$}")
}

/// Runs the grid on `place` for the [`models`] whose label is in `only` (every model when
/// empty) and renders the Markdown report with the ratios.
pub fn report(peers: &[usize], steps: usize, repeat: usize, place: &Placement, only: &[String]) -> String {
    let mut out = format!(
        "cohort bench: K-peer DML step at batch 128 (forward, exchange, loss, backward, SGD step per peer); backend {}, {} threads on {}, best of {repeat} windows of {steps} steps\n\n",
        place.name,
        rayon::current_num_threads(),
        crate::results::manifest::cpu_description()
    );
    out.push_str("| model | K | serial steps/s | threads steps/s | threads / serial | overhead serial = t(K) / (K·t(1)) | overhead threads |\n|---|---|---|---|---|---|---|\n");
    for model in models().into_iter().filter(|m| only.is_empty() || only.iter().any(|o| o == m.label)) {
        let label = model.label;
        let single = measure(&model, 1, Concurrency::Serial, steps, repeat, place);
        for &k in peers.iter().filter(|&&k| k <= model.max_peers) {
            let serial = if k == 1 { single.clone() } else { measure(&model, k, Concurrency::Serial, steps, repeat, place) };
            let threads = if k == 1 { None } else { Some(measure(&model, k, Concurrency::Threads, steps, repeat, place)) };
            let overhead = |m: &Measurement| single.steps_per_s / (m.steps_per_s * k as f64);
            out.push_str(&format!(
                "| {label} | {k} | {} | {} | {} | {:.3} | {} |\n",
                rate(serial.steps_per_s),
                threads.as_ref().map_or("–".into(), |t| rate(t.steps_per_s)),
                threads.as_ref().map_or("–".into(), |t| format!("{:.2}×", t.steps_per_s / serial.steps_per_s)),
                overhead(&serial),
                threads.as_ref().map_or("–".into(), |t| format!("{:.3}", overhead(t))),
            ));
        }
    }
    out.push_str("\noverhead = cohort step time / (K × single-model step time); < 1 means the cohort is cheaper than K separate models\n");
    out
}
