// Dot products and axpy over KV rows in their stored type (kv_type.h), AVX2 + FMA + F16C. The f32
// forms are simd::dot and simd::axpy themselves, so an f32 cache computes what it always did.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "attention/simd.h"
#include "moa/attention/kv_type.h"
#include "moa/core/half.h"

namespace moa::kv {

// Eight stored 16-bit values at p as f32.
template <KvType T>
inline __m256 load8_half(const uint8_t* p) {
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  if constexpr (T == KvType::kF16) {
    return _mm256_cvtph_ps(h);
  } else {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
}

template <KvType T>
inline float half1(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return T == KvType::kF16 ? f16_to_f32(h) : bf16_to_f32(h);
}

// Eight int8 values at p as f32.
inline __m256 load8_i8(const uint8_t* p) {
  int64_t b;
  std::memcpy(&b, p, 8);
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_cvtsi64_si128(b)));
}

// F16C (part of the build's baseline): the out-of-line f16_to_f32 once per 32 values was a
// call and a dozen integer operations in the q8_0 kernels' inner loop.
inline float q8_scale(const uint8_t* block) {
  uint16_t d;
  std::memcpy(&d, block, 2);
  return _cvtsh_ss(d);
}

// q . row (D values)
template <KvType T>
inline float dot(const float* q, const uint8_t* row, int64_t D) {
  if constexpr (T == KvType::kF32) {
    return simd::dot(q, reinterpret_cast<const float*>(row), D);
  } else if constexpr (T == KvType::kQ8_0) {
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < D / 32; ++b, row += 34, q += 32) {
      __m256 s = _mm256_mul_ps(_mm256_loadu_ps(q), load8_i8(row + 2));
      s = _mm256_fmadd_ps(_mm256_loadu_ps(q + 8), load8_i8(row + 10), s);
      s = _mm256_fmadd_ps(_mm256_loadu_ps(q + 16), load8_i8(row + 18), s);
      s = _mm256_fmadd_ps(_mm256_loadu_ps(q + 24), load8_i8(row + 26), s);
      acc = _mm256_fmadd_ps(_mm256_set1_ps(q8_scale(row)), s, acc);
    }
    return simd::hsum(acc);
  } else {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= D; i += 16) {
      acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), load8_half<T>(row + 2 * i), acc0);
      acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), load8_half<T>(row + 2 * i + 16), acc1);
    }
    for (; i + 8 <= D; i += 8) {
      acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), load8_half<T>(row + 2 * i), acc0);
    }
    float s = simd::hsum(_mm256_add_ps(acc0, acc1));
    for (; i < D; ++i) s += q[i] * half1<T>(row + 2 * i);
    return s;
  }
}

// y += a * row (D values)
template <KvType T>
inline void axpy(float a, const uint8_t* row, float* y, int64_t D) {
  if constexpr (T == KvType::kF32) {
    simd::axpy(a, reinterpret_cast<const float*>(row), y, D);
  } else if constexpr (T == KvType::kQ8_0) {
    for (int64_t b = 0; b < D / 32; ++b, row += 34, y += 32) {
      const __m256 w = _mm256_set1_ps(a * q8_scale(row));
      for (int j = 0; j < 32; j += 8) {
        _mm256_storeu_ps(y + j, _mm256_fmadd_ps(w, load8_i8(row + 2 + j), _mm256_loadu_ps(y + j)));
      }
    }
  } else {
    const __m256 va = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= D; i += 8) {
      _mm256_storeu_ps(y + i,
                       _mm256_fmadd_ps(va, load8_half<T>(row + 2 * i), _mm256_loadu_ps(y + i)));
    }
    for (; i < D; ++i) y[i] += a * half1<T>(row + 2 * i);
  }
}

}  // namespace moa::kv
