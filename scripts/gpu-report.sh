#!/usr/bin/env bash
# results/gpu/wgpu/: the GPU run of a bundle (scripts/gpu-bundle.sh, then gpu-run.sh on the
# machine with the GPU — or here, on Mesa's software Vulkan) turned into a report beside its raw
# files: the quick start on the wgpu adapter against the committed CPU runs of the same seeds, and
# `cohort bench --backend wgpu` beside PyTorch on the same GPU where the machine had it.
#
#   scripts/gpu-report.sh RUN_DIR          take RUN_DIR (gpu-run.sh's output folder) in, then report
#   scripts/gpu-report.sh --report-only    rebuild README.md from the committed files
#
# The check, fixed before any run (the one scripts/check-backends.sh applies to tch): for each
# node, the mean final test accuracy of the quick start's seeds 0-2 on wgpu is within max(2 × the
# larger seed std, 1.0) points of the committed flex runs of the same seeds
# (results/backends/runs/flex). Both start from the same initial weights (a run on wgpu draws
# them on flex) and see the same batches; they differ by the adapter's rounding, which training
# amplifies.
out=results/gpu/wgpu
study_command=scripts/gpu-report.sh
source scripts/lib/study.sh "$@"
if [ $report_only = 0 ]; then
    src=${1:?usage: scripts/gpu-report.sh RUN_DIR (the folder scripts/gpu-run.sh wrote) | --report-only}
    [ -f "$src/devices.txt" ] && [ -d "$src/runs/wgpu/quickstart" ] || { echo "gpu-report: $src is not a folder gpu-run.sh wrote" >&2; exit 2; }
    rm -rf "$out"
    mkdir -p "$runs"
    for f in devices.txt bench.md torch.txt torch-version.txt times.txt; do
        if [ -f "$src/$f" ]; then cp "$src/$f" "$out/"; fi
    done
    cp -r "$src/runs/wgpu" "$runs/"
fi
# the CPU runs of seeds 0-2 at a fixed path (compare.json records it, so a rerun writes the same file)
tmp=target/tmp/gpu-report
rm -rf "$tmp"
mkdir -p "$tmp/cpu/quickstart"
cp -r results/backends/runs/flex/quickstart/seed-{0,1,2} "$tmp/cpu/quickstart/"
"$bin" compare "$tmp/cpu/quickstart" "$runs/wgpu/quickstart" --out "$out" > /dev/null
checks=$(check_close "$out/compare.json" cpu/quickstart wgpu/quickstart)
adapter=$(python3 "$compare_py" backend "$out/compare.json" wgpu/quickstart)
speed() { python3 "$compare_py" median-steps "$out/compare.json" "$1/quickstart"; }
{
    echo "# cohort through burn's wgpu backend: $adapter"
    echo
    echo "Made by \`scripts/gpu-run.sh\` from the bundle of \`scripts/gpu-bundle.sh\`, reported by \`$study_command\`."
    echo "The machine, as the run recorded it (\`devices.txt\`):"
    echo
    sed -n 's/^\(date\|cpu\|nvidia-smi\|vulkan driver files\): /- \1: /p' "$out/devices.txt"
    echo
    echo "## The quick start on wgpu against the CPU"
    echo
    echo "Protocol: \`experiments/quickstart.ron\` (2 DML peers on MNIST-1D, Adam, 20 epochs), seeds 0-2, on wgpu's"
    echo "device 0, from the initial weights and batches of the committed flex runs of the same seeds"
    echo "(cpu = \`results/backends/runs/flex\`). Check, fixed before the run: for each node, the mean final"
    echo "test accuracy on wgpu is within max(2 × the larger seed std, 1.0) points of the CPU's."
    echo
    outcomes "$checks"
    echo
    cat "$out/compare.md"
    echo
    echo "Training speed, median steps/s over all epochs of all seeds (each run's \`summary.json\`): cpu"
    echo "$(speed cpu) (on the machine that made those runs), wgpu $(speed wgpu)."
    echo
    echo "## Speed: \`cohort bench --backend wgpu\`"
    echo
    cat "$out/bench.md"
    if [ -s "$out/torch-version.txt" ]; then
        echo
        echo "PyTorch $(cat "$out/torch-version.txt") on the same GPU, the same DML step (\`scripts/bench-pytorch.py --device cuda:0\`), measured in the same run:"
        echo
        echo "| model | K | PyTorch steps/s | cohort steps/s (serial) | cohort / PyTorch | PyTorch peak RSS (MiB) | cohort peak RSS (MiB) |"
        echo "|---|---|---|---|---|---|---|"
        source scripts/lib/bench.sh
        ratio_rows "$out/bench.md" "$out/torch.txt" serial
    else
        echo
        echo "No PyTorch twin: $(head -1 "$out/torch.txt")."
    fi
    echo
    echo "Wall time of each part of \`gpu-run.sh\` (\`times.txt\`):"
    echo
    echo '```'
    cat "$out/times.txt"
    echo '```'
    echo
    provenance
} > "$out/README.md"
cat "$out/README.md"
all_passed "$checks"
