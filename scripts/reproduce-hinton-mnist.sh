#!/usr/bin/env bash
# Hinton, Vinyals & Dean 2015, "Distilling the Knowledge in a Neural Network", §3 (MNIST).
#
# 1. Selection on a validation hold-out (the same experiment files with `--set
#    data.validation=0.1`: 54 000 training images, 6 000 held out, seed 0): the teacher's hidden
#    dropout among 0.2, 0.3, 0.5; then the learning rate of the student alone and of the distilled
#    student (from the selected hold-out teacher) among 0.01, 0.03, 0.05. The candidate with the
#    most validation images right at the last epoch wins (ties: the first listed; a diverged run
#    is out). The test split plays no part in it.
# 2. The final runs on all 60 000 images with the selected values (`cohort run --set`): the
#    teacher (100 epochs), the distilled student (60), the student alone (60) and the student
#    distilled on a transfer set without any 3s (60, the distilled student's learning rate); test
#    errors counted with `cohort eval` (the omit-3 student also with the bias of class 3 raised,
#    as in the paper). The eval outputs are kept beside the runs (runs/<experiment>/seed-0/
#    eval*.json) so that the table can be rebuilt without the weights.
#
# ~1½ h on a 2-core machine (two runs at a time; 88 min on an idle AMD EPYC at 49f76d3, 103 min on
# an Intel Xeon at c3f2381 while other work shared it);
# one seed (each run takes over 10 minutes here). Needs MNIST: target/release/cohort data fetch mnist
#
#   scripts/reproduce-hinton-mnist.sh [--report-only]
out=results/reproductions/hinton2015
study_command=scripts/reproduce-hinton-mnist.sh
source scripts/lib/study.sh "$@"
biases=(0 1 1.5 2 2.5 3 3.5)
dropouts=(0.2 0.3 0.5)
lrs=(0.01 0.03 0.05)
dir=experiments/reproductions/hinton2015
hold_out=(--set data.validation=0.1)

# validation FOLDER -> "images right of the hold-out at the last epoch", or "diverged"
validation() {
    python3 -c '
import json, sys
d = json.load(open(sys.argv[1] + "/seed-0/summary.json"))
if d["status"] != "complete":
    print("diverged")
else:
    last = d["stages"][-1]["nodes"][sys.argv[2]]["last"]
    print(round(last["validation_accuracy"] * 6000))' "$runs/$1" "$2"
}
# select PREFIX NODE VALUES... -> the value whose run PREFIX-<value> has the most validation
# images right (the first listed on a tie)
select_best() {
    local prefix=$1 node=$2 best="" best_n=-1 v n
    shift 2
    for v in "$@"; do
        n=$(validation "$prefix-$v" "$node")
        if [ "$n" != diverged ] && [ "$n" -gt "$best_n" ]; then best=$v; best_n=$n; fi
    done
    echo "$best"
}
# The runs are scheduled $slots at a time (independent ones side by side, each process with
# cores/$slots threads: one process keeps only ~1.45 of 2 cores busy here); the thread count does
# not change a run's numbers (tests/it/kernels.rs: the kernels give the same bits for any thread
# count). HINTON_SLOTS=1 runs them one by one.
slots=${HINTON_SLOTS:-2}
threads=$(( $(nproc) / slots )); if [ "$threads" -lt 1 ]; then threads=1; fi
failed=$(mktemp); trap 'rm -f "$failed"' EXIT
# spawn CMD...: CMD in the background once fewer than $slots are running; a failure is noted
spawn() {
    while [ "$(jobs -rp | wc -l)" -ge "$slots" ]; do wait -n || true; done
    ( export RAYON_NUM_THREADS=$threads; "$@" || echo "$* (exit $?)" >> "$failed" ) &
}
# join: waits for every spawned command; exits if one failed
join() {
    wait
    if [ -s "$failed" ]; then echo "failed:" >&2; cat "$failed" >&2; exit 1; fi
}
# candidate FILE SHARD [sweep args]: shard SHARD/3 of a 3-point selection sweep; a candidate that
# diverges exits 1 and is simply not selected
candidate() { local file=$1 shard=$2; shift 2; sweep "$file" "${hold_out[@]}" "$@" --shard "$shard/3" || [ $? = 1 ]; }

