// Reference dequantisers for the ggml block types, written from the block definitions (ggml's
// ggml-common.h) and checked bit for bit against gguf-py's numpy dequantisers
// (tests/test_gguf.cpp, fixtures from tests/data/make_gguf_fixtures.py). Every product and sum
// is formed in f32 in the order gguf-py forms it; CMakeLists.txt compiles this file with
// -ffp-contract=off so that the compiler does not fuse `a * b + c` into one rounding.
#include "moa/gguf/quant.h"

#include <cstring>
#include <vector>

#include "moa/core/error.h"
#include "moa/core/half.h"

namespace moa {

namespace {

struct TypeRow {
  uint32_t id;
  GgmlTypeTraits t;
};

// Every type id of ggml's enum ggml_type (ids 4, 5 and 31-33 were retired upstream).
constexpr TypeRow kTypes[] = {
    {0, {"F32", 1, 4, true}},          {1, {"F16", 1, 2, true}},
    {2, {"Q4_0", 32, 18, true}},       {3, {"Q4_1", 32, 20, true}},
    {6, {"Q5_0", 32, 22, true}},       {7, {"Q5_1", 32, 24, true}},
    {8, {"Q8_0", 32, 34, true}},       {9, {"Q8_1", 32, 36, false}},
    {10, {"Q2_K", 256, 84, false}},    {11, {"Q3_K", 256, 110, false}},
    {12, {"Q4_K", 256, 144, true}},    {13, {"Q5_K", 256, 176, true}},
    {14, {"Q6_K", 256, 210, true}},    {15, {"Q8_K", 256, 292, false}},
    {16, {"IQ2_XXS", 256, 66, false}}, {17, {"IQ2_XS", 256, 74, false}},
    {18, {"IQ3_XXS", 256, 98, false}}, {19, {"IQ1_S", 256, 50, false}},
    {20, {"IQ4_NL", 32, 18, false}},   {21, {"IQ3_S", 256, 110, false}},
    {22, {"IQ2_S", 256, 82, false}},   {23, {"IQ4_XS", 256, 136, false}},
    {24, {"I8", 1, 1, false}},         {25, {"I16", 1, 2, false}},
    {26, {"I32", 1, 4, false}},        {27, {"I64", 1, 8, false}},
    {28, {"F64", 1, 8, false}},        {29, {"IQ1_M", 256, 56, false}},
    {30, {"BF16", 1, 2, true}},        {34, {"TQ1_0", 256, 54, false}},
    {35, {"TQ2_0", 256, 66, false}},
};

inline float half_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_f32(h);
}

// Low nibble of qs[j % 16] for j < 16, high nibble for j >= 16: value j of a 32-value block.
inline int nibble32(const uint8_t* qs, int j) { return (qs[j & 15] >> (4 * (j >> 4))) & 15; }

void deq_q4_0(const uint8_t* b, float* y) {  // d(2) qs(16)
  const float d = half_at(b);
  for (int j = 0; j < 32; ++j) y[j] = d * float(nibble32(b + 2, j) - 8);
}

void deq_q4_1(const uint8_t* b, float* y) {  // d(2) m(2) qs(16)
  const float d = half_at(b), m = half_at(b + 2);
  for (int j = 0; j < 32; ++j) y[j] = d * float(nibble32(b + 4, j)) + m;
}

// Five-bit value j: the nibble as in Q4_0, bit 4 = bit j of the little-endian u32 qh.
inline int five32(const uint8_t* qh, const uint8_t* qs, int j) {
  const uint32_t h =
      uint32_t(qh[0]) | uint32_t(qh[1]) << 8 | uint32_t(qh[2]) << 16 | uint32_t(qh[3]) << 24;
  return nibble32(qs, j) | int((h >> j) & 1) << 4;
}

void deq_q5_0(const uint8_t* b, float* y) {  // d(2) qh(4) qs(16)
  const float d = half_at(b);
  for (int j = 0; j < 32; ++j) y[j] = d * float(five32(b + 2, b + 6, j) - 16);
}

void deq_q5_1(const uint8_t* b, float* y) {  // d(2) m(2) qh(4) qs(16)
  const float d = half_at(b), m = half_at(b + 2);
  for (int j = 0; j < 32; ++j) y[j] = d * float(five32(b + 4, b + 8, j)) + m;
}

void deq_q8_0(const uint8_t* b, float* y) {  // d(2) qs(32, int8)
  const float d = half_at(b);
  for (int j = 0; j < 32; ++j) y[j] = float(int8_t(b[2 + j])) * d;
}

// The 12 scale bytes of Q4_K / Q5_K hold 8 six-bit scales and 8 six-bit mins:
// sub-blocks 0-3: scale = s[i] & 63, min = s[i+4] & 63; sub-blocks 4-7: the low 4 bits come
// from s[i+4] (scale: low nibble, min: high nibble) and the top 2 bits from the top 2 bits of
// s[i-4] (scale) and s[i] (min).
inline void k_scale_min(const uint8_t* s, int i, int* sc, int* mn) {
  if (i < 4) {
    *sc = s[i] & 63;
    *mn = s[i + 4] & 63;
  } else {
    *sc = (s[i + 4] & 15) | ((s[i - 4] >> 6) << 4);
    *mn = (s[i + 4] >> 4) | ((s[i] >> 6) << 4);
  }
}

// Q4_K: d(2) dmin(2) scales(12) qs(128). Sub-block i (32 values) takes the low nibbles
// (i even) or high nibbles (i odd) of qs[32*(i/2) .. +32).
void deq_q4_k(const uint8_t* b, float* y) {
  const float d = half_at(b), dmin = half_at(b + 2);
  const uint8_t* qs = b + 16;
  for (int i = 0; i < 8; ++i) {
    int sc, mn;
    k_scale_min(b + 4, i, &sc, &mn);
    const float ds = d * float(sc), dm = dmin * float(mn);
    const uint8_t* q = qs + 32 * (i / 2);
    const int shift = 4 * (i % 2);
    for (int l = 0; l < 32; ++l) y[32 * i + l] = ds * float((q[l] >> shift) & 15) - dm;
  }
}

// Q5_K: d(2) dmin(2) scales(12) qh(32) qs(128). As Q4_K; bit i of qh[l] is bit 4 of value l of
// sub-block i.
void deq_q5_k(const uint8_t* b, float* y) {
  const float d = half_at(b), dmin = half_at(b + 2);
  const uint8_t* qh = b + 16;
  const uint8_t* qs = b + 48;
  for (int i = 0; i < 8; ++i) {
    int sc, mn;
    k_scale_min(b + 4, i, &sc, &mn);
    const float ds = d * float(sc), dm = dmin * float(mn);
    const uint8_t* q = qs + 32 * (i / 2);
    const int shift = 4 * (i % 2);
    for (int l = 0; l < 32; ++l) {
      const int v = ((q[l] >> shift) & 15) | (((qh[l] >> i) & 1) << 4);
      y[32 * i + l] = ds * float(v) - dm;
    }
  }
}

// Q6_K: ql(128) qh(64) scales(16, int8) d(2). Value n = 128*h + 32*k + l (half h in 0..1, quarter
// k in 0..3, l in 0..31): low 4 bits from ql[64*h + 32*(k%2) + l] (low nibble for k < 2, high
// nibble otherwise), high 2 bits from qh[32*h + l] >> 2*k; scale scales[n / 16].
void deq_q6_k(const uint8_t* b, float* y) {
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192);
  const float d = half_at(b + 208);
  for (int h = 0; h < 2; ++h) {
    for (int k = 0; k < 4; ++k) {
      for (int l = 0; l < 32; ++l) {
        const int n = 128 * h + 32 * k + l;
        const int lo = (ql[64 * h + 32 * (k % 2) + l] >> (4 * (k / 2))) & 15;
        const int hi = (qh[32 * h + l] >> (2 * k)) & 3;
        const float ds = d * float(sc[n / 16]);
        y[n] = ds * float((lo | hi << 4) - 32);
      }
    }
  }
}

}  // namespace

