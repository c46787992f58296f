#!/usr/bin/env bash
# Cuts the FOLDOC category task used by few-shot classification tests and experiments
# (tests/data/foldoc-categories.jsonl) from the full FOLDOC corpus (../shared/data/foldoc.jsonl, GNU FDL).
# Task: entry text → its first subject category among the corpus's eight most frequent first categories
# (language, networking, programming, jargon, operating system, hardware, company, communications).
# Deterministic: of the entries that have such a category and at least 40 characters of text (exact duplicate texts
# dropped, the first kept), every 2nd one;
# texts cut to their first 300 characters at a word boundary to keep the file modest. Needs jq.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
src=${1:-$here/../shared/data}
out=$here/tests/data
[ -r "$src/foldoc.jsonl" ] || { echo "extract-foldoc-categories: $src/foldoc.jsonl not found; pass the corpus folder" >&2; exit 1; }
top='["language","networking","programming","jargon","operating system","hardware","company","communications"]'
jq -c --argjson top "$top" '
  . as $e
  | ([$e.categories[] | select(. as $c | $top | index($c))] | first) as $lab
  | select($lab != null and ($e.text | length) >= 40)
  | {term: $e.term,
     text: (if ($e.text | length) > 300 then ($e.text[0:300] | sub(" [^ ]*$"; "")) else $e.text end),
     label: $lab}' "$src/foldoc.jsonl" \
  | jq -c -s 'reduce .[] as $x ({seen: {}, out: []}; if .seen[$x.text] then . else .seen[$x.text] = true | .out += [$x] end) | .out[]' \
  | awk 'NR % 2 == 1' > "$out/foldoc-categories.jsonl"
cp "$src/foldoc.COPYRIGHT" "$out/foldoc.COPYRIGHT"
wc -lc "$out/foldoc-categories.jsonl"
jq -r .label "$out/foldoc-categories.jsonl" | sort | uniq -c | sort -rn
