# Helpers for the reproduction scripts: read `cohort compare`'s Markdown table ($out/compare.md).
# acc EXPERIMENT NODE   -> "mean ± std" of the final test accuracy (%)
# mean EXPERIMENT NODE  -> its mean
# check CONDITION TEXT  -> prints "check passed: TEXT" if the awk CONDITION holds, else
#                          "CHECK FAILED: TEXT" and sets fail=1 (the script exits with $fail)
acc() { awk -F'|' -v e="$1" -v n="$2" '$2 ~ "^ "e" $" && $3 ~ "^ "n" $" { gsub(/^ +| +$/, "", $4); print $4 }' "$out/compare.md"; }
mean() { acc "$1" "$2" | awk '{ print $1 }'; }
check() { if awk "BEGIN { exit !($1) }"; then echo "check passed: $2"; else echo "CHECK FAILED: $2"; fail=1; fi; }
# check_close FILE A B  -> for each node of experiment A in the compare table FILE, a line
#                          "check passed: …" or "CHECK FAILED: …": its mean final test accuracy
#                          under B is within max(2 × the larger of the two stds, 1.0) points of A's
#                          (the same runs on two backends or devices; bit equality not expected)
check_close() {
    awk -F'|' -v a="$2" -v b="$3" '
        function trim(s) { gsub(/^ +| +$/, "", s); return s }
        { e = trim($2); n = trim($3) }
        e == a || e == b {
            split($4, v, "±"); m[e, n] = v[1] + 0; s[e, n] = v[2] + 0
            if (e == a) order[++k] = n
        }
        END {
            if (k == 0) { printf "CHECK FAILED: no rows for %s in the table\n", a; exit }
            for (i = 1; i <= k; i++) {
                n = order[i]
                if (!((b, n) in m)) { printf "CHECK FAILED: %s has no row for %s\n", b, n; continue }
                d = m[b, n] - m[a, n]; d = d < 0 ? -d : d
                tol = 2 * (s[a, n] > s[b, n] ? s[a, n] : s[b, n]); if (tol < 1) tol = 1
                printf "%s: %s: %s %.2f, %s %.2f, |difference| %.2f %s %.2f\n", (d <= tol ? "check passed" : "CHECK FAILED"), n, a, m[a, n], b, m[b, n], d, (d <= tol ? "≤" : ">"), tol
            }
        }' "$1"
}
