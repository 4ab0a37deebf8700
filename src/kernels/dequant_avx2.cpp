// AVX2 dequantisers: the same values as dequantize_row_ref (quant.h) bit for bit. The reference
// forms every value with one f32 multiply (and one add or subtract) in a fixed order; each lane
// here does exactly those operations, and CMakeLists.txt compiles this file with
// -ffp-contract=off so that no multiply-add is fused. For prefill's f32 panels and the
// f32-activation matvec.
#include "kernels/int_dot_x86.h"
#include "moa/core/error.h"
#include "moa/kernels/quant_matvec.h"

namespace moa {

namespace {

using kernels::bit_to_16;
using kernels::fifth_bits;
using kernels::half_at;
using kernels::load256;
using kernels::nibbles32;

// The 8 signed bytes of v starting at byte 8k as f32.
inline __m256 bytes_f32(__m256i v, int k) {
  const __m128i h = k < 2 ? _mm256_castsi256_si128(v) : _mm256_extracti128_si256(v, 1);
  const __m128i q = k % 2 ? _mm_srli_si128(h, 8) : h;
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q));
}

// out[0..32) = d * v (kAdd: + m; kSub: - m), v 32 signed bytes.
enum class Tail { kNone, kAdd, kSub };
template <Tail kTail>
inline void store32(__m256i v, float d, float m, float* out) {
  const __m256 vd = _mm256_set1_ps(d), vm = _mm256_set1_ps(m);
  for (int k = 0; k < 4; ++k) {
    __m256 y = _mm256_mul_ps(vd, bytes_f32(v, k));
    if (kTail == Tail::kAdd) y = _mm256_add_ps(y, vm);
    if (kTail == Tail::kSub) y = _mm256_sub_ps(y, vm);
    _mm256_storeu_ps(out + 8 * k, y);
  }
}

// Q4_0 / Q4_1 / Q5_0 / Q5_1: kQh the offset of the fifth-bit plane (0: none), kQs of the nibbles,
// kOff the code offset, kMin whether an f16 m follows d.
template <int64_t kBytes, int kQh, int kQs, int kOff, bool kMin>
void small(const uint8_t* src, int64_t nb, float* out) {
  for (int64_t b = 0; b < nb; ++b, src += kBytes, out += 32) {
    __m256i v = nibbles32(src + kQs);
    if (kQh) v = _mm256_or_si256(v, fifth_bits(src + kQh));
    v = _mm256_sub_epi8(v, _mm256_set1_epi8(char(kOff)));
    if (kMin) {
      store32<Tail::kAdd>(v, half_at(src), half_at(src + 2), out);
    } else {
      store32<Tail::kNone>(v, half_at(src), 0, out);
    }
  }
}

void q8_0(const uint8_t* src, int64_t nb, float* out) {
  for (int64_t b = 0; b < nb; ++b, src += kernels::kQ8_0Bytes, out += 32) {
    store32<Tail::kNone>(load256(src + 2), half_at(src), 0, out);
  }
}

// Q4_K / Q5_K: sub-block i = (d * sc_i) * q - (dmin * mn_i).
template <int64_t kBytes, int kQh, int kQs>
void k4(const uint8_t* src, int64_t nb, float* out) {
  const __m256i low4 = _mm256_set1_epi8(15);
  for (int64_t b = 0; b < nb; ++b, src += kBytes, out += 256) {
    const float d = half_at(src), dmin = half_at(src + 2);
    uint8_t sc[8], mn[8];
    kernels::k_unpack_scales(src + 4, sc, mn);
    const __m256i qh = kQh ? load256(src + kQh) : _mm256_setzero_si256();
    for (int c = 0; c < 4; ++c) {
      const __m256i qv = load256(src + kQs + 32 * c);
      __m256i lo = _mm256_and_si256(qv, low4);
      __m256i hi = _mm256_and_si256(_mm256_srli_epi16(qv, 4), low4);
      if (kQh) {
        lo = _mm256_or_si256(lo, bit_to_16(qh, 2 * c));
        hi = _mm256_or_si256(hi, bit_to_16(qh, 2 * c + 1));
      }
      for (int half = 0; half < 2; ++half) {
        const int i = 2 * c + half;
        store32<Tail::kSub>(half ? hi : lo, d * float(sc[i]), dmin * float(mn[i]),
                            out + 64 * c + 32 * half);
      }
    }
  }
}

// Q6_K: value n = (d * scales[n / 16]) * (q - 32), runs of 32 as in int_dot_x86.h.
void q6_k(const uint8_t* src, int64_t nb, float* out) {
  const __m256i low4 = _mm256_set1_epi8(15), low2 = _mm256_set1_epi8(3);
  for (int64_t b = 0; b < nb; ++b, src += kernels::kQ6_KBytes, out += 256) {
    const int8_t* sc = reinterpret_cast<const int8_t*>(src + 192);
    const float d = half_at(src + 208);
    for (int h = 0; h < 2; ++h) {
      const __m256i ql0 = load256(src + 64 * h), ql1 = load256(src + 64 * h + 32);
      const __m256i qh = load256(src + 128 + 32 * h);
      for (int k = 0; k < 4; ++k) {
        const __m256i ql = k % 2 ? ql1 : ql0;
        const __m256i lo =
            k < 2 ? _mm256_and_si256(ql, low4) : _mm256_and_si256(_mm256_srli_epi16(ql, 4), low4);
        const __m256i hi =
            _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * k), low2), 4);
        const __m256i v = _mm256_sub_epi8(_mm256_or_si256(lo, hi), _mm256_set1_epi8(32));
        float* o = out + 128 * h + 32 * k;
        const int g = 8 * h + 2 * k;
        // The two groups of 16 in this run have their own scales.
        const __m256 d0 = _mm256_set1_ps(d * float(sc[g])),
                     d1 = _mm256_set1_ps(d * float(sc[g + 1]));
        for (int j = 0; j < 4; ++j)
          _mm256_storeu_ps(o + 8 * j, _mm256_mul_ps(j < 2 ? d0 : d1, bytes_f32(v, j)));
      }
    }
  }
}

using DeqFn = void (*)(const uint8_t*, int64_t, float*);

DeqFn deq_avx2(GgmlType t) {
  using namespace kernels;
  switch (t) {
    case GgmlType::kQ4_0:
      return small<kQ4_0Bytes, 0, 2, 8, false>;
    case GgmlType::kQ4_1:
      return small<kQ4_1Bytes, 0, 4, 0, true>;
    case GgmlType::kQ5_0:
      return small<kQ5_0Bytes, 2, 6, 16, false>;
    case GgmlType::kQ5_1:
      return small<kQ5_1Bytes, 4, 8, 0, true>;
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

}  // namespace

void dequantize_row(GgmlType t, const uint8_t* src, int64_t n, float* out, IsaLevel level) {
  const DeqFn f = int(level) >= int(IsaLevel::kAvx2) ? deq_avx2(t) : nullptr;
  if (!f) return dequantize_row_ref(t, src, n, out);
  const GgmlTypeTraits tr = ggml_type_traits(uint32_t(t));
  MOA_CHECK(n % tr.block == 0, "{} values of type {}", n, ggml_type_name(t));
  f(src, n / tr.block, out);
}

}  // namespace moa
