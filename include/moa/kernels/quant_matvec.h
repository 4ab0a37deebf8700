// Matrix-vector products straight from ggml-quantised weight rows, for decode: y (rows) = W x
// with W (rows, cols) stored row-major in a block type (quant.h). The activation x is quantised
// once per call to 8-bit blocks (one f32 scale per block of 32 values, or of 256 for the K types,
// with sums per 16 values) and every weight block is dotted with it in exact integer arithmetic;
// only the per-block scales are combined in f32. matmul_ref (quant.h) is the oracle.
//
// Accuracy: x is replaced by d*q with |x - d*q| <= d/2 = amax/254 per block (amax: the block's
// largest |x|), so |y - matmul_ref| <= sum_j |w_j| * amax(block of j) / 254 plus f32 rounding of
// the block sums; tests/test_quant_kernels.cpp checks exactly that bound. Measured: on random
// blocks and normal x the error is ~0.5% of rms(y) for the 32-blocks and ~0.8% for the K types
// (QuantKernels.ActivationCostReport); on models/moa-tiny quantised by scripts/quantize_gguf.py,
// decode (moa score --h2o 1-1/T, one token at a time) vs prefill (dequantised panels, f32
// activations) moves the NLL by +0.0009 (Q8_0) and +0.0034 (Q4_0) nats/token on 2000 tokens of
// English and +0.0069 / -0.0055 on a 1413-token LongEval prompt, against +0.073 for Q4_0's
// weights themselves on the English text. quant_matvec_f32 is the variant without this error.
//
// Bit-for-bit: every ISA level computes the same integers per block and the same f32 combination
// (one shared routine; for Q8_0 and the K types the same lanes in the same order,
// kernels/int_dot.h), so
// results are identical across levels and thread counts.
#pragma once

#include <cstdint>
#include <vector>

#include "moa/core/cpu.h"
#include "moa/gguf/quant.h"

namespace moa {

// The types quant_matvec computes: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K.
bool quant_matvec_supported(GgmlType t);

// x (cols) quantised to blocks of `block` (32 or 256) values: x[i] ~ d[i / block] * q[i];
// sums16[k] = sum of q[16k .. 16k+16), sums32[k] of q[32k .. 32k+32), block_sums[b] of q over
// block b.
struct QuantizedActivation {
  int64_t block = 32;
  std::vector<int8_t> q;
  std::vector<float> d;
  std::vector<int16_t> sums16, sums32;
  std::vector<int32_t> block_sums;
};
// The activation block a weight type is dotted with (32, or 256 for the K types).
int64_t activation_block(GgmlType t);
void quantize_activation(const float* x, int64_t cols, int64_t block, QuantizedActivation* out);

// The level quant_matvec(t, ..., level) actually runs: the highest at or below `level` that has a
// kernel for t.
IsaLevel quant_kernel_level(GgmlType t, IsaLevel level);

// The bound above, per row: bound[r] >= |quant_matvec(..)[r] - matmul_ref(..)[r]| for this x and
// W (tests and benchmarks check the kernels against it).
std::vector<double> quant_matvec_error_bound(GgmlType t, const uint8_t* w, int64_t rows,
                                             int64_t cols, const float* x);

// y[r] = dot(W[r], x) for r < rows, W rows ggml_row_bytes(t, cols) bytes apart (cols a multiple
// of t's block; MOA_CHECKed). Runs the rows over the OpenMP team when the matrix is large. `level`
// above detected_isa() is MOA_CHECKed; the default is active_isa().
void quant_matvec(GgmlType t, const uint8_t* w, int64_t rows, int64_t cols, const float* x,
                  float* y, IsaLevel level = active_isa());

// Y (T, rows) = X (T, cols) W^T, the T inputs quantised once each: every weight row is dotted
// with all T while it sits in L1, so the weights are read once (decode of a batch). Row r of
// input i has the bits quant_matvec gives for that input alone.
void quant_matmul(GgmlType t, const uint8_t* w, int64_t rows, int64_t cols, const float* x,
                  int64_t T, float* y, IsaLevel level = active_isa());
void quant_matmul(GgmlType t, const uint8_t* w, int64_t rows, int64_t cols,
                  const QuantizedActivation* xs, int64_t T, float* y, IsaLevel level);

// dequantize_row_ref's values, bit for bit, with AVX2 (level >= kAvx2; other types and levels go
// through the reference): for prefill's f32 panels and the f32-activation matvec.
void dequantize_row(GgmlType t, const uint8_t* src, int64_t n, float* out,
                    IsaLevel level = active_isa());

// y[r] = dot(W[r], x) with x kept in f32: each row dequantised (dequantize_row) into a buffer in
// L1 and dotted in f32. The variant without the 8-bit activation's error (|y - matmul_ref| is f32
// rounding only), at the price of converting every weight to f32.
void quant_matvec_f32(GgmlType t, const uint8_t* w, int64_t rows, int64_t cols, const float* x,
                      float* y, IsaLevel level = active_isa());

}  // namespace moa
