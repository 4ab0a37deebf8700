#!/usr/bin/env bash
# `make demo`: the main job, on the shipped model (models/moa-tiny).
#   1. moa compress at KV density 0.5 and 0.25 (stages saved in demo/work and reused on re-runs)
#   2. LongEval retrieval with held-out keys at line counts spanning the trained context, for
#      dense, StreamingLLM, H2O and MoA at both densities, through the same engine
#   3. decode speed and KV memory of each method at the trained context (moa bench)
#   4. demo/report.html (heatmaps, curves, span map, speed table) and a table on stdout
# Environment: DEMO_SAMPLES (prompts per line count, default 10), DEMO_THREADS (default: all).
set -euo pipefail
cd "$(dirname "$0")/.."
MOA=${MOA:-build/bin/moa}
MODEL=${DEMO_MODEL:-models/moa-tiny}
OUT=demo
SAMPLES=${DEMO_SAMPLES:-10}
THREADS=${DEMO_THREADS:-0}
mkdir -p "$OUT/results"
step() { printf '\n== [%s] %s\n' "$(date +%H:%M:%S)" "$*"; }

step "model"
"$MOA" info -m "$MODEL"
CTX=$("$MOA" info -m "$MODEL" --json | sed -E 's/.*"max_position":([0-9]+).*/\1/')
# Line counts from 4 up to the largest record that fits the trained context (~19 tokens a line,
# ~110 tokens of instructions and question, 32 tokens of answer budget).
MAXL=$(( (CTX - 162) / 20 ))
LINES=$(awk -v m="$MAXL" 'BEGIN{n=5; for(i=0;i<n;i++){l=int(4+(m-4)*i/(n-1)); printf "%s%d", (i?",":""), l}}')
echo "trained context $CTX tokens; LongEval line counts $LINES; $SAMPLES prompts each (held-out keys)"

for d in 0.5 0.25; do
  step "moa compress --density $d"
  "$MOA" compress -m "$MODEL" --density "$d" --out "$OUT/plan-$d.json" --work "$OUT/work" --threads "$THREADS"
done

runs=()
evaluate() {  # name, attention options...
  local name=$1; shift
  step "eval retrieval: $name"
  "$MOA" eval retrieval -m "$MODEL" --lines "$LINES" --samples "$SAMPLES" --threads "$THREADS" "$@" --json \
    > "$OUT/results/$name.json"
  runs+=("$OUT/results/$name.json")
}
evaluate dense
for d in 0.5 0.25; do
  evaluate "streaming-$d" --streaming "$d"
  evaluate "h2o-$d" --h2o "$d"
  evaluate "moa-$d" --plan "$OUT/plan-$d.json"
done

step "bench: decode speed and KV memory at context $CTX"
benches=()
bench() {  # name, attention options...
  local name=$1; shift
  "$MOA" bench -m "$MODEL" --ctx $((CTX - 65)) --gen 64 --threads "$THREADS" "$@" --json > "$OUT/results/bench-$name.json"
  benches+=("$OUT/results/bench-$name.json")
}
bench dense
for d in 0.5 0.25; do
  bench "streaming-$d" --streaming "$d"
  bench "moa-$d" --plan "$OUT/plan-$d.json"
done
for f in "${benches[@]}"; do
  printf '%-28s ' "$(basename "$f" .json)"
  sed -E 's/.*"decode_tok_s":([0-9.e+]+).*"kv_bytes":([0-9]+).*/decode \1 tok\/s  KV \2 bytes/' "$f"
done

step "report"
"$MOA" report --table --results "${runs[@]}" --bench "${benches[@]}" --plan "$OUT/plan-0.5.json" -m "$MODEL" \
  --title "MoA on $(basename "$MODEL")" --out "$OUT/report.html"
echo "wrote $OUT/report.html"
