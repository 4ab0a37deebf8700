// The integer half of the quantised matvec (quant_matvec.h): for one weight row, the exact
// integer dot of every weight block with the quantised activation. One implementation per ISA
// level (int_dot_<level>.cpp); all of them return the same integers, and quant_matvec.cpp turns
// them into f32 with one shared routine, so results agree bit for bit across levels.
//
// What each level writes, per block b of the row (v: the stored unsigned code, q: activation):
//   Q8_0          isum = sum_j w_j q_j                 (w_j the int8 code)
//   Q4_0 / Q5_0   isum = sum_j (v_j - 8 | 16) q_j
//   Q4_1 / Q5_1   isum = sum_j v_j q_j                 (the min term uses the activation sums)
//   Q4_K / Q5_K   isum = sum_s sc_s sum_l v q,  msum = sum_s mn_s sum_l q   (8 sub-blocks s)
//   Q6_K          isum = sum_g sc_g sum_l (v - 32) q                        (16 groups g)
// Bounds (why int32 suffices): Q6_K, the largest, |sum| <= 16 * 128 * 16 * 63 * 127 < 2^31.
#pragma once

#include <cstdint>

#include "moa/gguf/quant.h"
#include "moa/kernels/quant_matvec.h"

namespace moa::kernels {

using IntRowFn = void (*)(const uint8_t* row, const QuantizedActivation& a, int64_t nb,
                          int32_t* isum, int32_t* msum);

// nullptr where the level has no kernel for t (the caller then uses a lower level).
IntRowFn int_row_scalar(GgmlType t);
IntRowFn int_row_avx2(GgmlType t);
IntRowFn int_row_vnni(GgmlType t);

// Helpers below have internal linkage on purpose: the per-ISA files are compiled with different
// target flags, and one merged copy of an inline function (chosen by the linker) could carry
// AVX-512 instructions into the AVX2 path.
namespace {

// The 12 scale bytes of Q4_K / Q5_K: six-bit scale and min of sub-block i (layout in quant.cpp).
inline void k_scale_min(const uint8_t* s, int i, int* sc, int* mn) {
  if (i < 4) {
    *sc = s[i] & 63;
    *mn = s[i + 4] & 63;
  } else {
    *sc = (s[i + 4] & 15) | ((s[i - 4] >> 6) << 4);
    *mn = (s[i + 4] >> 4) | ((s[i] >> 6) << 4);
  }
}

// msum of one Q4_K / Q5_K super-block: its mins against the activation's per-16 sums.
inline int32_t k_min_sum(const uint8_t* scales, const int32_t* sums16) {
  int32_t m = 0;
  for (int i = 0; i < 8; ++i) {
    int sc, mn;
    k_scale_min(scales, i, &sc, &mn);
    m += mn * (sums16[2 * i] + sums16[2 * i + 1]);
  }
  return m;
}

}  // namespace

// Block sizes in bytes (quant.h).
constexpr int64_t kQ4_0Bytes = 18, kQ4_1Bytes = 20, kQ5_0Bytes = 22, kQ5_1Bytes = 24,
                  kQ8_0Bytes = 34, kQ4_KBytes = 144, kQ5_KBytes = 176, kQ6_KBytes = 210;

}  // namespace moa::kernels
