// moa convert / moa quantize (the convert module) and plans as GGUF keys (model/plan_gguf.h):
// gguf-py's reading of our files (tests/data/convert/oracle.json, made by
// tests/data/make_convert_oracle.py), the weights bit for bit, the model loaded from the GGUF
// against the checkpoint, plan keys and their errors, the command line.
#include <gtest/gtest.h>
#include <sentencepiece_trainer.h>

#include <cstring>
#include <fstream>
#include <random>

#include "convert/convert_internal.h"
#include "moa/attention/attention_spec.h"
#include "moa/convert/convert.h"
#include "moa/core/error.h"
#include "moa/core/file_io.h"
#include "moa/gguf/gguf.h"
#include "moa/gguf/gguf_writer.h"
#include "moa/gguf/quantize.h"
#include "moa/model/forward.h"
#include "moa/model/model.h"
#include "moa/model/plan_gguf.h"
#include "moa/model/safetensors.h"
#include "moa/tokenizer/tokenizer.h"
#include "sha256.h"
#include "test_util.h"

namespace moa {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const fs::path kData = fs::path(MOA_TEST_DATA);

// The bytes of a metadata array as the file encodes its elements (see make_convert_oracle.py).
std::string array_bytes(const GgufValue& v) {
  std::string s;
  if (v.elem == GgufType::kString) {
    for (const std::string& x : v.strs) {
      const uint64_t n = x.size();
      s.append(reinterpret_cast<const char*>(&n), 8);
      s += x;
    }
    return s;
  }
  static const std::map<GgufType, int> kSize = {
      {GgufType::kU8, 1},  {GgufType::kI8, 1},  {GgufType::kBool, 1}, {GgufType::kU16, 2},
      {GgufType::kI16, 2}, {GgufType::kU32, 4}, {GgufType::kI32, 4},  {GgufType::kF32, 4},
      {GgufType::kU64, 8}, {GgufType::kI64, 8}, {GgufType::kF64, 8}};
  return std::string(reinterpret_cast<const char*>(v.raw), size_t(v.count) * kSize.at(v.elem));
}

void expect_value(const std::string& key, const GgufValue& v, const json& e) {
  SCOPED_TRACE(key);
  ASSERT_EQ(gguf_type_name(v.type), e["type"].get<std::string>());
  if (v.type == GgufType::kArray) {
    EXPECT_EQ(gguf_type_name(v.elem), e["elem"].get<std::string>());
    EXPECT_EQ(v.count, e["count"].get<uint64_t>());
    EXPECT_EQ(test::sha256_hex(array_bytes(v)), e["sha256"].get<std::string>());
  } else if (v.type == GgufType::kString) {
    EXPECT_EQ(v.str, e["value"].get<std::string>());
  } else if (v.type == GgufType::kF32 || v.type == GgufType::kF64) {
    EXPECT_EQ(v.f, e["value"].get<double>());
  } else if (v.type == GgufType::kBool) {
    EXPECT_EQ(v.u != 0, e["value"].get<bool>());
  } else if (v.is_signed()) {
    EXPECT_EQ(v.i, e["value"].get<int64_t>());
  } else {
    EXPECT_EQ(v.u, e["value"].get<uint64_t>());
  }
}

TEST(Convert, GgufPyReadsWhatWeMeant) {
  const json oracle = json::parse(read_text(kData / "convert" / "oracle.json"));
  ASSERT_GE(oracle.size(), 6u);
  const fs::path dir = test::temp_dir("convert_oracle");
  for (auto& [key, want] : oracle.items()) {
    SCOPED_TRACE(key);
    const auto sp = key.find(' ');
    ConvertOptions o;
    o.model_dir = kData / key.substr(0, sp);
    o.type = key.substr(sp + 1);
    o.out = dir / (o.type + ".gguf");
    convert_checkpoint(o);
    GgufFile g(o.out);
    std::set<std::string> keys;
    for (const auto& [k, v] : g.metadata()) {
      keys.insert(k);
      ASSERT_TRUE(want["metadata"].contains(k)) << "key " << k << " not in gguf-py's reading";
      expect_value(k, v, want["metadata"][k]);
    }
    EXPECT_EQ(keys.size(), want["metadata"].size());
    ASSERT_EQ(g.tensors().size(), want["tensors"].size());
    for (size_t i = 0; i < g.tensors().size(); ++i) {
      const GgufTensor& t = g.tensors()[i];
      const json& e = want["tensors"][i];
      SCOPED_TRACE(t.name);
      EXPECT_EQ(t.name, e["name"].get<std::string>());
      EXPECT_EQ(t.type_name(), e["type"].get<std::string>());
      EXPECT_EQ(t.ne, e["ne"].get<std::vector<int64_t>>());
      EXPECT_EQ(test::sha256_hex(std::string(reinterpret_cast<const char*>(t.data), t.nbytes)),
                e["sha256"].get<std::string>());
    }
  }
}

// convert_hf_to_gguf.py's layout as tests/data/make_gguf_fixtures.py writes it with gguf-py
// (q/k permutation, llama3 rope_freqs, qwen2 biases): the same tensors, byte for byte.
TEST(Convert, F32TensorsEqualGgufPysConversion) {
  const fs::path dir = test::temp_dir("convert_f32");
  for (const char* v : {"llama", "llama3", "qwen2"}) {
    SCOPED_TRACE(v);
    ConvertOptions o;
    o.model_dir = kData / "gguf" / v;
    o.out = dir / (std::string(v) + ".gguf");
    o.type = "f32";
    convert_checkpoint(o);
    GgufFile ours(o.out), theirs(o.model_dir / "model-f32.gguf");
    ASSERT_EQ(ours.tensors().size(), theirs.tensors().size());
    for (const GgufTensor& t : theirs.tensors()) {
      const GgufTensor* u = ours.find_tensor(t.name);
      ASSERT_NE(u, nullptr) << t.name;
      EXPECT_EQ(u->type_id, t.type_id) << t.name;
      EXPECT_EQ(u->ne, t.ne) << t.name;
      ASSERT_EQ(u->nbytes, t.nbytes) << t.name;
      EXPECT_EQ(std::memcmp(u->data, t.data, t.nbytes), 0) << t.name;
    }
    for (const auto& [k, v] : theirs.metadata()) {  // every key of theirs, same value
      if (k == "general.name") continue;
      const GgufValue* u = ours.find(k);
      ASSERT_NE(u, nullptr) << k;
      EXPECT_EQ(u->type, v.type) << k;
      EXPECT_TRUE(u->u == v.u && u->i == v.i && u->f == v.f && u->str == v.str) << k;
    }
  }
}

// A random Llama checkpoint whose rows are multiples of 256 (so every K-quant applies), F32.
struct Checkpoint {
  fs::path dir;
  json config;
  std::map<std::string, std::vector<float>> w;
  std::map<std::string, std::vector<int64_t>> shape;
};

Checkpoint make_checkpoint(const fs::path& dir, uint64_t seed, int64_t vocab = 40) {
  Checkpoint ck;
  ck.dir = dir;
  ck.config = {{"architectures", {"LlamaForCausalLM"}},
               {"model_type", "llama"},
               {"hidden_size", 256},
               {"intermediate_size", 256},
               {"num_hidden_layers", 2},
               {"num_attention_heads", 2},
               {"num_key_value_heads", 1},
               {"vocab_size", vocab},
               {"max_position_embeddings", 64},
               {"rms_norm_eps", 1e-5},
               {"rope_theta", 10000.0},
               {"tie_word_embeddings", false},
               {"hidden_act", "silu"},
               {"torch_dtype", "float32"}};
  fs::create_directories(dir);
  write_text_atomic(dir / "config.json", ck.config.dump(2));
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.0f, 0.05f);
  auto add = [&](const std::string& n, std::vector<int64_t> s, float base) {
    int64_t k = 1;
    for (int64_t d : s) k *= d;
    std::vector<float> v(static_cast<size_t>(k));
    for (float& x : v) x = base + nd(rng);
    ck.w[n] = std::move(v);
    ck.shape[n] = std::move(s);
  };
  add("model.embed_tokens.weight", {vocab, 256}, 0);
  add("lm_head.weight", {vocab, 256}, 0);
  add("model.norm.weight", {256}, 1);
  for (int i = 0; i < 2; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    add(p + "input_layernorm.weight", {256}, 1);
    add(p + "post_attention_layernorm.weight", {256}, 1);
    add(p + "self_attn.q_proj.weight", {256, 256}, 0);
    add(p + "self_attn.k_proj.weight", {128, 256}, 0);
    add(p + "self_attn.v_proj.weight", {128, 256}, 0);
    add(p + "self_attn.o_proj.weight", {256, 256}, 0);
    add(p + "mlp.gate_proj.weight", {256, 256}, 0);
    add(p + "mlp.up_proj.weight", {256, 256}, 0);
    add(p + "mlp.down_proj.weight", {256, 256}, 0);
  }
  std::vector<TensorToWrite> ts;
  for (auto& [n, v] : ck.w) ts.push_back({n, DType::kF32, ck.shape[n], v.data()});
  write_safetensors(dir / "model.safetensors", ts, {});
  return ck;
}