GgmlTypeTraits ggml_type_traits(uint32_t id) {
  for (const auto& r : kTypes) {
    if (r.id == id) return r.t;
  }
  return {};
}

std::string ggml_type_name(uint32_t id) {
  const GgmlTypeTraits t = ggml_type_traits(id);
  return t.name ? std::string(t.name) : "type " + std::to_string(id);
}

std::string ggml_computable_types() {
  std::string s;
  for (const auto& r : kTypes) {
    if (r.t.computable) s += (s.empty() ? "" : ", ") + std::string(r.t.name);
  }
  return s;
}

int64_t ggml_row_bytes(GgmlType t, int64_t n) {
  const GgmlTypeTraits tr = ggml_type_traits(uint32_t(t));
  MOA_CHECK(tr.name && n % tr.block == 0, "{} values of type {}", n, ggml_type_name(t));
  return n / tr.block * tr.bytes;
}

void dequantize_row_ref(GgmlType t, const uint8_t* src, int64_t n, float* out) {
  const GgmlTypeTraits tr = ggml_type_traits(uint32_t(t));
  MOA_CHECK(tr.computable && n % tr.block == 0, "{} values of type {}", n, ggml_type_name(t));
  void (*block_fn)(const uint8_t*, float*) = nullptr;
  switch (t) {
    case GgmlType::kF32:
      std::memcpy(out, src, size_t(n) * 4);
      return;
    case GgmlType::kF16:
      for (int64_t i = 0; i < n; ++i) out[i] = half_at(src + 2 * i);
      return;
    case GgmlType::kBF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        out[i] = bf16_to_f32(h);
      }
      return;
    case GgmlType::kQ4_0:
      block_fn = deq_q4_0;
      break;
    case GgmlType::kQ4_1:
      block_fn = deq_q4_1;
      break;
    case GgmlType::kQ5_0:
      block_fn = deq_q5_0;
      break;
    case GgmlType::kQ5_1:
      block_fn = deq_q5_1;
      break;
    case GgmlType::kQ8_0:
      block_fn = deq_q8_0;
      break;
    case GgmlType::kQ4_K:
      block_fn = deq_q4_k;
      break;
    case GgmlType::kQ5_K:
      block_fn = deq_q5_k;
      break;
    case GgmlType::kQ6_K:
      block_fn = deq_q6_k;
      break;
  }
  MOA_CHECK(block_fn != nullptr, "no dequantiser for {}", ggml_type_name(t));
  for (int64_t b = 0; b < n / tr.block; ++b) block_fn(src + b * tr.bytes, out + b * tr.block);
}

void matmul_ref(const float* x, GgmlType t, const uint8_t* w, int64_t rows, int64_t cols,
                const float* b, int64_t T, float* y) {
  const int64_t row_bytes = ggml_row_bytes(t, cols);
  std::vector<float> row(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    dequantize_row_ref(t, w + r * row_bytes, cols, row.data());
    for (int64_t i = 0; i < T; ++i) {
      double s = b ? double(b[r]) : 0.0;
      for (int64_t c = 0; c < cols; ++c) s += double(x[i * cols + c]) * double(row[size_t(c)]);
      y[i * rows + r] = float(s);
    }
  }
}

}  // namespace moa
