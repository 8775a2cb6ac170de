#!/usr/bin/env bash
# Produces results/examples/: the quick start (2 DML peers) against the same peers trained
# independently, 3 seeds each, with charts and the comparison table. ~3 minutes on 2 cores.
#   scripts/examples.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=target/release/cohort
for exp in quickstart quickstart-independent; do
    "$bin" run "experiments/$exp.ron" --seeds 0,1,2 --overwrite --no-progress --no-plot
done
"$bin" plot results/quickstart results/quickstart-independent > /dev/null
out=results/examples
mkdir -p "$out"
"$bin" compare results/quickstart-independent results/quickstart --out "$out"
cp results/quickstart/seed-0/charts/curves.png "$out/quickstart-curves.png"
cp results/quickstart/seed-0/charts/cohort.png "$out/quickstart-cohort.png"
cp results/quickstart/seed-0/charts/topology.png "$out/quickstart-topology.png"
cp results/quickstart/charts/seeds.png "$out/quickstart-seeds.png"
cp results/quickstart-independent/charts/seeds.png "$out/quickstart-independent-seeds.png"
{
    echo "Produced by \`scripts/examples.sh\` at commit $(git rev-parse --short HEAD) on $(date -u +%Y-%m-%d)"
    echo "($(nproc) cores, backend flex)."
} > "$out/PROVENANCE.md"
echo "wrote $out"
