#!/usr/bin/env bash
# Deep Mutual Learning (Zhang et al. 2018) on MNIST-1D: independent vs DML for 2 and 4 peers,
# simultaneous vs sequential updates, and DML_e (mean of the other peers as the target), 5 seeds
# each, in the small-data regime (1000 training samples). ~17 minutes on 2 cores.
#
#   scripts/reproduce-dml.sh [--report-only]
#
# Writes results/reproductions/dml/ (runs/, compare.md, README.md) and the DML table of the
# top-level README. The protocol and the checks below are fixed before the runs; the script
# exits 1 when a check fails, and the README then says "does not reproduce here".
out=results/reproductions/dml
study_command=scripts/reproduce-dml.sh
source scripts/lib/study.sh "$@"
for f in experiments/reproductions/dml/*.ron; do train "$f"; done
names=(independent-2 dml-2 dml-2-sequential independent-4 dml-4 dml-e-4)
dirs=()
for n in "${names[@]}"; do dirs+=("$runs/$n"); done
"$bin" compare "${dirs[@]}" --out "$out" > /dev/null
"$bin" plot "$runs/dml-2" > /dev/null
cp "$runs/dml-2/charts/seeds.png" "$out/dml-2-seeds.png"
# mean over the peers (not the ensemble) of the final test accuracy, from compare.json
peer_mean() { python3 "$compare_py" peer-mean "$out/compare.json" "$1" peer; }
fail=0
checks=$(
    check "$(peer_mean dml-2) > $(peer_mean independent-2)" "2 peers: DML $(peer_mean dml-2) % above independent $(peer_mean independent-2) %"
    check "$(peer_mean dml-4) > $(peer_mean independent-4)" "4 peers: DML $(peer_mean dml-4) % above independent $(peer_mean independent-4) %"
)
table=$(
    echo "| cohort | mean peer test acc. (%), 5 seeds | paper (CIFAR-100, ResNet-32) |"
    echo "|---|---|---|"
    echo "| 2 peers, independent | $(peer_mean independent-2) | 68.99 |"
    echo "| 2 peers, DML (simultaneous) | $(peer_mean dml-2) | 71.19 / 70.75 |"
    echo "| 2 peers, DML (sequential, the paper's algorithm) | $(peer_mean dml-2-sequential) | — |"
    echo "| 4 peers, independent | $(peer_mean independent-4) | — |"
    echo "| 4 peers, DML | $(peer_mean dml-4) | grows with cohort size |"
    echo "| 4 peers, DML_e (mean of the others as target) | $(peer_mean dml-e-4) | worse than DML |"
)
{
    echo "# Deep Mutual Learning on MNIST-1D"
    echo
    echo "## Protocol (fixed before the runs)"
    echo
    echo "MNIST-1D (4000 training sequences), a validation hold-out of 10 % (400, seeded), then the first"
    echo "1000 of the remaining training samples (the small-data regime, where peers overfit); the 1000"
    echo "test samples. Peers: 1-D CNN 32-32-32 (kernel 5). Adam lr 0.002, batch 50, 60 epochs, 5 seeds"
    echo "(0–4). Cohorts: 2 and 4 independent peers (CE only), DML with 2 peers (simultaneous and"
    echo "sequential updates) and 4 peers (CE + KL to each other peer, T = 1), and DML_e with 4 peers"
    echo "(CE + KL to the mean of the other peers' probabilities). Experiment files:"
    echo "\`experiments/reproductions/dml/\`. The reported figure is the final-epoch test accuracy; the"
    echo "test accuracy at the best-validation epoch is in the full table."
    echo
    echo "## Checks (fixed before the runs)"
    echo
    echo "1. With 2 peers, the mean peer test accuracy of DML is above that of independent training."
    echo "2. With 4 peers, likewise."
    echo
    echo "Reported, not checked: the sequential order, DML_e vs DML, 4 vs 2 peers."
    echo
    echo "## Results"
    echo
    echo "$table"
    echo
    outcomes "$checks"
    echo
    echo "Full table (final, validation-selected and best test accuracy per node; 5 seeds):"
    echo
    cat "$out/compare.md"
    echo
    provenance
} > "$out/README.md"
echo "$table" | splice dml README.md
cat "$out/README.md"
echo "$checks"
all_passed "$checks"
