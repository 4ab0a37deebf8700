// libFuzzer harness for config.json: ModelConfig::load (JSON, then every field's type, range and
// the relations between them: heads and KV heads, head_dim, rope_scaling), then to_json and a
// re-parse of what to_json wrote (what Model::save writes), which must give back the same model.
//
// Only moa::InputError may leave (fuzz_common.h).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <tuple>

#include "fuzz_common.h"
#include "moa/model/config.h"

namespace {

// Every field that changes the forward pass (not torch_dtype, which is informational).
bool same_model(const moa::ModelConfig& a, const moa::ModelConfig& b) {
  auto key = [](const moa::ModelConfig& c) {
    return std::make_tuple(c.architecture, c.model_type, c.hidden, c.intermediate, c.layers,
                           c.heads, c.kv_heads, c.head_dim, c.vocab, c.max_position, c.rms_eps,
                           c.rope_theta, c.rope_scaling, c.rope_factor, c.rope_low_freq_factor,
                           c.rope_high_freq_factor, c.rope_original_max_position, c.tie_embeddings,
                           c.qkv_bias, c.mlp_bias, c.attention_out_bias, c.sliding_window, c.bos_id,
                           c.eos_id);
  };
  return key(a) == key(b);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::filesystem::path file = moa::fuzz::scratch_dir("config") / "config.json";
  moa::fuzz::write_file(file, data, size);
  std::optional<moa::ModelConfig> c;
  moa::fuzz::expect_only_input_errors([&] { c = moa::ModelConfig::load(file); });
  if (!c) return 0;
  (void)c->attention_shape();
  // What Model::save writes must read back as the same model: an InputError here is a finding
  // too, so it is not caught.
  const moa::ModelConfig back = moa::ModelConfig::from_json(c->to_json(), "to_json");
  if (!same_model(*c, back)) {
    std::fprintf(stderr, "to_json does not round-trip:\n%s\n", c->to_json().dump().c_str());
    std::abort();
  }
  return 0;
}
