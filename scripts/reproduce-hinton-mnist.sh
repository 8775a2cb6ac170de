#!/usr/bin/env bash
# Hinton, Vinyals & Dean 2015, "Distilling the Knowledge in a Neural Network", §3 (MNIST).
# Trains the teacher (100 epochs; reused when its run is complete, --retrain forces it), the
# distilled student (60), the student alone (60) and the student distilled on a transfer set
# without any 3s (60), then counts test errors with `cohort eval` (the last one also with the
# bias of class 3 raised by 3.5, as in the paper). About 40 minutes on an idle 2-core machine
# (teacher ~11 s per epoch, students 5–7 s); 57 minutes with builds and the test suite beside it.
# Needs MNIST: target/release/cohort data fetch mnist
#
#   scripts/reproduce-hinton-mnist.sh [--retrain | --eval-only]
#
# --eval-only re-evaluates the existing runs and rewrites the table (no training).
#
# Shortened from the paper (which trained much longer): the teacher gets 100 epochs (dropout 0.3,
# max-norm 3.5, jitter), each student 60, SGD + Nesterov momentum with a cosine schedule
# (students lr 0.03 after a 3-epoch warm-up: the T² = 400 soft-target term diverged at 0.05).
# Paper (test errors out of 10000): teacher 67; student alone 146; distilled student 74;
# transfer set without 3s: 206 errors (133 on the 1010 threes), 109 (14) after the bias fix.
# Expected here and CHECKED (exit 1 otherwise), the issue's targets: teacher ≤ 80 errors,
# distilled student ≤ 90, student alone ≥ 120 (most of the paper's gain), and the bias fix does
# not raise the omit-3 student's total test errors (a positive offset on class 3 can only lower
# the errors on 3s, so that check could not fail; the total can). Every number is printed.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=target/release/cohort
out=results/reproductions/hinton2015
if [ "${1:-}" != "--eval-only" ]; then
    teacher_flag=--resume
    if [ "${1:-}" = "--retrain" ]; then teacher_flag=--overwrite; fi
    "$bin" run experiments/reproductions/hinton2015/teacher.ron "$teacher_flag" --no-progress --no-plot > /dev/null
    for n in distilled student-alone omit3; do
        "$bin" run "experiments/reproductions/hinton2015/$n.ron" --overwrite --no-progress --no-plot > /dev/null
    done
fi
ev() { "$bin" eval "$out/$1/seed-0" --node "$2" --json "${@:3}"; }
field() { python3 -c "import json,sys; d=json.loads(sys.argv[1]); print($2)" "$1"; }
teacher=$(ev teacher teacher)
distilled=$(ev distilled student)
alone=$(ev student-alone student)
omit=$(ev omit3 student)
fixed=$(ev omit3 student --logit-bias 3=3.5)
errs() { field "$1" 'd["errors"]'; }
threes() { field "$1" 'd["errors_per_class"][3]'; }
"$bin" plot "$out/distilled/seed-0" > /dev/null
cp "$out/distilled/seed-0/charts/curves.png" "$out/distilled-curves.png"
{
    echo "# Hinton et al. 2015 on MNIST: test errors (of 10000)"
    echo
    echo "| model | paper | ours |"
    echo "|---|---|---|"
    echo "| teacher 1200-1200, dropout + jitter | 67 | $(errs "$teacher") |"
    echo "| student 800-800 alone | 146 | $(errs "$alone") |"
    echo "| student 800-800, soft targets T = 20 | 74 | $(errs "$distilled") |"
    echo "| student distilled without any 3 in the transfer set | 206 (133 on 3s) | $(errs "$omit") ($(threes "$omit") on 3s) |"
    echo "| … with the bias of class 3 raised by 3.5 | 109 (14 on 3s) | $(errs "$fixed") ($(threes "$fixed") on 3s) |"
    echo
    echo "Shortened schedule: teacher 100 epochs, students 60 epochs each (SGD, Nesterov momentum 0.9, lr 0.05 for"
    echo "the teacher and 0.03 for the students after a 3-epoch warm-up, cosine, batch 128; the teacher alone is"
    echo "regularised: dropout 0.3 on the hidden units (the paper's reference used 0.2 on the inputs and 0.5 hidden"
    echo "over thousands of epochs; see teacher.ron for the pilots behind the change), max-norm 3.5 and 2-pixel"
    echo "jitter; the students see the plain training set)."
    echo "Per-class errors: \`cohort eval <run> --node <id>\`."
    echo
    echo "Errors (on 3s) of the omit-3 student by the offset added to class 3's logit (the paper used 3.5; an offset"
    echo "chosen here would be chosen on the test set, so the best one is optimistic):"
    echo
    echo "| offset of class 3 | 0 | 1 | 1.5 | 2 | 2.5 | 3 | 3.5 |"
    echo "|---|---|---|---|---|---|---|---|"
    row="| errors (on 3s) |"
    for b in 0 1 1.5 2 2.5 3 3.5; do
        r=$(ev omit3 student --logit-bias "3=$b")
        row="$row $(errs "$r") ($(threes "$r")) |"
    done
    echo "$row"
    echo
    echo "Produced by \`scripts/reproduce-hinton-mnist.sh\` at commit $(git rev-parse --short HEAD) on $(date -u +%Y-%m-%d)."
} > "$out/README.md"
cat "$out/README.md"
fail=0
source scripts/lib/compare.sh
check "$(errs "$teacher") <= 80" "teacher $(errs "$teacher") errors (target ≤ 80)"
check "$(errs "$distilled") <= 90" "distilled student $(errs "$distilled") errors (target ≤ 90)"
check "$(errs "$alone") >= 120" "student alone $(errs "$alone") errors (target ≥ 120)"
check "$(errs "$fixed") <= $(errs "$omit")" "bias fix: $(errs "$omit") -> $(errs "$fixed") test errors in total ($(threes "$omit") -> $(threes "$fixed") on 3s)"
exit $fail
