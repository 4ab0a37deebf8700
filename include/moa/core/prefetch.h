// Software prefetch for the decode kernels' weight streams. Decode reads each weight row once from
// DRAM, and from a mapped file the hardware prefetcher restarts at every 4 KiB page, so without
// help the kernels stall on their loads. Each line is asked for twice: into L2 4 KiB ahead (L2's
// queue holds many more misses than L1's fill buffers) and into L1 1 KiB ahead. Measured on the
// Llama-3.2-1B shape, 2 threads, decode tok/s (docs/PERF.md, 2026-12-04): without 15.2 (Q8_0) /
// 14.5 (Q4_K_M); L1 only at 512 / 1024 / 2048 / 4096 bytes: Q4_K_M 27.1 / 29.0 / 30.7 / 27.5;
// L2 + L1 at 4096 + 1024: 19.8 / 28.9, the best pair for both files of the four tried.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace moa {
// Internal linkage: the kernels' files are compiled with different target flags (see
// src/kernels/int_dot_x86.h), and one linker-chosen copy must not carry another file's ISA.
namespace {

constexpr int64_t kPrefetchL1 = 1024, kPrefetchL2 = 4096;

// Prefetches the lines of [p, p + bytes) shifted by the two distances above.
inline void prefetch_ahead(const void* p, int64_t bytes) {
  const char* c = static_cast<const char*>(p);
  for (int64_t o = 0; o < bytes; o += 64) {
    _mm_prefetch(c + kPrefetchL1 + o, _MM_HINT_T0);
    _mm_prefetch(c + kPrefetchL2 + o, _MM_HINT_T1);
  }
}

}  // namespace
}  // namespace moa
