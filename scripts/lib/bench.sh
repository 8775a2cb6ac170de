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
