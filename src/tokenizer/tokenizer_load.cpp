// Tokenizer::load: finds the tokenizer files of a checkpoint, reads what its config files say
// about BOS/EOS, and builds the tokenizer.json or tokenizer.model implementation.
#include <cctype>
#include <fstream>
#include <sstream>

#include "moa/core/error.h"
#include "moa/gguf/gguf.h"
#include "tokenizer/tokenizer_internal.h"

namespace moa {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) input_error("{}: cannot open file", p.string());
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

json read_json(const fs::path& p) {
  std::string text = read_file(p);
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    input_error("{}: invalid JSON at byte {} (expected a tokenizer JSON file)", p.string(), e.byte);
  }
}

// A token named in tokenizer_config.json: "<s>", {"content": "<s>", ...} or null.
std::optional<std::string> token_name(const json& j, const char* key, const fs::path& file,
                                      bool* is_null) {
  auto it = j.find(key);
  if (it == j.end()) return std::nullopt;
  if (it->is_null()) {
    if (is_null) *is_null = true;
    return std::nullopt;
  }
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) {
    return (*it)["content"].get<std::string>();
  }
  input_error("{}: field '{}' is {}, expected a string or {{\"content\": ...}}", file.string(), key,
              it->dump());
}

// bos_token_id / eos_token_id: an integer, a list of integers, or null.
void token_ids(const json& j, const char* key, const fs::path& file, std::vector<int32_t>* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return;
  auto one = [&](const json& v) {
    if (!v.is_number_integer()) {
      input_error("{}: field '{}' has {}, expected an integer or a list of integers", file.string(),
                  key, v.dump());
    }
    out->push_back(v.get<int32_t>());
  };
  if (it->is_array()) {
    for (const auto& v : *it) one(v);
  } else {
    one(*it);
  }
}

}  // namespace

namespace tok {

SpecialConfig read_special_config(const fs::path& dir) {
  SpecialConfig cfg;
  if (fs::path p = dir / "tokenizer_config.json"; fs::is_regular_file(p)) {
    json j = read_json(p);
    if (!j.is_object())
      input_error("{}: top level is {}, expected an object", p.string(), j.type_name());
    cfg.bos_token = token_name(j, "bos_token", p, &cfg.bos_token_null);
    cfg.eos_token = token_name(j, "eos_token", p, nullptr);
    for (const char* key : {"add_bos_token", "add_eos_token"}) {
      auto it = j.find(key);
      if (it == j.end() || it->is_null()) continue;
      if (!it->is_boolean()) {
        input_error("{}: field '{}' is {}, expected true or false", p.string(), key, it->dump());
      }
      (std::string(key) == "add_bos_token" ? cfg.add_bos_token : cfg.add_eos_token) =
          it->get<bool>();
    }
    if (auto it = j.find("added_tokens_decoder"); it != j.end() && it->is_object()) {
      for (auto t = it->begin(); t != it->end(); ++t) {
        if (!t->is_object() || !t->contains("content")) continue;
        AddedToken a;
        try {
          a.id = std::stoi(t.key());
        } catch (const std::exception&) {
          input_error("{}: field 'added_tokens_decoder' has key \"{}\", expected a token id",
                      p.string(), t.key());
        }
        if (a.id < 0 || a.id >= kMaxVocab) {
          input_error(
              "{}: field 'added_tokens_decoder' has key \"{}\", expected a token id in 0..{}",
              p.string(), t.key(), kMaxVocab - 1);
        }
        const json& content = (*t)["content"];
        if (!content.is_string()) {
          input_error("{}: field 'added_tokens_decoder.{}.content' is {}, expected a string",
                      p.string(), t.key(), content.dump());
        }
        a.content = content.get<std::string>();
        auto flag = [&](const char* key, bool def) {
          auto it = t->find(key);
          if (it == t->end() || it->is_null()) return def;
          if (!it->is_boolean()) {
            input_error("{}: field 'added_tokens_decoder.{}.{}' is {}, expected true or false",
                        p.string(), t.key(), key, it->dump());
          }
          return it->get<bool>();
        };
        a.special = flag("special", false);
        a.lstrip = flag("lstrip", false);
        a.rstrip = flag("rstrip", false);
        a.single_word = flag("single_word", false);
        a.normalized = flag("normalized", !a.special);
        cfg.added_tokens.push_back(std::move(a));
      }
    }
  }
  for (const char* name : {"generation_config.json", "config.json"}) {
    fs::path p = dir / name;
    if (!fs::is_regular_file(p)) continue;
    json j = read_json(p);
    if (!j.is_object()) continue;
    token_ids(j, "bos_token_id", p, &cfg.bos_ids);
    token_ids(j, "eos_token_id", p, &cfg.eos_ids);
  }
  return cfg;
}

}  // namespace tok

