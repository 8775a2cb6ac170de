#!/usr/bin/env bash
# LFME (Chen et al., NeurIPS 2024) on Rotated MNIST (DomainBed protocol, held-out 75°):
# five domain experts + a target CNN trained together (CE + 1.0·MSE(target logits, own-domain
# expert's softmax)) vs the same CNN trained with CE only (ERM), 3 seeds, 3 epochs each
# (1095 steps of batch 128 — DomainBed trains 5000 steps of 5×64; shortened to fit ~20 minutes
# on 2 cores). Needs MNIST: target/release/cohort data fetch mnist
#
#   scripts/reproduce-lfme.sh
#
# Reference: DomainBed's ERM averages 98.0 % over the six held-out angles with its MNIST CNN and
# 5000 steps (docs/data.md); 75° is one of the two hardest angles. The LFME paper reports its
# gains on the larger DomainBed sets (PACS, VLCS, OfficeHome, TerraIncognita, DomainNet); we
# quote no LFME figure for Rotated MNIST.
# Expected here and CHECKED (exit 1 otherwise): the LFME target's mean test accuracy on the
# held-out 75° domain over the 3 seeds is not below ERM's by more than 0.5 points (LFME is a
# regulariser; the paper's gain is small), and every run completes.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=target/release/cohort
out=results/reproductions/lfme
for n in erm lfme; do
    "$bin" run "experiments/$n-rotated-mnist.ron" --overwrite --no-progress --no-plot > /dev/null
done
"$bin" compare "$out/erm-rotated-mnist" "$out/lfme-rotated-mnist" --out "$out" > /dev/null
source scripts/lib/compare.sh
{
    echo "# LFME on Rotated MNIST, held-out 75° (DomainBed protocol; CNN 16-32 + FC 64; 3 epochs = 1095 steps of batch 128; 3 seeds)"
    echo
    echo "| method | target net, test acc. on 75° (%, mean ± std) |"
    echo "|---|---|"
    echo "| ERM (CE on the 5 training domains) | $(acc erm-rotated-mnist target) |"
    echo "| LFME (CE + MSE to the own-domain expert's probabilities, λ = 1) | $(acc lfme-rotated-mnist target) |"
    echo
    echo "Full table (the experts trained on one domain each are evaluated on 75° too):"
    echo
    cat "$out/compare.md"
    echo
    echo "Reference: DomainBed's ERM averages 98.0 % over the six held-out angles (5000 steps, its MNIST CNN); no LFME figure for Rotated MNIST is quoted."
    echo
    echo "Produced by \`scripts/reproduce-lfme.sh\` at commit $(git rev-parse --short HEAD) on $(date -u +%Y-%m-%d)."
} > "$out/README.md"
cat "$out/README.md"
erm=$(mean erm-rotated-mnist target)
lfme=$(mean lfme-rotated-mnist target)
if awk -v a="$erm" -v b="$lfme" 'BEGIN { exit !(b >= a - 0.5) }'; then
    echo "check passed: LFME $lfme % vs ERM $erm % (tolerance 0.5 points)"
else
    echo "CHECK FAILED: LFME $lfme % is more than 0.5 points below ERM $erm %"
    exit 1
fi
