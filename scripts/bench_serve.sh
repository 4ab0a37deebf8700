#!/usr/bin/env bash
# Serving throughput and time to first token, side by side on one GGUF file: moa serve dense, moa
# serve with a plan (PLAN=...), and llama-server (LLAMA_SERVER=path/to/llama-server) with the
# same slots and per-slot context, at each client count in CLIENTS (one slot per client). Each run
# streams REQUESTS completions per client of MAX_TOKENS tokens (ignore_eos) after a prompt of about
# PROMPT_WORDS words. Prints one JSON line per run (bench/serve_load.mjs) and a table at the end.
# Run on an idle machine: it times.
#   MODEL=tests/data/gguf/llama-quantize/moa-tiny-Q8_0.gguf PLAN=plan-0.25.json \
#   LLAMA_SERVER=/path/llama.cpp/build/bin/llama-server scripts/bench_serve.sh
set -euo pipefail
cd "$(dirname "$0")/.."
model=${MODEL:?set MODEL to a .gguf file}
clients=${CLIENTS:-"1 4 16 64"}
ctx=${CTX:-2048}
max_tokens=${MAX_TOKENS:-64}
requests=${REQUESTS:-4}
threads=${THREADS:-$(nproc)}
words=${PROMPT_WORDS:-300}
out=${OUT:-bench-serve.jsonl}
moa=${MOA:-build/bin/moa}
prompt=$(mktemp)
logs=${LOGS:-bench-serve-logs}  # each server's log, per engine and client count
mkdir -p "$logs"
python3 -c "
import random; random.seed(1)
w='the of a key value line record pass remember number index river stone blue green apple'.split()
print(' '.join(random.choice(w) for _ in range($words)))" >"$prompt"
: >"$out"

wait_up() {  # port
  for _ in $(seq 1 600); do
    curl -sf "http://127.0.0.1:$1/health" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "bench_serve: server on port $1 did not come up" >&2
  return 1
}

run_one() {  # name port pid n
  local line
  line=$(node bench/serve_load.mjs --port "$2" --clients "$4" --requests "$requests" \
    --max-tokens "$max_tokens" --prompt-file "$prompt" --pid "$3")
  echo "{\"engine\": \"$1\", $(echo "$line" | sed 's/^{//')" | tee -a "$out"
}

port=18431
for n in $clients; do
  for engine in moa-dense ${PLAN:+moa-plan} ${LLAMA_SERVER:+llama-server}; do
    case $engine in
      moa-dense) "$moa" serve -m "$model" --port $port --parallel "$n" --ctx-size "$ctx" \
                   --threads "$threads" --dense 2>"$logs/$engine-$n.log" & ;;
      moa-plan)  "$moa" serve -m "$model" --port $port --parallel "$n" --ctx-size "$ctx" \
                   --threads "$threads" --plan "$PLAN" 2>"$logs/$engine-$n.log" & ;;
      llama-server) "$LLAMA_SERVER" -m "$model" --port $port -np "$n" -c $((n * ctx)) \
                   -t "$threads" >"$logs/$engine-$n.log" 2>&1 & ;;
    esac
    pid=$!
    wait_up $port
    run_one "$engine" $port $pid "$n"
    kill -TERM $pid
    wait $pid || true
    port=$((port + 1))
  done
done
rm -f "$prompt"
python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(f"{'engine':14} {'clients':>7} {'tok/s':>8} {'TTFT p50 ms':>12} {'TTFT p90 ms':>12} {'errors':>6} {'RSS MiB':>8}")
for r in rows:
    print(f"{r['engine']:14} {r['clients']:>7} {r['tok_per_s']:>8} {r['ttft_ms_p50']:>12} {r['ttft_ms_p90']:>12} {r['errors']:>6} {str(r['rss_mib_max']):>8}")
PY
