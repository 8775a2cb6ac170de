# Helpers of scripts/benchmark-online.sh: per-seed summaries read straight from the runs'
# metrics.csv and log.txt (bash + awk only, so that `--report-only` runs anywhere).

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

# steps_per_s DIR: mean training steps/s over every epoch of every seed (from log.txt)
steps_per_s() {
    cat "$1"/seed-*/log.txt | sed -n 's/.* \([0-9.]*\) steps\/s)$/\1/p' | awk '{ s += $1; n++ } END { printf "%.1f", s / n }'
}

# seeds DIR: number of complete runs
seeds() {
    ls "$1"/seed-*/summary.json | wc -l
}
