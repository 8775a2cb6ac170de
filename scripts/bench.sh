#!/usr/bin/env bash
# Cohort step throughput: K-peer DML steps/s (MLP 784-1200-1200-10 and a small CNN on 28×28, K =
# 1, 2, 4, 8; the quick start's 1-D CNN on MNIST-1D's 40-long sequences, K = 1, 2, 3; the CIFAR-100
# ResNet-32 and WRN-16-2 on 32×32×3, K = 1, 2; batch 128), serial vs
# parallel peers, with the overhead ratios; with --pytorch also the same DML step in PyTorch
# (scripts/bench-pytorch.py, same thread count, same run) and the ratio cohort/PyTorch.
# Writes results/bench/README.md.
#   scripts/bench.sh [--pytorch] [STEPS [CIFAR_STEPS]]
# STEPS (default 20) per timing window for the 28×28 models, CIFAR_STEPS (default 5) for the
# CIFAR networks, whose steps take about a second here.
# --pytorch installs torch 2.9.0 into .venv-bench/ on first use (~4 GB from PyPI, ~2 minutes).
# Timings are noisy on a shared 2-core machine: each figure is the best of 3 timing windows, and
# ratios compare figures measured in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
pytorch=0
if [ "${1:-}" = "--pytorch" ]; then pytorch=1; shift; fi
steps=${1:-20}
cifar_steps=${2:-5}
small=mlp-1200,cnn-32-64
seq=cnn1d-32
cifar=resnet32,wrn-16-2,resnet8x4,resnet32x4,vgg8,mobilenetv2,shufflenetv2
cargo build --release --quiet
mkdir -p results/bench
threads=$(nproc)
tmp=$(mktemp -d)
./target/release/cohort bench --models $small --steps "$steps" --repeat 3 > "$tmp/cohort.md"
echo >> "$tmp/cohort.md"
./target/release/cohort bench --models $seq --peers 1,2,3 --steps "$steps" --repeat 3 >> "$tmp/cohort.md"
echo >> "$tmp/cohort.md"
./target/release/cohort bench --models $cifar --steps "$cifar_steps" --repeat 3 >> "$tmp/cohort.md"
if [ $pytorch = 1 ]; then
    source scripts/lib/bench.sh
    py=$(bench_python)
    $py -W ignore::UserWarning scripts/bench-pytorch.py --threads "$threads" --models $small --steps "$steps" --repeat 3 > "$tmp/torch.txt"
    $py -W ignore::UserWarning scripts/bench-pytorch.py --threads "$threads" --models $seq --peers 1,2,3 --steps "$steps" --repeat 3 >> "$tmp/torch.txt"
    $py -W ignore::UserWarning scripts/bench-pytorch.py --threads "$threads" --models $cifar --steps "$cifar_steps" --repeat 3 >> "$tmp/torch.txt"
fi
{
    cat "$tmp/cohort.md"
    if [ $pytorch = 1 ]; then
        echo
        echo "PyTorch $($py -c 'import torch; print(torch.__version__)') on CPU, $threads threads, the same DML step (peers one after another; scripts/bench-pytorch.py), best of 3 windows of $steps steps ($cifar_steps for the CIFAR networks), measured in the same run:"
        echo
        echo "| model | K | PyTorch steps/s | cohort steps/s (threads for K ≥ 2) | cohort / PyTorch |"
        echo "|---|---|---|---|---|"
        ratio_rows "$tmp/cohort.md" "$tmp/torch.txt" auto
    fi
    echo
    echo "Produced by \`scripts/bench.sh$([ $pytorch = 1 ] && echo ' --pytorch') $steps $cifar_steps\` at commit $(git rev-parse --short HEAD) on $(date -u +%Y-%m-%d), load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)."
} | tee results/bench/README.md.tmp
mv results/bench/README.md.tmp results/bench/README.md
# the README's "Performance" table, generated from the file just written
source scripts/lib/bench.sh
source scripts/lib/splice.sh
bench_readme results/bench/README.md | splice bench README.md
rm -rf "$tmp"
