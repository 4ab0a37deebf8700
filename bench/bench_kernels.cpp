// Kernel micro benchmarks with the numbers a roofline needs: memory bandwidth (a streaming read),
// weight matvec (f32 / bf16; quantised types per ISA level) and batched matmul, and decode
// attention over a dense vs a sink+window cache (tiny and 1B shapes). Each kernel is checked against a plain computation
// once before it is timed.
//   build/bin/bench_kernels --benchmark_filter=... --benchmark_format=json
#include <benchmark/benchmark.h>
#include <immintrin.h>
#include <omp.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>

#include "moa/attention/attention.h"
#include "moa/attention/kv_cache.h"
#include "moa/core/half.h"
#include "moa/kernels/quant_matvec.h"
#include "moa/model/weight.h"

namespace {

std::vector<float> randn(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0, 1);
  std::vector<float> v(n);
  for (auto& x : v) x = nd(rng);
  return v;
}

// A rows x cols weight of random values, stored as bf16 when asked.
moa::Weight random_weight(int64_t rows, int64_t cols, bool bf16) {
  moa::Weight W = moa::Weight::from_f32(randn(size_t(rows * cols), 1), rows, cols);
  if (bf16) {
    W.dtype = moa::DType::kBF16;
    for (float x : W.f32) W.half.push_back(moa::f32_to_bf16(x));
    W.f32.clear();
  }
  return W;
}

// A cache of `spec` filled with N random positions in every layer plus the decode row at N,
// and the number of (layer, KV head) rows one decode step reads.
struct FilledCache {
  moa::WindowCache cache;
  int64_t kept_rows = 0;
};
FilledCache filled_cache(const moa::AttentionSpec& spec, int64_t N) {
  FilledCache f{moa::WindowCache(spec)};
  const int64_t G = spec.kv_heads, D = spec.head_dim;
  auto k = randn(size_t(N * G * D), 3), v = randn(size_t(N * G * D), 4), kr = randn(size_t(G * D), 6);
  for (int64_t l = 0; l < spec.layers; ++l) {
    f.cache.store_prefill(l, N, k.data(), v.data());
    f.cache.store(l, N, kr.data(), kr.data());
    for (int64_t g = 0; g < G; ++g) f.kept_rows += std::min<int64_t>(f.cache.capacity(l, g), N + 1);
  }
  f.cache.set_length(N + 1);
  return f;
}

void check_finite(benchmark::State& st, const std::vector<float>& out) {
  for (float x : out) {
    if (!std::isfinite(x)) return st.SkipWithError("non-finite attention output");
  }
}

// Streaming read of 1 GiB (larger than the last-level caches a VM reports, 480 MiB on one of
// our machines): the bandwidth decode is bound by. Eight independent vector sums per thread, so
// the adds do not limit it (a single serial float sum ran at 7 GB/s, compute bound).
void BM_MemoryRead(benchmark::State& st) {
  const int64_t n = int64_t(256) << 20;
  std::vector<float> a(size_t(n), 1.0f);
  for (auto _ : st) {
    float total = 0;
#pragma omp parallel reduction(+ : total)
    {
      __m256 s[8];
      for (auto& v : s) v = _mm256_setzero_ps();
#pragma omp for schedule(static)
      for (int64_t i = 0; i < n; i += 64) {
        for (int k = 0; k < 8; ++k) s[k] = _mm256_add_ps(s[k], _mm256_loadu_ps(&a[size_t(i + 8 * k)]));
      }
      for (int k = 1; k < 8; ++k) s[0] = _mm256_add_ps(s[0], s[k]);
      alignas(32) float p[8];
      _mm256_store_ps(p, s[0]);
      for (float v : p) total += v;
    }
    benchmark::DoNotOptimize(total);
  }
  st.SetBytesProcessed(int64_t(st.iterations()) * n * 4);
}
BENCHMARK(BM_MemoryRead)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_Matvec(benchmark::State& st) {
  const int64_t rows = st.range(0), cols = st.range(1);
  const moa::Weight W = random_weight(rows, cols, st.range(2) != 0);
  auto x = randn(size_t(cols), 2);
  std::vector<float> y(static_cast<size_t>(rows));
  moa::matmul(x.data(), W, nullptr, 1, y.data());
  auto exact = W.to_f32();
  double ref = 0;
  for (int64_t c = 0; c < cols; ++c) ref += double(exact[size_t(c)]) * x[size_t(c)];
  if (std::fabs(ref - y[0]) > 1e-3 * (1 + std::fabs(ref))) st.SkipWithError("matvec mismatch");
  for (auto _ : st) {
    moa::matmul(x.data(), W, nullptr, 1, y.data());
    benchmark::DoNotOptimize(y.data());
  }
  st.SetBytesProcessed(int64_t(st.iterations()) * W.bytes());
}
BENCHMARK(BM_Matvec)->Args({8192, 2048, 0})->Args({8192, 2048, 1})->Unit(benchmark::kMicrosecond)->UseRealTime();

