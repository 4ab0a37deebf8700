// quant_matvec: quantise the activation once, pick the integer kernel of the ISA level once per
// call, then per row: exact integer block dots (int_dot_<level>.cpp) and one shared f32
// combination (below), so every level gives the same bits. CMakeLists.txt compiles this file
// with -ffp-contract=off: fusing the combination into FMAs is legal but would make its rounding
// depend on the compiler's choices.
#include "moa/kernels/quant_matvec.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/int_dot.h"
#include "moa/core/error.h"

namespace moa {

namespace {

using kernels::half_at;

// Where a 32-value type keeps its f16 scale d and, for Q4_1 / Q5_1, its f16 m (m_at < 0: none).
struct Scales {
  int d_at, m_at;
};
Scales scales_of(GgmlType t) {
  switch (t) {
    case GgmlType::kQ4_1:
    case GgmlType::kQ5_1:
      return {0, 2};
    default:
      return {0, -1};
  }
}

// 8 f16 scales, `bytes` apart from p, as f32.
inline __m256 halves8(const uint8_t* p, int64_t bytes) {
  alignas(16) uint16_t h[8];
  for (int k = 0; k < 8; ++k) std::memcpy(&h[k], p + k * bytes, 2);
  return _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(h)));
}

// Block b's term: (d dx) isum, then + (m dx) (activation sum). The vector
// loop below forms each lane with exactly these operations in this order (no FMA), so a block's
// term has the same bits whichever path computes it.
inline float term(const Scales& s, const uint8_t* blk, float dx, int32_t isum, int32_t extra) {
  float c = (half_at(blk + s.d_at) * dx) * float(isum);
  if (s.m_at < 0) return c;
  return c + (half_at(blk + s.m_at) * dx) * float(extra);
}

// y = sum over blocks b of term(b), block b added into partial sum b mod 8 (8 vector lanes, so
// the additions do not form one serial chain); the partials are added in a fixed tree.
float combine(const Scales& s, const uint8_t* row, int64_t bytes, const QuantizedActivation& a,
              int64_t nb, const int32_t* isum) {
  const int32_t* extra = a.block_sums.data();
  __m256 acc = _mm256_setzero_ps();
  int64_t b = 0;
  for (; b + 8 <= nb; b += 8) {
    const uint8_t* blk = row + b * bytes;
    const __m256 dx = _mm256_loadu_ps(a.d.data() + b);
    const __m256i is = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(isum + b));
    __m256 c =
        _mm256_mul_ps(_mm256_mul_ps(halves8(blk + s.d_at, bytes), dx), _mm256_cvtepi32_ps(is));
    if (s.m_at >= 0) {
      const __m256 m = _mm256_mul_ps(halves8(blk + s.m_at, bytes), dx);
      const __m256i e = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(extra + b));
      const __m256 me = _mm256_mul_ps(m, _mm256_cvtepi32_ps(e));
      c = _mm256_add_ps(c, me);
    }
    acc = _mm256_add_ps(acc, c);
  }
  alignas(32) float p[8];
  _mm256_store_ps(p, acc);
  for (; b < nb; ++b) {
    p[b & 7] = p[b & 7] + term(s, row + b * bytes, a.d[size_t(b)], isum[b], extra[b]);
  }
  return ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]));
}

// One of fn (the 32-value types: integer block dots, then combine) or kfn (the K types, whose
// kernels return the row's dot).
struct Picked {
  kernels::IntRowFn fn = nullptr;
  kernels::RowDotFn kfn = nullptr;
  IsaLevel level = IsaLevel::kScalar;
};

// The highest level at or below `level` with a kernel for t. AVX-512 without VNNI has no kernels
// of its own (decode is memory bound; a 512-bit maddubs version is worth adding only if it beats
// AVX2 on an idle AVX-512 machine), so the AVX2 ones run there.
Picked pick(GgmlType t, IsaLevel level) {
  const struct {
    IsaLevel l;
    kernels::IntRowFn (*ints)(GgmlType);
    kernels::RowDotFn (*ks)(GgmlType);
  } levels[] = {{IsaLevel::kAvx512Vnni, kernels::int_row_vnni, kernels::row_dot_vnni},
                {IsaLevel::kAvx2, kernels::int_row_avx2, kernels::row_dot_avx2},
                {IsaLevel::kScalar, kernels::int_row_scalar, kernels::row_dot_scalar}};
  for (const auto& e : levels) {
    if (int(e.l) > int(level)) continue;
    if (kernels::IntRowFn f = e.ints(t)) return {f, nullptr, e.l};
    if (kernels::RowDotFn f = e.ks(t)) return {nullptr, f, e.l};
  }
  return {};
}

}  // namespace

