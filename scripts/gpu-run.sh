#!/usr/bin/env bash
# The GPU run (docs/gpu.md, "A GPU machine without internet"): on a machine with a GPU and its
# driver, in the folder scripts/gpu-bundle.sh wrote — no install, no build, no network. Also runs
# from a checkout with a `--features wgpu` build (then COHORT=target/release/cohort is used), and
# on a machine without a GPU through Mesa's software Vulkan (lavapipe), slowly.
# Writes OUT (default gpu-results/ beside the bundle's binary):
#   devices.txt       `cohort devices` (the adapter used is wgpu's device WGPU_DEVICE, default 0),
#                     nvidia-smi's GPUs and driver where it exists, the Vulkan driver files used
#   runs/wgpu/quickstart/seed-{0,1,2}/
#                     the quick start (experiments/quickstart.ron, 20 epochs) on the adapter, from
#                     the initial weights of the committed CPU runs of the same seeds
#   bench.md          `cohort bench --backend wgpu`: every model of the CPU bench (K = 1, 2, 4, 8
#                     for the 28×28 models, 1-3 for the 1-D CNN, 1-2 for the CIFAR networks) and a
#                     ResNet-32 DML pair over one window of 200 steps
#   torch.txt         the same rows in PyTorch on the same GPU (scripts/bench-pytorch.py --device
#                     cuda:0), where python3 (or $PYTHON) imports a torch that sees CUDA (any
#                     version; torch-version.txt names it)
#   times.txt         each part's wall time
# Each part has a time limit (the whole under 8 minutes on a GPU); a part that fails or runs out of
# time is recorded in times.txt and the run goes on; each CIFAR network is a part of its own, so
# one that is slow costs only its own rows. For a run on lavapipe (~40× slower than a CPU backend)
# LIMIT_SCALE=K multiplies the limits, STEPS, CIFAR_STEPS, REPEAT and DML_STEPS (default 50, 20,
# 3, 200) shrink the bench's timing windows (its headers record them), and CIFAR="resnet32 …"
# names the CIFAR networks to measure (default all seven). Back on the build machine:
# `scripts/gpu-report.sh OUT` writes results/gpu/ from it.
#
#   bash gpu-run.sh [OUT]
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# the bundle keeps the repository's paths; from a checkout, this script sits in scripts/
if [ -f "$here/../Cargo.toml" ]; then root=$(cd "$here/.." && pwd); else root=$here; fi
cd "$root"
# the bundle's binary travels gzipped
if [ ! -x "$root/cohort" ] && [ -f "$root/cohort.gz" ]; then
    gzip -dc "$root/cohort.gz" > "$root/cohort.tmp" && chmod +x "$root/cohort.tmp" && mv "$root/cohort.tmp" "$root/cohort"
fi
bin=${COHORT:-$root/cohort}
[ -x "$bin" ] || bin=$root/target/release/cohort
out=${1:-$root/gpu-results}
device=${WGPU_DEVICE:-0}
mkdir -p "$out"
out=$(cd "$out" && pwd)
: > "$out/times.txt"
exec 3>&1 # the terminal, for the parts' progress while their output goes to files

# Vulkan: the machine's loader, else the bundle's (Debian's libvulkan1); NVIDIA's driver file,
# which containers often lack even where the driver's library is mounted
if ! ldconfig -p 2> /dev/null | grep -q 'libvulkan\.so\.1 ' && [ -f "$root/lib/libvulkan.so.1" ]; then
    export LD_LIBRARY_PATH="$root/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
icds=$(ls /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json 2> /dev/null || true)
if [ -z "${VK_ICD_FILENAMES:-}${VK_DRIVER_FILES:-}" ] && ! { [ -n "$icds" ] && grep -qs nvidia $icds; } && ldconfig -p 2> /dev/null | grep -q 'libGLX_nvidia\.so\.0'; then
    printf '{"file_format_version": "1.0.0", "ICD": {"library_path": "libGLX_nvidia.so.0", "api_version": "1.3"}}\n' > "$out/nvidia_icd.json"
    export VK_ICD_FILENAMES="$out/nvidia_icd.json" VK_DRIVER_FILES="$out/nvidia_icd.json"
fi
# wgpu warns without a private runtime folder
if [ -z "${XDG_RUNTIME_DIR:-}" ]; then
    XDG_RUNTIME_DIR=$(mktemp -d)
    export XDG_RUNTIME_DIR
