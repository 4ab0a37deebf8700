#!/usr/bin/env bash
# Speedup of `moa profile` and `moa eval` on 2 MPI ranks against 1 process, 1 thread each, on the
# shipped model: the same job both ways, one after the other, with the outputs compared (the
# profile byte for byte, the eval JSON as text). Wall time includes mpirun's start-up.
# Run on an idle machine: it times.
#   bench/mpi_scaling.sh [MODEL] [LENGTH] [SAMPLES]     (default models/moa-tiny 2048 16)
set -euo pipefail
cd "$(dirname "$0")/.."
MOA=${MOA:-build/bin/moa}
model=${1:-models/moa-tiny}
length=${2:-2048}
samples=${3:-16}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$MOA" data calib -m "$model" --lengths "$length" --samples "$samples" --threads 2 \
  --out "$dir/calib.jsonl" >/dev/null 2>&1

wall() {  # seconds of one command
  local t0 t1
  t0=$(date +%s.%N)
  "$@" >"$dir/out" 2>"$dir/err" || { cat "$dir/err" >&2; exit 1; }
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }'
}
row() {  # name, then the moa arguments
  local name=$1
  shift
  local one two
  one=$(wall "$MOA" "$@" --threads 1 --json)
  cp "$dir/out" "$dir/one.json"
  two=$(wall mpirun --oversubscribe -np 2 "$MOA" "$@" --threads 1 --json)
  local comm
  comm=$(grep -o 'exchanged .*' "$dir/err" || echo "-")
  printf '%-40s 1 rank %7.2f s   2 ranks %7.2f s   speedup %.2fx   %s\n' "$name" "$one" "$two" \
    "$(awk -v a="$one" -v b="$two" 'BEGIN { print a / b }')" "$comm"
}
row "profile L=$length, $samples samples" profile -m "$model" --data "$dir/calib.jsonl" \
  --length "$length" --out "$dir/p.safetensors" --fresh
cp "$dir/p.safetensors" "$dir/p1.safetensors"
"$MOA" profile -m "$model" --data "$dir/calib.jsonl" --length "$length" --out "$dir/p1.safetensors" \
  --fresh --threads 2 >/dev/null 2>&1
cmp "$dir/p.safetensors" "$dir/p1.safetensors" && echo "  profiles of 2 ranks and 1 process: identical bytes"
row "eval ppl, the same $samples prompts" eval ppl -m "$model" --data "$dir/calib.jsonl"
cmp -s "$dir/out" "$dir/one.json" && echo "  eval ppl JSON: identical"
row "eval retrieval, 16 items at 60/90 lines" eval retrieval -m "$model" --lines 60,90 --samples 8
cmp -s "$dir/out" "$dir/one.json" && echo "  eval retrieval JSON: identical"
