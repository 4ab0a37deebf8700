#!/bin/sh
# English text for the shipped model's language modelling: Debian's `fortunes` collection
# (apt-get install fortunes), quotations and jokes, without the ASCII-art files and the '%'
# separators. Writes data/text/fortunes.txt (not committed: it is regenerated from the package).
set -eu
src=/usr/share/games/fortunes
out=${1:-data/text/fortunes.txt}
[ -d "$src" ] || { echo "$src missing: apt-get install fortunes" >&2; exit 1; }
mkdir -p "$(dirname "$out")"
for f in "$src"/*; do
  case "$f" in *.dat|*.u8|*/art|*/ascii-art) continue;; esac
  grep -v '^%$' "$f" | tr -d '\r'
done >"$out.tmp"
mv "$out.tmp" "$out"
wc -c "$out"