if [ $report_only = 0 ]; then rm -rf "$runs"/select-*; fi
# 1. the teacher's dropout and the student alone's learning rate (independent of each other)
teacher_grid=(--set name=select-teacher --grid "nodes[0].model.dropout=$(IFS=,; echo "${dropouts[*]}")")
alone_grid=(--set name=select-student-alone --grid "training.optimizer.lr=$(IFS=,; echo "${lrs[*]}")")
spawn candidate "$dir/teacher.ron" 0 "${teacher_grid[@]}"
for i in 0 1 2; do spawn candidate "$dir/student-alone.ron" $i "${alone_grid[@]}"; done
spawn candidate "$dir/teacher.ron" 1 "${teacher_grid[@]}"
spawn candidate "$dir/teacher.ron" 2 "${teacher_grid[@]}"
join
dropout=$(select_best select-teacher.dropout teacher "${dropouts[@]}")
if [ -z "$dropout" ]; then echo "every teacher candidate diverged: see $runs/select-teacher.*" >&2; exit 1; fi
lr_alone=$(select_best select-student-alone.lr student "${lrs[@]}")
held_teacher="$runs/select-teacher.dropout-$dropout/seed-0/checkpoints/teacher.bpk"
teacher_set=(--set "nodes[0].model.dropout=$dropout")
# 2. the final teacher beside the distilled student's learning rate (taught by the hold-out teacher)
spawn train "$dir/teacher.ron" "${teacher_set[@]}"
for i in 0 1 2; do
    spawn candidate "$dir/distilled.ron" $i --set name=select-distilled "${teacher_set[@]}" \
        --set "nodes[0].checkpoint=$held_teacher" --grid "training.optimizer.lr=$(IFS=,; echo "${lrs[*]}")"
done
join
lr_kd=$(select_best select-distilled.lr student "${lrs[@]}")
# 3. the final students
spawn train "$dir/distilled.ron" "${teacher_set[@]}" --set "training.optimizer.lr=$lr_kd"
spawn train "$dir/omit3.ron" "${teacher_set[@]}" --set "training.optimizer.lr=$lr_kd"
spawn train "$dir/student-alone.ron" --set "training.optimizer.lr=$lr_alone"
join
if [ $report_only = 0 ]; then
    ev() { "$bin" eval "$runs/$1/seed-0" --node "$2" --json "${@:3}"; }
    ev teacher teacher > "$runs/teacher/seed-0/eval.json"
    ev distilled student > "$runs/distilled/seed-0/eval.json"
    ev student-alone student > "$runs/student-alone/seed-0/eval.json"
    for b in "${biases[@]}"; do ev omit3 student --logit-bias "3=$b" > "$runs/omit3/seed-0/eval-bias-$b.json"; done
