#!/usr/bin/env bash
# The GPU bundle (docs/gpu.md, "A GPU machine without internet"): one folder, under 64 MiB, that a
# machine with a GPU and its driver runs as it is — no registry, no build, no install:
#   cohort.gz         this commit's binary with burn's wgpu backend (`--features wgpu`), stripped
#                     (82 MiB) and gzipped (21 MiB); gpu-run.sh unpacks it
#   gpu-run.sh        what to run there (scripts/gpu-run.sh)
#   experiments/quickstart.ron
#   results/backends/runs/flex/quickstart/seed-{0,1,2}/
#                     the committed CPU runs the GPU's are compared with (metrics, summaries,
#                     manifests, logs)
#   scripts/bench-pytorch.py, scripts/reference_models/
#                     the PyTorch twin of the bench, where the machine has PyTorch
#   lib/              Vulkan's loader (this machine's libvulkan.so.1), used only where the GPU
#                     machine lacks one
#   COMMIT            the commit it was built from
# The files keep their places in the repository, so gpu-run.sh runs from a checkout too.
# Then, on the GPU machine: `bash BUNDLE/gpu-run.sh` writes BUNDLE/gpu-results/; back here,
# `scripts/gpu-report.sh BUNDLE/gpu-results` turns it into results/gpu/.
#
#   scripts/gpu-bundle.sh [OUT]        (default target/gpu-bundle)
#
# Needs: libvulkan1 (Debian; `apt-get install libvulkan1`), for the loader it copies. The build
# compiles burn's wgpu backend (~10 min cold on 2 cores, once).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/gpu-bundle}
loader=$(ldconfig -p | awk '/libvulkan\.so\.1 .*x86-64/ {print $NF; exit}')
[ -n "$loader" ] || { echo "gpu-bundle: no libvulkan.so.1 here to carry along: apt-get install libvulkan1" >&2; exit 2; }
cargo build --release --locked --quiet --features wgpu
rm -rf "$out"
mkdir -p "$out/lib"
objcopy --strip-all target/release/cohort "$out/cohort"
gzip -9 "$out/cohort"
cp scripts/gpu-run.sh "$out/"
# committed files only, at their repository paths (the raw runs without their event files)
git ls-files -z -- experiments/quickstart.ron scripts/bench-pytorch.py scripts/reference_models \
    results/backends/runs/flex/quickstart/seed-{0,1,2} | grep -zv /tensorboard/ | xargs -0 cp --parents -t "$out"
cp -L "$loader" "$out/lib/libvulkan.so.1"
# the revision as a run's manifest names it (src/results/manifest.rs): `-dirty` for uncommitted
# changes outside results/ and Markdown
dirty=$(git status --porcelain --untracked-files=no -- ':(top)' ':(top,exclude)results' ':(top,exclude,glob)**/*.md')
echo "$(git rev-parse HEAD)${dirty:+-dirty}" > "$out/COMMIT"
size=$(du -sb "$out" | cut -f1)
echo "gpu-bundle: $out, $((size / 1024 / 1024)) MiB ($size bytes), of which the gzipped binary $(($(stat -c %s "$out/cohort.gz") / 1024 / 1024)) MiB"
[ "$size" -lt $((64 * 1024 * 1024)) ] || { echo "gpu-bundle: over 64 MiB" >&2; exit 1; }
