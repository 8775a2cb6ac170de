# Helpers for the reproduction scripts: read `cohort compare`'s Markdown table ($out/compare.md).
# acc EXPERIMENT NODE   -> "mean ± std" of the final test accuracy (%)
# mean EXPERIMENT NODE  -> its mean
# check CONDITION TEXT  -> prints "check passed: TEXT" if the awk CONDITION holds, else
#                          "CHECK FAILED: TEXT" and sets fail=1 (the script exits with $fail)
acc() { awk -F'|' -v e="$1" -v n="$2" '$2 ~ "^ "e" $" && $3 ~ "^ "n" $" { gsub(/^ +| +$/, "", $4); print $4 }' "$out/compare.md"; }
mean() { acc "$1" "$2" | awk '{ print $1 }'; }
check() { if awk "BEGIN { exit !($1) }"; then echo "check passed: $2"; else echo "CHECK FAILED: $2"; fail=1; fi; }
