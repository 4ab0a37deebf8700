#!/bin/sh
# run_with_blas_core.sh CORE TEST [ARGS...]: runs TEST with OpenBLAS forced to kernel set CORE.
# Exits 77 (skipped) when the CPU lacks the AVX-512 subsets the SkylakeX kernels use.
core=$1
shift
for f in avx512f avx512bw avx512vl avx512dq; do
  grep -qw "$f" /proc/cpuinfo || { echo "skipped: CPU has no $f"; exit 77; }
done
OPENBLAS_CORETYPE=$core exec "$@"