// HF name and head permutation of a GGUF tensor of make_checkpoint's model.
std::pair<std::string, int64_t> hf_of(const std::string& g) {
  static const std::map<std::string, std::string> kNames = {
      {"attn_norm.weight", "input_layernorm.weight"},
      {"ffn_norm.weight", "post_attention_layernorm.weight"},
      {"attn_q.weight", "self_attn.q_proj.weight"},
      {"attn_k.weight", "self_attn.k_proj.weight"},
      {"attn_v.weight", "self_attn.v_proj.weight"},
      {"attn_output.weight", "self_attn.o_proj.weight"},
      {"ffn_gate.weight", "mlp.gate_proj.weight"},
      {"ffn_up.weight", "mlp.up_proj.weight"},
      {"ffn_down.weight", "mlp.down_proj.weight"}};
  if (g == "token_embd.weight") return {"model.embed_tokens.weight", 0};
  if (g == "output.weight") return {"lm_head.weight", 0};
  if (g == "output_norm.weight") return {"model.norm.weight", 0};
  const auto dot = g.find('.', 4);
  const std::string rest = g.substr(dot + 1);
  const bool perm = rest == "attn_q.weight" || rest == "attn_k.weight";
  return {"model.layers." + g.substr(4, dot - 4) + "." + kNames.at(rest), perm ? 128 : 0};
}

