#!/usr/bin/env bash
# `make demo`: the main job. Until the shipped model (models/moa-tiny) exists this runs the engine
# end to end on a random-weight model of the tiny shape: dense vs StreamingLLM vs a reference-
# shaped plan check, generation and scoring with each attention (dense, StreamingLLM, H2O). Random weights generate noise;
# what the demo shows is that every path runs and what each costs in KV memory.
set -euo pipefail
cd "$(dirname "$0")/.."
MOA=build/bin/moa
OUT=build/demo
mkdir -p "$OUT"
if [ ! -f "$OUT/random-tiny/model.safetensors" ]; then
  "$MOA" init --config scripts/demo_config.json --out "$OUT/random-tiny" --seed 1
fi
"$MOA" info -m "$OUT/random-tiny"
PROMPT="The quick brown fox jumps over the lazy dog. "
TEXT=$(for i in $(seq 1 60); do printf '%s' "$PROMPT"; done)
printf '%s' "$TEXT" > "$OUT/prompt.txt"
for attn in "" "--streaming 0.5" "--streaming 0.25" "--h2o 0.5"; do
  echo "== generate ${attn:-dense} (prompt $(wc -c < "$OUT/prompt.txt") bytes, 32 new tokens, greedy)"
  "$MOA" generate -m "$OUT/random-tiny" -f "$OUT/prompt.txt" -n 32 --temp 0 --ignore-eos $attn --json \
    | python3 -c 'import json,sys; j=json.load(sys.stdin); print("  prompt_tokens", j["prompt_tokens"], "tokens", j["tokens"], "kv_bytes", j["kv_bytes"])'
  echo "== score ${attn:-dense}"
  "$MOA" score -m "$OUT/random-tiny" -f "$OUT/prompt.txt" $attn
done
echo "== a published MoA plan, checked against the model it was made for"
"$MOA" plan check --plan data/moa-reference/plans/meta-llama--Llama-3.2-1B-Instruct/moa_alpha_beta.json \
  --config tests/data/configs/meta-llama--Llama-3.2-1B-Instruct.json
