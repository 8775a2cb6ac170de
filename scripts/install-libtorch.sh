#!/usr/bin/env bash
# Installs a CPU-only LibTorch 2.9.0 for the `tch` feature without the PyTorch download site
# (unreachable here): the PyPI torch 2.9.0 wheel is unpacked down to libtorch_cpu + headers,
# plus the two small CUDA runtime libraries libtorch_cpu.so links against (they load without a
# GPU). ~0.9 GB download, ~0.5 GB on disk, ~10 s. See README, "Backends".
#   scripts/install-libtorch.sh [DIR]      (default /opt/libtorch-2.9.0-cpu)
# Then: export LIBTORCH=DIR; cargo build --release --features tch
set -euo pipefail
LT=${1:-/opt/libtorch-2.9.0-cpu}
if [ -f "$LT/build-version" ]; then
    echo "LibTorch already in $LT"
    exit 0
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
python3 -m pip download --no-cache-dir --no-deps -q -d "$TMP" \
    torch==2.9.0 nvidia-cuda-runtime-cu12==12.8.90 nvidia-cuda-cupti-cu12==12.8.90
unzip -q "$TMP"/torch-2.9.0-*.whl 'torch/include/*' torch/lib/libtorch_cpu.so torch/lib/libc10.so torch/lib/libgomp.so.1 -d "$TMP/x"
mkdir -p "$LT" && rm -rf "$LT/include" "$LT/lib"
mv "$TMP/x/torch/include" "$TMP/x/torch/lib" "$LT/"
unzip -q -j "$TMP"/nvidia_cuda_runtime_cu12-*.whl 'nvidia/cuda_runtime/lib/libcudart.so.12' -d "$LT/lib"
unzip -q -j "$TMP"/nvidia_cuda_cupti_cu12-*.whl 'nvidia/cuda_cupti/lib/libcupti.so.12' -d "$LT/lib"
ln -s libtorch_cpu.so "$LT/lib/libtorch.so"   # torch-sys always links -ltorch
echo 2.9.0 > "$LT/build-version"              # enables torch-sys's version check
echo "LibTorch 2.9.0 (CPU) in $LT; export LIBTORCH=$LT"
