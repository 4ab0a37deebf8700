// The 256-bit integer block dots, written once over a `Dot` policy that sums 4 adjacent u8 x s8
// products into each int32 lane: AVX2 with maddubs + madd (int_dot_avx2.cpp), AVX-512 VNNI with
// vpdpbusd on 256-bit registers (int_dot_vnni.cpp). Included only by those files; everything
// here has internal linkage so that each file keeps the code its own flags produced.
//
// Overflow: maddubs adds two u8 x s8 products into int16 with saturation. Every use below keeps
// the u8 side <= 63, except Q8_0's |w| <= 128: 2 * 128 * 127 = 32512 < 32767, and the
// activation is clamped to [-127, 127], so no pair saturates and both policies give the same
// integers.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/int_dot.h"
#include "moa/core/prefetch.h"

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
    prefetch_ahead(row + b * kBytes, 8 * kBytes);
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
  template <int64_t kBytes, int kOff, int kQh, int kQs>
  static void small(const uint8_t* row, const QuantizedActivation& a, int64_t nb, int32_t* isum) {
    blocks32<kBytes, kOff>(row, a, nb, isum, [](const uint8_t* blk, const int8_t* q) {
      __m256i v = nibbles32(blk + kQs);
      if (kQh) v = _mm256_or_si256(v, fifth_bits(blk + kQh));
      return Dot::dot(v, load256(q));
    });
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
      default:
        return nullptr;
    }
  }
};

// The row kernels of Q8_0 and the K types, lanes as int_dot.h defines them. Q8_0's lanes come
// from Dot::q8 (the signed codes' sign moved onto the activation). The K types use maddubs + madd
// with the sub-block's scale as the int16 multiplier on both levels: VNNI's vpdpbusd would need a
// 32-bit multiply per sub-block after it, slower than madd's free one.
template <class Dot>
struct RowDots {
  // Byte shuffle that repeats int16 element e of each 128-bit lane over that lane.
  static __m256i pick16(int e) { return _mm256_set1_epi16(int16_t((2 * e) | ((2 * e + 1) << 8))); }

  static __m256i sub_dot(__m256i v, const int8_t* q, __m256i scale16) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(v, load256(q)), scale16);
  }
  static float total(__m256 acc, const __m128* macc) {
    alignas(32) float a[8];
    alignas(16) float m[4];
    _mm256_store_ps(a, acc);
    if (!macc) return row_total(a, nullptr);
    _mm_store_ps(m, *macc);
    return row_total(a, m);
  }

  static float q8_0(const uint8_t* row, const QuantizedActivation& a, int64_t nb) {
    __m256 acc = _mm256_setzero_ps();
    const int8_t* q = a.q.data();
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* blk = row + b * kQ8_0Bytes;
      if (b % 2 == 0) prefetch_ahead(blk, 2 * kQ8_0Bytes);
      const __m256i lanes = Dot::q8(load256(blk + 2), load256(q + 32 * b));
      acc = _mm256_fmadd_ps(_mm256_set1_ps(half_at(blk) * a.d[size_t(b)]),
                            _mm256_cvtepi32_ps(lanes), acc);
    }
    return total(acc, nullptr);
  }

  // Q4_K (kQh = 0) / Q5_K: 32 bytes of qs hold sub-blocks 2c (low nibbles) and 2c+1 (high).
  template <int64_t kBytes, int kQh, int kQs>
  static float k4(const uint8_t* row, const QuantizedActivation& a, int64_t nb) {
    const __m256i low4 = _mm256_set1_epi8(15);
    __m256 acc = _mm256_setzero_ps();
    __m128 macc = _mm_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* blk = row + b * kBytes;
      prefetch_ahead(blk, kBytes);
      const int8_t* q = a.q.data() + 256 * b;
      alignas(8) uint8_t sc[8], mn[8];
      k_unpack_scales(blk + 4, sc, mn);
      const float dx = a.d[size_t(b)];
      const __m128i mins = _mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(mn)));
      const __m128i s32 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a.sums32.data() + 8 * b));
      macc = _mm_fmadd_ps(_mm_set1_ps(half_at(blk + 2) * dx),
                          _mm_cvtepi32_ps(_mm_madd_epi16(mins, s32)), macc);
      const __m256i scales = _mm256_broadcastsi128_si256(
          _mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(sc))));
      const __m256i qh = kQh ? load256(blk + kQh) : _mm256_setzero_si256();
      __m256i li = _mm256_setzero_si256();
      for (int c = 0; c < 4; ++c) {
        const __m256i qv = load256(blk + kQs + 32 * c);
        __m256i lo = _mm256_and_si256(qv, low4);
        __m256i hi = _mm256_and_si256(_mm256_srli_epi16(qv, 4), low4);
        if (kQh) {
          lo = _mm256_or_si256(lo, bit_to_16(qh, 2 * c));
          hi = _mm256_or_si256(hi, bit_to_16(qh, 2 * c + 1));
        }
        li = _mm256_add_epi32(li, sub_dot(lo, q + 64 * c, _mm256_shuffle_epi8(scales, pick16(2 * c))));
        li = _mm256_add_epi32(
            li, sub_dot(hi, q + 64 * c + 32, _mm256_shuffle_epi8(scales, pick16(2 * c + 1))));
      }
      acc = _mm256_fmadd_ps(_mm256_set1_ps(half_at(blk) * dx), _mm256_cvtepi32_ps(li), acc);
    }
    return total(acc, &macc);
  }

  // Q6_K: per half h, ql[64h..+64) and qh[32h..+32) give 4 runs of 32 values (k = 0..3), each
  // run two groups of 16: the low 128-bit lane group 8h+2k, the high lane the next.
  static float q6_k(const uint8_t* row, const QuantizedActivation& a, int64_t nb) {
    const __m256i low4 = _mm256_set1_epi8(15), low2 = _mm256_set1_epi8(3);
    // Even scales then odd ones: widened, the low lane holds sc[2e] at element e and the high
    // lane sc[2e+1], so run (h, k) takes element 4h+k of both lanes.
    const __m128i evens_odds = _mm_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* blk = row + b * kQ6_KBytes;
      prefetch_ahead(blk, kQ6_KBytes);
      const int8_t* q = a.q.data() + 256 * b;
      const __m128i sc8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 192));
      const __m256i pairs = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(sc8, evens_odds));
      __m256i li = _mm256_setzero_si256();
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
          li = _mm256_add_epi32(li, sub_dot(_mm256_or_si256(lo, hi), q + 128 * h + 32 * k,
                                            _mm256_shuffle_epi8(pairs, pick16(4 * h + k))));
        }
      }
      // The codes were dotted unsigned: lane k loses 32 (sc_2k S_2k + sc_2k+1 S_2k+1).
      const __m256i off = _mm256_madd_epi16(
          _mm256_cvtepi8_epi16(sc8),
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.sums16.data() + 16 * b)));
      li = _mm256_sub_epi32(li, _mm256_slli_epi32(off, 5));
      acc = _mm256_fmadd_ps(_mm256_set1_ps(half_at(blk + 208) * a.d[size_t(b)]),
                            _mm256_cvtepi32_ps(li), acc);
    }
    return total(acc, nullptr);
  }

  static RowDotFn table(GgmlType t) {
    switch (t) {
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
