# Helpers for the reproduction scripts: read `cohort compare`'s Markdown table ($out/compare.md).
# acc EXPERIMENT NODE   -> "mean ± std" of the final test accuracy (%)
# mean EXPERIMENT NODE  -> its mean
acc() { awk -F'|' -v e="$1" -v n="$2" '$2 ~ "^ "e" $" && $3 ~ "^ "n" $" { gsub(/^ +| +$/, "", $4); print $4 }' "$out/compare.md"; }
mean() { acc "$1" "$2" | awk '{ print $1 }'; }
