#!/usr/bin/env bash
# Compiles the optional backends and checks that `tch` (LibTorch CPU) trains like `flex`:
# `cargo check --features cuda` (no GPU or CUDA toolkit needed; DOCS_RS=1 keeps cubecl's
# tracel-llvm-bundler from downloading LLVM at build time, which a machine without internet
# cannot; a real cuda build needs that download, or a machine that has it), a LibTorch install
# (scripts/install-libtorch.sh), a `--features tch` build in target/tch, then the quick start on
# both backends for 3 seeds and `cohort compare`. ~15 minutes on 2 cores (two extra builds).
#   scripts/check-backends.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DOCS_RS=1 cargo check --release --features cuda --target-dir target/cuda
scripts/install-libtorch.sh
export LIBTORCH=/opt/libtorch-2.9.0-cpu
unset LIBTORCH_USE_PYTORCH
cargo build --release --quiet
cargo build --release --features tch --target-dir target/tch
out=results/backends
rm -rf "$out"
target/release/cohort run experiments/quickstart.ron --seeds 0,1,2 --no-progress --no-plot --output "$out/flex" > /dev/null
target/tch/release/cohort run experiments/quickstart.ron --backend tch --seeds 0,1,2 --no-progress --no-plot --output "$out/tch" > /dev/null
target/release/cohort compare "$out/flex/quickstart" "$out/tch/quickstart" --out "$out"
