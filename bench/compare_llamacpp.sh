#!/usr/bin/env bash
# Side-by-side speed of MoA.cpp and llama.cpp on the same random-weight models and thread count.
#
#   bench/compare_llamacpp.sh                    # both shapes, full run (-r 3, depths 0,2048,8192)
#   QUICK=1 SHAPES=tiny bench/compare_llamacpp.sh   # smoke test: -r 1, depths 0,2048
#
# Environment (all optional):
#   LLAMA_CPP_DIR  llama.cpp checkout with a CPU build of llama-bench   (default /work/llamacpp)
#   LLAMA_BENCH    the llama-bench binary          (default $LLAMA_CPP_DIR/build/bin/llama-bench)
#   MOA_BUILD_DIR  our CMake build dir, holding bin/moa                 (default build)
#   SHAPES         space-separated configs from bench/configs/          (default "tiny llama32_1b")
#   THREADS        threads for both engines                             (default 2)
#   WORK_DIR       where models and raw results go; reused if it exists (default: a new temp dir)
#   QUICK=1        1 repetition, depths 0 and 2048 only
#   PYTHON         python with numpy, for the converter                 (default /usr/bin/python3)
#
# Runs are strictly sequential. Per shape: `moa init` writes the checkpoint, hf_to_gguf.py converts
# it, then llama-bench runs once over all depths, then `moa bench` once per context.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
LLAMA_CPP_DIR="${LLAMA_CPP_DIR:-/work/llamacpp}"
LLAMA_BENCH="${LLAMA_BENCH:-$LLAMA_CPP_DIR/build/bin/llama-bench}"
MOA_BUILD_DIR="${MOA_BUILD_DIR:-build}"
case "$MOA_BUILD_DIR" in /*) ;; *) MOA_BUILD_DIR="$ROOT/$MOA_BUILD_DIR" ;; esac
MOA="$MOA_BUILD_DIR/bin/moa"
SHAPES="${SHAPES:-tiny llama32_1b}"
THREADS="${THREADS:-2}"
PYTHON="${PYTHON:-/usr/bin/python3}"
QUICK="${QUICK:-0}"

if [[ "$QUICK" == 1 ]]; then
  REPS=1; DEPTHS=(0 2048)
else
  REPS="${REPS:-3}"; DEPTHS=(0 2048 8192)
fi
PREFILL=512
GEN=32

die() { echo "compare_llamacpp: $*" >&2; exit 1; }
[[ -x "$MOA" ]] || die "$MOA not found: build it (cmake --build $MOA_BUILD_DIR --target moa) or set MOA_BUILD_DIR"
[[ -x "$LLAMA_BENCH" ]] || die "$LLAMA_BENCH not found: build llama.cpp's llama-bench (CPU) in $LLAMA_CPP_DIR or set LLAMA_BENCH"
[[ -d "$LLAMA_CPP_DIR/gguf-py/gguf" ]] || die "$LLAMA_CPP_DIR/gguf-py not found (the converter uses llama.cpp's gguf package)"
"$PYTHON" -c 'import numpy' 2>/dev/null || die "$PYTHON has no numpy"

if [[ -n "${WORK_DIR:-}" ]]; then
  mkdir -p "$WORK_DIR"
else
  WORK_DIR="$(mktemp -d "${TMPDIR:-/tmp}/moa-vs-llamacpp.XXXXXX")"
fi
RES="$WORK_DIR/results"
mkdir -p "$RES"

dtype_of() {  # weight dtype each shape is benchmarked in
  case "$1" in
    tiny) echo f32 ;;
    llama32_1b) echo bf16 ;;
    *) "$PYTHON" - "$ROOT/bench/configs/$1.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1])).get("torch_dtype", "float32")
print({"bfloat16": "bf16", "float16": "f16"}.get(d, "f32"))
EOF
    ;;
  esac
}

LLAMA_COMMIT="$(git -C "$LLAMA_CPP_DIR" rev-parse HEAD 2>/dev/null || echo unknown)"
CPU_MODEL="$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -1)"
{
  echo "machine: ${CPU_MODEL:-unknown}, nproc $(nproc), $(free -g 2>/dev/null | awk '/^Mem:/{print $2 " GiB RAM"}')"
  echo "llama.cpp: $LLAMA_CPP_DIR @ $LLAMA_COMMIT"
  echo "moa: $MOA ($(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo '+dirty'))"
  echo "threads $THREADS, repetitions $REPS, depths ${DEPTHS[*]}, prefill $PREFILL, gen $GEN"
  echo "work dir: $WORK_DIR"
} | tee "$RES/machine.txt" >&2

depth_csv="$(IFS=,; echo "${DEPTHS[*]}")"
for shape in $SHAPES; do
  cfg="$ROOT/bench/configs/$shape.json"
  [[ -f "$cfg" ]] || die "no config $cfg"
  dt="$(dtype_of "$shape")"
  mdir="$WORK_DIR/$shape"
  gguf="$WORK_DIR/$shape.gguf"
  if [[ ! -f "$mdir/model.safetensors" ]]; then
    echo "== $shape: moa init ($dt)" >&2
    "$MOA" init --config "$cfg" --out "$mdir" --dtype "$dt" >&2
  fi
  if [[ ! -f "$gguf" || "$gguf" -ot "$mdir/model.safetensors" ]]; then
    echo "== $shape: converting to GGUF" >&2
    "$PYTHON" "$HERE/llamacpp/hf_to_gguf.py" --llama-cpp "$LLAMA_CPP_DIR" "$mdir" "$gguf" >&2
  fi

  echo "== $shape: llama-bench -t $THREADS -p $PREFILL -n $GEN -d $depth_csv -r $REPS" >&2
  "$LLAMA_BENCH" -m "$gguf" -t "$THREADS" -p "$PREFILL" -n "$GEN" -d "$depth_csv" -r "$REPS" -o json \
    > "$RES/$shape.llamacpp.json" 2> "$RES/$shape.llamacpp.log" \
    || { tail -20 "$RES/$shape.llamacpp.log" >&2; die "llama-bench failed on $shape"; }

  for c in "${DEPTHS[@]}"; do
    echo "== $shape: moa bench --ctx $c" >&2
    "$MOA" bench -m "$mdir" --ctx "$c" --prefill "$PREFILL" --gen "$GEN" --threads "$THREADS" \
      --repeat "$REPS" --json > "$RES/$shape.moa.ctx$c.json" 2> "$RES/$shape.moa.ctx$c.log" \
      || { tail -20 "$RES/$shape.moa.ctx$c.log" >&2; die "moa bench failed on $shape ctx $c"; }
  done
done

"$PYTHON" - "$RES" "$SHAPES" "$depth_csv" "$PREFILL" "$GEN" <<'EOF' | tee "$RES/table.md"
import json, sys
from pathlib import Path

res, shapes, depths, P, G = Path(sys.argv[1]), sys.argv[2].split(), [int(x) for x in sys.argv[3].split(",")], int(sys.argv[4]), int(sys.argv[5])

def ratio(a, b):
    return f"{a / b:.2f}" if a and b else "n/a"

def fmt(x):
    return "n/a" if x is None else (f"{x:.1f}" if x >= 10 else f"{x:.2f}")

print(open(res / "machine.txt").read().rstrip().replace("\n", "  \n"))
print()
rows, extra, cfgs = [], [], []
for s in shapes:
    ll = json.load(open(res / f"{s}.llamacpp.json"))
    def ll_ts(n_prompt, n_gen, depth):
        for r in ll:
            if r["n_prompt"] == n_prompt and r["n_gen"] == n_gen and r["n_depth"] == depth:
                return r["avg_ts"], r.get("stddev_ts", 0.0)
        return None, None
    r0 = ll[0]
    cfgs.append(f"{s}: llama.cpp {r0.get('build_commit', '?')} build {r0.get('build_number', '?')} ({r0.get('model_type', '?')}, "
                f"type_k {r0.get('type_k', '?')}, type_v {r0.get('type_v', '?')}, flash_attn {r0.get('flash_attn', '?')}, "
                f"n_batch {r0.get('n_batch', '?')}, n_ubatch {r0.get('n_ubatch', '?')}, threads {r0.get('n_threads', '?')}, "
                f"backend {r0.get('backends', '?')})")
    moa = {c: json.load(open(res / f"{s}.moa.ctx{c}.json")) for c in depths}
    rows.append((s, f"prefill {P}", 0, *ll_ts(P, 0, 0), moa[0]["prefill_tok_s"]))
    for c in depths:
        rows.append((s, f"decode {G}", c, *ll_ts(0, G, c), moa[c]["decode_tok_s"]))
    for c in depths:
        if c:
            extra.append((s, c, ll_ts(P, 0, c)[0], moa[c]["prefill_tokens"], moa[c]["prefill_tok_s"],
                          moa[c].get("peak_rss_bytes", 0) / 2**20))

print("| shape | test | context | llama.cpp tok/s | ± sd | ours tok/s | ours / llama.cpp |")
print("|---|---|---:|---:|---:|---:|---:|")
for s, t, c, a, sd, b in rows:
    print(f"| {s} | {t} | {c} | {fmt(a)} | {fmt(sd)} | {fmt(b)} | {ratio(b, a)} |")
if extra:
    print()
    print("Not comparable, for reference: llama.cpp pp512 after a cached prefix of `context` tokens; "
          "ours prefill of all `context` tokens from empty.")
    print()
    print("| shape | context | llama.cpp pp512 @ context tok/s | ours prefill tokens | ours prefill tok/s | ours peak RSS MiB |")
    print("|---|---:|---:|---:|---:|---:|")
    for s, c, a, n, b, rss in extra:
        print(f"| {s} | {c} | {fmt(a)} | {n} | {fmt(b)} | {rss:.0f} |")
print()
print("llama.cpp settings: " + "; ".join(cfgs))
print("llama.cpp numbers are llama-bench averages (after one warmup run); ours are medians of `moa bench` repetitions.")
EOF
echo "raw results: $RES" >&2