bool quant_matvec_supported(GgmlType t) {
  const Picked p = pick(t, IsaLevel::kScalar);
  return p.fn || p.kfn;
}

int64_t activation_block(GgmlType t) {
  return ggml_type_traits(uint32_t(t)).block == 256 ? 256 : 32;
}

IsaLevel quant_kernel_level(GgmlType t, IsaLevel level) { return pick(t, level).level; }

void quantize_activation(const float* x, int64_t cols, int64_t block, QuantizedActivation* out) {
  MOA_CHECK((block == 32 || block == 256) && cols % block == 0, "{} cols, block {}", cols, block);
  out->block = block;
  out->q.resize(size_t(cols));
  out->d.resize(size_t(cols / block));
  out->sums16.resize(size_t(cols / 16));
  out->sums32.resize(size_t(cols / 32));
  for (int64_t b = 0; b < cols / block; ++b) {
    const float* xb = x + b * block;
    float amax = 0;
    bool finite = true;
    for (int64_t j = 0; j < block; ++j) {
      amax = std::max(amax, std::fabs(xb[j]));
      finite = finite && std::isfinite(xb[j]);
    }
    int8_t* q = out->q.data() + b * block;
    if (!finite) {
      // A NaN or Inf in the block: codes 0 and scale NaN, so every output it touches is NaN (as
      // in f32) instead of an undefined float-to-int conversion.
      out->d[size_t(b)] = std::numeric_limits<float>::quiet_NaN();
      std::fill(q, q + block, int8_t(0));
      continue;
    }
    const float id = amax > 0 ? 127.0f / amax : 0.0f;
    out->d[size_t(b)] = amax / 127.0f;
    for (int64_t j = 0; j < block; ++j) {
      q[j] = int8_t(std::clamp(std::nearbyint(xb[j] * id), -127.0f, 127.0f));
    }
  }
  // |sum| <= 32 * 127: the per-16 and per-32 sums fit int16 (the K kernels' madd operands).
  out->block_sums.assign(size_t(cols / block), 0);
  for (int64_t k = 0; k < cols / 16; ++k) {
    int32_t s = 0;
    for (int j = 0; j < 16; ++j) s += out->q[size_t(16 * k + j)];
    out->sums16[size_t(k)] = int16_t(s);
    out->block_sums[size_t(k * 16 / block)] += s;
  }
  for (int64_t k = 0; k < cols / 32; ++k)
    out->sums32[size_t(k)] = int16_t(out->sums16[size_t(2 * k)] + out->sums16[size_t(2 * k + 1)]);
}

// x is replaced by d*q with d = amax/127 and q = round(x/d), so |x_j - d q_j| <= d/2 = amax_b/254
// for j in block b, and the activation alone moves y by at most sum_j |w_j| amax_b / 254. On top
// of it the f32 arithmetic: the stored scales multiplied in another order than the reference
// dequantiser's (a few ulps per term, but of ds*q and dm separately for the K types, whose
// difference can cancel), one product and sum per block, nb blocks summed in 8 partials: about
// (nb / 8 + a few) ulps of sum_j |w_j| |x_j|; 1e-6 * (nb / 8 + 20) leaves a factor ~8 of room.
std::vector<double> quant_matvec_error_bound(GgmlType t, const uint8_t* w, int64_t rows,
                                             int64_t cols, const float* x) {
  const int64_t blk = activation_block(t), nb = cols / ggml_type_traits(uint32_t(t)).block;
  std::vector<double> amax(size_t(cols / blk), 0.0);
  for (int64_t j = 0; j < cols; ++j) {
    amax[size_t(j / blk)] = std::max(amax[size_t(j / blk)], double(std::fabs(x[j])));
  }
  std::vector<float> row(static_cast<size_t>(cols));
  std::vector<double> bound(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    dequantize_row_ref(t, w + r * ggml_row_bytes(t, cols), cols, row.data());
    double q = 0, f = 0;
    for (int64_t j = 0; j < cols; ++j) {
      q += std::fabs(row[size_t(j)]) * amax[size_t(j / blk)] / 254.0;
      f += std::fabs(row[size_t(j)]) * std::fabs(x[j]);
    }
    bound[size_t(r)] = q * (1 + 1e-6) + 1e-6 * double(nb / 8 + 20) * f + 1e-30;
  }
  return bound;
}

