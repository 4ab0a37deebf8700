#!/usr/bin/env bash
# MoA runtime vs dense, side by side in one run (issue: sparse runtime performance).
# For each context: dense, StreamingLLM at 50% and 25% KV, and a non-uniform plan at the same
# densities (half the heads with a long span, half with a short one). Prints a Markdown table of
# medians (moa bench --repeat) and ratios to dense. Run on a quiet machine: nothing else busy.
#   usage: bench/moa_vs_dense.sh [MODEL_DIR] [CTX...]     env: THREADS (2) REPEAT (3) GEN (32)
#   FILL=synthetic: fill the context with random K/V instead of a timed prefill (decode only; the
#   prefill columns read "-"). FIT_GIB=16: each row uses the largest batch whose KV fits in 16 GiB
#   with the weights (moa bench --fit-gib); decode tok/s then counts every sequence.
set -euo pipefail
cd "$(dirname "$0")/.."
MOA=${MOA:-build/bin/moa}
THREADS=${THREADS:-2}
REPEAT=${REPEAT:-3}
GEN=${GEN:-32}
FILL=${FILL:-prefill}
EXTRA=(--fill "$FILL")
[ -n "${FIT_GIB:-}" ] && EXTRA+=(--fit-gib "$FIT_GIB")
MODEL=${1:-}
shift || true
CTXS=${*:-2048 8192 32768}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
if [ -z "$MODEL" ]; then
  MODEL=$TMP/tiny
  "$MOA" init --config bench/configs/tiny.json --out "$MODEL" --seed 1 >/dev/null 2>&1
fi
read -r LAYERS HEADS KVHEADS < <(python3 -c "import json,sys; c=json.load(open('$MODEL/config.json')); print(c['num_hidden_layers'], c['num_attention_heads'], c.get('num_key_value_heads', c['num_attention_heads']))")
# Non-uniform plans: alternate KV groups get beta d*1.5 and d*0.5 (mean d), alpha 0. By group, not
# by query head: a KV head stores its group's longest window, so alternating query heads inside a
# GQA group would keep 0.76 (not 0.5) of the cache. On an MHA model the two are the same.
for d in 0.5 0.25; do
  python3 - "$LAYERS" "$HEADS" "$d" "$KVHEADS" > "$TMP/mixed_$d.json" <<'PY'
import json, sys
L, H, d, G = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
grp = H // G
betas = [[d * (1.5 if (h // grp + l) % 2 == 0 else 0.5) for h in range(H)] for l in range(L)]
print(json.dumps({"alphas": [[0] * H for _ in range(L)], "betas": betas}))
PY
done
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; threads $THREADS; gen $GEN; repeat $REPEAT (medians); fill $FILL${FIT_GIB:+; batch fitted to $FIT_GIB GiB}"
echo "model: $MODEL ($LAYERS layers x $HEADS heads)"
echo
echo "| ctx | attention | batch | prefill tok/s | x dense | decode tok/s | x dense | KV MiB | peak RSS MiB |"
echo "|---|---|---:|---|---|---|---|---|---|"
for ctx in $CTXS; do
  dense_pre=""; dense_dec=""
  for attn in "dense" "--streaming 0.5" "--plan $TMP/mixed_0.5.json" "--streaming 0.25" "--plan $TMP/mixed_0.25.json"; do
    a=$attn; [ "$a" = dense ] && a=""
    j=$("$MOA" bench -m "$MODEL" --ctx "$ctx" --gen "$GEN" --threads "$THREADS" --repeat "$REPEAT" "${EXTRA[@]}" $a --json 2>/dev/null)
    label=$attn; case $attn in --plan*mixed_0.5*) label="mixed plan 0.5";; --plan*mixed_0.25*) label="mixed plan 0.25";; esac
    python3 - "$ctx" "$label" "$j" "$dense_pre" "$dense_dec" <<'PY'
import json, sys
ctx, label, j, dp, dd = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4], sys.argv[5]
pre = j['prefill_tok_s']
rp = "-" if pre is None else (f"{pre/float(dp):.2f}" if dp else "1.00")
rd = f"{j['decode_tok_s']/float(dd):.2f}" if dd else "1.00"
ps = "-" if pre is None else f"{pre:.1f}"
print(f"| {ctx} | {label} | {j['batch']} | {ps} | {rp} | {j['decode_tok_s']:.1f} | {rd} | {j['kv_bytes']/2**20:.1f} | {j['peak_rss_bytes']/2**20:.0f} |")
PY
    if [ "$attn" = dense ]; then
      dense_pre=$(python3 -c "import json,sys; p=json.loads(sys.argv[1])['prefill_tok_s']; print('' if p is None else p)" "$j")
      dense_dec=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['decode_tok_s'])" "$j")
    fi
  done
done
