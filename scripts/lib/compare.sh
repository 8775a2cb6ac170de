# Helpers for the reproduction scripts: read `cohort compare`'s data ($out/compare.json, written
# beside compare.md) through scripts/lib/compare.py, never the Markdown table.
# acc EXPERIMENT NODE   -> "mean ± std" of the final test accuracy (%)
# mean EXPERIMENT NODE  -> its mean
# check CONDITION TEXT  -> prints "check passed: TEXT" if the awk CONDITION holds, else
#                          "CHECK FAILED: TEXT" and sets fail=1 (the script exits with $fail)
compare_py="$(dirname "${BASH_SOURCE[0]}")/compare.py"
acc() { python3 "$compare_py" acc "$out/compare.json" "$1" "$2"; }
mean() { python3 "$compare_py" mean "$out/compare.json" "$1" "$2"; }
check() { if awk "BEGIN { exit !($1) }"; then echo "check passed: $2"; else echo "CHECK FAILED: $2"; fail=1; fi; }
# check_close FILE A B  -> for each node of experiment A in the comparison FILE (compare.json), a
#                          line "check passed: …" or "CHECK FAILED: …": its mean final test
#                          accuracy under B is within max(2 × the larger of the two stds, 1.0)
#                          points of A's (the same runs on two backends or devices; bit equality
#                          not expected)
check_close() { python3 "$compare_py" close "$1" "$2" "$3"; }
# runs_json ROOT -> `cohort compare --json` of every experiment folder under ROOT (the folders
#                   holding seed-*/ runs)
runs_json() { "$bin" compare --json $(find "$1" -type d -name 'seed-*' -printf '%h\n' | sort -u); }
