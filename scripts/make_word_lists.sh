#!/bin/sh
# Builds the key vocabulary of the LongEval generator: lowercase ASCII words of Debian's
# wamerican list that WordNet (Debian wordnet-base) lists as adjectives / nouns, 3-12 letters.
# Run once; the lists are committed under data/words/ so generators need no extra package.
set -eu
out=${1:-data/words}
mkdir -p "$out"
dict=/usr/share/dict/american-english
for pos in adj noun; do
  grep -v '^ ' /usr/share/wordnet/index.$pos | cut -d' ' -f1 | grep -E '^[a-z]{3,12}$' | sort -u >/tmp/wn.$pos
done
grep -E '^[a-z]{3,12}$' "$dict" | sort -u >/tmp/wa.words
comm -12 /tmp/wa.words /tmp/wn.adj >"$out/adjectives.txt"
comm -12 /tmp/wa.words /tmp/wn.noun | comm -23 - /tmp/wn.adj >"$out/nouns.txt"
wc -l "$out"/adjectives.txt "$out"/nouns.txt
