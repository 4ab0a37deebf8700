// Tokenizers from GGUF metadata give the Hugging Face ids of the same family's tokenizer.json
// (tests/data/tokenizers/expected.json, written by transformers.js). The GGUF files are written
// here from each tokenizer.json the way llama.cpp's convert_hf_to_gguf.py writes them (tokens by
// id, token types, merges or SentencePiece scores, the pre-tokenizer name, BOS/EOS): they are too
// large to commit (the Llama-3 vocabulary alone is megabytes).
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "gguf_layout.h"
#include "moa/core/error.h"
#include "moa/core/file_io.h"
#include "moa/tokenizer/tokenizer.h"
#include "test_util.h"

namespace moa {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const fs::path kTok = fs::path(MOA_TEST_DATA) / "tokenizers";

// llama.cpp's token types.
constexpr int32_t kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6;

struct Converted {
  test::GgufBuilder gguf;
  int32_t bos = -1;
  bool add_bos = false;
};

// tokenizer.json (+ tokenizer_config.json) -> GGUF metadata, as convert_hf_to_gguf.py does:
// "gpt2" (_set_vocab_gpt2) or "llama" (_set_vocab_sentencepiece: tokens, scores, types; the
// scores a SentencePiece model would have are recovered from the merge ranks: the piece first
// formed by merge r scores -r).
Converted convert(const std::string& family, const std::string& model, const std::string& pre) {
  const json j = json::parse(read_text(kTok / family / "tokenizer.json"));
  const json cfg = json::parse(read_text(kTok / family / "tokenizer_config.json"));
  const json& vocab = j["model"]["vocab"];
  int32_t n = 0;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) n = std::max(n, it->get<int32_t>() + 1);
  for (auto& a : j["added_tokens"]) n = std::max(n, a["id"].get<int32_t>() + 1);
  std::vector<std::string> tokens(static_cast<size_t>(n));
  std::vector<int32_t> types(static_cast<size_t>(n), kUnused);
  for (int32_t k = 0; k < n; ++k) tokens[size_t(k)] = "[PAD" + std::to_string(k) + "]";
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    const size_t id = it->get<size_t>();
    tokens[id] = it.key();
    const bool byte = it.key().size() == 6 && it.key().starts_with("<0x");
    types[id] = model == "llama" && byte ? kByte : kNormal;
  }
  for (auto& a : j["added_tokens"]) {
    const size_t id = a["id"].get<size_t>();
    tokens[id] = a["content"].get<std::string>();
    types[id] = a["special"].get<bool>() ? kControl : kUserDefined;
    if (model == "llama" && tokens[id] == "<unk>") types[id] = kUnknown;
  }
  Converted c;
  test::GgufBuilder& g = c.gguf;
  g.add("general.architecture", "llama");
  g.add("tokenizer.ggml.model", model);
  if (!pre.empty()) g.add("tokenizer.ggml.pre", pre);
  g.add("tokenizer.ggml.tokens", tokens);
  if (model == "llama") {
    std::vector<float> scores(static_cast<size_t>(n), 0.0f);
    std::vector<bool> set(static_cast<size_t>(n), false);
    const json& merges = j["model"]["merges"];
    for (size_t r = 0; r < merges.size(); ++r) {
      const json& m = merges[r];
      std::string piece;
      if (m.is_string()) {
        std::string s = m.get<std::string>();
        piece = s.substr(0, s.find(' ')) + s.substr(s.find(' ') + 1);
      } else {
        piece = m[0].get<std::string>() + m[1].get<std::string>();
      }
      const size_t id = vocab.at(piece).get<size_t>();
      if (!set[id]) scores[id] = -float(r), set[id] = true;
    }
    g.add("tokenizer.ggml.scores", scores);
  }
  g.add("tokenizer.ggml.token_type", types);
  if (model == "gpt2") {
    std::vector<std::string> merges;
    for (auto& m : j["model"]["merges"]) {
      merges.push_back(m.is_string() ? m.get<std::string>()
                                     : m[0].get<std::string>() + " " + m[1].get<std::string>());
    }
    g.add("tokenizer.ggml.merges", merges);
  }
  auto id_of = [&](const json& name) {
    const std::string s =
        name.is_object() ? name["content"].get<std::string>() : name.get<std::string>();
    return int32_t(std::find(tokens.begin(), tokens.end(), s) - tokens.begin());
  };
  if (cfg.contains("bos_token") && !cfg["bos_token"].is_null()) {
    c.bos = id_of(cfg["bos_token"]);
    g.add_u32("tokenizer.ggml.bos_token_id", uint32_t(c.bos));
  }
  if (cfg.contains("eos_token") && !cfg["eos_token"].is_null()) {
    g.add_u32("tokenizer.ggml.eos_token_id", uint32_t(id_of(cfg["eos_token"])));
  }
  // llama.cpp's default when the key is absent: BOS for SentencePiece and the llama3 pre-tokenizer.
  c.add_bos = model == "llama" || pre == "llama-bpe";
  if (cfg.contains("add_bos_token") && cfg["add_bos_token"].is_boolean()) {
    c.add_bos = cfg["add_bos_token"].get<bool>();
    g.add_bool("tokenizer.ggml.add_bos_token", c.add_bos);
  }
  return c;
}

