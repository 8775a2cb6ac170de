#!/usr/bin/env bash
# Produces results/backends/: the quick start trained on flex (cohort's default CPU backend) and on
# tch (LibTorch 2.9.0 on the CPU), 5 seeds each, compared with `cohort compare`, and the training
# speed each run logged. Before that, checks that the optional backends compile:
# `DOCS_RS=1 cargo check --features cuda` (no GPU or CUDA toolkit needed; DOCS_RS=1 keeps cubecl's
# tracel-llvm-bundler from downloading LLVM at build time — docs/gpu.md) and a `--features tch`
# build against the LibTorch in $LIBTORCH (default /opt/libtorch-2.9.0-cpu, installed by
# scripts/install-libtorch.sh when missing; a CUDA LibTorch from `install-libtorch.sh --cuda` on a
# machine without a GPU runs on the CPU the same way). ~20 minutes on 2 cores (two extra builds).
#
#   scripts/check-backends.sh [--report-only]
#   LIBTORCH=/opt/libtorch-2.9.0-cu128 TCH_TARGET=target/tch-cuda scripts/check-backends.sh
#
# The check, fixed before the runs: for each node, the mean final test accuracy on tch is within
# max(2 × the larger seed std, 1.0) points of flex's. Runs are not identical across backends: each
# draws the initial weights from its own generator (seeded alike) and rounds differently.
out=results/backends
study_command=scripts/check-backends.sh
source scripts/lib/study.sh "$@"
tch_target=${TCH_TARGET:-target/tch}
if [ $report_only = 0 ]; then
    DOCS_RS=1 cargo check --release --quiet --features cuda --target-dir target/cuda
    export LIBTORCH=${LIBTORCH:-/opt/libtorch-2.9.0-cpu}
    [ -f "$LIBTORCH/build-version" ] || scripts/install-libtorch.sh "$LIBTORCH"
    unset LIBTORCH_USE_PYTORCH
    cargo build --release --quiet --features tch --target-dir "$tch_target"
    rm -rf "$runs"
fi
train experiments/quickstart.ron --seeds 0,1,2,3,4 --output "$runs/flex"
bin=$tch_target/release/cohort train experiments/quickstart.ron --backend tch --seeds 0,1,2,3,4 --output "$runs/tch"
bin=target/release/cohort
"$bin" compare "$runs/flex/quickstart" "$runs/tch/quickstart" --out "$out" > /dev/null
checks=$(check_close "$out/compare.json" flex/quickstart tch/quickstart)
backend() { python3 "$compare_py" backend "$out/compare.json" "$1/quickstart"; }
# steps/s: the median over every epoch of every seed (each run's summary.json, or its log.txt
# for runs older than that field)
speed() { python3 "$compare_py" median-steps "$out/compare.json" "$1/quickstart"; }
{
    echo "# The quick start on flex and on tch (LibTorch 2.9.0 on the CPU), 5 seeds each"
    echo
    echo "Protocol: \`experiments/quickstart.ron\` (2 DML peers on MNIST-1D, Adam, 20 epochs), seeds 0–4,"
    echo "once with the default backend and once with \`--backend tch\`. Check, fixed before the runs: for"
    echo "each node the mean final test accuracy on tch is within max(2 × the larger seed std, 1.0)"
    echo "points of flex's (runs differ: each backend draws initial weights from its own generator)."
    echo
    echo "## Checks"
    echo
    outcomes "$checks"
    echo
    echo "## Results"
    echo
    cat "$out/compare.md"
    echo
    echo "Backends as the manifests record them: flex = \`$(backend flex)\`, tch = \`$(backend tch)\`."
    echo "Training speed on this run's machine, median steps/s over all epochs of all seeds (from the runs'"
    echo "\`summary.json\`, or \`log.txt\` before that field; timings depend on the machine and its load and are not reproducible figures): flex"
    echo "$(speed flex), tch $(speed tch). \`cohort bench --backend tch\` measures the step alone."
    echo
    provenance
} > "$out/README.md"
cat "$out/README.md"
all_passed "$checks"
