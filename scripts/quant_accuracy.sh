#!/usr/bin/env bash
# Accuracy of quantised GGUF files of a model (docs/RESULTS.md, "Quantised model files"):
#   1. `moa convert` writes the model as an f32 GGUF with PLAN embedded (moa.* keys);
#   2. llama.cpp's llama-quantize makes Q8_0, Q6_K and Q4_K_M files of it (they keep the plan);
#   3. mean |dNLL| per token against the f32 checkpoint on held-out LongEval prompts (moa score,
#      dense, f32 KV: what the weights alone cost);
#   4. greedy LongEval accuracy of each file, dense (--dense) and with its embedded MoA plan.
# Environment: MODEL (default models/moa-tiny), PLAN (required: a plan for MODEL), LLAMA_CPP_DIR
# (default /work/llamacpp, with build/bin/llama-quantize), WORK (default /tmp/moa-quant-accuracy),
# LINES (default 20,50,90), SAMPLES (default 10), THREADS (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
MOA=${MOA:-build/bin/moa}
MODEL=${MODEL:-models/moa-tiny}
PLAN=${PLAN:?set PLAN to a plan JSON for the model}
LLAMA=${LLAMA_CPP_DIR:-/work/llamacpp}
WORK=${WORK:-/tmp/moa-quant-accuracy}
LINES=${LINES:-20,50,90}
SAMPLES=${SAMPLES:-10}
THREADS=${THREADS:-2}
mkdir -p "$WORK"
echo "quant_accuracy: $MODEL, plan $PLAN, llama.cpp $(git -C "$LLAMA" rev-parse HEAD 2>/dev/null || echo "(not a git tree)")" >&2

"$MOA" convert -m "$MODEL" --out "$WORK/f32.gguf" --type f32 --plan "$PLAN" >/dev/null
for t in Q8_0 Q6_K Q4_K_M; do
  "$LLAMA/build/bin/llama-quantize" "$WORK/f32.gguf" "$WORK/$t.gguf" "$t" >"$WORK/quantize-$t.log" 2>&1
done

# Held-out prompts: 8 LongEval records of 40 lines (held-out keys), one text file each.
"$MOA" data longeval --lines 40 --samples 8 --seed 777 --out "$WORK/heldout.jsonl" >/dev/null
python3 - "$WORK" <<'PY'
import json, sys
w = sys.argv[1]
for k, line in enumerate(open(f"{w}/heldout.jsonl")):
    open(f"{w}/heldout-{k}.txt", "w").write(json.loads(line)["prompt"])
PY
score() {  # model file-or-dir, out json
  local m=$1 out=$2
  : >"$out"
  for f in "$WORK"/heldout-*.txt; do
    "$MOA" score -m "$m" -f "$f" --dense --kv-type f32 --threads "$THREADS" --json >>"$out"
  done
}
score "$MODEL" "$WORK/nll-f32.jsonl"
for t in Q8_0 Q6_K Q4_K_M; do score "$WORK/$t.gguf" "$WORK/nll-$t.jsonl"; done

for t in Q8_0 Q6_K Q4_K_M; do
  for method in dense moa; do
    opt=$([ "$method" = dense ] && echo --dense || true)
    "$MOA" eval retrieval -m "$WORK/$t.gguf" --lines "$LINES" --samples "$SAMPLES" --threads "$THREADS" \
      $opt --json >"$WORK/eval-$t-$method.json"
  done
done
for method in dense moa; do
  opt=$([ "$method" = dense ] && echo "" || echo "--plan $PLAN")
  "$MOA" eval retrieval -m "$MODEL" --lines "$LINES" --samples "$SAMPLES" --threads "$THREADS" \
    $opt --json >"$WORK/eval-f32-$method.json"
done

python3 - "$WORK" "$LINES" <<'PY'
import json, os, sys
w, lines = sys.argv[1], sys.argv[2]
def nll(t):
    return [x for l in open(f"{w}/nll-{t}.jsonl") for x in json.loads(l)["nll_per_token"]]
ref = nll("f32")
print(f"| file | size (MiB) | mean NLL | mean abs dNLL vs f32 | LongEval dense | LongEval MoA (embedded plan) |")
print("|---|---:|---:|---:|---:|---:|")
for t in ["f32", "Q8_0", "Q6_K", "Q4_K_M"]:
    size = os.path.getsize(f"{w}/{t}.gguf") / 2**20
    v = nll(t)
    d = sum(abs(a - b) for a, b in zip(v, ref)) / len(ref)
    acc = {m: json.load(open(f"{w}/eval-{t}-{m}.json"))["accuracy"] for m in ("dense", "moa")}
    print(f"| {t} | {size:.2f} | {sum(v)/len(v):.4f} | {d:.4f} | {acc['dense']:.3f} | {acc['moa']:.3f} |")
print(f"\n{len(ref)} scored tokens (8 held-out LongEval prompts of 40 lines); LongEval at lines {lines}, "
      f"{json.load(open(f'{w}/eval-f32-dense.json'))['n']} prompts per method (held-out keys)")
PY
