#!/usr/bin/env bash
# The test suite, group by group, each with its wall time: the library's and the binary's unit
# tests, every topic of the integration tests (tests/it/, one binary: burn is linked once), the
# benches' build, the doc tests, and training on burn's wgpu backend (`--features wgpu`,
# tests/wgpu.rs). The same tests as `cargo test --release` followed by
# `cargo test --release --features wgpu --test wgpu`, without the times.
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
# burn's wgpu backend against flex (tests/wgpu.rs): a second build of the library with the `wgpu`
# feature; on a machine without a GPU it runs on Mesa's software Vulkan (lavapipe), which .ci/run
# installs (mesa-vulkan-drivers, libvulkan1). XDG_RUNTIME_DIR: wgpu's Vulkan loader wants one.
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}
timed wgpu cargo test --release --locked --features wgpu --test wgpu
echo
echo "test groups, wall time:"
printf '  %s\n' "${times[@]}"
if [ ${#failed[@]} -gt 0 ]; then
    echo "FAILED: ${failed[*]}"
    exit 1
fi
