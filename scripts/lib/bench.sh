# Shared by scripts/bench.sh and scripts/gpu-check.sh: the PyTorch twin's Python and the table of
# cohort's steps/s beside PyTorch's, both measured in the same run.

# bench_python: prints a Python with torch 2.9.0 — $PYTHON if set, else .venv-bench/bin/python,
# which it installs on first use (~4 GB from PyPI, ~2 minutes)
bench_python() {
    if [ -n "${PYTHON:-}" ]; then echo "$PYTHON"; return; fi
    if [ ! -x .venv-bench/bin/python ] || ! .venv-bench/bin/python -c 'import torch' 2> /dev/null; then
        python3 -m venv .venv-bench >&2
        .venv-bench/bin/pip install -q --no-cache-dir torch==2.9.0 >&2
    fi
    echo .venv-bench/bin/python
}

# ratio_rows COHORT_MD TORCH_TXT MODE: one Markdown row per line of scripts/bench-pytorch.py's
# output (`model K steps/s`): | model | K | PyTorch | cohort | cohort / PyTorch |, cohort's figure
# read from `cohort bench`'s table (| model | K | serial | threads | …): MODE `serial`, or `auto`
# (threads where measured, as the engine's default runs K ≥ 2 peers)
ratio_rows() {
    awk -F'|' -v mode="$3" '
        NR == FNR { gsub(/ /, ""); if ($3 ~ /^[0-9]+$/) { c[$2 " " $3] = (mode == "serial" || $5 == "–" ? $4 : $5) } next }
        { split($0, t, " "); k = t[1] " " t[2]; printf "| %s | %s | %.1f | %.1f | %.2f× |\n", t[1], t[2], t[3], c[k], c[k] / t[3] }' "$1" "$2"
}

# bench_readme RESULTS_MD: the README's "Performance" table, from results/bench/README.md (both of
# its tables: cohort serial / parallel, and PyTorch with the ratio), with the command and commit
# that measured it. scripts/bench.sh splices it into README.md; scripts/check-results.sh
# regenerates it, so the README's figures are the committed measurement's.
bench_readme() {
    local made cpu
    made=$(sed -n 's/^Produced by `\(.*\)` at commit \([0-9a-f]*\) on .*/`\1` at commit \2/p' "$1")
    # the CPU `cohort bench` names in its header (absent from files measured before it did)
    cpu=$(sed -n 's/^cohort bench: .* threads on \(.*\), best of .*/\1/p' "$1" | head -1)
    echo "Measured here ($made${cpu:+, on $cpu}):"
    echo
    echo "| model | K | cohort serial | cohort parallel | parallel / serial | PyTorch | cohort / PyTorch |"
    echo "|---|---|---|---|---|---|---|"
    awk -F'|' '
        /serial steps\/s/ { t = 1; next }
        /PyTorch steps\/s/ { t = 2; next }
        /^\|/ { gsub(/ +\| +/, "|"); gsub(/^\| +| +\|$/, "|"); k = $2 "|" $3
                if ($3 !~ /^[0-9]+$/) next
                if (t == 1) { order[++n] = k; s[k] = $4; p[k] = $5; r[k] = $6 }
                if (t == 2) { pt[k] = $4; pr[k] = $6 } }
        END { name["mlp-1200"] = "MLP 784-1200-1200-10"; name["cnn-32-64"] = "CNN 32-64 (28×28)"; name["cnn1d-32"] = "1-D CNN 32-32-32 (MNIST-1D, 40)"
              name["resnet32"] = "ResNet-32 (32×32×3, 100 classes)"; name["wrn-16-2"] = "WRN-16-2 (32×32×3, 100 classes)"
              name["resnet8x4"] = "ResNet-8x4 (CIFAR-100)"; name["resnet32x4"] = "ResNet-32x4 (CIFAR-100)"; name["vgg8"] = "VGG-8 (CIFAR-100)"
              name["mobilenetv2"] = "MobileNetV2 ×0.5 (CIFAR-100)"; name["shufflenetv2"] = "ShuffleNetV2 (CIFAR-100)"
              for (i = 1; i <= n; i++) { k = order[i]; split(k, f, "|")
                  m = (f[1] in name) ? name[f[1]] : f[1]
                  printf "| %s | %s | %s | %s | %s | %s | %s |\n", m, f[2], s[k], p[k], r[k], (k in pt ? pt[k] : "–"), (k in pr ? pr[k] : "–") } }' "$1"
}
