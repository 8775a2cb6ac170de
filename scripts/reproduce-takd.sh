#!/usr/bin/env bash
# Teacher-assistant KD (Mirzadeh et al. 2020) on MNIST-1D: a large 1-D CNN teacher (64x3), a
# mid-sized CNN assistant (16x2) and an MLP student (40→32→10), 3 seeds:
#   student-alone  the student on the labels only
#   kd-direct      teacher → student
#   takd           teacher → assistant → student
# plus the assistant's size swept (CNN 8x2 and 32x2, `cohort sweep`). Each distillation is
# (1 − λ)·CE + λ·T²·KL with λ = 0.7, T = 4; teacher and assistant train 30 epochs, every student
# 200 (distilled students converge slowly: at 30 epochs all of them were below the student
# alone). The teacher stage is identical in kd-direct and takd for a given seed. Diagnosis of
# the short schedule (also run): the direct student after 30 epochs at T = 1, 2, 4, 8 (frozen
# seed-0 teacher), and from teachers trained with weight decay 0, 1e-3, 1e-2 (seed 0).
# About 30 minutes on 2 cores (measured with another training run beside it).
#
#   scripts/reproduce-takd.sh [--report-only]
#
# --report-only rebuilds the tables and the checks from the existing runs (no training).
#
# Paper (Mirzadeh et al. 2020, CIFAR-10/100 and ImageNet): when the teacher-student size gap is
# large, distilling through an intermediate-size assistant gives a better student than direct KD,
# and KD beats training the student alone.
# Expected here and CHECKED (exit 1 otherwise), in mean test accuracy over the 3 seeds: the
# student through the assistant beats both the directly distilled student and the student
# trained alone (the paper's claim for a large size gap), and direct KD is no worse than the
# student alone by more than 1 point (over a gap this large the paper's direct KD gains little).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=target/release/cohort
out=results/reproductions/takd
names=(student-alone kd-direct takd)
if [ "${1:-}" != "--report-only" ]; then
    for n in "${names[@]}"; do
        "$bin" run "experiments/reproductions/takd/$n.ron" --overwrite --no-progress --no-plot > /dev/null
    done
    rm -rf "$out"/kd-temperature.* "$out"/kd-teacher-decay.* "$out"/takd.channels-*
    "$bin" sweep experiments/reproductions/takd/kd-temperature.ron --grid 'edges[1].loss.temperature=1.0,2.0,4.0,8.0' --no-plot > /dev/null
    "$bin" sweep experiments/reproductions/takd/kd-teacher-decay.ron --grid 'nodes[0].optimizer.weight_decay=0.0,0.001,0.01' --no-plot > /dev/null
    "$bin" sweep experiments/reproductions/takd/takd.ron --grid 'nodes[1].model.channels=[8,8],[32,32]' --no-plot > /dev/null
fi
"$bin" compare "$out"/kd-temperature.* "$out"/kd-teacher-decay.* --out "$out/diagnosis" > /dev/null
"$bin" compare "$out"/takd.channels-8_8 "$out"/takd "$out"/takd.channels-32_32 --out "$out/assistant-size" > /dev/null
dirs=()
for n in "${names[@]}"; do dirs+=("$out/$n"); done
"$bin" compare "${dirs[@]}" --out "$out" > /dev/null
"$bin" plot "$out/takd" > /dev/null
cp "$out/takd/charts/seeds.png" "$out/takd-seeds.png"
source scripts/lib/compare.sh
{
    echo "# Teacher-assistant KD on MNIST-1D (teacher CNN 64x3 → assistant CNN 16x2 → student MLP 32; 3 seeds)"
    echo
    echo "Teacher and assistant 30 epochs, every student 200 epochs; λ = 0.7, T = 4."
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
    echo "## The assistant's size"
    echo
    echo "The same chain with a smaller (CNN 8x2) and a larger (CNN 32x2) assistant"
    echo "(\`cohort sweep experiments/reproductions/takd/takd.ron --grid 'nodes[1].model.channels=[8,8],[32,32]'\`):"
    echo
    echo "| assistant | assistant acc. (%) | student acc. (%) |"
    echo "|---|---|---|"
    ( out="$out/assistant-size"
      echo "| CNN 8x2 | $(acc takd.channels-8_8 assistant) | $(acc takd.channels-8_8 student) |"
      echo "| CNN 16x2 | $(acc takd assistant) | $(acc takd student) |"
      echo "| CNN 32x2 | $(acc takd.channels-32_32 assistant) | $(acc takd.channels-32_32 student) |" )
    echo
    echo "## Diagnosis of the short schedule: 30 student epochs"
    echo
    echo "With 30 epochs per stage (this study's first protocol) every distilled student was *below* the"
    echo "student alone (alone 48.8, direct 42.7, through a CNN 8x2 assistant 41.5, at commit 32832ce)."
    echo "The runs below keep that schedule: at T = 1 distillation is neutral, the deficit grows with T and"
    echo "shrinks when the teacher is regularised. At high T the soft-target loss approaches logit matching"
    echo "(Hinton et al. 2015, §2.1), which this student learns slowly; given 200 epochs the directly"
    echo "distilled student catches up with the student alone and the one taught through the assistant"
    echo "passes it (tables above). The losses are checked against f64 references (tests/losses.rs)."
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
direct=$(mean kd-direct student)
chain=$(mean takd student)
check "$chain > $alone" "student through the assistant ($chain %) above the student alone ($alone %)"
check "$chain > $direct" "student through the assistant ($chain %) above the directly distilled one ($direct %)"
check "$direct >= $alone - 1" "direct KD student ($direct %) no more than 1 point below the student alone ($alone %)"
exit $fail
