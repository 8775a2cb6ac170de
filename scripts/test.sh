#!/usr/bin/env bash
# The test suite, group by group, each with its wall time: the library's and the binary's unit
# tests, every topic of the integration tests (tests/it/, one binary: burn is linked once), the
# benches' build and the doc tests. The same tests as `cargo test --release`, which runs them all
# without the times.
#
#   scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
times=()
failed=()
# timed NAME COMMAND…: runs the group, records its wall time, and goes on after a failure (the
# script's exit status says whether every group passed)
timed() {
    local name=$1 start=$SECONDS status=ok
    shift
    "$@" || { status=FAILED; failed+=("$name"); }
    times+=("$(printf '%-22s %5d s  %s' "$name" $((SECONDS - start)) "$status")")
}
timed build cargo test --release --locked --no-run
timed unit cargo test --release --locked --lib --bins
# the topics of tests/it/, as its test names' first segment (libtest filters by substring, so
# each topic's tests are named exactly)
names=$(cargo test --release --locked --test it -- --list 2> /dev/null | sed -n 's/: test$//p')
for topic in $(echo "$names" | cut -d: -f1 | sort -u); do
    # shellcheck disable=SC2046
    timed "it::$topic" cargo test --release --locked --test it -- --exact $(echo "$names" | grep "^$topic::")
done
timed benches cargo test --release --locked --benches --no-run
timed doc cargo test --release --locked --doc
echo
echo "test groups, wall time:"
printf '  %s\n' "${times[@]}"
if [ ${#failed[@]} -gt 0 ]; then
    echo "FAILED: ${failed[*]}"
    exit 1
fi
