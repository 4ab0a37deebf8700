// Reference quantisers: one row of f32 values into a ggml type's blocks. Plain scalar code, the
// oracles beside future fast ones (never deleted). The dequantisers are in quant.h.
//
// Rules (x = one block's values; f32 arithmetic unless stated; halves rounded to nearest even):
//   F16, BF16  each value rounded to nearest even (BF16: NaN stays a quiet NaN), as gguf-py.
//   Q8_0  d = amax / 127, id = d ? 1/d : 0, q = round_half_away(x * id).
//   Q4_0  m = the value of largest |x| (first one), d = m / -8, id = d ? 1/d : 0,
//         q = min(15, trunc(double(x) * double(id) + 8.5))      (gguf-py's rule, in double)
//   Q5_0  as Q4_0 with d = m / -16, + 16.5, q <= 31.
//   Q4_1  d = (max - min) / 15, id = d ? 1/d : 0, q = min(15, trunc((x - min) * id + 0.5)); m = min
//   Q5_1  as Q4_1 with 31.
//   These five match gguf.quants.quantize bit for bit (tests/test_quantize.cpp checks a fixture).
//   K-quants (gguf-py cannot quantise them; ggml searches its scales iteratively, we do not):
//   plain round-to-nearest-even with block scales chosen so that the range always covers the
//   values, hence |x - dequantised| <= step / 2 for every value (step = the sub-block's d * sc):
//   Q4_K, Q5_K  per sub-block s of 32: lo = min(0, min x), hi = max x; dmin = f16 rounded up of
//         max(-lo) / 63, mn = ceil-if-short(round(-lo / dmin)); need = (hi + dmin*mn) / L
//         (L = 15 or 31); d = f16 rounded up of max(need) / 63, sc = round(need / d) (+1 when
//         d*sc < need); q = round((x + dmin*mn) / (d*sc)) clamped to 0..L.
//   Q6_K  per group g of 16: need = amax / 31; d = f16 rounded up of max(need) / 127,
//         sc = round(need / d) (+1 when short); q = round(x / (d*sc)) clamped to -32..31, + 32.
//   A block already of that form (d, dmin powers of two; one scale at its maximum, every sub-block
//   using its lowest and highest level) comes back with the same bytes.
#pragma once

#include <cstdint>
#include <string>

#include "moa/gguf/quant.h"

namespace moa {

// True for the types quantize_row_ref writes: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K,
// Q5_K, Q6_K.
bool ggml_quantizable(GgmlType t);

// dst[0 .. ggml_row_bytes(t, n)) = the n values of src in type t. MOA_CHECKs a quantizable type and
// n a multiple of the type's block (callers pick a fallback type for ragged rows first).
void quantize_row_ref(GgmlType t, const float* src, int64_t n, uint8_t* dst);

}  // namespace moa
