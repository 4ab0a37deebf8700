#include "moa/model/weight.h"

#include <cblas.h>
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <type_traits>
#include <cstring>

#include "moa/core/error.h"
#include "moa/core/prefetch.h"
#include "moa/kernels/quant_matvec.h"

namespace moa {

Weight Weight::from_view(const TensorView& t) {
  MOA_CHECK(t.shape.size() == 2, "{} is not a matrix", t.name);
  Weight w;
  w.dtype = t.dtype;
  w.rows = t.shape[0];
  w.cols = t.shape[1];
  if (t.dtype == DType::kF32) {
    w.f32.resize(size_t(w.numel()));
    std::memcpy(w.f32.data(), t.data, t.nbytes);
  } else if (t.owner && reinterpret_cast<uintptr_t>(t.data) % alignof(uint16_t) == 0) {
    w.hmap = std::shared_ptr<const uint16_t>(t.owner, reinterpret_cast<const uint16_t*>(t.data));
  } else {
    w.half.resize(size_t(w.numel()));
    std::memcpy(w.half.data(), t.data, t.nbytes);
  }
  return w;
}

Weight Weight::from_quant(GgmlType t, std::shared_ptr<const uint8_t> data, int64_t rows,
                          int64_t cols) {
  MOA_CHECK(ggml_type_traits(uint32_t(t)).computable && data, "{}", ggml_type_name(t));
  Weight w;
  w.dtype = DType::kQuant;
  w.qtype = t;
  w.rows = rows;
  w.cols = cols;
  w.qdata = std::move(data);
  MOA_CHECK(cols % ggml_type_traits(uint32_t(t)).block == 0, "{} cols of {}", cols,
            ggml_type_name(t));
  return w;
}

int64_t Weight::row_bytes() const {
  return dtype == DType::kQuant ? ggml_row_bytes(qtype, cols) : cols * int64_t(dtype_size(dtype));
}

Weight Weight::from_f32(std::vector<float> data, int64_t rows, int64_t cols) {
  MOA_CHECK(int64_t(data.size()) == rows * cols);
  Weight w;
  w.rows = rows;
  w.cols = cols;
  w.f32 = std::move(data);
  return w;
}

namespace {

// Up to this many rows, matmul streams the weights once through a batched matvec instead of
// calling sgemm (half-width weights would otherwise be converted to f32 on every call).
constexpr int64_t kSmallBatch = 8;

// 8 lanes of row data as f32.
inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
inline __m256 load8(const uint16_t* p, DType dt) {
  __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  if (dt == DType::kF16) return _mm256_cvtph_ps(h);
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}
inline float load1(const uint16_t* p, DType dt) {
  return dt == DType::kF16 ? f16_to_f32(*p) : bf16_to_f32(*p);
}

void convert_rows(const Weight& W, int64_t r0, int64_t n, float* out) {
  const int64_t C = W.cols;
  if (W.dtype == DType::kQuant) {
    const int64_t rb = W.row_bytes();
    const uint8_t* src = W.qdata.get() + r0 * rb;
#pragma omp parallel for schedule(static) if (n * C >= (1 << 16))
    for (int64_t r = 0; r < n; ++r) dequantize_row(W.qtype, src + r * rb, C, out + r * C);
    return;
  }
  const uint16_t* src = W.half_data() + r0 * C;
  const int64_t total = n * C, chunks = total / 8;
#pragma omp parallel for schedule(static) if (total >= (1 << 16))
  for (int64_t c = 0; c < chunks; ++c) _mm256_storeu_ps(out + 8 * c, load8(src + 8 * c, W.dtype));
  for (int64_t i = chunks * 8; i < total; ++i) out[i] = load1(src + i, W.dtype);
}

float hsum(__m256 v) {
  __m128 lo = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  lo = _mm_hadd_ps(lo, lo);
  return _mm_cvtss_f32(_mm_hadd_ps(lo, lo));
}

// Where the matvecs prefetch: once per cache line of each weight row.
template <typename Src>
constexpr int64_t values_per_line() {
  return 64 / int64_t(sizeof(Src));
}

// y[r] = dot(W[r], x) for r in [0, rows): 4 rows at a time share the loads of x.
template <typename Src>
void matvec_rows(const Src* w, const float* x, int64_t r0, int64_t r1, int64_t C, DType dt, float* y) {
  auto ld = [dt](const Src* p) {
    if constexpr (std::is_same_v<Src, float>) return load8(p);
    else return load8(p, dt);
  };
  auto ld1 = [dt](const Src* p) {
    if constexpr (std::is_same_v<Src, float>) return *p;
    else return load1(p, dt);
  };
  int64_t r = r0;
  for (; r + 4 <= r1; r += 4) {
    const Src *a = w + r * C, *b = a + C, *c = b + C, *d = c + C;
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int64_t i = 0;
    for (; i + 8 <= C; i += 8) {
      if (i % values_per_line<Src>() == 0) {
        for (const Src* p : {a, b, c, d}) prefetch_ahead(p + i, 64);
      }
      __m256 xv = _mm256_loadu_ps(x + i);
      s0 = _mm256_fmadd_ps(ld(a + i), xv, s0);
      s1 = _mm256_fmadd_ps(ld(b + i), xv, s1);
      s2 = _mm256_fmadd_ps(ld(c + i), xv, s2);
      s3 = _mm256_fmadd_ps(ld(d + i), xv, s3);
    }
    float t0 = hsum(s0), t1 = hsum(s1), t2 = hsum(s2), t3 = hsum(s3);
    for (; i < C; ++i) {
      t0 += ld1(a + i) * x[i];
      t1 += ld1(b + i) * x[i];
      t2 += ld1(c + i) * x[i];
      t3 += ld1(d + i) * x[i];
    }
    y[r] = t0;
    y[r + 1] = t1;
    y[r + 2] = t2;
    y[r + 3] = t3;
  }
  for (; r < r1; ++r) {
    const Src* a = w + r * C;
    __m256 s0 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= C; i += 8) s0 = _mm256_fmadd_ps(ld(a + i), _mm256_loadu_ps(x + i), s0);
    float t0 = hsum(s0);
    for (; i < C; ++i) t0 += ld1(a + i) * x[i];
    y[r] = t0;
  }
}

// y[b, r] = dot(W[r], x[b]) for NB inputs at once: each weight row is read once for all of them
// (decode of a batch is memory bound on the weights, like decode of one sequence).
template <int NB, typename Src>
void matvec_batch_rows(const Src* w, const float* x, int64_t r0, int64_t r1, int64_t C, int64_t R,
                       DType dt, float* y) {
  for (int64_t r = r0; r < r1; ++r) {
    const Src* a = w + r * C;
    __m256 acc[NB];
    for (int b = 0; b < NB; ++b) acc[b] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= C; i += 8) {
      if (i % values_per_line<Src>() == 0) prefetch_ahead(a + i, 64);
      __m256 wv;
      if constexpr (std::is_same_v<Src, float>) wv = load8(a + i);
      else wv = load8(a + i, dt);
      for (int b = 0; b < NB; ++b) acc[b] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + b * C + i), acc[b]);
    }
    for (int b = 0; b < NB; ++b) {
      float t = hsum(acc[b]);
      for (int64_t k = i; k < C; ++k) {
        float wk;
        if constexpr (std::is_same_v<Src, float>) wk = a[k];
        else wk = load1(a + k, dt);
        t += wk * x[b * C + k];
      }
      y[b * R + r] = t;
    }
  }
}

