#include "moa/model/config.h"

#include <fstream>
#include <nlohmann/json.hpp>

#include "moa/core/error.h"

namespace moa {

namespace {

using nlohmann::json;

int64_t get_int(const json& j, const char* key, const std::string& src, bool required,
                int64_t def = 0) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required) input_error("{}: missing field '{}' (expected a positive integer)", src, key);
    return def;
  }
  if (!it->is_number_integer() || it->get<int64_t>() < 0) {
    input_error("{}: field '{}' is {}, expected a non-negative integer", src, key, it->dump());
  }
  return it->get<int64_t>();
}

double get_num(const json& j, const char* key, const std::string& src, double def) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return def;
  if (!it->is_number()) input_error("{}: field '{}' is {}, expected a number", src, key, it->dump());
  return it->get<double>();
}

std::string get_string(const json& j, const char* key, const std::string& src,
                       const std::string& def) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return def;
  if (!it->is_string())
    input_error("{}: field '{}' is {}, expected a string", src, key, it->dump());
  return it->get<std::string>();
}

bool get_bool(const json& j, const char* key, const std::string& src, bool def) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return def;
  if (!it->is_boolean()) input_error("{}: field '{}' is {}, expected true or false", src, key, it->dump());
  return it->get<bool>();
}

// bos/eos may be an int or a list of ints; we keep the first (tokenizer files give the full set).
int64_t get_token_id(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end()) return -1;
  if (it->is_number_integer()) return it->get<int64_t>();
  if (it->is_array() && !it->empty() && (*it)[0].is_number_integer()) return (*it)[0].get<int64_t>();
  return -1;
}

// A config whose sizes no machine could hold is a broken file: refuse it before anything is
// allocated from it (Model::random, the loaders, the KV cache), naming the numbers. One matrix may
// hold 2^40 weights (the safetensors reader's bound on a tensor), the model 2^42 (8 TiB in
// bf16); each size is below 2^31 first, so that the products below cannot overflow.
void check_sizes(const ModelConfig& c, const std::string& src) {
  constexpr int64_t kMaxSize = int64_t(1) << 31;
  constexpr int64_t kMaxMatrix = int64_t(1) << 40;
  constexpr int64_t kMaxWeights = int64_t(1) << 42;
  for (auto [name, v] : {std::pair{"hidden_size", c.hidden},
                         {"intermediate_size", c.intermediate},
                         {"num_hidden_layers", c.layers},
                         {"num_attention_heads", c.heads},
                         {"num_key_value_heads", c.kv_heads},
                         {"head_dim", c.head_dim},
                         {"vocab_size", c.vocab},
                         {"max_position_embeddings", c.max_position}}) {
    if (v >= kMaxSize) {
      input_error("{}: field '{}' is {}, expected less than {} (2^31)", src, name, v, kMaxSize);
    }
  }
  const int64_t C = c.hidden;
  for (auto [rows, rows_name] : {std::pair{c.vocab, "vocab_size"},
                                 {c.intermediate, "intermediate_size"},
                                 {c.heads * c.head_dim, "num_attention_heads x head_dim"}}) {
    if (rows > kMaxMatrix / C) {
      input_error(
          "{}: {} {} x hidden_size {} = {:.4g} weights in one matrix, more than the {} (2^40) "
          "a tensor may hold",
          src, rows_name, rows, C, double(rows) * double(C), kMaxMatrix);
    }
  }
  const int64_t per_layer = 2 * C * (c.heads + c.kv_heads) * c.head_dim + 3 * C * c.intermediate;
  const int64_t embeddings = 2 * c.vocab * C;
  if (per_layer > (kMaxWeights - embeddings) / c.layers) {
    input_error(
        "{}: num_hidden_layers {} x {} weights per layer + {} in the embeddings is more "
        "than the {} (2^42) weights a model may have",
        src, c.layers, per_layer, embeddings, kMaxWeights);
  }
}

}  // namespace

