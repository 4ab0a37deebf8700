#!/bin/bash
# Does llama.cpp load what `moa convert` writes, and compute what moa computes?
#
#   scripts/check_gguf_llamacpp.sh [LLAMA_CPP_BUILD_BIN] [MODEL_DIR] [TYPES...]
#   (defaults: /work/llamacpp/build/bin, models/moa-tiny, f32 f16 q8_0 q4_0 q6_k q4_k_m)
#
# For each type: convert, then compare llama-tokenize's ids with `moa tokenize` and llama-cli's
# greedy continuation with `moa generate --temp 0` (same prompt, one thread). Prints one line per
# type; exits 1 when llama.cpp fails to load a file or the tokens differ. Greedy text may drift
# after some tokens for K-quant files: both engines round activations to 8 bits for their
# quantised dot products, llama.cpp in 256-value Q8_K blocks for K-quants, moa in its own blocks.
set -euo pipefail
BIN=${1:-/work/llamacpp/build/bin}
MODEL=${2:-models/moa-tiny}
shift $(( $# > 2 ? 2 : $# )) || true
TYPES=${*:-f32 f16 q8_0 q4_0 q6_k q4_k_m}
MOA=${MOA:-build/bin/moa}
PROMPT="The key of line 3 is"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
status=0
for t in $TYPES; do
  f="$TMP/model-$t.gguf"
  "$MOA" convert -m "$MODEL" --out "$f" --type "$t" 2>/dev/null >/dev/null
  ours=$("$MOA" tokenize -m "$f" -p "$PROMPT" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["ids"])')
  if ! theirs=$("$BIN/llama-tokenize" -m "$f" -p "$PROMPT" --ids --no-bos 2>/dev/null | tail -1); then
    echo "$t: llama.cpp failed to load $f"; status=1; continue
  fi
  gen_theirs=$("$BIN/llama-cli" -m "$f" -p "$PROMPT" -n 16 --temp 0 -no-cnv -t 1 --no-warmup \
    2>/dev/null </dev/null | tr -s '\n ' ' ' | sed "s/^$PROMPT//; s/^ *//; s/ *$//")
  gen_ours=$("$MOA" generate -m "$f" -p "$PROMPT" -n 16 --temp 0 -t 1 2>/dev/null | tr -s '\n ' ' ' |
    sed 's/^ *//; s/ *$//')
  same_tok=$([ "$ours" == "$theirs" ] && echo yes || echo NO)
  same_gen=$([ "$gen_ours" == "$gen_theirs" ] && echo yes || echo differs)
  [ "$same_tok" == yes ] || status=1
  echo "$t: tokens same: $same_tok; greedy same: $same_gen | moa: $gen_ours | llama.cpp: $gen_theirs"
done
exit $status
