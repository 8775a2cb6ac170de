#!/usr/bin/env bash
# Hinton, Vinyals & Dean 2015, "Distilling the Knowledge in a Neural Network", §3 (MNIST).
# Trains the teacher (100 epochs), the distilled student (60), the student alone (60) and the
# student distilled on a transfer set without any 3s (60), then counts test errors with
# `cohort eval` (the last one also with the bias of class 3 raised, as in the paper); the eval
# outputs are kept beside the runs (runs/<experiment>/seed-0/eval*.json) so that the table can be
# rebuilt without the weights. ~45 minutes on an idle 2-core machine. One seed (each run takes
# over 10 minutes here). Needs MNIST: target/release/cohort data fetch mnist
#
#   scripts/reproduce-hinton-mnist.sh [--report-only]
out=results/reproductions/hinton2015
study_command=scripts/reproduce-hinton-mnist.sh
source scripts/lib/study.sh "$@"
biases=(0 1 1.5 2 2.5 3 3.5)
for n in teacher distilled student-alone omit3; do train "experiments/reproductions/hinton2015/$n.ron"; done
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
table=$(
    echo "| model | paper | ours (test errors of 10 000) |"
    echo "|---|---|---|"
    echo "| teacher 1200-1200, dropout + jitter | 67 | $(errs "$teacher") |"
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
    echo "MNIST (60 000 training, 10 000 test images), one seed. Teacher 784-1200-1200-10 with dropout 0.3 on"
    echo "the hidden units, max-norm 3.5, inputs jittered by up to 2 pixels (the border filled with the"
    echo "background), 100 epochs of SGD with Nesterov momentum 0.9, lr 0.05, 2 warm-up epochs, cosine,"
    echo "batch 128. Students 784-800-800-10 without regularisation, 60 epochs, lr 0.03 after 3 warm-up"
    echo "epochs: alone (CE); distilled (0.1·CE + 0.9·T²·KL at T = 20 from the frozen teacher); and"
    echo "distilled on a transfer set without any 3 (\`train_on: Subset(exclude_classes: [3])\`),"
    echo "evaluated with offsets on class 3's logit (\`cohort eval --logit-bias 3=b\`)."
    echo
    echo "History, stated because it matters: the teacher's dropout and the students' learning rate were"
    echo "chosen in an earlier round on *test* errors (the paper's teacher trains on all 60 000 images, so"
    echo "no validation split was held out). This run keeps that recipe; choosing it again on a validation"
    echo "hold-out and retraining on all 60 000 images is still to be done."
    echo
    echo "## Checks (fixed before the runs)"
    echo
    echo "1. The teacher makes at most 80 test errors. 2. The distilled student at most 90. 3. The student"
    echo "alone at least 120 (most of the paper's gain). 4. Raising class 3's bias by 3.5 does not raise"
    echo "the omit-3 student's total test errors (it can only lower the errors on 3s, so checking those"
    echo "could not fail)."
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