fi

# part NAME LIMIT_S COMMAND…: runs a part under its time limit (its output goes where the caller
# sends it) and records its wall time in times.txt and on the terminal
part() {
    local name=$1 limit=$2 start=$SECONDS status=ok
    shift 2
    echo "gpu-run: $name …" >&3
    limit=$((limit * ${LIMIT_SCALE:-1}))
    timeout "$limit" "$@" || status="failed (exit $?; 124 = over its ${limit} s)"
    printf '%-12s %5d s  %s\n' "$name" $((SECONDS - start)) "$status" | tee -a "$out/times.txt" >&3
}

{
    echo "commit: $(cat "$root/COMMIT" 2> /dev/null || git -C "$root" rev-parse HEAD 2> /dev/null)"
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) threads"
    if command -v nvidia-smi > /dev/null; then
        echo "nvidia-smi: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tr '\n' ';')"
    fi
    echo "vulkan driver files: ${VK_ICD_FILENAMES:-${VK_DRIVER_FILES:-the loader defaults: $(echo $icds)}}"
    "$bin" devices
} > "$out/devices.txt" 2>&1
cat "$out/devices.txt"
grep -A100 '^wgpu:' "$out/devices.txt" | grep -q "device $device:" || {
    echo "gpu-run: wgpu has no device $device here (devices.txt); a Vulkan driver is needed: NVIDIA's driver ships one" >&2
    exit 1
}

rm -rf "$out/runs"
part quickstart 300 "$bin" run experiments/quickstart.ron --backend wgpu --device "$device" --seeds 0,1,2 \
    --output "$out/runs/wgpu" --no-progress --no-plot --no-tensorboard

steps=${STEPS:-50} cifar_steps=${CIFAR_STEPS:-20} repeat=${REPEAT:-3} dml_steps=${DML_STEPS:-200}
cifar=${CIFAR:-resnet32 wrn-16-2 resnet8x4 resnet32x4 vgg8 mobilenetv2 shufflenetv2}
wb=("$bin" bench --backend wgpu --device "$device")
part bench 150 "${wb[@]}" --models mlp-1200,cnn-32-64 --peers 1,2,4,8 --steps "$steps" --repeat "$repeat" > "$out/bench.md" 2>> "$out/bench.err"
echo >> "$out/bench.md"
part bench-1d 60 "${wb[@]}" --models cnn1d-32 --peers 1,2,3 --steps "$steps" --repeat "$repeat" >> "$out/bench.md" 2>> "$out/bench.err"
echo >> "$out/bench.md"
for m in $cifar; do
    part "$m" 40 "${wb[@]}" --models "$m" --peers 1,2 --steps "$cifar_steps" --repeat "$repeat" >> "$out/bench.md" 2>> "$out/bench.err"
    echo >> "$out/bench.md"
done
part dml-$dml_steps 120 "${wb[@]}" --models resnet32 --peers 2 --steps "$dml_steps" --repeat 1 >> "$out/bench.md" 2>> "$out/bench.err"

py=${PYTHON:-python3}
if $py -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2> /dev/null; then
    tp=("$py" -W ignore::UserWarning "$root/scripts/bench-pytorch.py" --device cuda:0)
    $py -c 'import torch; print(torch.__version__, "on", torch.cuda.get_device_name(0))' > "$out/torch-version.txt"
    : > "$out/torch.txt"
    part torch 150 "${tp[@]}" --models mlp-1200,cnn-32-64 --peers 1,2,4,8 --steps "$steps" --repeat "$repeat" >> "$out/torch.txt" 2>> "$out/torch.err"
    part torch-1d 60 "${tp[@]}" --models cnn1d-32 --peers 1,2,3 --steps "$steps" --repeat "$repeat" >> "$out/torch.txt" 2>> "$out/torch.err"
    for m in $cifar; do
        part "torch-$m" 30 "${tp[@]}" --models "$m" --peers 1,2 --steps "$cifar_steps" --repeat "$repeat" >> "$out/torch.txt" 2>> "$out/torch.err"
    done
else
    echo "no PyTorch that sees CUDA here ($py)" | tee "$out/torch.txt"
fi
echo "gpu-run: done, $SECONDS s; results in $out"
cat "$out/times.txt"
