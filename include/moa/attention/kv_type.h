// The storage type of a KV cache's rows (`--kv-type`). Attention computes in f32; the cache stores
// each row of D values as
//   f32    D floats
//   f16    D IEEE half floats (round to nearest even)
//   bf16   D bfloat16 (round to nearest even)
//   q8_0   D/32 blocks of {f16 d, int8 q[32]} (34 bytes): d = max|x| / 127, q = round(x / d)
//          (half away from zero), x' = d * q; the layout of ggml's Q8_0. D must be a multiple
//          of 32.
// Kernels read the stored type directly (kv_simd.h); prefill attends over K/V rounded through the
// same type (kv_round_rows), so a prompt and a decoded token see the same values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace moa {

enum class KvType { kF32, kF16, kBF16, kQ8_0 };

const char* kv_type_name(KvType t);                       // "f32", "f16", "bf16", "q8_0"
std::optional<KvType> parse_kv_type(std::string_view s);  // the names above
// Whether rows of D values can be stored in t (q8_0: D % 32 == 0).
bool kv_type_fits(KvType t, int64_t D);
int64_t kv_row_bytes(KvType t, int64_t D);

void kv_encode_row(KvType t, const float* x, int64_t D, uint8_t* dst);
void kv_decode_row(KvType t, const uint8_t* src, int64_t D, float* out);
// x (rows, D) := what storing it in t and reading it back gives (a no-op for f32).
void kv_round_rows(KvType t, float* x, int64_t rows, int64_t D);

// `rows` rows of D values in one storage type, zero-filled.
class KvRows {
 public:
  KvRows() = default;
  KvRows(KvType t, int64_t D, int64_t rows);
  KvType type() const { return type_; }
  int64_t row_bytes() const { return row_bytes_; }
  uint8_t* row(int64_t i) { return data_.data() + i * row_bytes_; }
  const uint8_t* row(int64_t i) const { return data_.data() + i * row_bytes_; }
  void put(int64_t i, const float* x) { kv_encode_row(type_, x, d_, row(i)); }
  int64_t bytes() const { return int64_t(data_.size()); }

 private:
  KvType type_ = KvType::kF32;
  int64_t d_ = 0, row_bytes_ = 0;
  std::vector<uint8_t> data_;
};

}  // namespace moa
