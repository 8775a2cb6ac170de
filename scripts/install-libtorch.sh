#!/usr/bin/env bash
# Installs LibTorch 2.9.0 for the `tch` feature from PyPI alone (no PyTorch download site, no
# CUDA toolkit): the torch 2.9.0 wheel for Linux x86_64 carries LibTorch's libraries and headers.
#
#   scripts/install-libtorch.sh [DIR]          CPU only (default DIR /opt/libtorch-2.9.0-cpu):
#       libtorch_cpu + headers, plus the two small CUDA runtime libraries libtorch_cpu.so links
#       against (they load without a GPU). ~0.9 GB download, ~0.5 GB on disk, ~10 s.
#   scripts/install-libtorch.sh --cuda [DIR]   CUDA 12.8 (default DIR /opt/libtorch-2.9.0-cu128):
#       the wheel's CPU *and* CUDA libraries, plus every NVIDIA library the wheel's metadata pins
#       (nvidia-cublas-cu12, nvidia-cudnn-cu12, … — the same registry), all in DIR/lib, where the
#       libraries' own `$ORIGIN` run path finds them. ~3.6 GB download, ~6 GB on disk, ~2 minutes.
#       The NVIDIA driver (libcuda.so.1) is the machine's: without it, or without a GPU, the same
#       build runs on the CPU.
#
# Then: export LIBTORCH=DIR; cargo build --release --features tch   (the build puts DIR/lib on the
# binary's rpath: no LD_LIBRARY_PATH needed). docs/gpu.md has the whole GPU path.
# WHEELS=DIR keeps the downloaded wheels in DIR (pip reuses them on the next install).
set -euo pipefail
cuda=0
if [ "${1:-}" = "--cuda" ]; then
    cuda=1
    shift
fi
if [ $cuda = 1 ]; then LT=${1:-/opt/libtorch-2.9.0-cu128}; else LT=${1:-/opt/libtorch-2.9.0-cpu}; fi
if [ -f "$LT/build-version" ]; then
    echo "LibTorch already in $LT"
    exit 0
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
DL=${WHEELS:-$TMP/wheels}
mkdir -p "$DL"
# the manylinux x86_64 wheels for CPython 3.11, whatever the Python running pip
pip_download() {
    python3 -m pip download --no-cache-dir --no-deps -q --only-binary=:all: \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux2014_x86_64 \
        --platform manylinux2010_x86_64 --python-version 3.11 -d "$DL" "$@"
}
pip_download torch==2.9.0
wheel=$(ls "$DL"/torch-2.9.0-cp311-*.whl)
if [ $cuda = 1 ]; then
    # the NVIDIA wheels torch 2.9.0 pins, read from its metadata (e.g. nvidia-cublas-cu12==12.8.4.1)
    mapfile -t nvidia < <(unzip -p "$wheel" 'torch-2.9.0.dist-info/METADATA' | sed -n 's/^Requires-Dist: \(nvidia-[^ ;]*\).*/\1/p')
    [ ${#nvidia[@]} -gt 0 ] || { echo "no nvidia-* requirements in $wheel" >&2; exit 1; }
    pip_download "${nvidia[@]}"
    unzip -q "$wheel" 'torch/include/*' 'torch/lib/*.so*' -x torch/lib/libtorch_python.so -d "$TMP/x"
else
    pip_download nvidia-cuda-runtime-cu12==12.8.90 nvidia-cuda-cupti-cu12==12.8.90
    unzip -q "$wheel" 'torch/include/*' torch/lib/libtorch_cpu.so torch/lib/libc10.so torch/lib/libgomp.so.1 -d "$TMP/x"
fi
mkdir -p "$LT" && rm -rf "$LT/include" "$LT/lib"
mv "$TMP/x/torch/include" "$TMP/x/torch/lib" "$LT/"
if [ $cuda = 1 ]; then
    for spec in "${nvidia[@]}"; do
        name=${spec%%==*}
        # every shared library of the wheel (cudnn's engine libraries are loaded from beside libcudnn.so.9)
        unzip -q -o -j "$DL/${name//-/_}"-*.whl 'nvidia/*/lib/*.so*' -d "$LT/lib"
    done
    echo "cuda 12.8: ${nvidia[*]}" > "$LT/cuda-version"
else
    unzip -q -j "$DL"/nvidia_cuda_runtime_cu12-*.whl 'nvidia/cuda_runtime/lib/libcudart.so.12' -d "$LT/lib"
    unzip -q -j "$DL"/nvidia_cuda_cupti_cu12-*.whl 'nvidia/cuda_cupti/lib/libcupti.so.12' -d "$LT/lib"
    ln -s libtorch_cpu.so "$LT/lib/libtorch.so" # torch-sys always links -ltorch
fi
echo 2.9.0 > "$LT/build-version" # enables torch-sys's version check
if [ $cuda = 1 ]; then
    echo "LibTorch 2.9.0 (CUDA 12.8) in $LT ($(du -sh "$LT" | cut -f1)); export LIBTORCH=$LT"
else
    echo "LibTorch 2.9.0 (CPU) in $LT; export LIBTORCH=$LT"
fi