struct Family {
  const char* name;
  const char* model;
  const char* pre;
};

class GgufTokenizer : public ::testing::TestWithParam<Family> {};

TEST_P(GgufTokenizer, IdsEqualTheTokenizerJson) {
  const Family fam = GetParam();
  static const json expected = json::parse(read_text(kTok / "expected.json"));
  const json& e = expected["tokenizers"][fam.name];
  const json& corpus = expected["corpus"];
  Converted c = convert(fam.name, fam.model, fam.pre);
  const fs::path file = test::temp_dir("gguf_tok") / (std::string(fam.name) + ".gguf");
  write_text_atomic(file, c.gguf.bytes());
  auto tok = Tokenizer::load(file);
  auto ref = Tokenizer::load(kTok / fam.name);
  EXPECT_EQ(tok->bos_id(), c.bos);
  std::set<size_t> skip;
  for (auto& s : e["skip"]) skip.insert(s.get<size_t>());
  int checked = 0;
  for (size_t i = 0; i < corpus.size(); ++i) {
    if (skip.count(i)) continue;
    const std::string text = corpus[i].get<std::string>();
    const auto want = e["ids"][i].get<std::vector<int32_t>>();
    const auto got = tok->encode(text, false);
    EXPECT_EQ(got, want) << fam.name << " text " << i << ": " << json(text).dump();
    auto want_special = want;
    if (c.add_bos) want_special.insert(want_special.begin(), c.bos);
    EXPECT_EQ(tok->encode(text, true), want_special) << fam.name << " text " << i;
    EXPECT_EQ(tok->decode(want), ref->decode(want)) << fam.name << " text " << i;
    ++checked;
  }
  EXPECT_GT(checked, 150);
  // Where HF adds BOS too, its ids with special tokens are ours.
  if (fam.model == std::string("llama") || fam.pre == std::string("qwen2")) {
    for (size_t i = 0; i < corpus.size(); ++i) {
      if (skip.count(i)) continue;
      EXPECT_EQ(tok->encode(corpus[i].get<std::string>(), true),
                e["ids_special"][i].get<std::vector<int32_t>>())
          << fam.name << " text " << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Families, GgufTokenizer,
                         ::testing::Values(Family{"llama2", "llama", ""},
                                           Family{"llama3", "gpt2", "llama-bpe"},
                                           Family{"qwen3", "gpt2", "qwen2"}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(GgufTokenizerCli, TokenizeReadsGguf) {
  Converted c = convert("qwen3", "gpt2", "qwen2");
  const fs::path file = test::temp_dir("gguf_tok_cli") / "qwen3.gguf";
  write_text_atomic(file, c.gguf.bytes());
  auto r = test::run_moa("tokenize --tokenizer " + file.string() + " -p 'Hello world' --json");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["ids"], json({9707, 1879}));
}

void expect_error(const test::GgufBuilder& g, const std::vector<std::string>& needles) {
  static int n = 0;
  const fs::path p = test::temp_dir("gguf_tok_bad") / ("bad" + std::to_string(n++) + ".gguf");
  write_text_atomic(p, g.bytes());
  test::expect_input_error(p, [&] { Tokenizer::load(p); }, needles);
}

TEST(GgufTokenizerErrors, BadMetadata) {
  const std::vector<std::string> toks = {"a", "b", "ab"};
  {
    test::GgufBuilder g;
    g.add("tokenizer.ggml.model", "bert");
    g.add("tokenizer.ggml.tokens", toks);
    expect_error(g, {"tokenizer.ggml.model", "'bert'", "expected gpt2 or llama"});
  }
  {
    test::GgufBuilder g;
    g.add("tokenizer.ggml.model", "gpt2");
    g.add("tokenizer.ggml.tokens", toks);
    g.add("tokenizer.ggml.token_type", std::vector<int32_t>{1, 1});
    expect_error(g, {"tokenizer.ggml.token_type", "2 entries", "(3)"});
  }
  {
    test::GgufBuilder g;
    g.add("tokenizer.ggml.model", "gpt2");
    g.add("tokenizer.ggml.pre", "falcon");
    g.add("tokenizer.ggml.tokens", toks);
    g.add("tokenizer.ggml.merges", std::vector<std::string>{"a b"});
    expect_error(g, {"tokenizer.ggml.pre", "'falcon'"});
  }
  {
    test::GgufBuilder g;
    g.add("tokenizer.ggml.model", "llama");
    g.add("tokenizer.ggml.tokens", toks);
    g.add("tokenizer.ggml.scores", std::vector<float>{0, 0, 0});
    g.add_u32("tokenizer.ggml.bos_token_id", 7);
    expect_error(g, {"tokenizer.ggml.bos_token_id", "is 7", "below 3"});
  }
  {
    test::GgufBuilder g;
    g.add("tokenizer.ggml.model", "llama");
    g.add("tokenizer.ggml.tokens", toks);
    expect_error(g, {"missing metadata key 'tokenizer.ggml.scores'"});
  }
  {
    test::GgufBuilder g;
    g.add("general.architecture", "llama");
    expect_error(g, {"no tokenizer.ggml.* metadata"});
  }
}

// A small SentencePiece vocabulary: merges follow the scores, bytes fall back to <0xXX>.
TEST(GgufTokenizerErrors, SentencePieceByScores) {
  test::GgufBuilder g;
  std::vector<std::string> toks = {"<unk>", "<s>", "</s>"};
  std::vector<int32_t> types = {kUnknown, kControl, kControl};
  std::vector<float> scores = {0, 0, 0};
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    toks.push_back(buf);
    types.push_back(kByte);
    scores.push_back(0);
  }
  const int base = int(toks.size());
  // "▁ab" can only form as "▁" + "ab" or "▁a" + "b": "ab" scores higher than "▁a", so "ab" forms
  // first and "▁ab" through it.
  for (auto [t, s] : {std::pair{"\xe2\x96\x81", -10.0f},
                      {"a", -11.0f},
                      {"b", -12.0f},
                      {"ab", -1.0f},
                      {"\xe2\x96\x81"
                       "a",
                       -2.0f},
                      {"\xe2\x96\x81"
                       "ab",
                       -3.0f}}) {
    toks.push_back(t);
    types.push_back(kNormal);
    scores.push_back(s);
  }
  g.add("tokenizer.ggml.model", "llama");
  g.add("tokenizer.ggml.tokens", toks);
  g.add("tokenizer.ggml.scores", scores);
  g.add("tokenizer.ggml.token_type", types);
  g.add_u32("tokenizer.ggml.bos_token_id", 1);
  g.add_u32("tokenizer.ggml.eos_token_id", 2);
  const fs::path p = test::temp_dir("gguf_spm") / "spm.gguf";
  write_text_atomic(p, g.bytes());
  auto tok = Tokenizer::load(p);
  EXPECT_EQ(tok->encode("ab", true), (std::vector<int32_t>{1, base + 5}));
  // "c" is not in the vocabulary: its byte 0x63 falls back to <0x63> (id 3 + 0x63).
  EXPECT_EQ(tok->encode("abc", false), (std::vector<int32_t>{base + 5, 3 + 0x63}));
  EXPECT_EQ(tok->encode("b a", false), (std::vector<int32_t>{base + 0, base + 2, base + 4}));
  EXPECT_EQ(tok->decode({1, base + 5, 3 + 0x63}), "<s>abc");
  EXPECT_EQ(tok->eos_ids(), (std::vector<int32_t>{2}));
}

}  // namespace
}  // namespace moa
