#!/usr/bin/env bash
# The GPU check (docs/gpu.md): on a machine with an NVIDIA GPU and its driver, builds cohort
# against a CUDA LibTorch and measures what results/gpu/README.md reports:
#   1. accuracy: the quick start (3 seeds) on the CPU (flex) and on cuda:0 (tch); and, where
#      CIFAR-100 is in the data folder, a 2-peer ResNet-32 DML (2 seeds, 3 epochs on the first
#      10 000 training images) the same two ways. Check, fixed here before any run: every node's
#      mean final test accuracy on the GPU is within max(2 × the larger seed std, 1.0) points of
#      the CPU's (bit equality is not expected: the GPU rounds differently);
#   2. placement: a 3-peer DML with a peer on each of cuda:0 and cuda:1 where two GPUs exist
#      (one GPU: two peers on cuda:0 and one on the CPU, flex), against the same run all on the
#      CPU, same check as 1;
#   3. speed: `cohort bench --backend tch --device 0` next to scripts/bench-pytorch.py
#      --device cuda (torch 2.9.0, the same DML step) on the same GPU, in the same run.
# Writes results/gpu/README.md and its raw runs (results/gpu/runs/). Exit 1 if a check fails.
#   scripts/gpu-check.sh [--skip-build]
# Needs: the NVIDIA driver (nvidia-smi), PyPI reachable for the first install (or LIBTORCH set to
# an installed CUDA LibTorch and a Python with torch 2.9.0 as PYTHON), ~8 GB of disk.
set -euo pipefail
cd "$(dirname "$0")/.."
build=1
if [ "${1:-}" = "--skip-build" ]; then build=0; fi
command -v nvidia-smi > /dev/null || { echo "gpu-check: no nvidia-smi here: this script needs an NVIDIA GPU and its driver" >&2; exit 2; }
gpus=$(nvidia-smi -L | grep -c '^GPU ' || true)
[ "$gpus" -ge 1 ] || { echo "gpu-check: nvidia-smi lists no GPU" >&2; exit 2; }
export LIBTORCH=${LIBTORCH:-/opt/libtorch-2.9.0-cu128}
[ -f "$LIBTORCH/lib/libtorch_cuda.so" ] || scripts/install-libtorch.sh --cuda "$LIBTORCH"
unset LIBTORCH_USE_PYTORCH
if [ $build = 1 ]; then
    cargo build --release --quiet
    cargo build --release --quiet --features tch --target-dir target/tch-cuda
fi
cpu=target/release/cohort
gpu=target/tch-cuda/release/cohort
out=results/gpu
runs=$out/runs
rm -rf "$runs" && mkdir -p "$runs"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
run() { "$@" --no-progress --no-plot > /dev/null; }

# 1. accuracy, CPU vs GPU
run $cpu run experiments/quickstart.ron --seeds 0,1,2 --output "$runs/cpu"
run $gpu run experiments/quickstart.ron --backend tch --device 0 --seeds 0,1,2 --output "$runs/cuda0"
pairs=("quickstart")
data=${COHORT_DATA:-data}
if [ -f "$data/cifar100/train.bin" ]; then
    sed -e 's/name: "dml-resnet32x2"/name: "dml-resnet32x2-short"/' -e 's/epochs: 200/epochs: 3/' \
        -e 's/seeds: \[[^]]*\]/seeds: [0, 1]/' -e 's/source: Cifar100(/train_limit: 10000, source: Cifar100(/' \
        experiments/cifar100/dml-resnet32x2.ron > "$tmp/dml-resnet32x2-short.ron"
    run $cpu run "$tmp/dml-resnet32x2-short.ron" --output "$runs/cpu"
    run $gpu run "$tmp/dml-resnet32x2-short.ron" --backend tch --device 0 --output "$runs/cuda0"
    pairs+=("dml-resnet32x2-short")
else
    echo "gpu-check: no CIFAR-100 in $data/cifar100 (train.bin, test.bin): the ResNet-32 row is skipped (README, \"Data\")"
fi

