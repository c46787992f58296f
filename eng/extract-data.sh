#!/usr/bin/env bash
# Regenerates the small real-data subsets under tests/data from the full corpora (../shared/data, made
# from Debian's dict-foldoc and wordnet-base packages). Deterministic: every k-th record, no randomness.
# The subsets carry their licence notices beside them; never commit the full corpora.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
src=${1:-$here/../shared/data}
out=$here/tests/data
[ -r "$src/foldoc.jsonl" ] || { echo "extract-data: $src/foldoc.jsonl not found; pass the corpus folder as the first argument" >&2; exit 1; }
mkdir -p "$out"
# FOLDOC: every 8th entry (1,501 of 12,004), keeping the whole line (term, text, categories).
awk 'NR % 8 == 1' "$src/foldoc.jsonl" > "$out/foldoc-subset.jsonl"
cp "$src/foldoc.COPYRIGHT" "$out/foldoc.COPYRIGHT"
# WordNet glosses (general English, the forgetting probe): every 50th synset.
awk 'NR % 50 == 1' "$src/wordnet-glosses.txt" > "$out/wordnet-glosses-subset.txt"
cp "$src/wordnet/COPYRIGHT" "$out/wordnet.COPYRIGHT" 2>/dev/null || cp "$src/wordnet/LICENSE" "$out/wordnet.COPYRIGHT"
wc -l "$out/foldoc-subset.jsonl" "$out/wordnet-glosses-subset.txt"