bool Tokenizer::exists(const fs::path& dir) {
  if (is_gguf_path(dir)) return GgufFile(dir).find("tokenizer.ggml.tokens") != nullptr;
  return fs::is_regular_file(dir / "tokenizer.json") ||
         fs::is_regular_file(dir / "tokenizer.model");
}

std::unique_ptr<Tokenizer> Tokenizer::load(const fs::path& dir_or_file) {
  if (is_gguf_path(dir_or_file)) {
    GgufFile g(dir_or_file);
    if (!g.find("tokenizer.ggml.tokens")) {
      input_error("{}: no tokenizer.ggml.* metadata in this GGUF file (it can only be scored with "
                  "--ids)",
                  dir_or_file.string());
    }
    return from_gguf(g);
  }
  fs::path file;
  if (fs::is_directory(dir_or_file)) {
    if (fs::is_regular_file(dir_or_file / "tokenizer.json")) {
      file = dir_or_file / "tokenizer.json";
    } else if (fs::is_regular_file(dir_or_file / "tokenizer.model")) {
      file = dir_or_file / "tokenizer.model";
    } else {
      input_error(
          "{}: no tokenizer.json or tokenizer.model in this directory (a checkpoint "
          "without a tokenizer can only be scored with --ids)",
          dir_or_file.string());
    }
  } else if (fs::is_regular_file(dir_or_file)) {
    file = dir_or_file;
  } else {
    input_error(
        "{}: no such file or directory (expected a model directory, tokenizer.json or "
        "tokenizer.model)",
        dir_or_file.string());
  }
  // The config files beside the tokenizer file say which tokens are BOS/EOS.
  tok::SpecialConfig cfg = tok::read_special_config(file.parent_path());

  bool is_json = file.extension() == ".json";
  if (file.extension() != ".json" && file.extension() != ".model") {
    std::ifstream f(file, std::ios::binary);
    char ch = 0;
    while (f.get(ch) && std::isspace(static_cast<unsigned char>(ch))) {
    }
    is_json = ch == '{';
  }
  if (!is_json) return tok::load_sentencepiece(file, cfg);
  json j = read_json(file);
  return std::make_unique<tok::HfTokenizer>(j, file.string(), cfg);
}

std::string make_byte_level_tokenizer_json() {
  json vocab = json::object();
  const auto& map = tok::byte_to_unicode();
  for (int b = 0; b < 256; ++b) vocab[map[b]] = b;
  auto added = [](int id, const char* content) {
    return json{{"id", id},        {"content", content},  {"single_word", false}, {"lstrip", false},
                {"rstrip", false}, {"normalized", false}, {"special", true}};
  };
  json j = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", {added(kByteLevelBosId, "<|bos|>"), added(kByteLevelEosId, "<|eos|>")}},
      {"normalizer", nullptr},
      {"pre_tokenizer",
       {{"type", "ByteLevel"},
        {"add_prefix_space", false},
        {"trim_offsets", false},
        {"use_regex", false}}},
      {"post_processor",
       {{"type", "TemplateProcessing"},
        {"single",
         {{{"SpecialToken", {{"id", "<|bos|>"}, {"type_id", 0}}}},
          {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
        {"pair",
         {{{"SpecialToken", {{"id", "<|bos|>"}, {"type_id", 0}}}},
          {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
          {{"Sequence", {{"id", "B"}, {"type_id", 1}}}}}},
        {"special_tokens",
         {{"<|bos|>",
           {{"id", "<|bos|>"},
            {"ids", json::array({kByteLevelBosId})},
            {"tokens", json::array({"<|bos|>"})}}}}}}},
      {"decoder",
       {{"type", "ByteLevel"},
        {"add_prefix_space", false},
        {"trim_offsets", false},
        {"use_regex", false}}},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", nullptr},
        {"continuing_subword_prefix", nullptr},
        {"end_of_word_suffix", nullptr},
        {"fuse_unk", false},
        {"byte_fallback", false},
        {"ignore_merges", false},
        {"vocab", vocab},
        {"merges", json::array()}}},
  };
  return j.dump(2) + "\n";
}

}  // namespace moa
