//! `cargo bench`: one K-peer DML cohort step (every peer's forward, the exchange, every peer's
//! loss, backward and SGD step) at batch 128, for the MLP 784-1200-1200-10 and the small CNN,
//! K = 1, 2, 4, 8, peers one after another (`serial`) or each on its own thread (`threads`).
//! Ratios (threads/serial, cohort overhead) are printed by `cohort bench` / scripts/bench.sh.

use cohort::config::Concurrency;
use cohort::engine::bench::{BenchCohort, BenchModel, models};
use divan::Bencher;

/// The allocator of the `cohort` binary (src/main.rs), so that the figures agree.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    divan::main();
}

fn model(label: &str) -> BenchModel {
    models().into_iter().find(|m| m.label == label).expect("benchmark model")
}

fn bench(bencher: Bencher, label: &str, k: usize, concurrency: Concurrency) {
    let (device, name) = cohort::engine::backend_device();
    let mut cohort = BenchCohort::new(&model(label), k, concurrency, &cohort::engine::Placement::of(device, name));
    for _ in 0..3 {
        cohort.step(); // warm-up
    }
    bencher.bench_local(|| cohort.step());
}

#[divan::bench(args = [1, 2, 4, 8], sample_count = 10, sample_size = 2)]
fn mlp_serial(bencher: Bencher, k: usize) {
    bench(bencher, "mlp-1200", k, Concurrency::Serial);
}

#[divan::bench(args = [2, 4, 8], sample_count = 10, sample_size = 2)]
fn mlp_threads(bencher: Bencher, k: usize) {
    bench(bencher, "mlp-1200", k, Concurrency::Threads);
}

#[divan::bench(args = [1, 2, 4, 8], sample_count = 5, sample_size = 1)]
fn cnn_serial(bencher: Bencher, k: usize) {
    bench(bencher, "cnn-32-64", k, Concurrency::Serial);
}

#[divan::bench(args = [2, 4, 8], sample_count = 5, sample_size = 1)]
fn cnn_threads(bencher: Bencher, k: usize) {
    bench(bencher, "cnn-32-64", k, Concurrency::Threads);
}
