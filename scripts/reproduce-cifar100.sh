#!/usr/bin/env bash
# The CIFAR-100 benchmark (experiments/cifar100/): DML with ResNet-32 x 2 and with WRN-28-10 +
# ResNet-32, KDCL with ResNet-32 x 2, a ResNet-32 alone, and offline KD with the CRD/DKD recipe
# for ResNet-32x4 -> ResNet-8x4 and WRN-40-2 -> WRN-16-2 (KD, and AT, SP, CC, VID, RKD, PKT and NST
# from the KD runs' teachers, RepDistiller's recipe), PCL, OKDDip, SwitOKD, ONE and CL-ILR
# on ResNet-32 with branches — ONE, OKDDip and SwitOKD with their authors' recipes and again
# under the DML recipe (`*-dml-recipe.ron`); then the paper-vs-ours table
# (results/cifar100/README.md). For users with the data (CIFAR-100 binary version in
# <data dir>/cifar100) and a GPU: days of CPU time otherwise. Extra arguments go to every
# `cohort run` (e.g. `--backend tch --device 0`, `--seeds 0,1,2`).
#
#   scripts/reproduce-cifar100.sh [COHORT RUN ARGS...]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=target/release/cohort
out=results/cifar100
# the recipes that train their own teacher first, then those distilling from one of them (frozen
# from its checkpoint: RepDistiller's feature and relational methods)
for f in $(grep -L 'checkpoint:' experiments/cifar100/*.ron) $(grep -l 'checkpoint:' experiments/cifar100/*.ron); do
    "$bin" run "$f" --resume --no-progress --no-plot "$@"
done
methods=(fitnets at sp cc vid rkd pkt nst fsp ab ft crd)
offline=()
for m in "${methods[@]}"; do offline+=("$out/$m-resnet32x4-resnet8x4" "$out/$m-wrn40-2-wrn16-2"); done
# mdistiller's: OFD on both pairs, ReviewKD and KDSVD with a recipe for the ResNet pair only
offline+=("$out/ofd-resnet32x4-resnet8x4" "$out/ofd-wrn40-2-wrn16-2" "$out/reviewkd-resnet32x4-resnet8x4" "$out/kdsvd-resnet32x4-resnet8x4")
"$bin" compare "$out"/independent-resnet32 "$out"/dml-resnet32x2 "$out"/kdcl-resnet32x2 "$out"/dml-wrn28-10-resnet32 \
    "$out"/kd-resnet32x4-resnet8x4 "$out"/kd-wrn40-2-wrn16-2 "$out"/pcl-resnet32x3 "$out"/okddip-resnet32x3 \
    "$out"/switokd-wrn16-2-mobilenetv2 "$out"/one-resnet32 "$out"/cl-ilr-resnet32 "$out"/cl-ilr-resnet32-dml-recipe "$out"/okddip-resnet32x3-dml-recipe \
    "$out"/one-resnet32-dml-recipe "$out"/switokd-wrn16-2-mobilenetv2-dml-recipe "${offline[@]}" --out "$out" > /dev/null
source scripts/lib/compare.sh
{
    echo "# CIFAR-100: the published recipes, paper vs ours (final test top-1 %)"
    echo
    echo "| experiment | network | paper | ours |"
    echo "|---|---|---|---|"
    echo "| ResNet-32 alone (DML recipe) | net | 68.99 (DML paper, Table 1) | $(acc independent-resnet32 net) |"
    echo "| DML, ResNet-32 x 2 | peer1 / peer2 | 71.19 / 70.75 (DML paper, Table 1) | $(acc dml-resnet32x2 peer1) / $(acc dml-resnet32x2 peer2) |"
    echo "| KDCL-MinLogit, ResNet-32 x 2 | peer1 / peer2 | — (KDCL reports other settings) | $(acc kdcl-resnet32x2 peer1) / $(acc kdcl-resnet32x2 peer2) |"
    echo "| DML, WRN-28-10 + ResNet-32 | wrn / resnet | DML paper, Table 1 | $(acc dml-wrn28-10-resnet32 wrn) / $(acc dml-wrn28-10-resnet32 resnet) |"
    echo "| KD ResNet-32x4 -> ResNet-8x4 | teacher / student | 79.42 / 73.33 (CRD, Table 1; student alone 72.50) | $(acc kd-resnet32x4-resnet8x4 teacher) / $(acc kd-resnet32x4-resnet8x4 student) |"
    echo "| KD WRN-40-2 -> WRN-16-2 | teacher / student | 75.61 / 74.92 (CRD, Table 1; student alone 73.26) | $(acc kd-wrn40-2-wrn16-2 teacher) / $(acc kd-wrn40-2-wrn16-2 student) |"
    # RepDistiller's README (CRD Table 1), top-1 %: ResNet-32x4 -> ResNet-8x4, WRN-40-2 -> WRN-16-2
    declare -A paper=([fitnets]="73.50 / 73.58" [at]="73.44 / 74.08" [sp]="72.94 / 73.83" [cc]="72.97 / 73.56" [vid]="73.09 / 74.11" [rkd]="71.90 / 73.35" [pkt]="73.64 / 74.54" [nst]="73.30 / 73.68" [fsp]="72.62 / 72.91" [ab]="73.17 / 72.50" [ft]="72.86 / 73.25" [crd]="75.51 / 75.48")
    for m in "${methods[@]}"; do
        echo "| ${m^^} (RepDistiller's recipe, the KD run's teacher), ResNet-8x4 / WRN-16-2 | student | ${paper[$m]} (RepDistiller README) | $(acc "$m-resnet32x4-resnet8x4" student) / $(acc "$m-wrn40-2-wrn16-2" student) |"
    done
    echo "| OFD (mdistiller's recipe, the KD run's teacher in training mode), ResNet-8x4 / WRN-16-2 | student | 74.95 / 75.24 (DKD paper, Table 1: mdistiller's benchmark) | $(acc ofd-resnet32x4-resnet8x4 student) / $(acc ofd-wrn40-2-wrn16-2 student) |"
    echo "| REVIEWKD (mdistiller's recipe, the KD run's teacher), ResNet-8x4 | student | 75.63 (DKD paper, Table 2: mdistiller's benchmark) | $(acc reviewkd-resnet32x4-resnet8x4 student) |"
    echo "| KDSVD (mdistiller's recipe, the KD run's teacher), ResNet-8x4 | student | — (mdistiller publishes none for this pair) | $(acc kdsvd-resnet32x4-resnet8x4 student) |"
    echo "| PCL, ResNet-32 with 3 branches and fusion teacher | temporal mean's branch 1 / 2 / 3 | 74.14 ± 0.16 (PCL's table as quoted by its reimplementation) | $(acc pcl-resnet32x3 mean.head1) / $(acc pcl-resnet32x3 mean.head2) / $(acc pcl-resnet32x3 mean.head3) |"
    echo "| OKDDip, ResNet-32 x 3 + leader (authors' recipe) | leader | 74.24 (MCL-OKD's table, multi-branch) | $(acc okddip-resnet32x3 leader) |"
    echo "| OKDDip, the same under the DML recipe | leader | — | $(acc okddip-resnet32x3-dml-recipe leader) |"
    echo "| ONE, ResNet-32 with 3 gated branches (authors' recipe) | gated ensemble / branch 1 | 74.26 (MCL-OKD's table, 25.74 % error) | $(acc one-resnet32 one) / $(acc one-resnet32 one.head1) |"
    echo "| ONE, the same under the DML recipe | gated ensemble / branch 1 | — | $(acc one-resnet32-dml-recipe one) / $(acc one-resnet32-dml-recipe one.head1) |"
    echo "| CL-ILR, ResNet-32 with 3 branches | branch mean / branch 1 | — (no CIFAR-100 ResNet-32 figure) | $(acc cl-ilr-resnet32 cl_ilr) / $(acc cl-ilr-resnet32 cl_ilr.head1) |"
    echo "| CL-ILR, the same under the DML recipe | branch mean / branch 1 | — | $(acc cl-ilr-resnet32-dml-recipe cl_ilr) / $(acc cl-ilr-resnet32-dml-recipe cl_ilr.head1) |"
    echo "| SwitOKD, WRN-16-2 + MobileNetV2 (0.5) (authors' recipe) | teacher / student | — | $(acc switokd-wrn16-2-mobilenetv2 teacher) / $(acc switokd-wrn16-2-mobilenetv2 student) |"
    echo "| SwitOKD, the same under the DML recipe | teacher / student | — | $(acc switokd-wrn16-2-mobilenetv2-dml-recipe teacher) / $(acc switokd-wrn16-2-mobilenetv2-dml-recipe student) |"
    echo
    echo "Full table:"
    echo
    cat "$out/compare.md"
    echo
    echo "Produced by \`scripts/reproduce-cifar100.sh $*\` at commit $(git rev-parse --short HEAD)."
} > "$out/README.md"
cat "$out/README.md"