std::vector<float> all_logits(const Model& m, const std::vector<int32_t>& ids) {
  return test::prefill_logits(m, ids);
}

TEST(Convert, WeightsAreTheQuantisersBytes) {
  MOA_RANDOM_SEED(seed);
  const fs::path dir = test::temp_dir("convert_weights");
  const Checkpoint ck = make_checkpoint(dir / "model", seed);
  for (const std::string type : {"f32", "f16", "bf16", "q8_0", "q4_0", "q4_k", "q6_k", "q4_k_m"}) {
    SCOPED_TRACE(type);
    ConvertOptions o;
    o.model_dir = ck.dir;
    o.out = dir / (type + ".gguf");
    o.type = type;
    const ConvertResult r = convert_checkpoint(o);
    EXPECT_EQ(r.tensors, 2 * 9 + 3);
    GgufFile g(o.out);
    EXPECT_EQ(g.get_int("general.file_type"), int64_t(parse_output_type(type).ftype));
    for (const GgufTensor& t : g.tensors()) {
      SCOPED_TRACE(t.name);
      const auto [hf, D] = hf_of(t.name);
      const std::vector<float>& x = ck.w.at(hf);
      const int64_t cols = t.cols(), rows = t.rows();
      const int64_t layer = t.name.rfind("blk.", 0) == 0 ? t.name[4] - '0' : -1;
      const GgmlType want = tensor_type_for(parse_output_type(type), t.name, cols,
                                            int64_t(t.ne.size()), layer, 2, false);
      ASSERT_EQ(t.type(), want);
      const int64_t rb = ggml_row_bytes(want, cols);
      std::vector<uint8_t> q(static_cast<size_t>(rb));
      for (int64_t gr = 0; gr < rows; ++gr) {
        // GGUF row h*D + 2j + s holds HF row h*D + s*D/2 + j.
        const int64_t hr = D ? (gr / D) * D + (gr % D % 2) * (D / 2) + gr % D / 2 : gr;
        if (t.ne.size() == 1) {
          float v;
          std::memcpy(&v, t.data + 4 * gr, 4);
          ASSERT_EQ(v, x[size_t(gr)]);
          continue;
        }
        quantize_row_ref(want, x.data() + hr * cols, cols, q.data());
        ASSERT_EQ(std::memcmp(q.data(), t.data + gr * rb, size_t(rb)), 0) << "row " << gr;
      }
    }
    if (type == "q4_k_m") {
      // llama.cpp's mix for 2 layers: layer 1 is a use_more_bits layer, layer 0 is not.
      EXPECT_EQ(g.find_tensor("output.weight")->type(), GgmlType::kQ6_K);
      EXPECT_EQ(g.find_tensor("blk.1.attn_v.weight")->type(), GgmlType::kQ6_K);
      EXPECT_EQ(g.find_tensor("blk.1.ffn_down.weight")->type(), GgmlType::kQ6_K);
      EXPECT_EQ(g.find_tensor("blk.0.attn_v.weight")->type(), GgmlType::kQ4_K);
      EXPECT_EQ(g.find_tensor("blk.0.ffn_down.weight")->type(), GgmlType::kQ4_K);
      EXPECT_EQ(g.find_tensor("blk.0.attn_q.weight")->type(), GgmlType::kQ4_K);
      // Requantising the f32 file gives the same file.
      quantize_gguf(dir / "f32.gguf", dir / "requant.gguf", "q4_k_m");
      EXPECT_TRUE(read_text(dir / "requant.gguf") == read_text(o.out));
    }
  }
  // The model read from the f32 GGUF computes the checkpoint's logits.
  const Model a = Model::load(ck.dir), b = Model::load_gguf(dir / "f32.gguf");
  const std::vector<int32_t> ids = {1, 7, 39, 0, 22, 5, 13, 8};
  const std::vector<float> la = all_logits(a, ids), lb = all_logits(b, ids);
  EXPECT_TRUE(test::all_close(lb, la, 0, 0));
}

