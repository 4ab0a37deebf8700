// matmul over stored weights (F32 / BF16 / F16; the T = 1 hand-written kernel and the panelled
// sgemm path, with rows zero-padded to a multiple of 16 below 256) against a double-precision
// reference, ragged sizes, 1 and 2 threads.
#include <gtest/gtest.h>
#include <omp.h>

#include <random>

#include "moa/model/weight.h"
#include "test_util.h"

namespace moa {
namespace {

Weight make_weight(DType dt, int64_t rows, int64_t cols, std::mt19937& rng, std::vector<float>* exact) {
  std::normal_distribution<float> nd(0, 1);
  std::vector<float> w(size_t(rows * cols));
  for (auto& x : w) x = nd(rng);
  Weight W = Weight::from_f32(w, rows, cols);
  if (dt != DType::kF32) {
    W.dtype = dt;
    W.half.resize(w.size());
    for (size_t i = 0; i < w.size(); ++i) {
      W.half[i] = dt == DType::kBF16 ? f32_to_bf16(w[i]) : f32_to_f16(w[i]);
    }
    W.f32.clear();
  }
  *exact = W.to_f32();  // the values actually stored
  return W;
}

class Matmul : public ::testing::TestWithParam<int> {};

TEST_P(Matmul, MatchesReference) {
  omp_set_num_threads(GetParam());
  std::mt19937 rng(std::random_device{}());
  std::normal_distribution<float> nd(0, 1);
  for (DType dt : {DType::kF32, DType::kBF16, DType::kF16}) {
    for (auto [T, rows, cols] : {std::tuple{1, 7, 5}, {1, 301, 257}, {2, 9, 17}, {3, 130, 67}, {5, 64, 40}, {8, 33, 9}, {17, 2000, 33},
                                  {26, 200, 70}, {32, 64, 31}, {300, 40, 24}}) {
      std::vector<float> exact;
      Weight W = make_weight(dt, rows, cols, rng, &exact);
      std::vector<float> x(size_t(T * cols)), b(static_cast<size_t>(rows)), y(size_t(T * rows)), want(y.size());
      for (auto& v : x) v = nd(rng);
      for (auto& v : b) v = nd(rng);
      matmul(x.data(), W, b.data(), T, y.data());
      for (int t = 0; t < T; ++t) {
        for (int r = 0; r < rows; ++r) {
          double s = b[size_t(r)];
          for (int c = 0; c < cols; ++c) s += double(x[size_t(t * cols + c)]) * exact[size_t(r * cols + c)];
          want[size_t(t * rows + r)] = float(s);
        }
      }
      EXPECT_TRUE(test::all_close(y, want, 1e-4, 1e-4)) << dtype_name(dt) << " T=" << T << " " << rows << "x" << cols;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Threads, Matmul, ::testing::Values(1, 2));

}  // namespace
}  // namespace moa
