#!/usr/bin/env bash
# cohort vs PyTorch on the same recipe: trains the quick start and the DML study's cohorts in
# PyTorch (scripts/reference-pytorch.py, 5 seeds each) and writes results/reference/README.md
# beside cohort's committed runs of the same experiments. Installs torch 2.9.0 into
# .venv-bench/ on first use (~4 GB from PyPI). ~10 minutes on 2 cores.
#
#   scripts/reference.sh [--report-only]
#
# --report-only rebuilds the table from the committed runs (no torch needed).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" != "--report-only" ]; then
    if [ ! -x .venv-bench/bin/python ] || ! .venv-bench/bin/python -c 'import torch' 2> /dev/null; then
        python3 -m venv .venv-bench
        .venv-bench/bin/pip install -q --no-cache-dir torch==2.9.0
    fi
    cargo build --release --quiet
    data=$(mktemp -d)
    ./target/release/cohort data export mnist1d --out "$data" > /dev/null
    rm -rf results/reference/runs/pytorch
    .venv-bench/bin/python scripts/reference-pytorch.py --data "$data" --out results/reference/runs/pytorch --threads "$(nproc)"
fi
python3 scripts/reference-report.py > /dev/null
source scripts/lib/splice.sh
sed -n '/^| experiment/,/^$/p' results/reference/README.md | sed '$d' | splice reference README.md
cat results/reference/README.md