// tokenizer.model -> tokenizer.ggml.model "llama" (tokens, scores, types): the tokenizer read back
// from the GGUF gives SentencePiece's ids.
TEST(Convert, SentencePieceTokenizer) {
  struct Lines : sentencepiece::SentenceIterator {
    std::vector<std::string> lines;
    size_t i = 0;
    bool done() const override { return i >= lines.size(); }
    void Next() override { ++i; }
    const std::string& value() const override { return lines[i]; }
    sentencepiece::util::Status status() const override { return {}; }
  } it;
  for (int rep = 0; rep < 40; ++rep) {
    it.lines.push_back("The quick brown fox jumps over the lazy dog.");
    it.lines.push_back("Numbers like 12345 are split; byte fallback covers the rest.");
  }
  std::string proto;
  auto st = sentencepiece::SentencePieceTrainer::Train(
      "--model_type=bpe --vocab_size=300 --byte_fallback=true --split_digits=true "
      "--normalization_rule_name=identity --remove_extra_whitespaces=false "
      "--character_coverage=1.0 --hard_vocab_limit=false --minloglevel=2",
      &it, &proto);
  ASSERT_TRUE(st.ok()) << st.ToString();
  const fs::path dir = test::temp_dir("convert_spm");
  const Checkpoint ck = make_checkpoint(dir / "model", 5, 320);  // 20 ids past the pieces
  write_text_atomic(ck.dir / "tokenizer.model", proto);
  ConvertOptions o;
  o.model_dir = ck.dir;
  o.out = dir / "spm.gguf";
  EXPECT_TRUE(convert_checkpoint(o).tokenizer);
  GgufFile g(o.out);
  EXPECT_EQ(g.get_string("tokenizer.ggml.model"), "llama");
  EXPECT_EQ(g.get_array("tokenizer.ggml.tokens", GgufType::kString).count, 320u);
  EXPECT_EQ(g.get_array("tokenizer.ggml.tokens", GgufType::kString).strs[319], "[PAD319]");
  const auto a = Tokenizer::load(ck.dir), b = Tokenizer::from_gguf(g);
  for (const std::string text :
       {"The lazy dog.", " Hello  world 12345", "caf\xc3\xa9 \xf0\x9f\x91\x8b"}) {
    EXPECT_EQ(b->encode(text, true), a->encode(text, true)) << text;
  }
}

