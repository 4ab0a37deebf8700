// ggml tensor types (the types a GGUF file stores its tensors in) and plain scalar reference
// kernels over them: dequantise one row to f32, and y = x W^T on top of that. These references
// are the oracles every future fast kernel is checked against; they are never deleted.
//
// Block layouts (little-endian, no padding; "d"/"m" are IEEE half floats), 32 values per block
// unless stated, value j of a block written x[j]:
//   Q4_0  d, qs[16]                  x[j] = d * ((qs[j%16] >> 4*(j/16) & 15) - 8)
//   Q4_1  d, m, qs[16]               x[j] = d * (qs[j%16] >> 4*(j/16) & 15) + m
//   Q5_0  d, qh(u32), qs[16]         q = low nibble as Q4_0 | bit j of qh << 4;  x = d * (q - 16)
//   Q5_1  d, m, qh(u32), qs[16]      q as Q5_0;  x = d * q + m
//   Q8_0  d, qs[32] (int8)           x[j] = qs[j] * d
//   Q4_K  256 values in 8 sub-blocks of 32: d, dmin, scales[12] (8 six-bit scales and 8 six-bit
//         mins), qs[128]; x = (d * sc[s]) * q - (dmin * mn[s])
//   Q5_K  as Q4_K plus qh[32]: bit s of qh[l] is bit 4 of value l of sub-block s
//   Q6_K  256 values in 16 groups of 16: ql[128], qh[64], scales[16] (int8), d;
//         x = (d * scales[g]) * (q - 32), q six bits from ql (low 4) and qh (high 2)
// The exact bit positions are spelled out next to each kernel in src/gguf/quant.cpp.
#pragma once

#include <cstdint>
#include <string>

namespace moa {

// ggml's type ids as stored in GGUF tensor infos (ggml.h's enum ggml_type).
enum class GgmlType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kBF16 = 30,
};

// Size facts of a ggml type id, for every type ggml defines (also the ones we cannot compute
// with: a GGUF file holding them can still be listed, and its offsets checked).
struct GgmlTypeTraits {
  const char* name = nullptr;  // nullptr: not a ggml type id we know
  int64_t block = 0;           // values per block
  int64_t bytes = 0;           // bytes per block
  bool computable = false;     // a reference dequantiser exists here
};

GgmlTypeTraits ggml_type_traits(uint32_t id);
// "Q4_K", or "type 99" for an id ggml does not define.
std::string ggml_type_name(uint32_t id);
inline std::string ggml_type_name(GgmlType t) { return ggml_type_name(uint32_t(t)); }
// The computable types, in id order, for messages: "F32, F16, Q4_0, ...".
std::string ggml_computable_types();

// Bytes of one row of n values (n a multiple of the block size; MOA_CHECKed).
int64_t ggml_row_bytes(GgmlType t, int64_t n);

// out[0..n) = the n values stored in src (one row: n / block consecutive blocks).
// Plain scalar code, evaluated in f32 in the order gguf-py evaluates it, so results are bit for bit
// those of gguf.quants.dequantize (the file is compiled without floating-point contraction).
void dequantize_row_ref(GgmlType t, const uint8_t* src, int64_t n, float* out);

// y (T, rows) = x (T, cols) W^T (+ b), W (rows, cols) stored row-major in type t (each row
// ggml_row_bytes(t, cols) bytes). Dequantises one row at a time and accumulates in double: the
// oracle for quantised matmul kernels, not a fast path.
void matmul_ref(const float* x, GgmlType t, const uint8_t* w, int64_t rows, int64_t cols,
                const float* b, int64_t T, float* y);

}  // namespace moa
