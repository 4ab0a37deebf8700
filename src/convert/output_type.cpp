// Output types and the per-tensor type mix (see include/moa/convert/convert.h).
#include <string_view>

#include "moa/convert/convert.h"
#include "moa/core/error.h"

namespace moa {

namespace {

// llama_ftype numbers (llama.cpp include/llama.h).
const OutputType kTypes[] = {
    {"f32", 0, GgmlType::kF32, false},    {"f16", 1, GgmlType::kF16, false},
    {"bf16", 32, GgmlType::kBF16, false}, {"q8_0", 7, GgmlType::kQ8_0, false},
    {"q4_0", 2, GgmlType::kQ4_0, false},  {"q4_k", 14, GgmlType::kQ4_K, false},
    {"q6_k", 18, GgmlType::kQ6_K, false}, {"q4_k_m", 15, GgmlType::kQ4_K, true},
};

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// llama.cpp's use_more_bits: the first and last eighth of the layers and every third between.
bool use_more_bits(int64_t i, int64_t n) {
  return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

// llama.cpp's fallback for a row that is not a whole number of the type's blocks.
GgmlType fallback(GgmlType t, int64_t ne0) {
  if (ne0 % ggml_type_traits(uint32_t(t)).block == 0) return t;
  switch (t) {
    case GgmlType::kQ4_K:
      t = GgmlType::kQ5_0;
      break;
    case GgmlType::kQ5_K:
      t = GgmlType::kQ5_1;
      break;
    case GgmlType::kQ6_K:
      t = GgmlType::kQ8_0;
      break;
    default:
      break;
  }
  if (ne0 % ggml_type_traits(uint32_t(t)).block != 0) t = GgmlType::kF16;
  return t;
}

}  // namespace

std::string output_type_names() {
  std::string s;
  for (const auto& t : kTypes) s += (s.empty() ? "" : ", ") + t.name;
  return s;
}

OutputType parse_output_type(const std::string& name) {
  for (const auto& t : kTypes) {
    if (t.name == name) return t;
  }
  input_error("--type '{}' is not an output type (expected one of {})", name, output_type_names());
}

GgmlType tensor_type_for(const OutputType& t, const std::string& name, int64_t ne0, int64_t ne_dims,
                         int64_t layer, int64_t layers, bool tied) {
  if (ne_dims < 2) return GgmlType::kF32;  // norms, biases, rope_freqs
  GgmlType g = t.base;
  if (t.q4_k_m) {
    const bool output = name == "output.weight" || (tied && name == "token_embd.weight");
    if (output) {
      g = ne0 % 256 != 0 ? GgmlType::kQ8_0 : GgmlType::kQ6_K;
    } else if ((ends_with(name, ".attn_v.weight") || ends_with(name, ".ffn_down.weight")) &&
               layer >= 0 && use_more_bits(layer, layers)) {
      g = GgmlType::kQ6_K;
    }
  }
  return fallback(g, ne0);
}

}  // namespace moa
