# Shared by the study scripts (scripts/examples.sh, scripts/reproduce-*.sh). A study script sets
# `out` (its folder under results/) and sources this file with its arguments:
#
#   out=results/reproductions/dml; source scripts/lib/study.sh "$@"
#
# Its runs go to $out/runs/ (raw files committed: metrics.csv, summary.json, manifest.ron,
# log.txt; checkpoints, state and per-run charts stay local, see .gitignore). Every table the
# script writes is built from those files, so `SCRIPT --report-only` rebuilds them without
# training, and scripts/check-results.sh checks that the committed tables are what the
# committed runs give.
set -euo pipefail
cd "$(dirname "$0")/.."
report_only=0
if [ "${1:-}" = "--report-only" ]; then report_only=1; shift; fi
cargo build --release --quiet
bin=target/release/cohort
runs="$out/runs"
mkdir -p "$out"
source scripts/lib/compare.sh
source scripts/lib/splice.sh

# train FILE [cohort run args]: runs an experiment from scratch (nothing with --report-only). A
# run that diverges is a result, not a failure of the study: cohort exits 1 then, after every
# seed ran, and the run's summary.json records where the loss stopped being finite (the tables
# list such runs); any other failure stops the study.
train() {
    if [ $report_only = 0 ]; then "$bin" run "$@" --overwrite --no-progress --no-plot > /dev/null || diverged_ok $?; fi
}

# sweep FILE [cohort sweep args]: runs a sweep (nothing with --report-only), diverged runs as for
# `train`
sweep() {
    if [ $report_only = 0 ]; then "$bin" sweep "$@" --no-plot > /dev/null || diverged_ok $?; fi
}

# diverged_ok STATUS: returns for status 1 (some run diverged), exits the study otherwise
diverged_ok() {
    if [ "$1" != 1 ]; then exit "$1"; fi
}

# provenance: one line naming the commit(s) the runs under $runs were made at (their manifests)
provenance() {
    local revs
    revs=$(runs_json "$runs" | python3 "$compare_py" revisions - | tr '\n' ' ')
    echo "Runs made at commit ${revs% } (\`git_revision\` of every manifest under \`$runs\`); tables regenerated from them by \`$study_command --report-only\`."
}

# outcomes CHECKS: the lines of `check` (scripts/lib/compare.sh) as the README's list, a check
# that failed reported as "does not reproduce here"
outcomes() {
    echo "$1" | sed 's/^CHECK FAILED: /does not reproduce here: /; s/^check passed: /reproduces: /; s/^/- /'
}

# all_passed CHECKS: the script's exit status, 0 when no check failed
all_passed() {
    ! grep -q '^CHECK FAILED' <<< "$1"
}
