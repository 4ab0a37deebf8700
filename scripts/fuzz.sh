#!/usr/bin/env bash
# Builds the libFuzzer harnesses of fuzz/ (clang, ASan+UBSan, in build-fuzz/) and runs each one
# for FUZZ_SECONDS (default 15) from its committed seed corpus fuzz/corpus/<target>/ (and its
# dictionary fuzz/dict/<target>.dict when there is one). Inputs the fuzzer finds go to a scratch
# corpus, never into the repository. Exit 1 on any finding, with the reproducer's path (replay
# it: build-fuzz/bin/fuzz_<target> FILE). Each run's execution count goes to stdout as one line
# "fuzz_<target>: N executions in S s, 0 findings".
#   make fuzz FUZZ_SECONDS=600          # long run
#   FUZZ_TARGETS=gguf scripts/fuzz.sh   # one target
#   FUZZ_RUNS=1000000 FUZZ_TARGETS=gguf scripts/fuzz.sh   # stop after 1M executions, no time limit
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${FUZZ_RUNS:-}
# With FUZZ_RUNS the execution count ends the run (max_total_time=0 is no limit in libFuzzer).
secs=${FUZZ_SECONDS:-$([ -n "$runs" ] && echo 0 || echo 15)}
build=${FUZZ_BUILD:-build-fuzz}
jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}
targets=${FUZZ_TARGETS:-$(sed -n 's/^set(MOA_FUZZ_TARGETS \(.*\))$/\1/p' fuzz/CMakeLists.txt)}

CC=clang-14 CXX=clang++-14 cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMOA_FUZZ=ON \
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1" >/dev/null
cmake --build "$build" -j"$jobs" --target $(printf 'fuzz_%s ' $targets) >/dev/null

status=0
for t in $targets; do
  scratch=$(mktemp -d)
  artifacts="$build/fuzz-artifacts/$t"
  rm -rf "$artifacts" && mkdir -p "$artifacts"  # only this run's findings
  log="$build/fuzz-$t.log"
  dict=()
  limit=()
  [ -n "$runs" ] && limit=(-runs="$runs")
  start=$SECONDS
  [ -f "fuzz/dict/$t.dict" ] && dict=(-dict="fuzz/dict/$t.dict")
  # malloc_limit: a declared size must never become an allocation (issue: no allocation of the
  # declared size); timeout: a hang is a finding too.
  if ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    "$build/bin/fuzz_$t" -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
      -malloc_limit_mb=512 -print_final_stats=1 -artifact_prefix="$artifacts/" "${dict[@]}" "${limit[@]}" \
      "$scratch" "fuzz/corpus/$t" >"$log" 2>&1; then
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    echo "fuzz_$t: ${execs:-?} executions in $((SECONDS - start)) s, 0 findings"
  else
    echo "fuzz_$t: FINDING (log $log); reproducers:" $(ls "$artifacts") >&2
    # The whole sanitizer report (its top frames name the bug), then each reproducer as base64 so
    # a finding on a CI machine can be replayed elsewhere: base64 -d > crash; fuzz_<target> crash.
    sed -n '/^==[0-9]*==ERROR\|runtime error\|^==[0-9]*== ERROR\|deadly signal\|ALARM/,$p' "$log" |
      head -120 >&2
    for a in "$artifacts"/*; do
      [ -f "$a" ] || continue
      if [ "$(stat -c %s "$a")" -le 16384 ]; then
        echo "reproducer $(basename "$a") (base64):" >&2
        base64 -w0 "$a" >&2
        echo >&2
      fi
    done
    status=1
  fi
  rm -rf "$scratch"
done
exit $status