// A batch of T rows through one weight (the decode step of T sequences): time per call and the
// arithmetic rate, which is what bounds large-batch decode once the weights are read once for
// all rows. Args: rows, cols, bf16, T.
void BM_MatmulBatch(benchmark::State& st) {
  const int64_t rows = st.range(0), cols = st.range(1), T = st.range(3);
  const moa::Weight W = random_weight(rows, cols, st.range(2) != 0);
  auto x = randn(size_t(T * cols), 2);
  std::vector<float> y(size_t(T * rows));
  moa::matmul(x.data(), W, nullptr, T, y.data());
  auto exact = W.to_f32();
  const int64_t t = T - 1, r = rows / 2;  // one entry of the last row, against a double sum
  double ref = 0;
  for (int64_t c = 0; c < cols; ++c) ref += double(exact[size_t(r * cols + c)]) * x[size_t(t * cols + c)];
  if (std::fabs(ref - y[size_t(t * rows + r)]) > 1e-3 * (1 + std::fabs(ref))) st.SkipWithError("matmul mismatch");
  for (auto _ : st) {
    moa::matmul(x.data(), W, nullptr, T, y.data());
    benchmark::DoNotOptimize(y.data());
  }
  st.counters["GFLOPs"] = benchmark::Counter(double(st.iterations()) * 2.0 * double(rows * cols * T) / 1e9,
                                             benchmark::Counter::kIsRate);
}
BENCHMARK(BM_MatmulBatch)
    ->ArgsProduct({{8192}, {2048}, {0, 1}, {1, 8, 16, 26, 32, 40, 51, 64, 101}})
    ->Unit(benchmark::kMillisecond)->UseRealTime();

// One sequence's decode attention in one layer of the Llama-3.2-1B shape (32 query heads over 8
// KV heads, D 64) at context N, dense: a batch of B sequences and L layers costs B * L of these.
void BM_DecodeAttention1B(benchmark::State& st) {
  const int64_t N = st.range(0), H = 32, G = 8, D = 64;
  FilledCache f = filled_cache(moa::AttentionSpec::dense(1, H, G, D, N + 1), N);
  auto q = randn(size_t(H * D), 5);
  std::vector<float> out(size_t(H * D));
  for (auto _ : st) {
    moa::attention_decode(f.cache, 0, q.data(), N, out.data());
    benchmark::DoNotOptimize(out.data());
  }
  check_finite(st, out);
  st.SetBytesProcessed(int64_t(st.iterations()) * f.kept_rows * 2 * D * 4);
  // Per stored row and KV head: a dot and an axpy of D for each of the group's 4 query heads.
  st.counters["GFLOPs"] = benchmark::Counter(double(st.iterations()) * double((N + 1) * H) * 4.0 * D / 1e9,
                                             benchmark::Counter::kIsRate);
}
BENCHMARK(BM_DecodeAttention1B)->Arg(8192)->Arg(32768)->Unit(benchmark::kMicrosecond)->UseRealTime();

// One layer of decode attention at context N: dense (window 0) vs a sink 64 + window cache.
void BM_DecodeAttention(benchmark::State& st) {
  const int64_t N = st.range(0), window = st.range(1), H = 8, G = 8, D = 32;
  moa::AttentionSpec spec = moa::AttentionSpec::dense(1, H, G, D, N + 1);
  if (window > 0) {
    for (auto& sp : spec.spans) sp = {64, window};
  }
  FilledCache f = filled_cache(spec, N);
  auto q = randn(size_t(H * D), 5);
  std::vector<float> out(size_t(H * D));
  moa::attention_decode(f.cache, 0, q.data(), N, out.data());
  check_finite(st, out);
  for (auto _ : st) {
    moa::attention_decode(f.cache, 0, q.data(), N, out.data());
    benchmark::DoNotOptimize(out.data());
  }
  st.SetBytesProcessed(int64_t(st.iterations()) * f.kept_rows * 2 * D * 4);
}
BENCHMARK(BM_DecodeAttention)
    ->Args({8192, 0})->Args({8192, 4096 - 64})->Args({8192, 2048 - 64})
    ->Args({32768, 0})->Args({32768, 16384 - 64})->Args({32768, 8192 - 64})
    ->Unit(benchmark::kMicrosecond)->UseRealTime();

