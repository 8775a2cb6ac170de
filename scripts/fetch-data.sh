#!/usr/bin/env bash
# Fetch a data set for cohort (the only step that uses the network).
#   scripts/fetch-data.sh mnist        -> data/mnist/ (or $COHORT_DATA/mnist), SHA-256 verified
# Equivalent to `cargo run --release -- data fetch mnist`.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo run --release --quiet -- data fetch "${1:-mnist}"
