#!/usr/bin/env bash
# Every online-distillation method cohort has, on one task and one network family: MNIST-1D in
# the small-data regime of the DML study (1000 training samples), the 1-D CNN 32-32-32 as peers and
# the same CNN branched after its second block for the branch methods, SGD with momentum, weight
# decay and a step schedule, the learning rate chosen per method on the validation split, 10 seeds.
# The protocol and the checks are in results/benchmark-online/PROTOCOL.md, committed before the
# runs. ~1.5 hours on 2 cores.
#
#   scripts/benchmark-online.sh [--report-only]
#
# Writes results/benchmark-online/ (runs/, peers/ and branches/ comparisons with their charts,
# README.md). Exits 1 when a check fails; the README then says "does not reproduce here".
out=results/benchmark-online
study_command=scripts/benchmark-online.sh
source scripts/lib/study.sh "$@"
source scripts/lib/benchmark.sh
exp=experiments/benchmark-online
py="python3 scripts/lib/benchmark_online.py"
if [ $report_only = 0 ]; then rm -rf "$runs"; fi

# 1. The initial learning rate of each method, chosen on the validation split: the method at 0.01,
# 0.03 and 0.1 on seeds 0-2 (runs/<method>.lr-<rate>/), the best mean validation accuracy of its
# peers or branches over the last 5 epochs wins (a diverged run scores 0; ties: the smaller rate).
# 2. The method at that rate on seeds 3-9, into the same folder: seeds 0-2 are the selection runs.
# joined: standard input's lines as one, "; " between them
joined() { paste -sd ';' | sed 's/;/; /g'; }
rates=(0.01 0.03 0.1)
methods=(independent dml dml-sequential dml-e kdcl okddip okddip-self online-kd switokd independent-branches one cl-ilr pcl independent-branches-4 okddip-branches ktg)
for m in "${methods[@]}"; do
    sweep "$exp/$m.ron" --grid "training.optimizer.lr=$(IFS=,; echo "${rates[*]}")" --seeds 0,1,2 --set "output=\"$runs\"" --jobs 2