// A whole decode step's attention (every layer of a shape) at context N and KV density d: uniform
// windows vs the mixed plan of bench/moa_vs_dense.sh (alternate KV groups get 1.5 d N and
// 0.5 d N). Both read the same bytes; this separates the kernel from the rest of a decode step
// when the two differ in `moa bench`. Args: N, density in %, mixed, threads.
void decode_step_attention(benchmark::State& st, int64_t L, int64_t H, int64_t G, int64_t D) {
  const int64_t N = st.range(0), pct = st.range(1);
  const bool mixed = st.range(2) != 0;
  const int threads = int(st.range(3));
  moa::AttentionSpec spec = moa::AttentionSpec::dense(L, H, G, D, N + 1);
  const int64_t grp = H / G;
  for (int64_t l = 0; l < L; ++l) {
    for (int64_t h = 0; h < H; ++h) {
      // Alternate by KV group, as bench/moa_vs_dense.sh does: a KV head stores its group's
      // longest window, so alternating query heads inside a group would not save bytes.
      const double f = !mixed ? 1.0 : ((h / grp + l) % 2 == 0 ? 1.5 : 0.5);
      spec.spans[size_t(l * H + h)] = {64, int64_t(f * double(pct) / 100.0 * double(N)) - 64};
    }
  }
  FilledCache f = filled_cache(spec, N);
  auto q = randn(size_t(H * D), 5);
  std::vector<float> out(size_t(H * D));
  const int saved = omp_get_max_threads();
  omp_set_num_threads(threads);
  for (auto _ : st) {
    for (int64_t l = 0; l < L; ++l) moa::attention_decode(f.cache, l, q.data(), N, out.data());
    benchmark::DoNotOptimize(out.data());
  }
  omp_set_num_threads(saved);
  check_finite(st, out);
  st.SetBytesProcessed(int64_t(st.iterations()) * f.kept_rows * 2 * D * 4);
}
void BM_DecodeStepAttention(benchmark::State& st) { decode_step_attention(st, 4, 8, 8, 32); }
BENCHMARK(BM_DecodeStepAttention)
    ->ArgsProduct({{2048, 8192, 32768}, {50, 25}, {0, 1}, {1, 2}})
    ->Unit(benchmark::kMicrosecond)->UseRealTime();

// The same for every layer of the Llama-3.2-1B shape (16 x 32 query heads over 8 KV heads, D 64):
// the shape where `moa bench` at 32k/50% measured the mixed plan 0.75-1.17x of uniform.
void BM_DecodeStepAttention1B(benchmark::State& st) { decode_step_attention(st, 16, 32, 8, 64); }
BENCHMARK(BM_DecodeStepAttention1B)
    ->ArgsProduct({{8192, 32000}, {50, 25}, {0, 1}, {2}})
    ->Unit(benchmark::kMillisecond)->UseRealTime();

// Quantised decode matvec (moa/kernels/quant_matvec.h) on the Llama-3.2-1B matrix shapes, per
// type and ISA level, in GB/s of weight bytes read (the label names the level that ran). Checked
// against matmul_ref (within quant_matvec_error_bound, first 32 rows) before timing.
//   build/bin/bench_kernels --benchmark_filter=BM_QuantMatvec/Q4_K
using moa::GgmlType;
using moa::IsaLevel;

// Random blocks with finite f16 scales (every code byte random).
std::vector<uint8_t> random_quant_rows(GgmlType t, int64_t rows, int64_t cols) {
  const moa::GgmlTypeTraits tr = moa::ggml_type_traits(uint32_t(t));
  std::vector<uint8_t> w(size_t(rows * moa::ggml_row_bytes(t, cols)));
  std::mt19937 rng(1);
  for (auto& v : w) v = uint8_t(rng());
  std::uniform_real_distribution<float> scale(-0.05f, 0.05f);
  const int d_at = t == GgmlType::kQ6_K ? 208 : 0;
  const bool has_min =
      t == GgmlType::kQ4_1 || t == GgmlType::kQ5_1 || t == GgmlType::kQ4_K || t == GgmlType::kQ5_K;
  for (size_t b = 0; b < w.size() / size_t(tr.bytes); ++b) {
    uint8_t* blk = w.data() + b * size_t(tr.bytes);
    for (int at : {d_at, has_min ? 2 : -1}) {
      if (at < 0) continue;
      const uint16_t h = moa::f32_to_f16(scale(rng));
      std::memcpy(blk + at, &h, 2);
    }
  }
  return w;
}

