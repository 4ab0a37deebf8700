// The 256-bit integer block dots, written once over a `Dot` policy that sums 4 adjacent u8 x s8
// products into each int32 lane: AVX2 with maddubs + madd (int_dot_avx2.cpp), AVX-512 VNNI with
// vpdpbusd on 256-bit registers (int_dot_vnni.cpp). Included only by those files; everything
// here has internal linkage so that each file keeps the code its own flags produced.
//
// Overflow: maddubs adds two u8 x s8 products into int16 with saturation. Every use below keeps
// the u8 side <= 63, except AVX2's Q8_0 |w| <= 128: 2 * 128 * 127 = 32512 < 32767, and the
// activation is clamped to [-127, 127], so no pair saturates and both policies give the same
// integers. (vpdpbusd has no int16 step, so VNNI's Q8_0 can use w + 128 <= 255 instead.)
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/int_dot.h"

namespace moa::kernels {
namespace {

inline __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

inline int32_t hsum_i32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return _mm_cvtsi128_si32(s);
}

// out[k] = sum of the lanes of v[k], k < 8: one transpose-and-add tree for 8 blocks.
inline void hsum8_i32(const __m256i* v, int32_t* out) {
  const __m256i t0 = _mm256_hadd_epi32(v[0], v[1]), t1 = _mm256_hadd_epi32(v[2], v[3]);
  const __m256i t2 = _mm256_hadd_epi32(v[4], v[5]), t3 = _mm256_hadd_epi32(v[6], v[7]);
  const __m256i u0 = _mm256_hadd_epi32(t0, t1), u1 = _mm256_hadd_epi32(t2, t3);
  const __m256i s = _mm256_add_epi32(_mm256_permute2x128_si256(u0, u1, 0x20),
                                     _mm256_permute2x128_si256(u0, u1, 0x31));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), s);
}

// 32 nibbles of a 16-byte Q4 plane: value j < 16 the low nibble of byte j, j >= 16 the high one.
inline __m256i nibbles32(const uint8_t* qs) {
  const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(15));
}

// Byte j = 16 if bit j of the little-endian u32 at p is set, else 0 (Q5's fifth bit).
inline __m256i fifth_bits(const uint8_t* p) {
  uint32_t qh;
  std::memcpy(&qh, p, 4);
  const __m256i pick = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2,
                                        2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
  const __m256i bit = _mm256_set1_epi64x(int64_t(0x8040201008040201));
  const __m256i h = _mm256_shuffle_epi8(_mm256_set1_epi32(int32_t(qh)), pick);
  const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(h, bit), bit);
  return _mm256_and_si256(set, _mm256_set1_epi8(16));
}

// Byte l = 16 if bit `bit` of byte l of v is set (Q5_K's fifth bit of sub-block `bit`).
inline __m256i bit_to_16(__m256i v, int bit) {
  const __m256i m = _mm256_set1_epi8(char(1 << bit));
  return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(v, m), m), _mm256_set1_epi8(16));
}

// The 32-value types: `lanes(block, q)` gives 8 int32 lanes summing to the block's raw dot;
// isum[b] = that sum - off * (activation sum of block b).
template <int64_t kBytes, int kOff, class Lanes>
void blocks32(const uint8_t* row, const QuantizedActivation& a, int64_t nb, int32_t* isum,
              Lanes lanes) {
  const int8_t* q = a.q.data();
  int64_t b = 0;
  for (; b + 8 <= nb; b += 8) {
    __m256i v[8];
    for (int k = 0; k < 8; ++k) v[k] = lanes(row + (b + k) * kBytes, q + 32 * (b + k));
    hsum8_i32(v, isum + b);
  }
  for (; b < nb; ++b) isum[b] = hsum_i32(lanes(row + b * kBytes, q + 32 * b));
  if (kOff) {
    for (b = 0; b < nb; ++b) isum[b] -= kOff * a.block_sums[size_t(b)];
  }
}