template <int NB>
void matvec_batch(const float* x, const Weight& W, float* y) {
  const int64_t R = W.rows, C = W.cols;
#pragma omp parallel if (R * C >= (1 << 16))
  {
    const int nt = omp_get_num_threads(), t = omp_get_thread_num();
    const int64_t per = (R + nt - 1) / nt;
    const int64_t r0 = std::min(R, t * per), r1 = std::min(R, r0 + per);
    if (W.dtype == DType::kF32) matvec_batch_rows<NB>(W.f32.data(), x, r0, r1, C, R, W.dtype, y);
    else matvec_batch_rows<NB>(W.half_data(), x, r0, r1, C, R, W.dtype, y);
  }
}

// Up to 8 rows of input through the batched kernel, in groups of at most 4.
void matvec_small_batch(const float* x, const Weight& W, int64_t T, float* y) {
  const int64_t C = W.cols, R = W.rows;
  for (int64_t t0 = 0; t0 < T;) {
    const int64_t n = std::min<int64_t>(4, T - t0);
    const float* xs = x + t0 * C;
    float* ys = y + t0 * R;
    switch (n) {
      case 1: matvec_batch<1>(xs, W, ys); break;
      case 2: matvec_batch<2>(xs, W, ys); break;
      case 3: matvec_batch<3>(xs, W, ys); break;
      default: matvec_batch<4>(xs, W, ys); break;
    }
    t0 += n;
  }
}

