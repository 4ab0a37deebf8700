#!/usr/bin/env bash
# The recipe of models/moa-tiny (see its README): tokenizer, then training stages, each a
# separate `moa train` run started from the previous stage's weights (--init) and resumable
# (re-running this script continues an interrupted stage with --resume, bit for bit).
# Needs Debian's `fortunes` package for the English text (scripts/make_text_corpus.sh).
# Environment: RUNS (stage directory, default runs/moa-tiny), THREADS (default 1: leaves a core
# free on a 2-core machine; OpenMP barriers with a busy second core cost far more than they gain).
set -euo pipefail
cd "$(dirname "$0")/.."
MOA=build/bin/moa
RUNS=${RUNS:-runs/moa-tiny}
THREADS=${THREADS:-1}
mkdir -p "$RUNS"
[ -f data/text/fortunes.txt ] || scripts/make_text_corpus.sh
[ -f "$RUNS/tokenizer.json" ] || "$MOA" tokenizer train --text data/text/fortunes.txt --longeval 4000 \
  --vocab 2048 --out "$RUNS/tokenizer.json"

stage() {  # name, init ("" = from scratch), steps, warm-up steps, seq, lr, data spec[, stop-at]
  local name=$1 init=$2 steps=$3 warmup=$4 seq=$5 lr=$6 data=$7 stop=${8:-$3}
  local dir="$RUNS/$name"
  if [ -f "$dir/train_step.txt" ] && [ "$(cat "$dir/train_step.txt")" = "$stop" ]; then return; fi
  local from=(--config scripts/moa_tiny_config.json --tokenizer "$RUNS/tokenizer.json")
  [ -n "$init" ] && from=(--init "$RUNS/$init")
  local go=("${from[@]}")
  [ -f "$dir/train_state.safetensors" ] && go=(--resume)
  "$MOA" train "${go[@]}" --data "$data" --steps "$steps" --warmup "$warmup" --batch 8 --seq "$seq" --lr "$lr" \
    --stop-at "$stop" --eval-every 50 --save-every 50 --out "$dir" --threads "$THREADS"
}
TEXT=text=data/text/fortunes.txt
# Note: s1 ran before the induction copies got random lengths and gaps (commit bd4cef3); with the
# current generator it gives different, not identical, weights.
stage s1 "" 1500 75 512 2e-3 "retrieval:$TEXT,lines=2-16,queries=8,copy=0.25,passkey=0.1,textonly=0.05"
# s2 was stopped at step 900 of its 1200-step schedule, when its answer accuracy had plateaued.
stage s2 s1 1200 30 512 2e-3 "retrieval:$TEXT,lines=2-16,queries=8,copy=0.3,passkey=0.15,textonly=0.05" 900
# s3: back to 1-4 lines (a one-line record is a pure induction copy) to provoke the phase change.
# s3 was stopped at step 400 of 800 (end of the session's training budget).
stage s3 s2 800 20 512 2e-3 "retrieval:$TEXT,lines=1-4,queries=8,copy=0.3,passkey=0.15,textonly=0.05" 400
