#!/usr/bin/env bash
# Teacher-assistant KD (Mirzadeh et al. 2020) on MNIST-1D: a large 1-D CNN teacher (64x3), a
# small CNN assistant (8x2) and an MLP student (40→32→10), 3 seeds:
#   student-alone  the student on the labels only
#   kd-direct      teacher → student
#   takd           teacher → assistant → student
# Each distillation is (1 − λ)·CE + λ·T²·KL with λ = 0.7, T = 4, 30 epochs per stage.
# The teacher stage is identical in kd-direct and takd for a given seed. ~5 minutes on 2 cores.
#
#   scripts/reproduce-takd.sh
#
# Paper (Mirzadeh et al. 2020, CIFAR-10/100 and ImageNet): when the teacher-student size gap is
# large, distilling through an intermediate-size assistant gives a better student than direct KD.
# Expected here and CHECKED (exit 1 otherwise): the distilled students (direct and through the
# assistant) both beat the student trained alone in mean test accuracy over the 3 seeds.
# TAKD vs direct KD is reported, not checked. Diagnosis (also run, ~5 more minutes): the
# direct student at T = 1, 2, 4, 8 (frozen seed-0 teacher), and direct KD from teachers
# trained with weight decay 0, 1e-3, 1e-2 (seed 0).
# Status at the last committed run: the check FAILS — KD lowers the student here (README).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=target/release/cohort
out=results/reproductions/takd
names=(student-alone kd-direct takd)
for n in "${names[@]}"; do
    "$bin" run "experiments/reproductions/takd/$n.ron" --overwrite --no-progress --no-plot > /dev/null
done
rm -rf "$out"/kd-temperature.* "$out"/kd-teacher-decay.*
"$bin" sweep experiments/reproductions/takd/kd-temperature.ron --grid 'edges[1].loss.temperature=1.0,2.0,4.0,8.0' --no-plot > /dev/null
"$bin" sweep experiments/reproductions/takd/kd-teacher-decay.ron --grid 'nodes[0].optimizer.weight_decay=0.0,0.001,0.01' --no-plot > /dev/null
"$bin" compare "$out"/kd-temperature.* "$out"/kd-teacher-decay.* --out "$out/diagnosis" > /dev/null
dirs=()
for n in "${names[@]}"; do dirs+=("$out/$n"); done
"$bin" compare "${dirs[@]}" --out "$out" > /dev/null
"$bin" plot "$out/takd" > /dev/null
cp "$out/takd/charts/seeds.png" "$out/takd-seeds.png"
source scripts/lib/compare.sh
{
    echo "# Teacher-assistant KD on MNIST-1D (teacher CNN 64x3 → assistant CNN 8x2 → student MLP 32; 30 epochs per stage, 3 seeds)"
    echo
    echo "| cohort | teacher | assistant | student (final test acc. %, mean ± std) |"
    echo "|---|---|---|---|"
    echo "| student alone | – | – | $(acc student-alone student) |"
    echo "| teacher → student | $(acc kd-direct teacher) | – | $(acc kd-direct student) |"
    echo "| teacher → assistant → student | $(acc takd teacher) | $(acc takd assistant) | $(acc takd student) |"
    echo
    echo "Full table (final and best test accuracy per node):"
    echo
    cat "$out/compare.md"
    echo
    echo "## Diagnosis: why distillation does not help this student"
    echo
    echo "The student distilled from the CNN teacher is *worse* than the student trained alone, and the"
    echo "assistant does not repair it. The losses are those tested against f64 references"
    echo "(tests/losses.rs), and at T = 1 distillation is neutral, so the pipeline is sound; the effect"
    echo "grows with the temperature and shrinks when the teacher is regularised. At high T the"
    echo "soft-target loss approaches logit matching (Hinton et al. 2015, §2.1): an unregularised teacher"
    echo "that fits its 4000 training samples perfectly has very large logit gaps, and a 32-unit MLP spends"
    echo "its capacity matching the gaps between wrong classes instead of the decision. Hinton's MNIST"
    echo "teacher was regularised by dropout, and there soft targets help (scripts/reproduce-hinton-mnist.sh)."
    echo
    echo "Direct KD at temperature T (frozen seed-0 teacher, 3 student seeds) and from teachers trained with"
    echo "weight decay (seed 0), \`cohort sweep\` over experiments/reproductions/takd/kd-{temperature,teacher-decay}.ron:"
    echo
    cat "$out/diagnosis/compare.md"
    echo
    echo "Produced by \`scripts/reproduce-takd.sh\` at commit $(git rev-parse --short HEAD) on $(date -u +%Y-%m-%d)."
} > "$out/README.md"
cat "$out/README.md"
fail=0
alone=$(mean student-alone student)
for n in kd-direct takd; do
    m=$(mean "$n" student)
    if awk -v a="$alone" -v b="$m" 'BEGIN { exit !(b > a) }'; then
        echo "check passed: $n student ($m %) > student alone ($alone %)"
    else
        echo "CHECK FAILED: $n student ($m %) is not above the student alone ($alone %)"
        fail=1
    fi
done
exit $fail
