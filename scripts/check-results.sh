#!/usr/bin/env bash
# Every table of results/ and every generated figure of README.md is what the committed raw runs
# give: runs each study script with --report-only (rebuilding its tables from
# results/.../runs/ without training) and fails if a committed Markdown file changed, if a run
# is incomplete, or if a run's manifest names a tree with uncommitted changes or a second commit;
# then retrains one run of each study at this commit (`cohort verify`) and fails unless its
# metrics.csv comes out bit for bit the same. Run by .ci/run.
#
#   scripts/check-results.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
studies=(scripts/examples.sh scripts/reproduce-dml.sh scripts/reproduce-takd.sh scripts/reproduce-lfme.sh scripts/reproduce-hinton-mnist.sh scripts/benchmark-online.sh scripts/benchmark-offline.sh scripts/check-backends.sh scripts/gpu-report.sh)
bin=target/release/cohort
source scripts/lib/compare.sh
fail=0
for s in "${studies[@]}"; do
    out=$(sed -n 's/^out=//p' "$s")
    facts=$(runs_json "$out/runs" 2> /dev/null || true)
    revs=$(python3 scripts/lib/compare.py revisions - <<< "$facts" 2> /dev/null || true)
    if [ -z "$revs" ]; then
        echo "FAILED $s: no committed runs under $out/runs"; fail=1; continue
    fi
    if [ "$(echo "$revs" | wc -l)" != 1 ] || [[ "$revs" == *-dirty ]] || [[ "$revs" == unknown ]]; then
        echo "FAILED $s: the runs under $out/runs name $(echo "$revs" | tr '\n' ' ')(expected one clean commit)"; fail=1
    fi
    missing=$(python3 scripts/lib/compare.py incomplete - <<< "$facts")
    if [ -n "$missing" ]; then
        echo "FAILED $s: runs without summary.json (incomplete): $missing"; fail=1
    fi
    if ! bash "$s" --report-only > /dev/null; then
        echo "note: $s reports a failed check (stated in its README as \"does not reproduce here\")"
    fi
done
# cohort vs its PyTorch twin, from the committed runs of both (standard-library Python)
if ! bash scripts/reference.sh --report-only > /dev/null; then
    echo "FAILED scripts/reference.sh --report-only"; fail=1
fi
# The committed figures are what this commit trains: one run of each study (a short one of its
# method, needing no other run's checkpoint; and the offline benchmark's CRD, whose memory bank
# and negatives are drawn in the run, and KDSVD, whose decomposition is cohort's own) retrained
# from its manifest must give the committed metrics.csv bit for bit. That holds on the kind of CPU that made the run (the manifest's `cpu:`;
# the matrix kernels round by instruction set), so runs of another kind are named and skipped.
spot=(
    results/examples/runs/quickstart/seed-0
    results/reproductions/dml/runs/dml-2/seed-0
    results/reproductions/takd/runs/takd/seed-4
    results/reproductions/lfme/runs/lfme-rotated-mnist/seed-3
    results/reproductions/hinton2015/runs/student-alone/seed-0
    results/benchmark-online/runs/one.lr-0.03/seed-2
    results/benchmark-offline/runs/offline-kd/seed-3
    results/benchmark-offline/runs/offline-crd/seed-3
    results/benchmark-offline/runs/offline-kdsvd/seed-3
    results/backends/runs/flex/quickstart/seed-2
)
verified=$(./target/release/cohort verify --same-cpu-only "${spot[@]}" | grep -v '^seed \|^\[' ) || {
    echo "FAILED: committed runs retrained at this commit differ (cohort verify):"; fail=1
}
echo "$verified"
# the README's "Performance" table from the committed results/bench/README.md
source scripts/lib/bench.sh
source scripts/lib/splice.sh
bench_readme results/bench/README.md | splice bench README.md
if ! git diff --quiet -- '*.md'; then
    echo "FAILED: tables regenerated from the committed runs differ from the committed ones:"
    git --no-pager diff --stat -- '*.md'
    git --no-pager diff -- '*.md' | head -60
    fail=1
fi
if [ $fail = 0 ]; then echo "check-results: every table regenerated from the committed runs matches (${studies[*]})"; fi
exit $fail
