// A weight matrix kept in its checkpoint dtype (F32, BF16 or F16, or a ggml block type from a
// GGUF file). BF16 and F16 matrices, like block-quantised ones, are read straight from the mapped
// file (no copy at load) unless a row permutation or misalignment forces one. Compute is always f32: decode multiplies straight from the stored bytes (memory
// bound, so half-width weights halve the time), prefill converts row panels to f32 and calls
// sgemm. Block-quantised weights (dtype kQuant) stay in the GGUF mapping; decode (T <= 8) runs
// the integer kernels of moa/kernels/quant_matvec.h (activation quantised to 8 bits, checked
// against matmul_ref), prefill dequantises row panels (dequantize_row: the reference
// dequantisers' values, bit for bit) before sgemm.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "moa/gguf/quant.h"
#include "moa/model/safetensors.h"

namespace moa {

struct Weight {
  DType dtype = DType::kF32;
  int64_t rows = 0, cols = 0;  // (out, in)
  std::vector<float> f32;      // when dtype == kF32
  std::vector<uint16_t> half;  // when dtype is kBF16 or kF16 and the values are a copy
  std::shared_ptr<const uint16_t> hmap;  // when they are in a file's mapping (then half is empty)
  // When dtype is kQuant: rows x ggml_row_bytes(qtype, cols) bytes, not owned by the vectors
  // above: the pointer shares ownership of whatever holds the bytes (a GGUF file's mapping, or a
  // row-permuted copy), so copies of the Weight stay valid.
  GgmlType qtype = GgmlType::kF32;
  std::shared_ptr<const uint8_t> qdata;

  static Weight from_view(const TensorView& t);
  static Weight from_f32(std::vector<float> data, int64_t rows, int64_t cols);
  // A block-quantised weight over bytes owned elsewhere (t must be computable, cols a multiple of
  // its block; MOA_CHECKed).
  static Weight from_quant(GgmlType t, std::shared_ptr<const uint8_t> data, int64_t rows,
                           int64_t cols);
  bool empty() const { return rows == 0; }
  const uint16_t* half_data() const { return hmap ? hmap.get() : half.data(); }
  int64_t numel() const { return rows * cols; }
  int64_t row_bytes() const;  // bytes of one stored row
  int64_t bytes() const { return rows * row_bytes(); }
  // Row r as f32 into out[0..cols).
  void row_f32(int64_t r, float* out) const;
  // All values as f32 (for saving and tests).
  std::vector<float> to_f32() const;
};

// y (T, out) = x (T, in) W^T (+ b)
void matmul(const float* x, const Weight& W, const float* b, int64_t T, float* y);

}  // namespace moa
