// Bad checkpoints and bad configs: each class gives one InputError naming the file and the
// field, and the command line exits 2 with one line on stderr.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "moa/core/error.h"
#include "moa/core/file_io.h"
#include "moa/model/model.h"
#include "moa/model/safetensors.h"
#include "test_util.h"

namespace moa {
namespace {

namespace fs = std::filesystem;

ModelConfig tiny_config() {
  nlohmann::json j = {{"architectures", {"LlamaForCausalLM"}},
                      {"hidden_size", 16},
                      {"intermediate_size", 24},
                      {"num_hidden_layers", 1},
                      {"num_attention_heads", 2},
                      {"num_key_value_heads", 1},
                      {"vocab_size", 32},
                      {"max_position_embeddings", 16}};
  return ModelConfig::from_json(j, "test");
}

fs::path make_model(const std::string& name) {
  fs::path dir = test::temp_dir(name);
  Model::random(tiny_config(), 1).save(dir, DType::kF32);
  return dir;
}

std::string bytes_of(const fs::path& p) { return read_text(p); }
// Expects Model::load(dir) to throw an InputError whose message contains every needle.
void expect_load_error(const fs::path& dir, std::vector<std::string> needles) {
  try {
    Model::load(dir);
    ADD_FAILURE() << "no error for " << dir;
  } catch (const InputError& e) {
    std::string msg = e.what();
    for (auto& n : needles) EXPECT_NE(msg.find(n), std::string::npos) << "'" << n << "' not in: " << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "one line: " << msg;
  }
}

TEST(Loader, RoundTripAllDtypes) {
  for (DType dt : {DType::kF32, DType::kBF16, DType::kF16}) {
    fs::path dir = test::temp_dir("rt");
    Model m = Model::random(tiny_config(), 7);
    m.save(dir, dt);
    Model back = Model::load(dir);
    EXPECT_EQ(back.cfg.hidden, 16);
    const double tol = dt == DType::kF32 ? 0 : dt == DType::kBF16 ? 1e-2 : 1e-3;
    EXPECT_EQ(back.layers[0].wq.dtype, dt);
    EXPECT_TRUE(test::all_close(back.layers[0].wq.to_f32(), m.layers[0].wq.to_f32(), tol, 1e-6));
    fs::remove_all(dir);
  }
}

TEST(Loader, TruncatedFile) {
  fs::path dir = make_model("trunc");
  std::string b = bytes_of(dir / "model.safetensors");
  write_text_atomic(dir / "model.safetensors", b.substr(0, b.size() - 100));
  expect_load_error(dir, {"model.safetensors", "data_offsets", "truncated"});
  write_text_atomic(dir / "model.safetensors", b.substr(0, 5));
  expect_load_error(dir, {"model.safetensors", "truncated"});
}

TEST(Loader, LyingHeaderLength) {
  fs::path dir = make_model("lying");
  std::string b = bytes_of(dir / "model.safetensors");
  uint64_t len = uint64_t(b.size()) * 2;
  std::memcpy(b.data(), &len, 8);
  write_text_atomic(dir / "model.safetensors", b);
  expect_load_error(dir, {"model.safetensors", "header length"});
  len = 20;  // cuts the JSON
  std::memcpy(b.data(), &len, 8);
  write_text_atomic(dir / "model.safetensors", b);
  expect_load_error(dir, {"model.safetensors", "JSON"});
}

// Rewrites the header's JSON through a function, keeping the data.
void edit_header(const fs::path& file, const std::function<void(nlohmann::json&)>& fn) {
  std::string b = bytes_of(file);
  uint64_t len;
  std::memcpy(&len, b.data(), 8);
  auto j = nlohmann::json::parse(b.substr(8, len));
  fn(j);
  std::string h = j.dump();
  while (h.size() % 8) h.push_back(' ');
  uint64_t nl = h.size();
  std::string out(reinterpret_cast<char*>(&nl), 8);
  write_text_atomic(file, out + h + b.substr(8 + len));
}

TEST(Loader, BadOffsetsAndDtype) {
  fs::path dir = make_model("offsets");
  edit_header(dir / "model.safetensors", [](nlohmann::json& j) {
    j["model.norm.weight"]["data_offsets"][1] = j["model.norm.weight"]["data_offsets"][1].get<uint64_t>() + 4;
  });
  expect_load_error(dir, {"model.norm.weight", "data_offsets"});
  dir = make_model("dtype");
  edit_header(dir / "model.safetensors", [](nlohmann::json& j) { j["model.norm.weight"]["dtype"] = "I8"; });
  expect_load_error(dir, {"model.norm.weight", "dtype", "I8"});
}

TEST(Loader, MissingTensorAndWrongShape) {
  fs::path dir = make_model("missing");
  edit_header(dir / "model.safetensors", [](nlohmann::json& j) { j.erase("model.layers.0.mlp.up_proj.weight"); });
  expect_load_error(dir, {"missing tensor", "model.layers.0.mlp.up_proj.weight"});
  dir = make_model("shape");
  auto cfg = nlohmann::json::parse(read_text(dir / "config.json"));
  cfg["intermediate_size"] = 32;
  write_text_atomic(dir / "config.json", cfg.dump());
  expect_load_error(dir, {"gate_proj", "shape [24, 16]", "expected [32, 16]"});
}

TEST(Loader, BadConfig) {
  fs::path dir = make_model("cfg");
  auto cfg = nlohmann::json::parse(read_text(dir / "config.json"));
  write_text_atomic(dir / "config.json", "{\"hidden_size\": 16,");
  expect_load_error(dir, {"config.json", "invalid JSON"});
  auto bad = cfg;
  bad["architectures"] = {"GPT2LMHeadModel"};
  write_text_atomic(dir / "config.json", bad.dump());
  expect_load_error(dir, {"config.json", "architectures", "GPT2LMHeadModel"});
  bad = cfg;
  bad["num_key_value_heads"] = 3;
  write_text_atomic(dir / "config.json", bad.dump());
  expect_load_error(dir, {"config.json", "num_key_value_heads"});
  bad = cfg;
  bad.erase("vocab_size");
  write_text_atomic(dir / "config.json", bad.dump());
  expect_load_error(dir, {"config.json", "vocab_size"});
  bad = cfg;
  bad["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4}};
  write_text_atomic(dir / "config.json", bad.dump());
  expect_load_error(dir, {"config.json", "rope_scaling", "yarn"});
}

// A string field holding a number used to escape as nlohmann's type_error (terminate in `moa
// info`), and "architectures": [5] was taken for Llama: each is now one InputError naming the
// field.
TEST(Loader, ConfigFieldTypes) {
  const nlohmann::json good = tiny_config().to_json();
  auto error_of = [&](const std::function<void(nlohmann::json&)>& edit) {
    nlohmann::json j = good;
    edit(j);
    try {
      ModelConfig::from_json(j, "config.json");
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("(no InputError)");
  };
  for (auto [edit, needle] :
       std::vector<std::pair<std::function<void(nlohmann::json&)>, std::string>>{
           {[](auto& j) { j["model_type"] = 5; }, "field 'model_type' is 5, expected a string"},
           {[](auto& j) { j["hidden_act"] = 5; }, "field 'hidden_act' is 5, expected a string"},
           {[](auto& j) {
              j["rope_scaling"] = {{"rope_type", 5}};
            },
            "field 'rope_scaling.rope_type' is 5, expected a string"},
           {[](auto& j) {
              j["rope_scaling"] = {{"type", true}, {"factor", 2}};
            },
            "field 'rope_scaling.type' is true, expected a string"},
           {[](auto& j) { j["architectures"] = {5}; },
            "field 'architectures' is [5], expected a list of class names"},
           {[](auto& j) { j["architectures"] = "LlamaForCausalLM"; },
            "field 'architectures' is \"LlamaForCausalLM\", expected a list"},
           {[](auto& j) {
              j.erase("architectures");
              j["model_type"] = "gpt2";
            },
            "field 'model_type' is \"gpt2\" and there is no 'architectures'"}}) {
    const std::string e = error_of(edit);
    EXPECT_NE(e.find("config.json: " + needle), std::string::npos) << e;
  }
  // Without architectures, model_type names the family.
  nlohmann::json j = good;
  j.erase("architectures");
  j["model_type"] = "qwen2";
  EXPECT_EQ(ModelConfig::from_json(j, "config.json").architecture, "Qwen2ForCausalLM");
}

// Sizes no machine could hold are refused by the config reader, naming the numbers, before
// anything is allocated from them.
TEST(Loader, ConfigSizeLimits) {
  nlohmann::json big = {{"architectures", {"LlamaForCausalLM"}},
                        {"hidden_size", 4096},
                        {"intermediate_size", 11008},
                        {"num_hidden_layers", 32},
                        {"num_attention_heads", 32},
                        {"vocab_size", 32000}};
  EXPECT_EQ(ModelConfig::from_json(big, "config.json").vocab, 32000);
  auto expect_refused = [&](const nlohmann::json& j, const std::string& needle) {
    test::expect_input_error("config.json", [&] { ModelConfig::from_json(j, "config.json"); },
                             {needle});
  };
  nlohmann::json j = big;
  j["vocab_size"] = 1000000000;
  expect_refused(j,
                 "vocab_size 1000000000 x hidden_size 4096 = 4.096e+12 weights in one matrix, "
                 "more than the 1099511627776 (2^40)");
  j = big;
  j["num_hidden_layers"] = 1000000;
  expect_refused(j,
                 "num_hidden_layers 1000000 x 202375168 weights per layer + 262144000 in the "
                 "embeddings is more than the 4398046511104 (2^42)");
  j = big;
  j["hidden_size"] = int64_t(1) << 32;
  j["head_dim"] = 128;
  expect_refused(j, "field 'hidden_size' is 4294967296, expected less than 2147483648 (2^31)");
}

// A config.json declaring more layers than the checkpoint holds is refused before the layers are
// allocated.
TEST(Loader, MoreLayersThanTheCheckpoint) {
  fs::path dir = make_model("layers");
  auto cfg = nlohmann::json::parse(read_text(dir / "config.json"));
  cfg["num_hidden_layers"] = 1000000;
  write_text_atomic(dir / "config.json", cfg.dump());
  expect_load_error(dir, {"config.json: num_hidden_layers is 1000000",
                          "no tensor 'model.layers.999999.input_layernorm.weight'"});
}

// What Model::save writes reads back as the same model, Qwen2's bias and window fields included
// (fuzz_config's round trip).
TEST(Loader, ConfigRoundTripsThroughToJson) {
  nlohmann::json j = tiny_config().to_json();
  j["architectures"] = {"Qwen2ForCausalLM"};
  j.erase("attention_bias");
  j["attention_bias"] = false;
  j["mlp_bias"] = true;
  j["use_sliding_window"] = true;
  j["sliding_window"] = 8;
  const ModelConfig c = ModelConfig::from_json(j, "config.json");
  ASSERT_FALSE(c.qkv_bias);
  const ModelConfig back = ModelConfig::from_json(c.to_json(), "to_json");
  EXPECT_EQ(back.qkv_bias, c.qkv_bias);
  EXPECT_EQ(back.mlp_bias, c.mlp_bias);
  EXPECT_EQ(back.attention_out_bias, c.attention_out_bias);
  EXPECT_EQ(back.sliding_window, 8);
}

TEST(Loader, ShardIndexNamesMissingShard) {
  fs::path dir = make_model("shard");
  write_text_atomic(dir / "model.safetensors.index.json",
      R"({"weight_map": {"model.norm.weight": "model-00002-of-00002.safetensors"}})");
  expect_load_error(dir, {"model.safetensors.index.json", "model-00002-of-00002.safetensors", "missing"});
}

// The command line turns each into exit status 2 and one line on stderr.
TEST(LoaderCli, ExitTwoWithOneLine) {
  fs::path dir = make_model("cli");
  std::string b = bytes_of(dir / "model.safetensors");
  write_text_atomic(dir / "model.safetensors", b.substr(0, b.size() / 2));
  auto r = test::run_moa("info -m " + dir.string() + " --json");
  // info reads headers only; a truncated data area is caught when the header's offsets are checked.
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_TRUE(r.out.empty());
  // A string field holding a number (the reliability issue: terminate with json type_error).
  dir = make_model("cli-type");
  auto cfg = nlohmann::json::parse(read_text(dir / "config.json"));
  cfg["model_type"] = 5;
  write_text_atomic(dir / "config.json", cfg.dump());
  r = test::run_moa("info -m " + dir.string());
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find("field 'model_type' is 5, expected a string"), std::string::npos) << r.err;
  // A text longer than the model's context.
  dir = make_model("ctx");
  write_text_atomic(dir / "ids.txt", "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20");
  r = test::run_moa("score -m " + dir.string() + " --ids " + (dir / "ids.txt").string() + " --json");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("exceeds the model's context of 16"), std::string::npos) << r.err;
  // A token id outside the vocabulary.
  write_text_atomic(dir / "ids.txt", "1 2 99");
  r = test::run_moa("score -m " + dir.string() + " --ids " + (dir / "ids.txt").string());
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("ids.txt: token 2 is '99'"), std::string::npos) << r.err;
  // A checkpoint without tokenizer files still scores ids.
  write_text_atomic(dir / "ids.txt", "1 2 3 4 5");
  r = test::run_moa("score -m " + dir.string() + " --ids " + (dir / "ids.txt").string() + " --json");
  EXPECT_EQ(r.status, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["tokens"], 4);
  EXPECT_EQ(j["nll_per_token"].size(), 4u);
}

}  // namespace
}  // namespace moa