void matvec(const float* x, const Weight& W, float* y) {
  const int64_t R = W.rows, C = W.cols;
  // Small matrices are not worth waking the thread team for.
  const bool par = R * C >= (1 << 16);
#pragma omp parallel if (par)
  {
    const int nt = omp_get_num_threads(), t = omp_get_thread_num();
    int64_t per = (R + nt - 1) / nt;
    per = (per + 3) / 4 * 4;
    const int64_t r0 = std::min(R, t * per), r1 = std::min(R, r0 + per);
    if (W.dtype == DType::kF32) matvec_rows(W.f32.data(), x, r0, r1, C, W.dtype, y);
    else matvec_rows(W.half_data(), x, r0, r1, C, W.dtype, y);
  }
}

}  // namespace

void Weight::row_f32(int64_t r, float* out) const {
  if (dtype == DType::kF32) std::memcpy(out, f32.data() + r * cols, size_t(cols) * 4);
  else convert_rows(*this, r, 1, out);
}

std::vector<float> Weight::to_f32() const {
  if (dtype == DType::kF32) return f32;
  std::vector<float> out(static_cast<size_t>(numel()));
  convert_rows(*this, 0, rows, out.data());
  return out;
}

namespace {

// y (T, out) = x (T, in) W^T through sgemm; half-width weights are converted in row panels.
void gemm(const float* x, const Weight& W, int64_t T, float* y) {
  const int64_t in = W.cols, out = W.rows;
  if (W.dtype == DType::kF32) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(T), int(out), int(in), 1.0f, x,
                int(in), W.f32.data(), int(in), 0.0f, y, int(out));
    return;
  }
  // Convert panels of output rows to f32 and multiply them; the panel stays in cache-sized
  // pieces so the conversion costs one pass over the weights per call.
  const int64_t panel = std::max<int64_t>(64, (int64_t(8) << 20) / (4 * in));
  // Reused across calls: a fresh 8 MB buffer per call cost more in page faults than the copy.
  static thread_local std::vector<float> buf;
  if (buf.size() < size_t(std::min(panel, out) * in)) buf.resize(size_t(std::min(panel, out) * in));
  for (int64_t r0 = 0; r0 < out; r0 += panel) {
    const int64_t n = std::min(panel, out - r0);
    convert_rows(W, r0, n, buf.data());
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(T), int(n), int(in), 1.0f, x,
                int(in), buf.data(), int(in), 0.0f, y + r0, int(out));
  }
}

// OpenBLAS's sgemm kernels (Haswell and SkylakeX) take x's rows 16 at a time; a remainder goes
// through edge kernels that cost as much as a whole extra block or more. Measured on an
// 8192x2048 weight, 2 threads: 26 rows 13.4 ms, the same rows zero-padded to 32 8.8 ms (40 -> 48:
// 13.7 -> 11.0 ms); from ~100 rows on the gain is a few percent (docs/PERF.md). So a batch of
// decode rows is padded to a multiple of 16; long prefill chunks are left alone.
constexpr int64_t kGemmRowBlock = 16, kPadRowsBelow = 256;

}  // namespace

void matmul(const float* x, const Weight& W, const float* b, int64_t T, float* y) {
  const int64_t in = W.cols, out = W.rows;
  const int64_t Tp = (T + kGemmRowBlock - 1) / kGemmRowBlock * kGemmRowBlock;
  if (W.dtype == DType::kQuant && T <= kSmallBatch) {
    // Decode: integer dots straight from the blocks, the weights read once for all T rows.
    quant_matmul(W.qtype, W.qdata.get(), out, in, x, T, y);
  } else if (W.dtype == DType::kQuant) {
    // Prefill: row panels dequantised (AVX2, the reference's bits) through sgemm.
    gemm(x, W, T, y);
  } else if (T == 1) {
    matvec(x, W, y);
  } else if (T <= kSmallBatch) {
    matvec_small_batch(x, W, T, y);
  } else if (Tp == T || T >= kPadRowsBelow) {
    gemm(x, W, T, y);
  } else {
    static thread_local std::vector<float> xp, yp;
    xp.resize(size_t(Tp * in));
    std::copy(x, x + T * in, xp.begin());
    std::fill(xp.begin() + T * in, xp.end(), 0.0f);  // only the padding rows need zeros
    yp.resize(size_t(Tp * out));
    gemm(xp.data(), W, Tp, yp.data());
    std::copy(yp.begin(), yp.begin() + T * out, y);
  }
  if (b) {
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t o = 0; o < out; ++o) y[t * out + o] += b[o];
    }
  }
}

}  // namespace moa