// The shipped model's byte-level BPE (Qwen2's split regex, merges) as tokenizer.ggml.* "gpt2" /
// pre "qwen2": read back from the GGUF it gives the tokenizer.json ids.
TEST(Convert, ByteLevelBpeTokenizer) {
  const fs::path tiny = kData.parent_path().parent_path() / "models" / "moa-tiny";
  ConvertOptions o;
  o.model_dir = tiny;
  o.out = test::temp_dir("convert_bpe") / "tiny.gguf";
  o.type = "q4_0";
  ASSERT_TRUE(convert_checkpoint(o).tokenizer);
  GgufFile g(o.out);
  EXPECT_EQ(g.get_string("tokenizer.ggml.pre"), "qwen2");
  EXPECT_TRUE(g.get_bool("tokenizer.ggml.add_bos_token", false));
  const auto a = Tokenizer::load(tiny), b = Tokenizer::from_gguf(g);
  for (const std::string text :
       {"Hello world, 12345 tokens!", "  two  spaces\n\nand lines\t", "It's the key's value: 0x3F.",
        "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x91\x8b", ""}) {
    EXPECT_EQ(b->encode(text, true), a->encode(text, true)) << text;
    EXPECT_EQ(b->decode(b->encode(text, false)), text);
  }
}

// Real tokenizer.json files (Llama 3: pre llama-bpe; Qwen3: pre qwen2) as tokenizer.ggml.* keys:
// the tokenizer read back gives the tokenizer.json ids, specials included.
TEST(Convert, RealTokenizersRoundTrip) {
  const fs::path dir = test::temp_dir("convert_tokenizers");
  for (const char* name : {"llama3", "qwen3"}) {
    SCOPED_TRACE(name);
    const fs::path src = kData / "tokenizers" / name;
    const auto a = Tokenizer::load(src);
    ModelConfig c;
    c.vocab = a->vocab_size();
    GgufWriter w;
    ASSERT_TRUE(conv::add_tokenizer_metadata(src, c, w, {}));
    w.write(dir / (std::string(name) + ".gguf"));
    GgufFile g(dir / (std::string(name) + ".gguf"));
    EXPECT_EQ(g.get_string("tokenizer.ggml.pre"),
              name == std::string("llama3") ? "llama-bpe" : "qwen2");
    const auto b = Tokenizer::from_gguf(g);
    EXPECT_EQ(b->bos_id(), a->bos_id());
    for (const std::string text : {"Hello world, 12345 tokens!", "  two  spaces\n\nand lines\t",
                                   "It's <|im_end|> the <|begin_of_text|> key's value: 0x3F.",
                                   "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x91\x8b"}) {
      EXPECT_EQ(b->encode(text, true), a->encode(text, true)) << text;
    }
  }
}

