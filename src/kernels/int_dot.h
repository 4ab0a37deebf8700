// The integer half of the quantised matvec (quant_matvec.h): for one weight row, the exact
// integer dot of every weight block with the quantised activation. One implementation per ISA
// level (int_dot_<level>.cpp); all of them return the same integers, and quant_matvec.cpp turns
// them into f32 with one shared routine, so results agree bit for bit across levels.
//
// What each level writes, per block b of the row (v: the stored unsigned code, q: activation):
//   Q4_0 / Q5_0   isum = sum_j (v_j - 8 | 16) q_j
//   Q4_1 / Q5_1   isum = sum_j v_j q_j                 (the min term uses the activation sums)
//
// Q8_0 and the K types (Q4_K, Q5_K, Q6_K) skip the per-block integer, which costs a horizontal sum
// per block: their kernels (RowDotFn) return the row's f32 dot, accumulated in 8 float lanes
// that every level forms identically:
//   Q8_0, block b:      L_b[k] = sum_{j = 4k..4k+3} w_j q_j   (w_j the int8 code)
//   K types, block b:   L_b[k] = sum over the block's sub-blocks s of  sc_s * sum_{l = 4k..4k+3}
//                       v q  (l the value's index within its 32-value run; Q6_K: minus 32 times
//                       O_b[k] = sc_2k S_2k + sc_2k+1 S_2k+1, S_g the activation sum of group g)
//   acc[k] = fma(d_b dx_b, float(L_b[k]), acc[k]) over the blocks, in order
//   Q4_K / Q5_K also macc[k] = fma(dmin_b dx_b, float(M_b[k]), macc[k]), k < 4, with
//                       M_b[k] = mn_2k S_2k + mn_2k+1 S_2k+1 (S the activation sums per 32)
//   y = row_total(acc, macc): a fixed addition tree.
// That lane layout is what maddubs + madd (pairs of 4 adjacent bytes into one int32) produce on
// 256-bit registers, so the SIMD kernels need no horizontal sum until the end of the row.
// Bounds (why int32 suffices): Q6_K, the largest, |L| <= 8 * 128 * 4 * 63 * 127 < 2^31.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "moa/gguf/quant.h"
#include "moa/kernels/quant_matvec.h"

namespace moa::kernels {

using IntRowFn = void (*)(const uint8_t* row, const QuantizedActivation& a, int64_t nb,
                          int32_t* isum);
using RowDotFn = float (*)(const uint8_t* row, const QuantizedActivation& a, int64_t nb);

// nullptr where the level has no kernel for t (the caller then uses a lower level). A type has
// either an IntRowFn (Q4_0, Q4_1, Q5_0, Q5_1) or a RowDotFn (Q8_0 and the K types).
IntRowFn int_row_scalar(GgmlType t);
IntRowFn int_row_avx2(GgmlType t);
IntRowFn int_row_vnni(GgmlType t);
RowDotFn row_dot_scalar(GgmlType t);
RowDotFn row_dot_avx2(GgmlType t);
RowDotFn row_dot_vnni(GgmlType t);

// Helpers below have internal linkage on purpose: the per-ISA files are compiled with different
// target flags, and one merged copy of an inline function (chosen by the linker) could carry
// AVX-512 instructions into the AVX2 path.
namespace {

// The 12 scale bytes of Q4_K / Q5_K as 8 six-bit scales and 8 mins, one byte each (layout in
// quant.cpp: sub-blocks 0-3 keep theirs in the low 6 bits of bytes 0-3 and 4-7; sub-blocks 4-7
// their low 4 bits in the nibbles of bytes 8-11 and their top 2 in the spare bits of bytes 0-7).
// Word-wide masks instead of a loop over sub-blocks: the scales are decoded once per block.
inline void k_unpack_scales(const uint8_t* s, uint8_t sc[8], uint8_t mn[8]) {
  uint32_t w0, w1, w2;
  std::memcpy(&w0, s, 4);
  std::memcpy(&w1, s + 4, 4);
  std::memcpy(&w2, s + 8, 4);
  const uint32_t six = 0x3f3f3f3f, four = 0x0f0f0f0f, two = 0x03030303;
  const uint32_t out[4] = {w0 & six, (w2 & four) | (((w0 >> 6) & two) << 4), w1 & six,
                           ((w2 >> 4) & four) | (((w1 >> 6) & two) << 4)};
  std::memcpy(sc, out, 8);
  std::memcpy(mn, out + 2, 8);
}

// f16 -> f32 (exact); F16C is part of the build's baseline.
inline float half_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

// The K kernels' final sum of their lanes, one tree for every level.
inline float row_total(const float* acc, const float* macc) {
  const float a = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  return macc ? a - ((macc[0] + macc[1]) + (macc[2] + macc[3])) : a;
}

}  // namespace

// Block sizes in bytes (quant.h).
constexpr int64_t kQ4_0Bytes = 18, kQ4_1Bytes = 20, kQ5_0Bytes = 22, kQ5_1Bytes = 24,
                  kQ8_0Bytes = 34, kQ4_KBytes = 144, kQ5_KBytes = 176, kQ6_KBytes = 210;

}  // namespace moa::kernels
