#!/usr/bin/env bash
# Cohort step throughput: K-peer DML steps/s (MLP 784-1200-1200-10 and a small CNN, batch 128),
# serial vs parallel peers, with the overhead ratios. Writes results/bench/README.md.
#   scripts/bench.sh [STEPS]
# Timings are noisy on a shared 2-core machine: compare ratios measured in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
mkdir -p results/bench
{
    ./target/release/cohort bench --steps "${1:-20}"
    echo
    echo "Produced by \`scripts/bench.sh\` at commit $(git rev-parse --short HEAD) on $(date -u +%Y-%m-%d), load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)."
} | tee results/bench/README.md.tmp
mv results/bench/README.md.tmp results/bench/README.md
