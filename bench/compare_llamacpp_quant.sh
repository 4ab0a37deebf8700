#!/usr/bin/env bash
# Issue 20's tables: MoA.cpp against llama.cpp on the same quantised GGUF files, one run.
#
#   bench/compare_llamacpp_quant.sh                          # tiny and 1B shapes, Q8_0 and Q4_K_M
#   SHAPES=tiny DEPTHS="8192 32768" bench/compare_llamacpp_quant.sh
#
# Environment (all optional):
#   LLAMA_CPP_DIR  llama.cpp checkout with a CPU build of llama-bench, llama-batched-bench and
#                  llama-quantize                                       (default /work/llamacpp)
#   MOA_BUILD_DIR  our CMake build dir, holding bin/moa and bin/bench_kernels (default build)
#   SHAPES         configs from bench/configs/                          (default "tiny llama32_1b")
#   TYPES          llama-quantize types                                 (default "Q8_0 Q4_K_M")
#   DEPTHS         decode depths after the depth-0 table (depth + 32 generated tokens must fit
#                  the model's max_position_embeddings: 32704 for a 32k model) (default 8192)
#   THREADS        thread counts, each its own rows                     (default "1 2")
#   REPS           repetitions of each measurement                      (default 2)
#   LLAMA_Q8_KV=1  also llama.cpp with -fa -ctk q8_0 -ctv q8_0 at depth (slow on CPU: off by default)
#   LLAMA_CPP_REV  the llama.cpp revision to print when its checkout has no .git
#   WORK_DIR       models and raw results; reused if it exists          (default: a new temp dir)
#   PYTHON         python with numpy, for the converter and gguf-py     (default /usr/bin/python3)
#
# Everything runs one after the other; run it on an otherwise idle machine. Models are random
# weights made by `moa init`, converted by bench/llamacpp/hf_to_gguf.py and quantised by
# llama.cpp's own llama-quantize, so both engines read the very same file. At depth, llama.cpp's
# decode rate is llama-batched-bench's S_TG after a real prompt of that length (this llama-bench
# has no -d); ours decodes after `--fill synthetic`, which leaves the cache as a prefill would.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
LLAMA_CPP_DIR="${LLAMA_CPP_DIR:-/work/llamacpp}"
LB="$LLAMA_CPP_DIR/build/bin"
MOA_BUILD_DIR="${MOA_BUILD_DIR:-build}"
case "$MOA_BUILD_DIR" in /*) ;; *) MOA_BUILD_DIR="$ROOT/$MOA_BUILD_DIR" ;; esac
MOA="$MOA_BUILD_DIR/bin/moa"
SHAPES="${SHAPES:-tiny llama32_1b}"
TYPES="${TYPES:-Q8_0 Q4_K_M}"
DEPTHS="${DEPTHS:-8192}"
THREADS="${THREADS:-1 2}"
REPS="${REPS:-2}"
PYTHON="${PYTHON:-/usr/bin/python3}"

die() { echo "compare_llamacpp_quant: $*" >&2; exit 1; }
for b in llama-bench llama-batched-bench llama-quantize; do
  [[ -x "$LB/$b" ]] || die "$LB/$b not found: build llama.cpp (bench/README.md) or set LLAMA_CPP_DIR"
done
[[ -x "$MOA" && -x "$MOA_BUILD_DIR/bin/bench_kernels" ]] ||
  die "$MOA or bench_kernels not found: cmake --build $MOA_BUILD_DIR --target moa bench_kernels"
"$PYTHON" -c 'import numpy' 2>/dev/null || die "$PYTHON has no numpy"

WORK_DIR="${WORK_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/moa-quant-vs-llamacpp.XXXXXX")}"
RES="$WORK_DIR/results"
mkdir -p "$RES"
OUT="$WORK_DIR/tables.md"
: >"$OUT"
log() { echo "compare_llamacpp_quant: $*" >&2; }
jget() { "$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$@"; }

# Bytes one decode step reads from the weights: every tensor but the embedding table, unless the
# embedding is also the output projection (no output.weight), when it is read in full.
weight_bytes() {
  PYTHONPATH="$LLAMA_CPP_DIR/gguf-py" "$PYTHON" - "$1" <<'EOF'
import sys
from gguf import GGUFReader
r = GGUFReader(sys.argv[1])
names = {t.name: int(t.n_bytes) for t in r.tensors}
total = sum(names.values())
if "output.weight" in names:
    total -= names.get("token_embd.weight", 0)
print(total)
EOF
}

{
  echo "Machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "MoA.cpp $(git -C "$ROOT" rev-parse --short HEAD); llama.cpp ${LLAMA_CPP_REV:-$(git -C "$LLAMA_CPP_DIR" rev-parse --short HEAD 2>/dev/null || echo "(revision unknown: set LLAMA_CPP_REV)")}"
  echo
  echo "Read bandwidth (bench_kernels BM_MemoryRead: 1 GiB, eight vector sums per thread):"
  echo
  for t in $THREADS; do
    OMP_NUM_THREADS=$t "$MOA_BUILD_DIR/bin/bench_kernels" --benchmark_filter='^BM_MemoryRead/' \
      --benchmark_min_time=0.5 --benchmark_format=json >"$RES/bw-$t.json" 2>/dev/null
    bw=$("$PYTHON" -c 'import json,sys; print("%.1f" % (json.load(open(sys.argv[1]))["benchmarks"][0]["bytes_per_second"]/1e9))' "$RES/bw-$t.json")
    echo "- $t thread(s): $bw GB/s"
    echo "$bw" >"$RES/bw-$t.txt"
  done
  echo
} >>"$OUT"

for shape in $SHAPES; do
  src="$WORK_DIR/$shape"
  dtype=bf16
  [[ "$shape" == tiny ]] && dtype=f32
  if [[ ! -f "$src/config.json" ]]; then
    log "$shape: moa init ($dtype)"
    "$MOA" init --config "$ROOT/bench/configs/$shape.json" --out "$src" --dtype "$dtype" --seed 1 >&2
  fi
  big="$WORK_DIR/$shape-$dtype.gguf"
  [[ -f "$big" ]] || "$PYTHON" "$ROOT/bench/llamacpp/hf_to_gguf.py" --llama-cpp "$LLAMA_CPP_DIR" "$src" "$big" >&2
  for type in $TYPES; do
    f="$WORK_DIR/$shape-$type.gguf"
    [[ -f "$f" ]] || "$LB/llama-quantize" "$big" "$f" "$type" >"$RES/quantize-$shape-$type.log" 2>&1
    wb=$(weight_bytes "$f")
    {
      echo "### $shape, $type ($(du -m "$f" | cut -f1) MiB file; a decode step reads $((wb / 1048576)) MiB of weights)"
      echo
      echo "Depth 0: \`llama-bench -m F -t T -p 512 -n 32 -r $REPS -o json\` and \`moa bench -m F --ctx 0 --prefill 512 --gen 32 --repeat $REPS -t T --json\`"
      echo
      echo "| threads | llama.cpp pp512 | ours prefill 512 | ratio | llama.cpp tg32 | ours decode | ratio | ours GB/s of weights | of read bandwidth | our peak RSS |"
      echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    } >>"$OUT"
    for t in $THREADS; do
      log "$shape $type depth 0, $t thread(s)"
      "$LB/llama-bench" -m "$f" -t "$t" -p 512 -n 32 -r "$REPS" -o json >"$RES/lb-$shape-$type-$t.json" 2>/dev/null
      "$MOA" bench -m "$f" --ctx 0 --prefill 512 --gen 32 --repeat "$REPS" -t "$t" --json \
        >"$RES/moa-$shape-$type-$t.json" 2>"$RES/moa-$shape-$type-$t.log" ||
        die "moa bench failed: $(tail -1 "$RES/moa-$shape-$type-$t.log")"
      "$PYTHON" - "$RES/lb-$shape-$type-$t.json" "$RES/moa-$shape-$type-$t.json" "$t" "$wb" \
        "$(cat "$RES/bw-$t.txt")" >>"$OUT" <<'EOF'
import json, sys
lb = json.load(open(sys.argv[1])); m = json.load(open(sys.argv[2]))
t, wb, bw = sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
pp = next(r["avg_ts"] for r in lb if r["n_prompt"] > 0 and r["n_gen"] == 0)
tg = next(r["avg_ts"] for r in lb if r["n_gen"] > 0 and r["n_prompt"] == 0)
gbs = wb * m["decode_tok_s"] / 1e9
print(f"| {t} | {pp:.1f} | {m['prefill_tok_s']:.1f} | {m['prefill_tok_s']/pp:.2f}x | {tg:.2f} | "
      f"{m['decode_tok_s']:.2f} | {m['decode_tok_s']/tg:.2f}x | {gbs:.1f} | {100*gbs/bw:.0f}% | "
      f"{m['peak_rss_bytes']/2**30:.2f} GiB |")
EOF
    done
    echo >>"$OUT"
    for d in $DEPTHS; do
      t=$(echo "$THREADS" | awk '{print $NF}')
      {
        echo "Decode at depth $d, $t threads: \`llama-batched-bench -m F -t $t -c $((d + 64)) -b 2048 -ub 512 -npp $d -ntg 32 -npl 1\` (S_TG) and \`moa bench -m F --ctx $d --fill synthetic --gen 32 --repeat $REPS -t $t --json [--kv-type K] [--streaming 0.25]\`"
        echo
        echo "| engine, attention, KV type | decode tok/s | vs llama.cpp dense f16 | KV MiB | bytes per token / read bandwidth |"
        echo "|---|---:|---:|---:|---:|"
      } >>"$OUT"
      log "$shape $type depth $d: llama.cpp"
      "$LB/llama-batched-bench" -m "$f" -t "$t" -c $((d + 64)) -b 2048 -ub 512 -npp "$d" -ntg 32 -npl 1 \
        --output-format jsonl >"$RES/bb-$shape-$type-$d.txt" 2>/dev/null
      base=$(grep '^{' "$RES/bb-$shape-$type-$d.txt" | tail -1 | "$PYTHON" -c 'import json,sys; print(json.loads(sys.stdin.read())["speed_tg"])')
      echo "| llama.cpp dense, f16 KV | $(printf %.2f "$base") | 1.00x | | |" >>"$OUT"
      if [[ "${LLAMA_Q8_KV:-0}" == 1 ]]; then
        "$LB/llama-batched-bench" -m "$f" -t "$t" -c $((d + 64)) -b 2048 -ub 512 -npp "$d" -ntg 32 -npl 1 \
          -fa -ctk q8_0 -ctv q8_0 --output-format jsonl >"$RES/bb8-$shape-$type-$d.txt" 2>/dev/null
        q8=$(grep '^{' "$RES/bb8-$shape-$type-$d.txt" | tail -1 | "$PYTHON" -c 'import json,sys; print(json.loads(sys.stdin.read())["speed_tg"])')
        echo "| llama.cpp dense, q8_0 KV (-fa) | $(printf %.2f "$q8") | $("$PYTHON" -c "print('%.2fx' % ($q8/$base))") | | |" >>"$OUT"
      fi
      for run in "dense f16:--kv-type f16" "dense q8_0:--kv-type q8_0" \
                 "StreamingLLM 0.25 f16:--kv-type f16 --streaming 0.25" \
                 "StreamingLLM 0.25 q8_0:--kv-type q8_0 --streaming 0.25"; do
        name="${run%%:*}"
        read -r -a opts <<<"${run#*:}"
        log "$shape $type depth $d: ours $name"
        j="$RES/moa-$shape-$type-$d-${name// /_}.json"
        "$MOA" bench -m "$f" --ctx "$d" --fill synthetic --gen 32 --repeat "$REPS" -t "$t" --json "${opts[@]}" \
          >"$j" 2>"$j.log" || die "moa bench failed: $(tail -1 "$j.log")"
        "$PYTHON" - "$j" "$name" "$base" "$wb" "$(cat "$RES/bw-$t.txt")" >>"$OUT" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1])); name, base, wb, bw = sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
r = m["decode_tok_s"]; kv = m["kv_bytes"]
print(f"| ours {name} | {r:.2f} | {r/base:.2f}x | {kv/2**20:.1f} | {100*(wb+kv)*r/1e9/bw:.0f}% |")
EOF
      done
      echo >>"$OUT"
    done
  done
done
cat "$OUT"
log "tables in $OUT, raw results in $RES"