TEST(Convert, BadCheckpointsAreOneClearError) {
  const fs::path dir = test::temp_dir("convert_bad");
  auto copy_tiny = [&](const std::string& name) {
    const fs::path d = dir / name;
    fs::create_directories(d);
    for (const auto& e : fs::directory_iterator(kData / "convert" / "tiny")) {
      fs::copy_file(e.path(), d / e.path().filename());
    }
    return d;
  };
  auto expect_refused = [&](const fs::path& model, const fs::path& named,
                            const std::vector<std::string>& needles) {
    ConvertOptions o;
    o.model_dir = model;
    o.out = dir / "out.gguf";
    test::expect_input_error(
        named, [&] { convert_checkpoint(o); }, needles);
    EXPECT_FALSE(fs::exists(o.out));
  };
  fs::path d = copy_tiny("big_vocab");
  json tok = json::parse(read_text(d / "tokenizer.json"));
  tok["added_tokens"].push_back({{"id", 300}, {"content", "<x>"}, {"special", true}});
  write_text_atomic(d / "tokenizer.json", tok.dump());
  expect_refused(d, d / "tokenizer.json", {"token id 300", "vocab_size 258"});
  d = copy_tiny("bad_vocab");
  tok["added_tokens"].erase(tok["added_tokens"].size() - 1);
  tok["model"]["vocab"]["a"] = "x";
  write_text_atomic(d / "tokenizer.json", tok.dump());
  expect_refused(d, d / "tokenizer.json", {"model.vocab['a']"});
  d = copy_tiny("bad_template");
  write_text_atomic(d / "tokenizer_config.json", "[1]");
  expect_refused(d, d / "tokenizer_config.json", {"object"});
  d = copy_tiny("bad_arch");
  json cfg = json::parse(read_text(d / "config.json"));
  cfg["model_type"] = "gpt_neox";
  write_text_atomic(d / "config.json", cfg.dump());
  expect_refused(d, d / "config.json", {"gpt_neox", "llama, mistral or qwen2"});
  // A missing tensor: nothing is written.
  d = dir / "short";
  fs::create_directories(d);
  fs::copy_file(kData / "gguf" / "llama" / "config.json", d / "config.json");
  const std::vector<float> z(64 * 32);
  write_safetensors(d / "model.safetensors",
                    {{"model.embed_tokens.weight", DType::kF32, {64, 32}, z.data()}}, {});
  expect_refused(d, d, {"missing tensor", "input_layernorm"});
}

TEST(Convert, FallbackTypesForRaggedRows) {
  const OutputType t = parse_output_type("q4_k_m");
  EXPECT_EQ(tensor_type_for(t, "blk.0.attn_q.weight", 64, 2, 0, 2, false), GgmlType::kQ5_0);
  EXPECT_EQ(tensor_type_for(t, "blk.1.attn_v.weight", 64, 2, 1, 2, false), GgmlType::kQ8_0);
  EXPECT_EQ(tensor_type_for(t, "output.weight", 64, 2, -1, 2, false), GgmlType::kQ8_0);
  EXPECT_EQ(tensor_type_for(t, "token_embd.weight", 256, 2, -1, 2, true), GgmlType::kQ6_K);
  EXPECT_EQ(tensor_type_for(t, "blk.0.attn_q.weight", 48, 2, 0, 2, false), GgmlType::kF16);
  EXPECT_EQ(tensor_type_for(t, "blk.0.attn_norm.weight", 256, 1, 0, 2, false), GgmlType::kF32);
  EXPECT_EQ(tensor_type_for(parse_output_type("q8_0"), "x.weight", 40, 2, 0, 2, false),
            GgmlType::kF16);
  // llama.cpp's use_more_bits over 32 layers: 0-3, 28-31 and every third from 6.
  std::vector<int> more;
  for (int i = 0; i < 32; ++i) {
    if (tensor_type_for(t, "blk." + std::to_string(i) + ".ffn_down.weight", 256, 2, i, 32, false) ==
        GgmlType::kQ6_K) {
      more.push_back(i);
    }
  }
  EXPECT_EQ(more, (std::vector<int>{0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31}));
  try {
    parse_output_type("q3_k");
    ADD_FAILURE();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("q4_k_m"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace moa