fi
field() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }
errs() { field "$1" 'd["errors"]'; }
threes() { field "$1" 'd["errors_per_class"][3]'; }
teacher=$runs/teacher/seed-0/eval.json
distilled=$runs/distilled/seed-0/eval.json
alone=$runs/student-alone/seed-0/eval.json
omit=$runs/omit3/seed-0/eval-bias-0.json
fixed=$runs/omit3/seed-0/eval-bias-3.5.json
"$bin" plot "$runs/distilled/seed-0" > /dev/null
cp "$runs/distilled/seed-0/charts/curves.png" "$out/distilled-curves.png"
checks=$(
    check "$(errs "$teacher") <= 80" "teacher: $(errs "$teacher") test errors (target ≤ 80)"
    check "$(errs "$distilled") <= 90" "distilled student: $(errs "$distilled") test errors (target ≤ 90)"
    check "$(errs "$alone") >= 120" "student alone: $(errs "$alone") test errors (target ≥ 120)"
    check "$(errs "$fixed") <= $(errs "$omit")" "bias of class 3 raised by 3.5: $(errs "$omit") -> $(errs "$fixed") test errors in total ($(threes "$omit") -> $(threes "$fixed") on 3s)"
)
selection=$(
    row() { local r="| $1 |" v; for v in "${@:4}"; do r="$r $(validation "$2-$v" "$3") |"; done; echo "$r"; }
    echo "| hidden dropout | $(printf '%s | ' "${dropouts[@]}")"
    echo "|---|$(printf -- '---|%.0s' "${dropouts[@]}")"
    row "teacher" select-teacher.dropout teacher "${dropouts[@]}"
    echo
    echo "| learning rate | $(printf '%s | ' "${lrs[@]}")"
    echo "|---|$(printf -- '---|%.0s' "${lrs[@]}")"
    row "student alone" select-student-alone.lr student "${lrs[@]}"
    row "distilled student (T = 20)" select-distilled.lr student "${lrs[@]}"
)
table=$(
    echo "| model | paper | ours (test errors of 10 000) |"
    echo "|---|---|---|"
    echo "| teacher 1200-1200, dropout $dropout + jitter | 67 | $(errs "$teacher") |"
    echo "| student 800-800 alone | 146 | $(errs "$alone") |"
    echo "| student 800-800, soft targets T = 20 | 74 | $(errs "$distilled") |"
    echo "| student distilled without any 3 in the transfer set | 206 (133 on 3s) | $(errs "$omit") ($(threes "$omit") on 3s) |"
    echo "| … with the bias of class 3 raised by 3.5 | 109 (14 on 3s) | $(errs "$fixed") ($(threes "$fixed") on 3s) |"
)
{
    echo "# Hinton et al. 2015 on MNIST"
    echo
    echo "## Protocol (fixed before these runs)"
    echo
    echo "MNIST (60 000 training, 10 000 test images), one seed (0). Teacher 784-1200-1200-10 with dropout on"
    echo "the hidden units, max-norm 3.5, inputs jittered by up to 2 pixels (the border filled with the"
    echo "background), 100 epochs of SGD with Nesterov momentum 0.9, lr 0.05, 2 warm-up epochs, cosine,"
    echo "batch 128. Students 784-800-800-10 without regularisation, 60 epochs, 3 warm-up epochs: alone"
    echo "(CE); distilled (0.1·CE + 0.9·T²·KL at T = 20 from the frozen teacher); and distilled on a"
    echo "transfer set without any 3 (\`train_on: Subset(exclude_classes: [3])\`, the distilled student's"
    echo "learning rate), evaluated with offsets on class 3's logit (\`cohort eval --logit-bias 3=b\`; the"
    echo "check uses the paper's 3.5)."
    echo
    echo "Selection on a validation hold-out, never on the test split: the same experiment files with"
    echo "\`--set data.validation=0.1\` (54 000 training images, 6 000 held out, seed 0) choose the"
    echo "teacher's hidden dropout among $(IFS=/; echo "${dropouts[*]}"), then the learning rate of the student alone"
    echo "and of the distilled student (taught by the selected hold-out teacher) among $(IFS=/; echo "${lrs[*]}"). The"
    echo "candidate with the most validation images right at the last epoch wins (a tie goes to the first"
    echo "listed; a diverged run is out). The final runs then train on all 60 000 images with the selected"
    echo "values (\`cohort run --set\`; each manifest records the plan as set)."
    echo
    echo "History, stated because it matters: an earlier round chose the teacher's dropout (0.3) and the"
    echo "students' learning rate (0.03) on *test* errors. This round replaces that choice by the"
    echo "selection above; the checks below are that earlier round's, unchanged."
    echo
    echo "## Checks (fixed before the runs)"
    echo
    echo "1. The teacher makes at most 80 test errors. 2. The distilled student at most 90. 3. The student"
    echo "alone at least 120 (most of the paper's gain). 4. Raising class 3's bias by 3.5 does not raise"
    echo "the omit-3 student's total test errors (it can only lower the errors on 3s, so checking those"
    echo "could not fail)."
    echo
    echo "## Selection (validation images right of 6 000, last epoch)"
    echo
    echo "$selection"
    echo
    echo "Selected: teacher dropout $dropout; learning rate $lr_alone for the student alone, $lr_kd for the"
    echo "distilled students."
    echo
    echo "## Results"
    echo
    echo "$table"
    echo
    outcomes "$checks"
    echo
    echo "Test errors (on 3s) of the omit-3 student by the offset added to class 3's logit (the paper used"
    echo "3.5; an offset chosen from this row would be chosen on the test set):"
    echo
    echo "| offset of class 3 | $(printf '%s | ' "${biases[@]}")"
    echo "|---|$(printf -- '---|%.0s' "${biases[@]}")"
    row="| errors (on 3s) |"
    for b in "${biases[@]}"; do
        r=$runs/omit3/seed-0/eval-bias-$b.json
        row="$row $(errs "$r") ($(threes "$r")) |"
    done
    echo "$row"
    echo
    provenance
} > "$out/README.md"
echo "$table" | splice hinton README.md
cat "$out/README.md"
echo "$checks"
all_passed "$checks"
