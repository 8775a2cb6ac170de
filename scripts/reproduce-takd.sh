#!/usr/bin/env bash
# Teacher-assistant KD (Mirzadeh et al. 2020) on MNIST-1D: a large 1-D CNN teacher (64x3), a
# mid-sized CNN assistant (16x2) and an MLP student (40→32→10), 5 seeds:
#   student-alone  the student on the labels only
#   kd-direct      teacher → student
#   takd           teacher → assistant → student
# plus the assistant's size swept (CNN 8x2 and 32x2, `cohort sweep`) and a diagnosis of a short
# student schedule (30 epochs: temperature and teacher weight decay). ~45 minutes on 2 cores.
#
#   scripts/reproduce-takd.sh [--report-only]
#
# Writes results/reproductions/takd/ and the TAKD table of the top-level README. The protocol and
# the checks are fixed before the runs (see the README it writes); exit 1 when a check fails.
out=results/reproductions/takd
study_command=scripts/reproduce-takd.sh
source scripts/lib/study.sh "$@"
names=(student-alone kd-direct takd)
for n in "${names[@]}"; do train "experiments/reproductions/takd/$n.ron"; done
if [ $report_only = 0 ]; then rm -rf "$runs"/kd-temperature.* "$runs"/kd-teacher-decay.* "$runs"/takd.channels-*; fi
sweep experiments/reproductions/takd/takd.ron --grid 'nodes[1].model.channels=[8,8],[32,32]'
sweep experiments/reproductions/takd/kd-temperature.ron --grid 'edges[1].loss.temperature=1.0,2.0,4.0,8.0'
sweep experiments/reproductions/takd/kd-teacher-decay.ron --grid 'nodes[0].optimizer.weight_decay=0.0,0.001,0.01'
"$bin" compare "$runs"/kd-temperature.* "$runs"/kd-teacher-decay.* --out "$out/diagnosis" > /dev/null
"$bin" compare "$runs"/takd.channels-8_8 "$runs"/takd "$runs"/takd.channels-32_32 --out "$out/assistant-size" > /dev/null
dirs=()
for n in "${names[@]}"; do dirs+=("$runs/$n"); done
"$bin" compare "${dirs[@]}" --out "$out" > /dev/null
"$bin" plot "$runs/takd" > /dev/null
cp "$runs/takd/charts/seeds.png" "$out/takd-seeds.png"
alone=$(mean student-alone student)
direct=$(mean kd-direct student)
chain=$(mean takd student)
# each check's difference again with its 95 % interval and Welch's p (cohort compare --baseline)
versus() { "$bin" compare "$runs/$2" "$runs/$1" --json --baseline "$2:student" | python3 "$compare_py" versus - "$1" student; }
intervals=$(
    echo "- 1. through the assistant − alone: $(versus takd student-alone)"
    echo "- 2. through the assistant − direct KD: $(versus takd kd-direct)"
    echo "- 3. direct KD − alone: $(versus kd-direct student-alone)"
)
checks=$(
    check "$chain > $alone" "1. the student through the assistant ($chain %) is above the student alone ($alone %)"
    check "$chain > $direct" "2. the student through the assistant ($chain %) is above the directly distilled one ($direct %)"
    check "$direct > $alone" "3. the directly distilled student ($direct %) is above the student alone ($alone %)"
)
table=$(
    echo "| cohort | assistant | student (final test acc. %, 5 seeds) |"
    echo "|---|---|---|"
    echo "| student alone | – | $(acc student-alone student) |"
    echo "| teacher ($(acc kd-direct teacher)) → student | – | $(acc kd-direct student) |"
    ( out="$out/assistant-size"
      echo "| teacher → assistant CNN 8x2 → student | $(acc takd.channels-8_8 assistant) | $(acc takd.channels-8_8 student) |" )
    echo "| teacher → assistant CNN 16x2 → student | $(acc takd assistant) | $(acc takd student) |"
    ( out="$out/assistant-size"
      echo "| teacher → assistant CNN 32x2 → student | $(acc takd.channels-32_32 assistant) | $(acc takd.channels-32_32 student) |" )
)
{
    echo "# Teacher-assistant KD on MNIST-1D"
    echo
    echo "## Protocol (fixed before these runs)"
    echo
    echo "MNIST-1D: 4000 training sequences less a seeded 10 % validation hold-out (3600 train, 400"
    echo "validation), 1000 test. Teacher 1-D CNN 64-64-64, assistant CNN 16-16, student MLP 40→32→10."
    echo "Each distillation is 0.3·CE + 0.7·T²·KL(p^T ‖ q^T) with T = 4. Teacher and assistant train 30"
    echo "epochs, every student 200; Adam lr 0.002, batch 100; 5 seeds (0–4). Cohorts: the student alone;"
    echo "teacher → student; teacher → assistant → student (stages in one run; the teacher stage is the"
    echo "same in kd-direct and takd for a seed). Also run: the assistant's size (CNN 8x2 and 32x2) and a"
    echo "diagnosis of a 30-epoch student schedule (direct KD from the seed-0 teacher at T = 1, 2, 4, 8;"
    echo "from teachers trained with weight decay 0, 1e-3, 1e-2, seed 0). The figures are final-epoch test"
    echo "accuracies; the full tables also give the test accuracy at the best-validation epoch."
    echo
    echo "History, stated because it matters for how far to trust this study: an earlier round chose the"
    echo "assistant size (16x2) and the 200 student epochs after seeing test accuracies (at 30 student"
    echo "epochs every distilled student was below the student alone), and then loosened check 3 to"
    echo "\"direct KD no more than 1 point below the student alone\" after it failed. This round keeps that"
    echo "protocol — it can no longer be chosen blind — adds the validation hold-out, and restores the"
    echo "original check 3."
    echo
    echo "## Checks (fixed before the runs: the paper's claims for a large teacher-student gap)"
    echo
    echo "1. The student taught through the assistant is more accurate than the student alone."
    echo "2. It is more accurate than the directly distilled student."
    echo "3. The directly distilled student is more accurate than the student alone."
    echo
    echo "## Results"
    echo
    echo "$table"
    echo
    outcomes "$checks"
    echo
    echo "The same differences of the final test accuracies with their 95 % confidence intervals and"
    echo "Welch's two-sided p over the 5 seeds (\`cohort compare --baseline\`; added after the runs as a"
    echo "reading of the fixed checks, not a new check): an interval that contains 0 means the seeds"
    echo "cannot tell the two apart."
    echo
    echo "$intervals"
    echo
    echo "Full table (final, validation-selected and best test accuracy per node):"
    echo
    cat "$out/compare.md"
    echo
    echo "### The assistant's size"
    echo
    echo "\`cohort sweep experiments/reproductions/takd/takd.ron --grid 'nodes[1].model.channels=[8,8],[32,32]'\`:"
    echo
    cat "$out/assistant-size/compare.md"
    echo
    echo "### Diagnosis: a 30-epoch student schedule"
    echo
    echo "Direct KD at temperature T (frozen seed-0 teacher of kd-direct, 5 student seeds) and from teachers"
    echo "trained with weight decay (seed 0), \`cohort sweep\` over \`experiments/reproductions/takd/kd-{temperature,teacher-decay}.ron\`:"
    echo
    cat "$out/diagnosis/compare.md"
    echo
    provenance
} > "$out/README.md"
{
    echo "$table"
    echo
    echo "The checks' differences with their 95 % confidence intervals (Welch, 5 seeds):"
    echo
    echo "$intervals"
} | splice takd README.md
cat "$out/README.md"
echo "$checks"
all_passed "$checks"
