# Shared by the scripts that write generated blocks of README.md.

# splice NAME FILE: replaces the lines between `<!-- begin NAME -->` and `<!-- end NAME -->`
# in FILE with standard input (the markers stay).
splice() {
    local name=$1 file=$2 body
    body=$(cat)
    BODY="$body" awk -v b="<!-- begin $name -->" -v e="<!-- end $name -->" '
        $0 == b { print; print ENVIRON["BODY"]; skip = 1; next }
        $0 == e { skip = 0 }
        !skip { print }' "$file" > "$file.tmp-splice"
    mv "$file.tmp-splice" "$file"
}
