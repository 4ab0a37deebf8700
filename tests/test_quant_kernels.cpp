// quant_matvec (the decode kernels over ggml-quantised weights) against matmul_ref, for every
// type and every ISA level this CPU has: random blocks (fresh seed, printed), ragged shapes (one
// row, rows not multiples of 4/8/16, 1..17 blocks so the 8-block groups have tails), 1 and 2
// threads; and bit-for-bit agreement of all levels and thread counts (all of them compute the
// same integers and share one f32 combination, quant_matvec.h).
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>

#include "moa/core/half.h"
#include "moa/kernels/quant_matvec.h"
#include "moa/model/weight.h"
#include "test_util.h"

namespace moa {
namespace {

constexpr GgmlType kTypes[] = {GgmlType::kQ4_0, GgmlType::kQ4_1, GgmlType::kQ5_0, GgmlType::kQ5_1,
                               GgmlType::kQ8_0, GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ6_K};
constexpr IsaLevel kLevels[] = {IsaLevel::kScalar, IsaLevel::kAvx2, IsaLevel::kAvx512,
                                IsaLevel::kAvx512Vnni};

void put_half(uint8_t* p, float v) {
  const uint16_t h = f32_to_f16(v);
  std::memcpy(p, &h, 2);
}

// rows x (cols / block) random blocks: every code and scale byte random (Q8_0 codes include
// -128, Q6_K scales the whole int8 range), the f16 scales set to finite values of either sign.
std::vector<uint8_t> random_rows(GgmlType t, int64_t rows, int64_t cols, std::mt19937& rng) {
  const GgmlTypeTraits tr = ggml_type_traits(uint32_t(t));
  std::vector<uint8_t> w(size_t(rows * ggml_row_bytes(t, cols)));
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_real_distribution<float> scale(-0.05f, 0.05f);
  for (auto& v : w) v = uint8_t(byte(rng));
  for (size_t b = 0; b < w.size() / size_t(tr.bytes); ++b) {
    uint8_t* blk = w.data() + b * size_t(tr.bytes);
    if (t == GgmlType::kQ6_K) {
      put_half(blk + 208, scale(rng));
    } else {
      put_half(blk, scale(rng));
      const bool has_min = t == GgmlType::kQ4_1 || t == GgmlType::kQ5_1 || t == GgmlType::kQ4_K ||
                           t == GgmlType::kQ5_K;
      if (has_min) put_half(blk + 2, scale(rng));
    }
  }
  return w;
}

// Activations with some structure: normal values, one block of zeros (scale 0), one outlier.
std::vector<float> random_x(int64_t cols, std::mt19937& rng) {
  std::normal_distribution<float> nd(0, 1);
  std::vector<float> x(static_cast<size_t>(cols));
  for (auto& v : x) v = nd(rng);
  if (cols >= 64) std::fill(x.begin() + 32, x.begin() + 64, 0.0f);
  x[size_t(rng() % uint32_t(cols))] = 30.0f;
  return x;
}

// Fails naming the first row over its bound and the largest error relative to it.
::testing::AssertionResult within_bound(const std::vector<float>& y, const std::vector<float>& ref,
                                        const std::vector<double>& bound) {
  int64_t first = -1;
  double worst = 0;
  for (size_t r = 0; r < y.size(); ++r) {
    const double e = std::fabs(double(y[r]) - double(ref[r]));
    worst = std::max(worst, e / bound[r]);
    if (first < 0 && !(e <= bound[r])) first = int64_t(r);
  }
  if (first < 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "row " << first << ": " << y[size_t(first)] << " vs reference " << ref[size_t(first)]
         << " (bound " << bound[size_t(first)] << "); max error / bound " << worst;
}

// Bit-for-bit equality; on failure the first differing index and the largest difference.
::testing::AssertionResult same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  int64_t first = -1;
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::memcmp(&a[i], &b[i], 4) == 0) continue;
    if (first < 0) first = int64_t(i);
    worst = std::max(worst, std::fabs(double(a[i]) - double(b[i])));
  }
  if (first < 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "first differing index " << first << ": " << a[size_t(first)] << " vs "
         << b[size_t(first)] << "; max difference " << worst;
}

TEST(QuantKernels, LevelsOnThisCpu) {
  for (IsaLevel l : kLevels) {
    std::printf("%-12s %s\n", isa_name(l),
                isa_available(l) ? "available" : "skipped (CPU lacks it)");
  }
  for (GgmlType t : kTypes) {
    std::printf("%-5s runs:", ggml_type_name(t).c_str());
    for (IsaLevel l : kLevels) {
      if (isa_available(l)) std::printf(" %s->%s", isa_name(l), isa_name(quant_kernel_level(t, l)));
    }
    std::printf("\n");
  }
}

TEST(QuantKernels, ActivationQuantisationBound) {
  MOA_RANDOM_SEED(seed);
  std::mt19937 rng(static_cast<uint32_t>(seed));
  for (int64_t block : {32, 256}) {
    const std::vector<float> x = random_x(4 * block, rng);
    QuantizedActivation a;
    quantize_activation(x.data(), int64_t(x.size()), block, &a);
    for (size_t j = 0; j < x.size(); ++j) {
      const float d = a.d[j / size_t(block)];
      ASSERT_LE(std::fabs(x[j] - d * a.q[j]), d / 2 * (1 + 1e-6f) + 1e-30f) << "index " << j;
    }
  }
}

// A NaN or Inf in x makes every output NaN, as the f32 product would (no undefined conversion).
TEST(QuantKernels, NonFiniteActivationGivesNaN) {
  MOA_RANDOM_SEED(seed);
  std::mt19937 rng(static_cast<uint32_t>(seed));
  for (GgmlType t : {GgmlType::kQ8_0, GgmlType::kQ4_K}) {
    const int64_t rows = 5, cols = 512;
    const std::vector<uint8_t> w = random_rows(t, rows, cols, rng);
    for (float bad :
         {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
      std::vector<float> x = random_x(cols, rng), y(static_cast<size_t>(rows));
      x[300] = bad;
      quant_matvec(t, w.data(), rows, cols, x.data(), y.data());
      for (int64_t r = 0; r < rows; ++r)
        EXPECT_TRUE(std::isnan(y[size_t(r)])) << ggml_type_name(t) << " row " << r;
    }
  }
}

// Every type x available level x shape x thread count against matmul_ref; every level and thread
// count bit for bit against the scalar path at one thread.
TEST(QuantKernels, MatchReferenceOnEveryLevel) {
  MOA_RANDOM_SEED(seed);
  std::mt19937 rng(static_cast<uint32_t>(seed));
  const int saved = omp_get_max_threads();
  for (GgmlType t : kTypes) {
    const int64_t qb = ggml_type_traits(uint32_t(t)).block;
    for (auto [rows, nb] : {std::pair{1, 1},
                            {3, 2},
                            {17, 3},
                            {37, 7},
                            {9, 8},
                            {130, 9},
                            {5, 17},
                            {301, 64 * 32 / qb}}) {
      const int64_t cols = nb * qb;
      const std::vector<uint8_t> w = random_rows(t, rows, cols, rng);
      const std::vector<float> x = random_x(cols, rng);
      std::vector<float> ref(static_cast<size_t>(rows)), scalar(static_cast<size_t>(rows)),
          y(static_cast<size_t>(rows));
      matmul_ref(x.data(), t, w.data(), rows, cols, nullptr, 1, ref.data());
      const std::vector<double> bound = quant_matvec_error_bound(t, w.data(), rows, cols, x.data());
      omp_set_num_threads(1);
      quant_matvec(t, w.data(), rows, cols, x.data(), scalar.data(), IsaLevel::kScalar);
      const std::string what =
          ggml_type_name(t) + " " + std::to_string(rows) + "x" + std::to_string(cols);
      ASSERT_TRUE(within_bound(scalar, ref, bound)) << what << " scalar";
      for (IsaLevel l : kLevels) {
        if (!isa_available(l)) continue;
        for (int threads : {1, 2}) {
          omp_set_num_threads(threads);
          quant_matvec(t, w.data(), rows, cols, x.data(), y.data(), l);
          ASSERT_TRUE(same_bits(y, scalar))
              << what << " " << isa_name(l) << " " << threads << " threads vs scalar";
        }
      }
    }
  }
  omp_set_num_threads(saved);
}

// With an activation the 8-bit blocks hold exactly (integers, one 127 per block: d = 1), only
// the f32 rounding is left: the kernels must then agree with matmul_ref to a few ulps of
// sum_j |w_j| |x_j| (this catches a wrong bit position that the quantisation bound could hide).
TEST(QuantKernels, ExactActivationMatchesReferenceClosely) {
  MOA_RANDOM_SEED(seed);
  std::mt19937 rng(static_cast<uint32_t>(seed));
  for (GgmlType t : kTypes) {
    const int64_t rows = 37, cols = 9 * ggml_type_traits(uint32_t(t)).block;
    const std::vector<uint8_t> w = random_rows(t, rows, cols, rng);
    std::vector<float> x(static_cast<size_t>(cols)), ref(static_cast<size_t>(rows)),
        y(static_cast<size_t>(rows)), row(static_cast<size_t>(cols));
    std::uniform_int_distribution<int> code(-127, 127);
    for (int64_t j = 0; j < cols; ++j) x[size_t(j)] = j % 32 == 5 ? 127.0f : float(code(rng));
    matmul_ref(x.data(), t, w.data(), rows, cols, nullptr, 1, ref.data());
    std::vector<double> tol(static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r) {
      dequantize_row_ref(t, w.data() + r * ggml_row_bytes(t, cols), cols, row.data());
      for (int64_t j = 0; j < cols; ++j)
        tol[size_t(r)] += 1e-6 * std::fabs(row[size_t(j)] * x[size_t(j)]);
    }
    for (IsaLevel l : kLevels) {
      if (!isa_available(l)) continue;
      quant_matvec(t, w.data(), rows, cols, x.data(), y.data(), l);
      EXPECT_TRUE(within_bound(y, ref, tol)) << ggml_type_name(t) << " " << isa_name(l);
    }
  }
}

// The AVX2 dequantisers (prefill's panels, the f32-activation matvec) give the reference's bits.
TEST(QuantKernels, DequantizeRowIsTheReference) {
  MOA_RANDOM_SEED(seed);
  std::mt19937 rng(static_cast<uint32_t>(seed));
  for (GgmlType t : kTypes) {
    const int64_t n = 5 * ggml_type_traits(uint32_t(t)).block;
    const std::vector<uint8_t> w = random_rows(t, 3, n, rng);
    std::vector<float> want(size_t(3 * n)), got(want.size());
    for (int64_t r = 0; r < 3; ++r) {
      dequantize_row_ref(t, w.data() + r * ggml_row_bytes(t, n), n, want.data() + r * n);
    }
    for (IsaLevel l : kLevels) {
      if (!isa_available(l)) continue;
      for (int64_t r = 0; r < 3; ++r) {
        dequantize_row(t, w.data() + r * ggml_row_bytes(t, n), n, got.data() + r * n, l);
      }
      EXPECT_TRUE(same_bits(got, want)) << ggml_type_name(t) << " " << isa_name(l);
    }
  }
}

// The f32-activation variant: only f32 rounding away from matmul_ref.
TEST(QuantKernels, F32ActivationMatvec) {
  MOA_RANDOM_SEED(seed);
  std::mt19937 rng(static_cast<uint32_t>(seed));
  for (GgmlType t : kTypes) {
    const int64_t rows = 37, cols = 9 * ggml_type_traits(uint32_t(t)).block;
    const std::vector<uint8_t> w = random_rows(t, rows, cols, rng);
    const std::vector<float> x = random_x(cols, rng);
    std::vector<float> ref(static_cast<size_t>(rows)), y(static_cast<size_t>(rows)),
        row(static_cast<size_t>(cols));
    matmul_ref(x.data(), t, w.data(), rows, cols, nullptr, 1, ref.data());
    std::vector<double> tol(static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r) {
      dequantize_row_ref(t, w.data() + r * ggml_row_bytes(t, cols), cols, row.data());
      for (int64_t j = 0; j < cols; ++j)
        tol[size_t(r)] += 1e-6 * std::fabs(row[size_t(j)] * x[size_t(j)]);
    }
    quant_matvec_f32(t, w.data(), rows, cols, x.data(), y.data());
    EXPECT_TRUE(within_bound(y, ref, tol)) << ggml_type_name(t);
  }
}

// What the 8-bit activation costs, on a 1B-shaped row set (256 x 2048, random blocks, normal x):
// the error relative to the reference's scale. Printed for docs; the bound test above is the check.
TEST(QuantKernels, ActivationCostReport) {
  MOA_RANDOM_SEED(seed);
  std::mt19937 rng(static_cast<uint32_t>(seed));
  const int64_t rows = 256, cols = 2048;
  for (GgmlType t : kTypes) {
    const std::vector<uint8_t> w = random_rows(t, rows, cols, rng);
    std::normal_distribution<float> nd(0, 1);
    std::vector<float> x(static_cast<size_t>(cols));
    for (auto& v : x) v = nd(rng);
    std::vector<float> ref(static_cast<size_t>(rows)), y(static_cast<size_t>(rows));
    matmul_ref(x.data(), t, w.data(), rows, cols, nullptr, 1, ref.data());
    quant_matvec(t, w.data(), rows, cols, x.data(), y.data());
    double max_err = 0, ref_rms = 0, err_rms = 0;
    for (int64_t r = 0; r < rows; ++r) {
      const double e = std::fabs(double(y[size_t(r)]) - ref[size_t(r)]);
      max_err = std::max(max_err, e);
      err_rms += e * e;
      ref_rms += double(ref[size_t(r)]) * ref[size_t(r)];
    }
    std::printf("%-5s 8-bit activation: max |err| / rms(y) %.2e, rms(err) / rms(y) %.2e\n",
                ggml_type_name(t).c_str(), max_err / std::sqrt(ref_rms / rows),
                std::sqrt(err_rms / ref_rms));
  }
}

// set_isa_cap lowers the level the default arguments (and so Weight::matmul) use; the bits stay.
TEST(QuantKernels, IsaCapLowersTheActiveLevel) {
  MOA_RANDOM_SEED(seed);
  std::mt19937 rng(static_cast<uint32_t>(seed));
  const int64_t rows = 33, cols = 512;
  const std::vector<uint8_t> w = random_rows(GgmlType::kQ4_K, rows, cols, rng);
  const std::vector<float> x = random_x(cols, rng);
  std::vector<float> low(static_cast<size_t>(rows)), top(static_cast<size_t>(rows));
  set_isa_cap(IsaLevel::kScalar);
  EXPECT_EQ(active_isa(), IsaLevel::kScalar);
  quant_matvec(GgmlType::kQ4_K, w.data(), rows, cols, x.data(), low.data());
  set_isa_cap(IsaLevel::kAvx512Vnni);
  EXPECT_EQ(active_isa(), detected_isa());
  quant_matvec(GgmlType::kQ4_K, w.data(), rows, cols, x.data(), top.data());
  EXPECT_TRUE(same_bits(low, top));
}

// Weight::matmul routes quantised decode (T <= 8) through quant_matmul: for each input row the
// bits of quant_matvec on that row alone, bias added.
TEST(QuantKernels, WeightMatmulDecode) {
  MOA_RANDOM_SEED(seed);
  std::mt19937 rng(static_cast<uint32_t>(seed));
  std::normal_distribution<float> nd(0, 1);
  for (GgmlType t : {GgmlType::kQ8_0, GgmlType::kQ4_K, GgmlType::kQ6_K}) {
    const int64_t rows = 70, cols = 512;
    auto bytes = std::make_shared<std::vector<uint8_t>>(random_rows(t, rows, cols, rng));
    const Weight W =
        Weight::from_quant(t, std::shared_ptr<const uint8_t>(bytes, bytes->data()), rows, cols);
    for (int64_t T : {1, 3, 8}) {
      std::vector<float> x(size_t(T * cols)), b(static_cast<size_t>(rows)), y(size_t(T * rows));
      for (auto& v : x) v = nd(rng);
      for (auto& v : b) v = nd(rng);
      matmul(x.data(), W, b.data(), T, y.data());
      for (int64_t i = 0; i < T; ++i) {
        std::vector<float> want(static_cast<size_t>(rows)),
            got(y.begin() + i * rows, y.begin() + (i + 1) * rows);
        quant_matvec(t, bytes->data(), rows, cols, x.data() + i * cols, want.data());
        for (int64_t r = 0; r < rows; ++r) want[size_t(r)] += b[size_t(r)];
        EXPECT_TRUE(same_bits(got, want)) << ggml_type_name(t) << " T=" << T << " row " << i;
      }
    }
  }
}

}  // namespace
}  // namespace moa