template <class Dot>
struct X86 {
  // The instructions take u8 x s8 only; Dot::q8 chooses how the signed codes get there (and
  // Dot::kQ8Off what that adds per unit of activation sum).
  static void q8_0(const uint8_t* row, const QuantizedActivation& a, int64_t nb, int32_t* isum,
                   int32_t*) {
    blocks32<kQ8_0Bytes, Dot::kQ8Off>(row, a, nb, isum, [](const uint8_t* blk, const int8_t* q) {
      return Dot::q8(load256(blk + 2), load256(q));
    });
  }
  template <int64_t kBytes, int kOff, int kQh, int kQs>
  static void small(const uint8_t* row, const QuantizedActivation& a, int64_t nb, int32_t* isum,
                    int32_t*) {
    blocks32<kBytes, kOff>(row, a, nb, isum, [](const uint8_t* blk, const int8_t* q) {
      __m256i v = nibbles32(blk + kQs);
      if (kQh) v = _mm256_or_si256(v, fifth_bits(blk + kQh));
      return Dot::dot(v, load256(q));
    });
  }
  // Q4_K (kQh = 0) / Q5_K: 32 bytes of qs hold sub-blocks 2c (low nibbles) and 2c+1 (high).
  template <int64_t kBytes, int kQh, int kQs>
  static void k4(const uint8_t* row, const QuantizedActivation& a, int64_t nb, int32_t* isum,
                 int32_t* msum) {
    const __m256i low4 = _mm256_set1_epi8(15);
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* blk = row + b * kBytes;
      const int8_t* q = a.q.data() + 256 * b;
      int sc[8], mn[8];
      for (int i = 0; i < 8; ++i) k_scale_min(blk + 4, i, &sc[i], &mn[i]);
      const __m256i qh = kQh ? load256(blk + kQh) : _mm256_setzero_si256();
      __m256i acc = _mm256_setzero_si256();
      for (int c = 0; c < 4; ++c) {
        const __m256i qv = load256(blk + kQs + 32 * c);
        __m256i lo = _mm256_and_si256(qv, low4);
        __m256i hi = _mm256_and_si256(_mm256_srli_epi16(qv, 4), low4);
        if (kQh) {
          lo = _mm256_or_si256(lo, bit_to_16(qh, 2 * c));
          hi = _mm256_or_si256(hi, bit_to_16(qh, 2 * c + 1));
        }
        acc = _mm256_add_epi32(acc, Dot::scaled(lo, load256(q + 64 * c), sc[2 * c], sc[2 * c]));
        acc = _mm256_add_epi32(
            acc, Dot::scaled(hi, load256(q + 64 * c + 32), sc[2 * c + 1], sc[2 * c + 1]));
      }
      isum[b] = hsum_i32(acc);
      const int32_t* s16 = a.sums.data() + 16 * b;
      int32_t m = 0;
      for (int i = 0; i < 8; ++i) m += mn[i] * (s16[2 * i] + s16[2 * i + 1]);
      msum[b] = m;
    }
  }
  // Q6_K: per half h, ql[64h..+64) and qh[32h..+32) give 4 runs of 32 values (k = 0..3), each
  // run two groups of 16: the low 128-bit lane group 8h+2k, the high lane the next.
  static void q6_k(const uint8_t* row, const QuantizedActivation& a, int64_t nb, int32_t* isum,
                   int32_t*) {
    const __m256i low4 = _mm256_set1_epi8(15), low2 = _mm256_set1_epi8(3);
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* blk = row + b * kQ6_KBytes;
      const int8_t* sc = reinterpret_cast<const int8_t*>(blk + 192);
      const int8_t* q = a.q.data() + 256 * b;
      __m256i acc = _mm256_setzero_si256();
      for (int h = 0; h < 2; ++h) {
        const __m256i ql0 = load256(blk + 64 * h), ql1 = load256(blk + 64 * h + 32);
        const __m256i qh = load256(blk + 128 + 32 * h);
        for (int k = 0; k < 4; ++k) {
          const __m256i ql = k % 2 ? ql1 : ql0;
          const __m256i lo =
              k < 2 ? _mm256_and_si256(ql, low4) : _mm256_and_si256(_mm256_srli_epi16(ql, 4), low4);
          // Values <= 3 shifted by 4 stay inside their byte.
          const __m256i hi =
              _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * k), low2), 4);
          const int g = 8 * h + 2 * k;
          acc = _mm256_add_epi32(acc, Dot::scaled(_mm256_or_si256(lo, hi),
                                                  load256(q + 128 * h + 32 * k), sc[g], sc[g + 1]));
        }
      }
      // The codes were dotted unsigned; remove 32 * sum_g sc_g * (activation sum of g).
      int32_t off = 0;
      for (int g = 0; g < 16; ++g) off += sc[g] * a.sums[size_t(16 * b + g)];
      isum[b] = hsum_i32(acc) - 32 * off;
    }
  }

  static IntRowFn table(GgmlType t) {
    switch (t) {
      case GgmlType::kQ4_0:
        return small<kQ4_0Bytes, 8, 0, 2>;
      case GgmlType::kQ4_1:
        return small<kQ4_1Bytes, 0, 0, 4>;
      case GgmlType::kQ5_0:
        return small<kQ5_0Bytes, 16, 2, 6>;
      case GgmlType::kQ5_1:
        return small<kQ5_1Bytes, 0, 4, 8>;
      case GgmlType::kQ8_0:
        return q8_0;
      case GgmlType::kQ4_K:
        return k4<kQ4_KBytes, 0, 16>;
      case GgmlType::kQ5_K:
        return k4<kQ5_KBytes, 16, 48>;
      case GgmlType::kQ6_K:
        return q6_k;
      default:
        return nullptr;
    }
  }
};

}  // namespace
}  // namespace moa::kernels
