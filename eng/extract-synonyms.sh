#!/usr/bin/env bash
# Derives the compact synonym table that synonym-replacement augmentation ships with
# (src/NicheTune/Augmentation/Resources/wordnet-synonyms.txt.gz) from the Princeton WordNet 3.0 database files
# (Debian's wordnet-base: /usr/share/wordnet, or the project's shared data folder). Deterministic; POSIX awk.
#
# Table, one lemma a line:   lemma<TAB>p:syn,syn,...<TAB>p:...     p in n v a r, ordered by how often WordNet's
#                            tagged corpus (SemCor) saw the lemma in that part of speech (the index's tagsense_cnt),
#                            then by sense count; a part of speech may have no synonyms (it still informs POS guessing).
# Exceptions, one a line:    !p<TAB>inflected<TAB>base   (irregular forms from noun/verb/adj/adv.exc)
# Kept: single-word, purely alphabetic lemmas; synonyms from the lemma's first SENSES senses (WordNet orders senses by
# frequency), single alphabetic words, at most PER_POS per part of speech; lemmas with no synonym at all are dropped.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
src=${1:-$here/../shared/data/wordnet}
out=${2:-$here/src/NicheTune/Augmentation/Resources}
senses=${SENSES:-3}
per_pos=${PER_POS:-8}
[ -r "$src/index.noun" ] || { echo "extract-synonyms: $src/index.noun not found; pass the WordNet dict folder as the first argument" >&2; exit 1; }
mkdir -p "$out"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for pos in noun verb adj adv; do
  case $pos in noun) p=n;; verb) p=v;; adj) p=a;; adv) p=r;; esac
  awk -v p="$p" -v K="$senses" -v M="$per_pos" '
    function hex(s,   i, v) { v = 0; s = tolower(s); for (i = 1; i <= length(s); i++) v = v * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1; return v }
    FNR == 1 { part++ }
    part == 1 && /^[0-9]/ {
      n = hex($4); w = ""
      for (i = 0; i < n; i++) { x = tolower($(5 + 2 * i)); sub(/\(.*$/, "", x); w = w (i ? " " : "") x }
      words[$1] = w; next
    }
    part == 2 && /^[a-z]/ {
      lemma = $1
      if (lemma !~ /^[a-z]+$/) next
      synsets = $3; pcnt = $4; tagged = $(6 + pcnt); first = 7 + pcnt
      out = ""; kept = 0; delete seen
      for (s = 0; s < K && s < synsets; s++) {
        cnt = split(words[$(first + s)], list, " ")
        for (j = 1; j <= cnt && kept < M; j++) {
          x = list[j]
          if (x == lemma || x !~ /^[a-z]+$/ || (x in seen)) continue
          seen[x] = 1; out = out (kept ? "," : "") x; kept++
        }
      }
      printf "%s\t%s\t%d\t%d\t%s\n", lemma, p, tagged, synsets, out
    }' "$src/data.$pos" "$src/index.$pos" >> "$tmp/entries"
  awk -v p="$p" '$1 ~ /^[a-z]+$/ && $2 ~ /^[a-z]+$/ && $1 != $2 { printf "!%s\t%s\t%s\n", p, $1, $2 }' "$src/$pos.exc" >> "$tmp/exc"
done
# One line per lemma: parts of speech by tagged count, then sense count (descending); drop lemmas without any synonym.
LC_ALL=C sort -t "$(printf '\t')" -k1,1 -k3,3nr -k4,4nr -k2,2 "$tmp/entries" | awk -F '\t' '
  function flush() { if (cur != "" && any) print cur line; line = ""; any = 0 }
  $1 != cur { flush(); cur = $1 }
  { line = line "\t" $2 ":" $5; if ($5 != "") any = 1 }
  END { flush() }' > "$tmp/table"
# Keep only exceptions whose base form is in the table.
awk -F '\t' 'NR == FNR { known[$1] = 1; next } ($3 in known)' "$tmp/table" "$tmp/exc" | LC_ALL=C sort > "$tmp/exc.kept"
cat "$tmp/table" "$tmp/exc.kept" | gzip -9 -n > "$out/wordnet-synonyms.txt.gz"
cp "$src/COPYRIGHT" "$out/wordnet.COPYRIGHT"
printf 'lemmas %s, exceptions %s, %s bytes uncompressed, %s bytes gzip\n' "$(wc -l < "$tmp/table")" "$(wc -l < "$tmp/exc.kept")" \
  "$(cat "$tmp/table" "$tmp/exc.kept" | wc -c)" "$(wc -c < "$out/wordnet-synonyms.txt.gz")"
