// Model configuration: the fields of a Hugging Face config.json that define a Llama-family
// forward pass (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "moa/attention/attention_spec.h"

namespace moa {

enum class RopeScaling { kNone, kLinear, kLlama3 };

struct ModelConfig {
  std::string architecture;  // e.g. "LlamaForCausalLM"
  std::string model_type;    // e.g. "llama"
  int64_t hidden = 0;        // C
  int64_t intermediate = 0;  // F
  int64_t layers = 0;
  int64_t heads = 0;     // H, query heads
  int64_t kv_heads = 0;  // G
  int64_t head_dim = 0;  // D (may differ from hidden / heads)
  int64_t vocab = 0;     // V
  int64_t max_position = 0;
  double rms_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling = RopeScaling::kNone;
  double rope_factor = 1.0;
  double rope_low_freq_factor = 1.0;   // llama3
  double rope_high_freq_factor = 4.0;  // llama3
  int64_t rope_original_max_position = 8192;  // llama3
  // Per-frequency divisors of the inverse frequencies (D/2), applied after rope_scaling: how a GGUF
  // file stores llama3 scaling (tensor rope_freqs.weight, as llama.cpp applies it). Empty = none.
  // Not expressible in config.json: Model::save refuses a model that has them.
  std::vector<double> rope_freq_factors;
  bool tie_embeddings = false;
  bool qkv_bias = false;  // Qwen2
  bool mlp_bias = false;
  bool attention_out_bias = false;
  int64_t sliding_window = 0;  // Mistral's own window (0 = none); reported, dense otherwise
  int64_t bos_id = -1;
  int64_t eos_id = -1;
  std::string torch_dtype;  // as written in config.json, informational

  int64_t group() const { return heads / kv_heads; }  // query heads per KV head
  int64_t q_dim() const { return heads * head_dim; }
  int64_t kv_dim() const { return kv_heads * head_dim; }
  // What the attention module needs to know of the model (the one seam between the two).
  AttentionShape attention_shape() const { return {layers, heads, kv_heads, head_dim}; }

  // Parses config.json text; `source` names the file in error messages.
  static ModelConfig from_json(const nlohmann::json& j, const std::string& source);
  static ModelConfig load(const std::filesystem::path& config_json);
  nlohmann::json to_json() const;
};

}  // namespace moa