ModelConfig ModelConfig::from_json(const json& j, const std::string& src) {
  if (!j.is_object()) input_error("{}: expected a JSON object at the top level", src);
  ModelConfig c;
  static const char* kSupported[] = {"LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM"};
  c.model_type = get_string(j, "model_type", src, "llama");
  auto arch = j.find("architectures");
  if (arch != j.end() && !arch->is_null() && !(arch->is_array() && arch->empty())) {
    if (!arch->is_array() || !(*arch)[0].is_string()) {
      input_error(
          "{}: field 'architectures' is {}, expected a list of class names such as "
          "[\"LlamaForCausalLM\"]",
          src, arch->dump());
    }
    c.architecture = (*arch)[0].get<std::string>();
  } else if (c.model_type == "llama" || c.model_type == "mistral" || c.model_type == "qwen2") {
    // No architectures (older configs): model_type names the family.
    c.architecture = c.model_type == "mistral" ? "MistralForCausalLM"
                     : c.model_type == "qwen2" ? "Qwen2ForCausalLM"
                                               : "LlamaForCausalLM";
  } else {
    input_error(
        "{}: field 'model_type' is \"{}\" and there is no 'architectures', expected llama, "
        "mistral or qwen2",
        src, c.model_type);
  }
  bool ok = false;
  for (auto* a : kSupported) ok |= c.architecture == a;
  if (!ok) {
    input_error(
        "{}: field 'architectures' is \"{}\", expected one of LlamaForCausalLM, "
        "MistralForCausalLM, Qwen2ForCausalLM",
        src, c.architecture);
  }
  c.hidden = get_int(j, "hidden_size", src, true);
  c.intermediate = get_int(j, "intermediate_size", src, true);
  c.layers = get_int(j, "num_hidden_layers", src, true);
  c.heads = get_int(j, "num_attention_heads", src, true);
  c.kv_heads = get_int(j, "num_key_value_heads", src, false, c.heads);
  c.vocab = get_int(j, "vocab_size", src, true);
  c.max_position = get_int(j, "max_position_embeddings", src, false, 2048);
  for (auto [name, v] : {std::pair{"hidden_size", c.hidden}, {"intermediate_size", c.intermediate},
                         {"num_hidden_layers", c.layers}, {"num_attention_heads", c.heads},
                         {"num_key_value_heads", c.kv_heads}, {"vocab_size", c.vocab}}) {
    if (v <= 0) input_error("{}: field '{}' is {}, expected a positive integer", src, name, v);
  }
  if (c.heads % c.kv_heads != 0) {
    input_error("{}: num_attention_heads {} is not a multiple of num_key_value_heads {}", src,
                c.heads, c.kv_heads);
  }
  c.head_dim = get_int(j, "head_dim", src, false, 0);
  if (c.head_dim == 0) {
    if (c.hidden % c.heads != 0) {
      input_error("{}: hidden_size {} is not divisible by num_attention_heads {} and no head_dim "
                  "is given",
                  src, c.hidden, c.heads);
    }
    c.head_dim = c.hidden / c.heads;
  }
  if (c.head_dim % 2 != 0) input_error("{}: head_dim {} must be even for RoPE", src, c.head_dim);
  check_sizes(c, src);
  c.rms_eps = get_num(j, "rms_norm_eps", src, 1e-6);
  c.rope_theta = get_num(j, "rope_theta", src, 10000.0);
  c.tie_embeddings = get_bool(j, "tie_word_embeddings", src, false);
  bool is_qwen2 = c.architecture == "Qwen2ForCausalLM";
  c.qkv_bias = get_bool(j, "attention_bias", src, is_qwen2);
  c.attention_out_bias = !is_qwen2 && get_bool(j, "attention_bias", src, false);
  c.mlp_bias = get_bool(j, "mlp_bias", src, false);
  if (c.architecture == "MistralForCausalLM" || (is_qwen2 && get_bool(j, "use_sliding_window", src, false))) {
    c.sliding_window = get_int(j, "sliding_window", src, false, 0);
  }
  const std::string hidden_act = get_string(j, "hidden_act", src, "silu");
  if (hidden_act != "silu") {
    input_error("{}: field 'hidden_act' is \"{}\", expected \"silu\"", src, hidden_act);
  }
  auto rs = j.find("rope_scaling");
  if (rs != j.end() && !rs->is_null()) {
    if (!rs->is_object()) input_error("{}: field 'rope_scaling' is {}, expected an object", src, rs->dump());
    // Newer configs say rope_type, older ones type.
    const char* type_key = rs->contains("rope_type") ? "rope_type" : "type";
    std::string type;
    if (auto t = rs->find(type_key); t != rs->end() && !t->is_null()) {
      if (!t->is_string()) {
        input_error(
            "{}: field 'rope_scaling.{}' is {}, expected a string (\"linear\" or "
            "\"llama3\")",
            src, type_key, t->dump());
      }
      type = t->get<std::string>();
    }
    if (type == "default") {
      c.rope_scaling = RopeScaling::kNone;
    } else if (type == "linear") {
      c.rope_scaling = RopeScaling::kLinear;
      c.rope_factor = get_num(*rs, "factor", src + " rope_scaling", 1.0);
    } else if (type == "llama3") {
      c.rope_scaling = RopeScaling::kLlama3;
      c.rope_factor = get_num(*rs, "factor", src + " rope_scaling", 8.0);
      c.rope_low_freq_factor = get_num(*rs, "low_freq_factor", src + " rope_scaling", 1.0);
      c.rope_high_freq_factor = get_num(*rs, "high_freq_factor", src + " rope_scaling", 4.0);
      c.rope_original_max_position =
          get_int(*rs, "original_max_position_embeddings", src + " rope_scaling", false, 8192);
    } else {
      input_error("{}: field 'rope_scaling.rope_type' is \"{}\", expected \"linear\" or \"llama3\"",
                  src, type);
    }
    if (!(c.rope_factor > 0)) input_error("{}: field 'rope_scaling.factor' must be > 0", src);
  }
  c.bos_id = get_token_id(j, "bos_token_id");
  c.eos_id = get_token_id(j, "eos_token_id");
  if (auto td = j.find("torch_dtype"); td != j.end() && td->is_string()) c.torch_dtype = *td;
  return c;
}