// f32act: quant_matvec_f32 (x kept in f32, rows dequantised) instead of the 8-bit kernels.
void bm_quant_matvec(benchmark::State& st, GgmlType t, IsaLevel level, bool f32act) {
  const int64_t rows = st.range(0), cols = st.range(1);
  if (!moa::isa_available(level)) return st.SkipWithError("this CPU lacks the level");
  const std::vector<uint8_t> w = random_quant_rows(t, rows, cols);
  std::mt19937 rng(2);
  std::normal_distribution<float> nd(0, 1);
  std::vector<float> x(static_cast<size_t>(cols)), y(static_cast<size_t>(rows));
  for (auto& v : x) v = nd(rng);
  auto run = [&] {
    if (f32act) {
      moa::quant_matvec_f32(t, w.data(), rows, cols, x.data(), y.data(), level);
    } else {
      moa::quant_matvec(t, w.data(), rows, cols, x.data(), y.data(), level);
    }
  };
  run();
  const int64_t check = std::min<int64_t>(rows, 32);
  std::vector<float> ref(static_cast<size_t>(check));
  moa::matmul_ref(x.data(), t, w.data(), check, cols, nullptr, 1, ref.data());
  const auto bound = moa::quant_matvec_error_bound(t, w.data(), check, cols, x.data());
  for (int64_t r = 0; r < check; ++r) {
    if (!(std::fabs(y[size_t(r)] - ref[size_t(r)]) <= bound[size_t(r)])) {
      return st.SkipWithError("quant_matvec disagrees with matmul_ref");
    }
  }
  for (auto _ : st) {
    run();
    benchmark::DoNotOptimize(y.data());
  }
  st.SetBytesProcessed(int64_t(st.iterations()) * int64_t(w.size()));
  st.SetLabel(f32act ? "f32 activations" : moa::isa_name(moa::quant_kernel_level(t, level)));
}

// One benchmark per type and level, each over the three 1B shapes (attention/MLP rows).
const int kRegistered = [] {
  for (GgmlType t : {GgmlType::kQ8_0, GgmlType::kQ4_0, GgmlType::kQ4_1, GgmlType::kQ5_0,
                     GgmlType::kQ5_1, GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ6_K}) {
    for (int v = 0; v < 4; ++v) {
      // scalar, avx2, avx512_vnni, then the f32-activation variant at the best level
      const IsaLevel l = v == 0   ? IsaLevel::kScalar
                         : v == 1 ? IsaLevel::kAvx2
                                  : moa::detected_isa();
      const std::string name = "BM_QuantMatvec/" + moa::ggml_type_name(t) + "/" +
                               (v == 3 ? std::string("f32act") : moa::isa_name(l));
      benchmark::RegisterBenchmark(name.c_str(), bm_quant_matvec, t, l, v == 3)
          ->Args({2048, 2048})
          ->Args({8192, 2048})
          ->Args({2048, 8192})
          ->Unit(benchmark::kMicrosecond)
          ->UseRealTime();
    }
  }
  return 0;
}();

// moa::matmul over a quantised weight at small T: up to 8 rows run quant_matmul (8-bit
// integer dots, weights read once), from 9 the dequantised panels through sgemm; where the two
// cross is what kSmallBatch in weight.cpp should be. Args: rows, cols, type id, T.
void BM_QuantMatmulBatch(benchmark::State& st) {
  const int64_t rows = st.range(0), cols = st.range(1), T = st.range(3);
  const GgmlType t = GgmlType(st.range(2));
  auto bytes = std::make_shared<std::vector<uint8_t>>(random_quant_rows(t, rows, cols));
  const moa::Weight W =
      moa::Weight::from_quant(t, std::shared_ptr<const uint8_t>(bytes, bytes->data()), rows, cols);
  auto x = randn(size_t(T * cols), 2);
  std::vector<float> y(size_t(T * rows)), ref(static_cast<size_t>(rows));
  moa::matmul(x.data(), W, nullptr, T, y.data());
  // The last input row against the reference, first 32 outputs (the 8-bit bound covers both
  // paths: sgemm's f32 error is far inside it).
  const float* xl = x.data() + (T - 1) * cols;
  moa::matmul_ref(xl, t, bytes->data(), 32, cols, nullptr, 1, ref.data());
  const auto bound = moa::quant_matvec_error_bound(t, bytes->data(), 32, cols, xl);
  for (int64_t r = 0; r < 32; ++r) {
    if (!(std::fabs(y[size_t((T - 1) * rows + r)] - ref[size_t(r)]) <= bound[size_t(r)])) {
      return st.SkipWithError("quantised matmul disagrees with matmul_ref");
    }
  }
  for (auto _ : st) {
    moa::matmul(x.data(), W, nullptr, T, y.data());
    benchmark::DoNotOptimize(y.data());
  }
  st.SetBytesProcessed(int64_t(st.iterations()) * int64_t(bytes->size()));
}
BENCHMARK(BM_QuantMatmulBatch)
    ->ArgsProduct({{8192}, {2048}, {int64_t(GgmlType::kQ8_0), int64_t(GgmlType::kQ4_K)},
                   {1, 2, 4, 8, 9, 16}})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