# 2. placement: three DML peers, spread over the GPUs (and the CPU), against all on the CPU
if [ "$gpus" -ge 2 ]; then where=("backend: Tch, device: 0" "backend: Tch, device: 1" "backend: Tch, device: 0"); layout="peer1 on cuda:0, peer2 on cuda:1, peer3 on cuda:0"
else where=("backend: Tch, device: 0" "backend: Tch, device: 0" "backend: Flex"); layout="peer1 and peer2 on cuda:0, peer3 on the CPU (flex)"; fi
placed() {
    cat << EOF
Experiment(
    name: "placement",
    description: "3 DML peers (1-D CNN) on MNIST-1D: $layout",
    data: (source: Mnist1d()),
    nodes: [
        Node(id: "peer1", model: Cnn1d(channels: [32, 32, 32], kernel: 5)$1),
        Node(id: "peer2", model: Cnn1d(channels: [32, 32, 32], kernel: 5)$2),
        Node(id: "peer3", model: Cnn1d(channels: [32, 32, 32], kernel: 5)$3),
    ],
    edges: [
        Edge(to: "peer1", loss: CrossEntropy),
        Edge(to: "peer2", loss: CrossEntropy),
        Edge(to: "peer3", loss: CrossEntropy),
        Mutual(peers: ["peer1", "peer2", "peer3"], temperature: 1.0, weight: 1.0),
    ],
    training: (epochs: 10, batch_size: 100, optimizer: Adam(lr: 0.003), seeds: [0, 1, 2]),
)
EOF
}
placed "" "" "" > "$tmp/placement.ron"
run $cpu run "$tmp/placement.ron" --output "$runs/cpu"
placed ", ${where[0]}" ", ${where[1]}" ", ${where[2]}" > "$tmp/placement.ron"
run $gpu run "$tmp/placement.ron" --output "$runs/cuda0"
pairs+=("placement")

# the accuracy table and the checks
for e in "${pairs[@]}"; do
    $cpu compare "$runs/cpu/$e" "$runs/cuda0/$e" --out "$tmp/$e" > /dev/null
done
source scripts/lib/compare.sh
for e in "${pairs[@]}"; do check_close "$tmp/$e/compare.json" "cpu/$e" "cuda0/$e"; done > "$tmp/checks.txt"
grep -q '^CHECK FAILED' "$tmp/checks.txt" && fail=1
cat "$tmp/checks.txt"

# 3. speed on the GPU, cohort and PyTorch in the same run
steps=50 repeat=3
$gpu bench --backend tch --device 0 --peers 1,2,4,8 --steps $steps --repeat $repeat > "$tmp/cohort.md"
source scripts/lib/bench.sh
py=$(bench_python)
$py -W ignore::UserWarning scripts/bench-pytorch.py --device cuda:0 --steps $steps --repeat $repeat > "$tmp/torch.txt"

{
    echo "# cohort on the GPU: $(nvidia-smi --query-gpu=name --format=csv,noheader | head -1) ($gpus GPU(s)), LibTorch 2.9.0 CUDA 12.8"
    echo
    echo "Produced by \`scripts/gpu-check.sh\` at commit $(git rev-parse --short HEAD) on $(date -u +%Y-%m-%d); driver $(nvidia-smi --query-gpu=driver_version --format=csv,noheader | head -1)."
    echo "Raw runs in \`runs/\` (cpu = flex on the CPU, cuda0 = tch; every manifest records its backend)."
    echo
    echo "## Checks (fixed in the script before the run)"
    echo
    sed 's/^/- /' "$tmp/checks.txt"
    echo
    echo "## Accuracy, CPU vs GPU (same seeds; mean ± sample std)"
    for e in "${pairs[@]}"; do
        echo
        grep '^|' "$tmp/$e/compare.md"
    done
    echo
    grep -m1 '^mean' "$tmp/${pairs[0]}/compare.md"
    echo
    echo "Placement: $layout."
    echo
    echo "## Speed on the GPU"
    echo
    cat "$tmp/cohort.md"
    echo
    echo "PyTorch $($py -c 'import torch; print(torch.__version__)') on the same GPU, the same DML step (scripts/bench-pytorch.py --device cuda:0), best of $repeat windows of $steps steps:"
    echo
    echo "| model | K | PyTorch steps/s | cohort steps/s (serial) | cohort / PyTorch |"
    echo "|---|---|---|---|---|"
    ratio_rows "$tmp/cohort.md" "$tmp/torch.txt" serial
    echo
    echo "cohort reads every peer's loss back each step (to stop on NaN); the PyTorch twin does not."
} > "$out/README.md"
echo "wrote $out/README.md"
exit $fail