ModelConfig ModelConfig::load(const std::filesystem::path& path) {
  std::ifstream f(path);
  if (!f) input_error("{}: cannot open (expected a Hugging Face config.json)", path.string());
  json j;
  try {
    j = json::parse(f);
  } catch (const json::exception& e) {
    input_error("{}: invalid JSON ({})", path.string(), e.what());
  }
  return from_json(j, path.string());
}

json ModelConfig::to_json() const {
  json j = {{"architectures", {architecture}},
            {"model_type", model_type},
            {"hidden_size", hidden},
            {"intermediate_size", intermediate},
            {"num_hidden_layers", layers},
            {"num_attention_heads", heads},
            {"num_key_value_heads", kv_heads},
            {"head_dim", head_dim},
            {"vocab_size", vocab},
            {"max_position_embeddings", max_position},
            {"rms_norm_eps", rms_eps},
            {"rope_theta", rope_theta},
            {"tie_word_embeddings", tie_embeddings},
            {"hidden_act", "silu"}};
  if (architecture == "Qwen2ForCausalLM") {
    // Qwen2's config has no bias fields (q/k/v biases always, no others): written only when this
    // model differs, so that from_json reads back the same model.
    if (!qkv_bias) j["attention_bias"] = false;
    if (mlp_bias) j["mlp_bias"] = true;
    if (sliding_window > 0) {
      j["use_sliding_window"] = true;
      j["sliding_window"] = sliding_window;
    }
  } else {
    j["attention_bias"] = qkv_bias;
    j["mlp_bias"] = mlp_bias;
    if (sliding_window > 0) j["sliding_window"] = sliding_window;
  }
  if (rope_scaling == RopeScaling::kLinear) {
    j["rope_scaling"] = {{"rope_type", "linear"}, {"factor", rope_factor}};
  } else if (rope_scaling == RopeScaling::kLlama3) {
    j["rope_scaling"] = {{"rope_type", "llama3"},
                         {"factor", rope_factor},
                         {"low_freq_factor", rope_low_freq_factor},
                         {"high_freq_factor", rope_high_freq_factor},
                         {"original_max_position_embeddings", rope_original_max_position}};
  }
  if (bos_id >= 0) j["bos_token_id"] = bos_id;
  if (eos_id >= 0) j["eos_token_id"] = eos_id;
  if (!torch_dtype.empty()) j["torch_dtype"] = torch_dtype;
  return j;
}

}  // namespace moa
