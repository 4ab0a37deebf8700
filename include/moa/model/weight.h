// A weight matrix kept in its checkpoint dtype (F32, BF16 or F16). Compute is always f32:
// decode multiplies straight from the stored bytes (memory bound, so half-width weights halve
// the time), prefill converts row panels to f32 and calls sgemm.
#pragma once

#include <cstdint>
#include <vector>

#include "moa/model/safetensors.h"

namespace moa {

struct Weight {
  DType dtype = DType::kF32;
  int64_t rows = 0, cols = 0;  // (out, in)
  std::vector<float> f32;      // when dtype == kF32
  std::vector<uint16_t> half;  // when dtype is kBF16 or kF16

  static Weight from_view(const TensorView& t);
  static Weight from_f32(std::vector<float> data, int64_t rows, int64_t cols);
  bool empty() const { return rows == 0; }
  int64_t numel() const { return rows * cols; }
  int64_t bytes() const { return numel() * int64_t(dtype_size(dtype)); }
  // Row r as f32 into out[0..cols).
  void row_f32(int64_t r, float* out) const;
  // All values as f32 (for saving and tests).
  std::vector<float> to_f32() const;
};

// y (T, out) = x (T, in) W^T (+ b)
void matmul(const float* x, const Weight& W, const float* b, int64_t T, float* y);

}  // namespace moa