void quant_matmul(GgmlType t, const uint8_t* w, int64_t rows, int64_t cols,
                  const QuantizedActivation* xs, int64_t T, float* y, IsaLevel level) {
  MOA_CHECK(isa_available(level), "{} on a CPU with {}", isa_name(level), isa_name(detected_isa()));
  const Picked p = pick(t, level);
  const GgmlTypeTraits tr = ggml_type_traits(uint32_t(t));
  MOA_CHECK((p.fn || p.kfn) && cols % tr.block == 0, "{} x {} of {}", rows, cols, ggml_type_name(t));
  for (int64_t i = 0; i < T; ++i) {
    MOA_CHECK(xs[i].block == activation_block(t) && int64_t(xs[i].q.size()) == cols,
              "input {}: {} values in blocks of {} for {} x {} {}", i, xs[i].q.size(), xs[i].block,
              rows, cols, ggml_type_name(t));
  }
  const int64_t nb = cols / tr.block, rb = nb * tr.bytes;
  const Scales sc = scales_of(t);
#pragma omp parallel if (rows * cols >= (1 << 16))
  {
    // Per-thread block sums of one row; reused across calls.
    static thread_local std::vector<int32_t> isum;
    isum.resize(size_t(nb));
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const uint8_t* row = w + r * rb;
      for (int64_t i = 0; i < T; ++i) {
        if (p.kfn) {
          y[i * rows + r] = p.kfn(row, xs[i], nb);
          continue;
        }
        p.fn(row, xs[i], nb, isum.data());
        y[i * rows + r] = combine(sc, row, tr.bytes, xs[i], nb, isum.data());
      }
    }
  }
}

void quant_matmul(GgmlType t, const uint8_t* w, int64_t rows, int64_t cols, const float* x,
                  int64_t T, float* y, IsaLevel level) {
  static thread_local std::vector<QuantizedActivation> xs;
  if (int64_t(xs.size()) < T) xs.resize(size_t(T));
  for (int64_t i = 0; i < T; ++i) {
    quantize_activation(x + i * cols, cols, activation_block(t), &xs[size_t(i)]);
  }
  quant_matmul(t, w, rows, cols, xs.data(), T, y, level);
}

void quant_matvec(GgmlType t, const uint8_t* w, int64_t rows, int64_t cols, const float* x,
                  float* y, IsaLevel level) {
  quant_matmul(t, w, rows, cols, x, 1, y, level);
}

namespace {

float dot_f32(const float* a, const float* b, int64_t n) {
  __m256 s0 = _mm256_setzero_ps(), s1 = s0;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
  }
  alignas(32) float p[8];
  _mm256_store_ps(p, _mm256_add_ps(s0, s1));
  float s = ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

}  // namespace

void quant_matvec_f32(GgmlType t, const uint8_t* w, int64_t rows, int64_t cols, const float* x,
                      float* y, IsaLevel level) {
  MOA_CHECK(isa_available(level), "{} on a CPU with {}", isa_name(level), isa_name(detected_isa()));
  const int64_t rb = ggml_row_bytes(t, cols);
#pragma omp parallel if (rows * cols >= (1 << 16))
  {
    static thread_local std::vector<float> row;  // one dequantised row, reused across calls
    row.resize(size_t(cols));
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      dequantize_row(t, w + r * rb, cols, row.data(), level);
      y[r] = dot_f32(row.data(), x, cols);
    }
  }
}

}  // namespace moa