done
declare -A lr folder lr_scores
for m in "${methods[@]}"; do
    best=$($py best --seeds 0,1,2 "${rates[@]/#/$runs/$m.lr-}")
    lr[$m]=${best##*lr-}
    folder[$m]=$m.lr-${lr[$m]}
    lr_scores[$m]=$(for r in "${rates[@]}"; do echo "$r: $($py val-score --seeds 0,1,2 "$runs/$m.lr-$r")"; done | joined)
done
for m in "${methods[@]}"; do
    if [ "$m" != ktg ]; then sweep "$exp/$m.ron" --grid "training.optimizer.lr=${lr[$m]}" --seeds 3,4,5,6,7,8,9 --set "output=\"$runs\"" --jobs 2; fi
done

# 3. KTG: 8 of the gate assignments of its nine edges (the three cross-entropy edges: Through,
# Cutoff or the paper's per-iteration Linear; the six KL edges: those or Correct), drawn with
# sample seed 0 and trained on seed 0 at the rate chosen for ktg.ron as written; the one with the
# best validation score (as in 1.) is then trained on seeds 0-9 at that rate.
if [ $report_only = 0 ]; then rm -rf "$runs"/ktg-search "$runs"/ktg.point-*; fi
search=()
for k in 0 1 2; do search+=(--grid "edges[$k].gate=Through,Cutoff,Linear"); done
for k in 3 4 5 6 7 8; do search+=(--grid "edges[$k].gate=Through,Cutoff,Linear,Correct"); done
sweep "$exp/ktg.ron" "${search[@]}" --random 8 --sample-seed 0 --seeds 0 --set "training.optimizer.lr=${lr[ktg]}" --set "output=\"$runs/ktg-search\"" --jobs 2
best=$($py best "$runs"/ktg-search/ktg.*)
point=$(sweep_point "$best")
chosen=()
IFS=',' read -ra assignments <<< "$point"
for a in "${assignments[@]}"; do chosen+=(--grid "${a# }"); done
sweep "$exp/ktg.ron" "${chosen[@]}" --seeds 0,1,2,3,4,5,6,7,8,9 --set "training.optimizer.lr=${lr[ktg]}" --jobs 2
ktg=$(basename "$best")
folder[ktg]=$ktg

# 4. The comparisons: the per-seed figure of each method against its baseline with Welch's 95 %
# interval and p, on the mean test accuracy of the last 5 epochs and at the validation-selected
# epoch.
peer_dirs=()
for m in independent dml dml-sequential dml-e kdcl okddip okddip-self online-kd switokd ktg; do peer_dirs+=("${folder[$m]}"); done
branch_dirs=()
for m in independent-branches one cl-ilr pcl; do branch_dirs+=("${folder[$m]}"); done
branch4_dirs=()
for m in independent-branches-4 okddip-branches; do branch4_dirs+=("${folder[$m]}"); done
base_peers=${folder[independent]}
base_branches=${folder[independent-branches]}
base_branches4=${folder[independent-branches-4]}
# each family's baseline (a method file) and its name in the text
declare -A base_of=([peers]=independent [branches]=independent-branches [branches4]=independent-branches-4)
declare -A base_name=([peers]="independent peers" [branches]="independent branches" [branches4]="independent branches of the 4-branch CNN")
peers=(--group peers=peer1,peer2,peer3)
branches=(--group branches=net.head1,net.head2,net.head3 --group mean-branches=mean.head1,mean.head2,mean.head3)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
compare() { "$bin" compare "$@"; }
mkdir -p "$out/peers" "$out/branches" "$out/branches4"
compare "${peer_dirs[@]/#/$runs/}" "${peers[@]}" --select last:5 --baseline "$base_peers" --out "$out/peers" > /dev/null
compare "${branch_dirs[@]/#/$runs/}" "${branches[@]}" --select last:5 --baseline "$base_branches" --out "$out/branches" > /dev/null
compare "${branch4_dirs[@]/#/$runs/}" "${branches[@]}" --select last:5 --baseline "$base_branches4" --out "$out/branches4" > /dev/null
cp "$out/peers/compare.json" "$tmp/peers-last5.json"
cp "$out/branches/compare.json" "$tmp/branches-last5.json"
cp "$out/branches4/compare.json" "$tmp/branches4-last5.json"
compare "${peer_dirs[@]/#/$runs/}" "${peers[@]}" --select best-val --baseline "$base_peers" --json > "$tmp/peers-bestval.json"
compare "${branch_dirs[@]/#/$runs/}" "${branches[@]}" --select best-val --baseline "$base_branches" --json > "$tmp/branches-bestval.json"
compare "${branch4_dirs[@]/#/$runs/}" "${branches[@]}" --select best-val --baseline "$base_branches4" --json > "$tmp/branches4-bestval.json"
# inference models against one independent network (the mean independent peer / branch)
compare "${peer_dirs[@]/#/$runs/}" "${peers[@]}" --select last:5 --baseline "$base_peers:peers" --json > "$tmp/peers-inference.json"
compare "${branch_dirs[@]/#/$runs/}" "${branches[@]}" --select last:5 --baseline "$base_branches:branches" --json > "$tmp/branches-inference.json"
compare "${branch4_dirs[@]/#/$runs/}" "${branches[@]}" --select last:5 --baseline "$base_branches4:branches" --json > "$tmp/branches4-inference.json"
w() { $py welch "$tmp/$1.json" "$2" "$3"; }
m() { $py mean "$tmp/$1.json" "$2" "$3"; }
verdict() { $py verdict "$tmp/$1.json" "$2" "$3"; }
# check_line VERDICT TEXT: the check's line from its verdict (reproduces, or why not)
check_line() {
    if [ "$1" = reproduces ]; then echo "check passed: $2"; else echo "CHECK FAILED: $2 — ${1#does not reproduce here (}" | sed 's/)$//'; fi
}
declare -A base_sps
for f in "${!base_of[@]}"; do base_sps[$f]=$(steps_per_s "$runs/${folder[${base_of[$f]}]}"); done
cost() { awk -v b="$1" -v s="$(steps_per_s "$runs/$2")" 'BEGIN { printf "%.2f", b / s }'; }

# name | folder | family (peers / branches) | figure's group | inference node | its label | network
rows=(
    "independent (CE only)|independent|peers|peers|ensemble|ensemble of the peers|3 × CNN"
    "DML|dml|peers|peers|ensemble|ensemble of the peers|3 × CNN"
    "DML, sequential updates|dml-sequential|peers|peers|ensemble|ensemble of the peers|3 × CNN"
    "DML_e|dml-e|peers|peers|ensemble|ensemble of the peers|3 × CNN"
    "KDCL (min-logit)|kdcl|peers|peers|ensemble|ensemble of the peers|3 × CNN"
    "OKDDip, the paper's attention (other peers)|okddip|peers|peers|leader|group leader|3 × CNN + leader"
    "OKDDip, the authors' code (self included)|okddip-self|peers|peers|leader|group leader|3 × CNN + leader"
    "online KD with a teacher|online-kd|peers|peers|teacher|the teacher (CNN 64-64-64)|3 × CNN + teacher"
    "SwitOKD (one peer)|switokd|peers|peers|peer1|the peer (student)|CNN + teacher"
    "KTG, best of 8 gate searches|ktg|peers|peers|ensemble|ensemble of the peers|3 × CNN"
    "independent branches (CE only)|independent-branches|branches|branches|net|branch mean|branched CNN"
    "ONE|one|branches|branches|net|gated ensemble|branched CNN + gate"
    "CL-ILR|cl-ilr|branches|branches|net|branch mean|branched CNN"
    "PCL|pcl|branches|branches|mean-branches|temporal mean's branches (EMA)|branched CNN + fusion + EMA"
    "independent 4 branches (CE only)|independent-branches-4|branches4|branches|net|branch mean|CNN branched 4"
    "OKDDip on branches, the authors' code (shared projections, self included)|okddip-branches|branches4|branches|net.head4|the group leader (branch 4)|CNN branched 3 + leader"
)
# per_row CMD: "- <method>: <what benchmark_online.py CMD says of its runs>." for each row where it
# says something
per_row() {
    for r in "${rows[@]}"; do
        IFS='|' read -r name key _ <<< "$r"
        v=$($py "$1" "$runs/${folder[$key]}")
        if [ -n "$v" ]; then echo "- $name: $v."; fi
    done
}
# the networks at chance per method, read once for the table and the sentence under it
declare -A chance
for r in "${rows[@]}"; do
    IFS='|' read -r _ key _ <<< "$r"
    chance[$key]=$($py collapsed "$runs/${folder[$key]}")
done
table=$(
    echo "| method | network | lr | mean peer / branch, last 5 epochs (%) | − baseline [95 % CI], Welch p | at the validation-selected epoch (%) | − baseline [95 % CI], Welch p | networks at chance | cost per step | seeds |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    for r in "${rows[@]}"; do
        IFS='|' read -r name key fam group _ _ net <<< "$r"
        dir=${folder[$key]}
        echo "| $name | $net | ${lr[$key]} | $(m "$fam-last5" "$dir" "$group") | $(w "$fam-last5" "$dir" "$group") | $(m "$fam-bestval" "$dir" "$group") | $(w "$fam-bestval" "$dir" "$group") | ${chance[$key]} | $(cost "${base_sps[$fam]}" "$dir") | $(seeds "$runs/$dir") |"
    done
)
inference=$(
    echo "| method | inference model | its test accuracy, last 5 epochs (%) | − one independent network [95 % CI], Welch p |"
    echo "|---|---|---|---|"
    for r in "${rows[@]}"; do
        IFS='|' read -r name key fam _ node label _ <<< "$r"
        dir=${folder[$key]}
        echo "| $name | $label | $(m "$fam-inference" "$dir" "$node") | $(w "$fam-inference" "$dir" "$node") |"
    done
)
fail=0
checks=$(
    for r in "${rows[@]}"; do
        IFS='|' read -r name key fam group _ _ _ <<< "$r"
        if [ "$key" = "${base_of[$fam]}" ]; then continue; fi
        dir=${folder[$key]}
        what=peer
        if [ "$fam" != peers ]; then what=branch; fi
        line="$name, mean $what against the ${base_name[$fam]}: $(w "$fam-last5" "$dir" "$group") on the last 5 epochs ($(w "$fam-bestval" "$dir" "$group") at the validation-selected epoch)"
        check_line "$(verdict "$fam-last5" "$dir" "$group")" "$line"
    done
    for k in okddip okddip-self; do
        d=${folder[$k]}
        check_line "$(verdict peers-inference "$d" leader)" "OKDDip's group leader ($k) against one independent CNN: $(w peers-inference "$d" leader) on the last 5 epochs"
    done
    d=${folder[okddip-branches]}
    check_line "$(verdict branches4-inference "$d" net.head4)" "OKDDip's group leader on branches (okddip-branches) against one independent branch of the 4-branch CNN: $(w branches4-inference "$d" net.head4) on the last 5 epochs"
)
grep -q '^CHECK FAILED' <<< "$checks" && fail=1
pre_peers=$(w peers-inference "$base_peers" ensemble)
pre_branches=$(w branches-inference "$base_branches" net)
pre_verdict() { case "$($py verdict "$tmp/$1.json" "$2" "$3")" in reproduces) echo "holds" ;; *) echo "does not hold" ;; esac; }
alpha=$($py last "$runs/${folder[okddip-self]}" peer1 self_attention train)
alpha_first=$($py first-above "$runs/${folder[okddip-self]}" peer1 self_attention train 0.95)
entropy_self=$($py last "$runs/${folder[okddip-self]}" peer1 attention_entropy train)
entropy_other=$($py last "$runs/${folder[okddip]}" peer1 attention_entropy train)
alpha_branches=$($py last "$runs/${folder[okddip-branches]}" net self_attention train)
alpha_branches_first=$($py first-above "$runs/${folder[okddip-branches]}" net self_attention train 0.95)
entropy_branches=$($py last "$runs/${folder[okddip-branches]}" net attention_entropy train)
agree() { $py last "$runs/${folder[$1]}" net head_agreement test; }
"$bin" plot "$runs/${folder[okddip-self]}/seed-0" "$runs/${folder[okddip]}/seed-0" > /dev/null
cp "$runs/${folder[okddip-self]}/seed-0/charts/terms.png" "$out/okddip-self-terms.png"
cp "$runs/${folder[okddip]}/seed-0/charts/terms.png" "$out/okddip-terms.png"
{
    echo "# Online distillation methods on MNIST-1D, one network family"
    echo
    echo "The protocol and the checks below were committed before the runs: [PROTOCOL.md](PROTOCOL.md)."
    echo "Each method's initial learning rate is chosen on the validation split (seeds 0–2, mean"
    echo "validation accuracy of its peers or branches over the last 5 epochs, a diverged run scoring 0):"
    echo
    echo "| method | validation score at lr 0.01; 0.03; 0.1 (%) | chosen |"
    echo "|---|---|---|"
    for r in "${rows[@]}"; do
        IFS='|' read -r name key _ <<< "$r"
        echo "| $name | ${lr_scores[$key]} | ${lr[$key]} |"
    done
    echo
    edge=$(for r in "${rows[@]}"; do
        IFS='|' read -r name key _ <<< "$r"
        if [ "${lr[$key]}" = "${rates[0]}" ] || [ "${lr[$key]}" = "${rates[-1]}" ]; then echo "$name (${lr[$key]})"; fi
    done | joined)
    if [ -n "$edge" ]; then
        echo "At an edge of the grid fixed in the protocol: $edge — a wider grid might have chosen"
        echo "otherwise for these."
        echo
    fi
    echo "## Preconditions"
    echo
    echo "A method that distils from an ensemble can only gain where the ensemble knows more than"
    echo "its members:"
    echo
    echo "- the independent peers' ensemble against one independent peer: $pre_peers — $(pre_verdict peers-inference "$base_peers" ensemble);"
    echo "- the independent branches' mean (the branched CNN's output) against one of its branches: $pre_branches — $(pre_verdict branches-inference "$base_branches" net);"
    echo "- the branches' agreement on the test split at the last epoch (fraction of samples where all three"
    echo "  predict the same class): independent branches $(agree independent-branches), ONE $(agree one), CL-ILR $(agree cl-ilr), PCL $(agree pcl)."
    echo
    echo "## Mean peer or branch against its independent baseline"
    echo
    echo "$table"
    echo
    echo "Per seed, the figure is the mean over the three peers (SwitOKD: its one peer) or branches of"
    echo "their test accuracy averaged over the last 5 epochs, or taken at each network's epoch of best"
    echo "validation accuracy; the difference is to the same figure of the independent networks (CNN"
    echo "peers, the branched CNN's branches, or for OKDDip on branches branches 1–3 of the 4-branch CNN),"
    echo "with Welch's 95 % interval and p over the seeds. Cost per"
    echo "step: the independent baseline's mean training steps/s divided by the method's (wall clock of the"
    echo "runs themselves on this 2-core machine: approximate). Networks at chance: the peers or branches"
    echo "of the complete runs whose last-epoch test accuracy is under 20 % (10 classes): networks that"
    echo "stopped learning, which the mean above includes."
    echo
    dead=$(for r in "${rows[@]}"; do
        IFS='|' read -r name key _ <<< "$r"
        if [ "${chance[$key]%% *}" != 0 ]; then echo "$name (${chance[$key]})"; fi
    done | joined)
    if [ -n "$dead" ]; then
        echo "**Networks at chance** — $dead — ended at chance accuracy at the rate chosen for their"
        echo "method on the validation split: networks the optimiser stopped, which the means above include."
        echo
    fi
    # which methods a baseline is compared with at another rate than its own
    apart=$(for r in "${rows[@]}"; do
        IFS='|' read -r name key fam _ <<< "$r"
        base=${base_of[$fam]}
        if [ "$key" = "$base" ]; then continue; fi
        if [ "${lr[$key]}" != "${lr[$base]}" ]; then echo "$name (${lr[$key]}, its baseline ${lr[$base]})"; fi
    done | joined)
    if [ -n "$apart" ]; then
        echo "**Rates.** Each method and each baseline train at the rate chosen for them on the validation"
        echo "split, as the protocol fixes, so some differences above compare two rates: $apart."
        echo "Such a difference is the method at its best rate of the grid against the baseline at its own:"
        echo "a method whose best is a lower rate than its baseline's is behind for its rate as much as for"
        echo "its method, and every row of a family inherits its baseline's one choice, made on 3 seeds"
        echo "(the baselines' validation scores: independent peers ${lr_scores[independent]}; independent"
        echo "branches ${lr_scores[independent-branches]}; independent 4 branches ${lr_scores[independent-branches-4]})."
        echo
    fi
    diverged=$(per_row diverged)
    if [ -n "$diverged" ]; then
        echo "Diverged runs are left out of the figures above (their seeds are not in the count) and"
        echo "listed here, with the node whose loss stopped being finite:"
        echo
        echo "$diverged"
        echo
    fi
    fell=$(per_row fell)
    if [ -n "$fell" ]; then
        echo "**Networks that fell.** At the chosen rates, these peers or branches lost more than 30"
        echo "points of test accuracy within training (their best so far → the low, then their last epoch):"
        echo "optimiser blow-ups, which the means above include and a high standard deviation shows."
        echo
        echo "$fell"
        echo
    fi
    echo "## Inference models"
    echo
    echo "$inference"
    echo
    echo "Each against one independent network (the mean independent peer, or branch), same figure."
    echo
    echo "## OKDDip's attention"
    echo
    echo "With the peer itself among the attended (the authors' code), the self-attention α_ii of peer1 at"
    echo "the last epoch is $alpha (mean over seeds; first epoch above 0.95: $alpha_first), the attention's"
    echo "entropy $entropy_self nats (ln 3 = 1.099 for three members weighted alike)."
    if awk -v a="$alpha" 'BEGIN { exit !(a > 0.95) }'; then
        echo "The attention has collapsed onto the peer itself: its target t_i = Σ_j α_ij z_j is its own"
        echo "output, and its distillation term ≈ 0 (the runs warn)."
    else
        echo "The attention did not collapse onto the peer itself here (α_ii ≤ 0.95)."
    fi
    echo "With the other peers only (the paper's wording) the entropy is $entropy_other nats (ln 2 = 0.693"
    echo "for two peers weighted alike)."
    echo "On the branches of one network, as the authors run it (one projection pair shared, nothing"
    echo "detached), the mean self-attention α_mm of the peer branches at the last epoch is $alpha_branches"
    echo "(first epoch above 0.95: $alpha_branches_first), the entropy $entropy_branches nats."
    if awk -v a="$alpha_branches" 'BEGIN { exit !(a > 0.95) }'; then
        echo "It collapsed too: after that its attention term is ≈ 0, and what the row gains over the"
        echo "independent 4-branch CNN (the same network, cross-entropy only) comes from the attention term"
        echo "before the collapse and from the leader's term, whose gradient reaches the shared trunk."
    fi
    echo "Per-epoch terms and attention of seed 0: [authors' form](okddip-self-terms.png),"
    echo "[paper's form](okddip-terms.png)."
    echo
    echo "## Checks"
    echo
    outcomes "$checks"
    echo
    echo "The literature's ordering (CIFAR-100, ResNet-32, top-1 error, MCL-OKD's table): baseline"
    echo "28.91, DML 24.92, ONE 25.74, OKDDip 25.76 — every online method well ahead of independent"
    echo "training. The table above gives this task's."
    echo
    echo "KTG's chosen gates (\`$ktg\`): $point."
    echo
    echo "SwitOKD's teacher paused (expert mode) in $(cat "$runs/${folder[switokd]}"/seed-*/metrics.csv | awk -F, '$5 == "expert_mode" { s += $6; n++ } END { printf "%.1f", 100 * s / n }') % of the steps (mean over epochs and seeds)."
    echo
    echo "![peer methods](peers/compare.png)"
    echo
    echo "![branch methods](branches/compare.png)"
    echo
    echo "![OKDDip on branches](branches4/compare.png)"
    echo
    echo "Full tables (every node; mean test accuracy of the last 5 epochs, with the final, validation-"
    echo "selected and best test accuracy): [peer methods](peers/compare.md), [branch methods](branches/compare.md),"
    echo "[OKDDip on branches](branches4/compare.md)."
    echo
    provenance
} > "$out/README.md"
cat "$out/README.md"
all_passed "$checks"
