# Helpers of scripts/benchmark-online.sh: per-seed summaries read straight from the runs'
# metrics.csv (awk), and the runs' facts from `cohort compare --json` (scripts/lib/compare.py).

# final_mean CSV SPLIT NODE_REGEX: mean accuracy (%) at the final epoch over the nodes whose id
# matches NODE_REGEX (anchored), on SPLIT
final_mean() {
    awk -F, -v s="$2" -v re="^($3)\$" '
        $4 == s && $5 == "accuracy" && $3 ~ re { acc[$2, $3] = $6; if ($2 > last) last = $2 }
        END { n = 0; t = 0; for (k in acc) { split(k, p, SUBSEP); if (p[1] == last) { t += acc[k]; n++ } } if (n) printf "%.4f", 100 * t / n }' "$1"
}

# final_max CSV SPLIT NODE_REGEX: the best of those nodes' final accuracies (%)
final_max() {
    awk -F, -v s="$2" -v re="^($3)\$" '
        $4 == s && $5 == "accuracy" && $3 ~ re { acc[$2, $3] = $6; if ($2 > last) last = $2 }
        END { m = -1; for (k in acc) { split(k, p, SUBSEP); if (p[1] == last && acc[k] > m) m = acc[k] } if (m >= 0) printf "%.4f", 100 * m }' "$1"
}

# mean_sd: "mean ± sd" (sample sd, n − 1) of the numbers on standard input, two decimals
mean_sd() {
    awk '{ x[NR] = $1; s += $1 } END { m = s / NR; for (i = 1; i <= NR; i++) v += (x[i] - m) ^ 2; printf "%.2f ± %.2f", m, (NR > 1 ? sqrt(v / (NR - 1)) : 0) }'
}

# per_seed DIR FUNCTION NODE_REGEX: FUNCTION (final_mean / final_max) on the test split of every
# seed-*/metrics.csv under DIR, one line per seed
per_seed() {
    for f in "$1"/seed-*/metrics.csv; do "$2" "$f" test "$3"; echo; done
}

# steps_per_s DIR: mean training steps/s over every epoch of every seed (each run's summary.json,
# or its log.txt for runs older than that field)
steps_per_s() {
    "$bin" compare --json "$1" | python3 "$compare_py" steps - "$(basename "$1")"
}

# seeds DIR: number of complete runs
seeds() {
    "$bin" compare --json "$1" | python3 -c 'import json, sys; print(json.load(sys.stdin)["experiments"][0]["complete"])'
}

# sweep_point DIR: the grid point of a sweep's run, `a=x, b=y` (from its description)
sweep_point() {
    "$bin" compare --json "$1" | python3 "$compare_py" description - "$(basename "$1")" | sed -n 's/.*\[sweep: \(.*\)\]$/\1/p'
}
