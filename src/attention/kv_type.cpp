#include "moa/attention/kv_type.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "moa/core/error.h"
#include "moa/core/half.h"

namespace moa {

namespace {
constexpr int64_t kQ8Block = 32, kQ8Bytes = 2 + kQ8Block;
}

const char* kv_type_name(KvType t) {
  switch (t) {
    case KvType::kF32:
      return "f32";
    case KvType::kF16:
      return "f16";
    case KvType::kBF16:
      return "bf16";
    case KvType::kQ8_0:
      return "q8_0";
  }
  return "?";
}

std::optional<KvType> parse_kv_type(std::string_view s) {
  for (KvType t : {KvType::kF32, KvType::kF16, KvType::kBF16, KvType::kQ8_0}) {
    if (s == kv_type_name(t)) return t;
  }
  return std::nullopt;
}

bool kv_type_fits(KvType t, int64_t D) { return t != KvType::kQ8_0 || D % kQ8Block == 0; }

int64_t kv_row_bytes(KvType t, int64_t D) {
  switch (t) {
    case KvType::kF32:
      return D * 4;
    case KvType::kF16:
    case KvType::kBF16:
      return D * 2;
    case KvType::kQ8_0:
      return D / kQ8Block * kQ8Bytes;
  }
  return 0;
}

void kv_encode_row(KvType t, const float* x, int64_t D, uint8_t* dst) {
  MOA_CHECK(kv_type_fits(t, D), "rows of {} values in {}", D, kv_type_name(t));
  switch (t) {
    case KvType::kF32:
      std::memcpy(dst, x, size_t(D) * 4);
      return;
    case KvType::kF16:
      for (int64_t i = 0; i < D; ++i) {
        const uint16_t h = f32_to_f16(x[i]);
        std::memcpy(dst + 2 * i, &h, 2);
      }
      return;
    case KvType::kBF16:
      for (int64_t i = 0; i < D; ++i) {
        const uint16_t h = f32_to_bf16(x[i]);
        std::memcpy(dst + 2 * i, &h, 2);
      }
      return;
    case KvType::kQ8_0:
      for (int64_t b = 0; b < D / kQ8Block; ++b, x += kQ8Block, dst += kQ8Bytes) {
        float amax = 0;
        for (int64_t j = 0; j < kQ8Block; ++j) amax = std::max(amax, std::fabs(x[j]));
        const float d = amax / 127.0f, id = d > 0 ? 1.0f / d : 0.0f;
        const uint16_t dh = f32_to_f16(d);
        std::memcpy(dst, &dh, 2);
        for (int64_t j = 0; j < kQ8Block; ++j) {
          dst[2 + j] = uint8_t(int8_t(std::clamp(std::round(x[j] * id), -127.0f, 127.0f)));
        }
      }
      return;
  }
}

void kv_decode_row(KvType t, const uint8_t* src, int64_t D, float* out) {
  switch (t) {
    case KvType::kF32:
      std::memcpy(out, src, size_t(D) * 4);
      return;
    case KvType::kF16:
    case KvType::kBF16:
      for (int64_t i = 0; i < D; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        out[i] = t == KvType::kF16 ? f16_to_f32(h) : bf16_to_f32(h);
      }
      return;
    case KvType::kQ8_0:
      for (int64_t b = 0; b < D / kQ8Block; ++b, src += kQ8Bytes, out += kQ8Block) {
        uint16_t dh;
        std::memcpy(&dh, src, 2);
        const float d = f16_to_f32(dh);
        for (int64_t j = 0; j < kQ8Block; ++j) out[j] = d * float(int8_t(src[2 + j]));
      }
      return;
  }
}

void kv_round_rows(KvType t, float* x, int64_t rows, int64_t D) {
  if (t == KvType::kF32) return;
  std::vector<uint8_t> buf(size_t(kv_row_bytes(t, D)));
  for (int64_t r = 0; r < rows; ++r) {
    kv_encode_row(t, x + r * D, D, buf.data());
    kv_decode_row(t, buf.data(), D, x + r * D);
  }
}

KvRows::KvRows(KvType t, int64_t D, int64_t rows)
    : type_(t), d_(D), row_bytes_(kv_row_bytes(t, D)), data_(size_t(rows * row_bytes_), 0) {
  MOA_CHECK(kv_type_fits(t, D), "rows of {} values in {}", D, kv_type_name(t));
}

}  // namespace moa
