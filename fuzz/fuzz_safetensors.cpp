// libFuzzer harness for the safetensors reader and the checkpoint loader above it: the header
// (length, JSON, dtypes, shapes, data_offsets against the file, overlaps, __metadata__), every
// tensor converted to f32, then TensorStore and Model::load of a directory holding the input as
// model.safetensors beside a fixed tiny config.json (so that names, shapes and dtypes are checked
// against a config, and weights are read as the loader reads them).
//
// Only moa::InputError may leave (fuzz_common.h).
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <vector>

#include "fuzz_common.h"
#include "moa/model/model.h"
#include "moa/model/safetensors.h"

namespace {

// The shape the seeds of corpus/safetensors/ are written for (corpus/make_seeds.py).
constexpr const char* kConfig = R"({
  "architectures": ["LlamaForCausalLM"], "model_type": "llama",
  "hidden_size": 4, "intermediate_size": 8, "num_hidden_layers": 1,
  "num_attention_heads": 2, "num_key_value_heads": 1, "vocab_size": 8,
  "tie_word_embeddings": false, "hidden_act": "silu"
})";

const std::filesystem::path& model_dir() {
  static const std::filesystem::path dir = [] {
    const std::filesystem::path d = moa::fuzz::scratch_dir("safetensors");
    const std::string cfg = kConfig;
    moa::fuzz::write_file(d / "config.json", reinterpret_cast<const uint8_t*>(cfg.data()),
                          cfg.size());
    return d;
  }();
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using moa::fuzz::expect_only_input_errors;
  const std::filesystem::path file = model_dir() / "model.safetensors";
  moa::fuzz::write_file(file, data, size);
  expect_only_input_errors([&] {
    moa::SafetensorsFile st(file);
    float sum = 0;
    std::vector<float> buf;
    for (const auto& [name, t] : st.tensors()) {
      buf.resize(size_t(t.numel()));
      t.to_f32(buf.data());
      for (float v : buf) sum += v;
    }
    for (const auto& [k, v] : st.metadata()) sum += float(k.size() + v.size());
    if (sum == 1.0f) std::fputc(' ', stderr);  // keeps the reads from being optimised away
  });
  expect_only_input_errors([&] {
    moa::TensorStore store(model_dir());
    for (const std::string& name : store.names()) (void)store.get(name).numel();
  });
  expect_only_input_errors([&] { (void)moa::Model::load(model_dir()); });
  return 0;
}
