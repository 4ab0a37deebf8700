// Scalar integer block dots: the plain version every SIMD level must reproduce exactly, and the
// path for CPUs without AVX2. Layouts as in src/gguf/quant.cpp.
#include <cmath>
#include <cstring>

#include "kernels/int_dot.h"

namespace moa::kernels {

namespace {

inline int nib32(const uint8_t* qs, int j) { return (qs[j & 15] >> (4 * (j >> 4))) & 15; }

inline uint32_t u32_at(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// Q4_0 / Q4_1 / Q5_0 / Q5_1 share one loop: `off` the code offset (8, 16 or 0), `qh_at` the
// byte offset of the five-bit plane (0: none), `qs_at` of the nibbles.
template <int64_t kBytes, int kOff, int kQh, int kQs>
void small_blocks(const uint8_t* row, const QuantizedActivation& a, int64_t nb, int32_t* isum) {
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = row + b * kBytes;
    const int8_t* q = a.q.data() + 32 * b;
    const uint32_t qh = kQh ? u32_at(blk + kQh) : 0;
    int32_t s = 0;
    for (int j = 0; j < 32; ++j) {
      const int v = nib32(blk + kQs, j) | int((qh >> j) & 1) << 4;
      s += (v - kOff) * q[j];
    }
    isum[b] = s;
  }
}

// Q8_0: lanes as int_dot.h defines them.
float q8_0_row(const uint8_t* row, const QuantizedActivation& a, int64_t nb) {
  float acc[8] = {};
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = row + b * kQ8_0Bytes;
    const int8_t* w = reinterpret_cast<const int8_t*>(blk + 2);
    const int8_t* q = a.q.data() + 32 * b;
    int32_t lane[8] = {};
    for (int j = 0; j < 32; ++j) lane[j / 4] += w[j] * q[j];
    const float df = half_at(blk) * a.d[size_t(b)];
    for (int k = 0; k < 8; ++k) acc[k] = std::fma(df, float(lane[k]), acc[k]);
  }
  return row_total(acc, nullptr);
}

// Q4_K (kQh = 0) and Q5_K (kQh = 16): sub-block i takes the low (i even) or high nibbles of
// qs[32*(i/2) ..], and for Q5_K bit i of qh[l] as bit 4. Lanes as int_dot.h defines them.
template <int64_t kBytes, int kQh, int kQs>
float k_row(const uint8_t* row, const QuantizedActivation& a, int64_t nb) {
  float acc[8] = {}, macc[4] = {};
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = row + b * kBytes;
    const int8_t* q = a.q.data() + 256 * b;
    const int16_t* s32 = a.sums32.data() + 8 * b;
    uint8_t sc[8], mn[8];
    k_unpack_scales(blk + 4, sc, mn);
    int32_t lane[8] = {};
    for (int i = 0; i < 8; ++i) {
      const uint8_t* qs = blk + kQs + 32 * (i / 2);
      for (int l = 0; l < 32; ++l) {
        int v = (qs[l] >> (4 * (i % 2))) & 15;
        if (kQh) v |= ((blk[kQh + l] >> i) & 1) << 4;
        lane[l / 4] += sc[i] * v * q[32 * i + l];
      }
    }
    const float dx = a.d[size_t(b)], df = half_at(blk) * dx, mf = half_at(blk + 2) * dx;
    for (int k = 0; k < 8; ++k) acc[k] = std::fma(df, float(lane[k]), acc[k]);
    for (int k = 0; k < 4; ++k) {
      const int32_t m = mn[2 * k] * s32[2 * k] + mn[2 * k + 1] * s32[2 * k + 1];
      macc[k] = std::fma(mf, float(m), macc[k]);
    }
  }
  return row_total(acc, macc);
}

// Q6_K: value n = 128h + 32k + l takes its low 4 bits from ql[64h + 32(k%2) + l] (nibble k/2)
// and its high 2 bits from qh[32h + l] >> 2k; group n/16 has the int8 scale. The codes are
// dotted unsigned and 32 * sc_g * S_g taken off, lane by lane.
float q6_k_row(const uint8_t* row, const QuantizedActivation& a, int64_t nb) {
  float acc[8] = {};
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = row + b * kQ6_KBytes;
    const int8_t* sc = reinterpret_cast<const int8_t*>(blk + 192);
    const int8_t* q = a.q.data() + 256 * b;
    const int16_t* s16 = a.sums16.data() + 16 * b;
    int32_t lane[8] = {};
    for (int n = 0; n < 256; ++n) {
      const int h = n / 128, k = (n / 32) % 4, l = n % 32;
      const int lo = (blk[64 * h + 32 * (k % 2) + l] >> (4 * (k / 2))) & 15;
      const int hi = (blk[128 + 32 * h + l] >> (2 * k)) & 3;
      lane[l / 4] += sc[n / 16] * (lo | hi << 4) * q[n];
    }
    for (int k = 0; k < 8; ++k) lane[k] -= 32 * (sc[2 * k] * s16[2 * k] + sc[2 * k + 1] * s16[2 * k + 1]);
    const float df = half_at(blk + 208) * a.d[size_t(b)];
    for (int k = 0; k < 8; ++k) acc[k] = std::fma(df, float(lane[k]), acc[k]);
  }
  return row_total(acc, nullptr);
}

}  // namespace

IntRowFn int_row_scalar(GgmlType t) {
  switch (t) {
    case GgmlType::kQ4_0:
      return small_blocks<kQ4_0Bytes, 8, 0, 2>;
    case GgmlType::kQ4_1:
      return small_blocks<kQ4_1Bytes, 0, 0, 4>;
    case GgmlType::kQ5_0:
      return small_blocks<kQ5_0Bytes, 16, 2, 6>;
    case GgmlType::kQ5_1:
      return small_blocks<kQ5_1Bytes, 0, 4, 8>;
    default:
      return nullptr;
  }
}

RowDotFn row_dot_scalar(GgmlType t) {
  switch (t) {
    case GgmlType::kQ8_0:
      return q8_0_row;
    case GgmlType::kQ4_K:
      return k_row<kQ4_KBytes, 0, 16>;
    case GgmlType::kQ5_K:
      return k_row<kQ5_KBytes, 16, 48>;
    case GgmlType::kQ6_K:
      return q6_k_row;
    default:
      return nullptr;
  }
}

}  // namespace moa::kernels
