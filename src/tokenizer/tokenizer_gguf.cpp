// Tokenizers from GGUF metadata (tokenizer.ggml.*), built on the tokenizer.json implementation:
// the metadata is turned into the tokenizer.json pipeline Hugging Face uses for the same family,
// then HfTokenizer runs it.
//   "gpt2"  byte-level BPE: tokens (already byte-mapped), merges, and the pre-tokenizer named by
//           tokenizer.ggml.pre (llama-bpe / llama3: Llama-3 split regex, merges ignored for
//           whole-word vocabulary hits; qwen2: Qwen2 regex with an NFC normalizer; gpt-2 /
//           default: GPT-2's regex). CONTROL and USER_DEFINED tokens are added tokens.
//   "llama" SentencePiece BPE: tokens and scores, no merges. The merges are derived from the
//           scores as Hugging Face's SentencePiece converter derives them: every split of a piece
//           into two vocabulary pieces, ranked by the piece's score (highest first) - which is
//           SentencePiece's own rule (merge the adjacent pair whose union scores highest).
//           Byte fallback over <0xXX> tokens, "▁" for spaces, a leading "▁" unless
//           tokenizer.ggml.add_space_prefix is false.
// BOS/EOS ids and add_bos/add_eos come from the metadata, with llama.cpp's defaults (add BOS for
// "llama" and for the llama3 pre-tokenizer).
#include <algorithm>

#include "moa/core/error.h"
#include "moa/gguf/gguf.h"
#include "tokenizer/tokenizer_internal.h"

namespace moa {

using nlohmann::json;

namespace {

// llama.cpp's token types (tokenizer.ggml.token_type).
constexpr int64_t kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4;

// The split regexes exactly as the families' tokenizer.json files write them (find_split_pattern
// knows these sources).
constexpr const char* kLlama3Regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
constexpr const char* kQwen2Regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

json byte_level(bool use_regex) {
  return {{"type", "ByteLevel"},
          {"add_prefix_space", false},
          {"trim_offsets", false},
          {"use_regex", use_regex}};
}

json split_then_bytes(const char* regex) {
  return {{"type", "Sequence"},
          {"pretokenizers",
           {{{"type", "Split"},
             {"pattern", {{"Regex", regex}}},
             {"behavior", "Isolated"},
             {"invert", false}},
            byte_level(false)}}};
}

// Length of the UTF-8 sequence starting with byte c (1 for stray continuation bytes).
size_t utf8_len(unsigned char c) {
  if (c >= 0xf0) return 4;
  if (c >= 0xe0) return 3;
  if (c >= 0xc0) return 2;
  return 1;
}

// SentencePiece merges from scores (see the file comment): [left, right] pairs, best first.
json spm_merges(const std::vector<std::string>& tokens, const std::vector<float>& scores,
                const std::vector<int64_t>& types, const tok::StringIdMap& vocab) {
  struct M {
    float score;
    int32_t piece, left, right;
  };
  std::vector<M> ms;
  for (size_t k = 0; k < tokens.size(); ++k) {
    if (types[k] != kNormal && types[k] != kUserDefined) continue;
    const std::string& s = tokens[k];
    std::vector<M> local;
    for (size_t i = utf8_len(uint8_t(s[0])); i < s.size(); i += utf8_len(uint8_t(s[i]))) {
      auto l = vocab.find(std::string_view(s).substr(0, i));
      auto r = vocab.find(std::string_view(s).substr(i));
      if (l != vocab.end() && r != vocab.end()) {
        local.push_back({scores[k], int32_t(k), l->second, r->second});
      }
    }
    std::sort(local.begin(), local.end(), [](const M& a, const M& b) {
      return a.left != b.left ? a.left < b.left : a.right < b.right;
    });
    ms.insert(ms.end(), local.begin(), local.end());
  }
  std::stable_sort(ms.begin(), ms.end(), [](const M& a, const M& b) { return a.score > b.score; });
  json out = json::array();
  for (const M& m : ms) out.push_back({tokens[size_t(m.left)], tokens[size_t(m.right)]});
  return out;
}

std::string token_at(const GgufFile& g, const std::vector<std::string>& tokens,
                     const std::string& key) {
  const int64_t id = g.get_int(key);
  if (id < 0 || id >= int64_t(tokens.size())) {
    input_error("{}: metadata key '{}' is {}, expected a token id below {}", g.file(), key, id,
                tokens.size());
  }
  return tokens[size_t(id)];
}

}  // namespace

std::unique_ptr<Tokenizer> Tokenizer::from_gguf(const GgufFile& g) {
  const std::string& f = g.file();
  const std::string model = g.get_string("tokenizer.ggml.model");
  if (model != "gpt2" && model != "llama") {
    input_error("{}: metadata key 'tokenizer.ggml.model' is '{}', expected gpt2 or llama", f,
                model);
  }
  const GgufValue& tv = g.get_array("tokenizer.ggml.tokens", GgufType::kString);
  if (tv.count == 0 || tv.count > uint64_t(tok::kMaxVocab)) {
    input_error("{}: metadata key 'tokenizer.ggml.tokens' has {} tokens, expected 1..{}", f,
                tv.count, uint64_t(tok::kMaxVocab));
  }
  const std::vector<std::string>& tokens = tv.strs;
  const size_t n = tokens.size();
  std::vector<int64_t> types(n, kNormal);
  if (g.find("tokenizer.ggml.token_type")) {
    const GgufValue& t = g.get_array("tokenizer.ggml.token_type", GgufType::kI32);
    if (t.count != n) {
      input_error(
          "{}: metadata key 'tokenizer.ggml.token_type' has {} entries, expected one per "
          "token ({})",
          f, t.count, n);
    }
    for (size_t k = 0; k < n; ++k) types[k] = t.at(k).i;
  }
  const bool spm = model == "llama";
  json added = json::array(), vocab = json::object();
  tok::StringIdMap ids;
  for (size_t k = 0; k < n; ++k) {
    const int64_t t = types[k];
    const bool is_added = t == kControl || t == kUserDefined || (spm && t == kUnknown);
    if (is_added) {
      added.push_back({{"id", k},
                       {"content", tokens[k]},
                       {"special", t != kUserDefined},
                       {"normalized", false},
                       {"lstrip", false},
                       {"rstrip", false},
                       {"single_word", false}});
    }
    // Byte-level BPE keeps its added tokens out of the model's vocabulary (as tokenizer.json
    // does); SentencePiece has them in it. The first of duplicate strings wins.
    if ((spm || !is_added) && ids.emplace(tokens[k], int32_t(k)).second) vocab[tokens[k]] = k;
  }
  json j = {{"added_tokens", added}};
  json m = {{"type", "BPE"}, {"vocab", vocab}};
  if (spm) {
    const GgufValue& sv = g.get_array("tokenizer.ggml.scores", GgufType::kF32);
    if (sv.count != n) {
      input_error(
          "{}: metadata key 'tokenizer.ggml.scores' has {} entries, expected one per "
          "token ({})",
          f, sv.count, n);
    }
    std::vector<float> scores(n);
    for (size_t k = 0; k < n; ++k) scores[k] = float(sv.at(k).f);
    m["merges"] = spm_merges(tokens, scores, types, ids);
    m["byte_fallback"] = true;
    m["fuse_unk"] = true;
    if (g.find("tokenizer.ggml.unknown_token_id")) {
      m["unk_token"] = token_at(g, tokens, "tokenizer.ggml.unknown_token_id");
    } else if (auto it = std::find(types.begin(), types.end(), kUnknown); it != types.end()) {
      m["unk_token"] = tokens[size_t(it - types.begin())];
    }
    const bool prefix = g.get_bool("tokenizer.ggml.add_space_prefix", true);
    json norm = json::array();
    if (prefix) norm.push_back({{"type", "Prepend"}, {"prepend", "\xe2\x96\x81"}});
    norm.push_back(
        {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\xe2\x96\x81"}});
    j["normalizer"] = {{"type", "Sequence"}, {"normalizers", norm}};
    j["decoder"] = {
        {"type", "Sequence"},
        {"decoders",
         {{{"type", "Replace"}, {"pattern", {{"String", "\xe2\x96\x81"}}}, {"content", " "}},
          {{"type", "ByteFallback"}},
          {{"type", "Fuse"}},
          {{"type", "Strip"}, {"content", " "}, {"start", prefix ? 1 : 0}, {"stop", 0}}}}};
  } else {
    const GgufValue& mv = g.get_array("tokenizer.ggml.merges", GgufType::kString);
    m["merges"] = mv.strs;
    const std::string pre = g.get_string("tokenizer.ggml.pre", "default");
    if (pre == "llama-bpe" || pre == "llama3" || pre == "llama-v3") {
      j["pre_tokenizer"] = split_then_bytes(kLlama3Regex);
      m["ignore_merges"] = true;
    } else if (pre == "qwen2") {
      j["normalizer"] = {{"type", "NFC"}};
      j["pre_tokenizer"] = split_then_bytes(kQwen2Regex);
    } else if (pre == "gpt-2" || pre == "default") {
      j["pre_tokenizer"] = byte_level(true);
    } else {
      input_error(
          "{}: metadata key 'tokenizer.ggml.pre' is '{}', expected llama-bpe, qwen2, "
          "gpt-2 or default (other pre-tokenizers are not implemented)",
          f, pre);
    }
    j["decoder"] = byte_level(false);
  }
  j["model"] = m;

  tok::SpecialConfig cfg;
  if (g.find("tokenizer.ggml.bos_token_id")) {
    cfg.bos_token = token_at(g, tokens, "tokenizer.ggml.bos_token_id");
  } else {
    cfg.bos_token_null = true;
  }
  if (g.find("tokenizer.ggml.eos_token_id")) {
    cfg.eos_token = token_at(g, tokens, "tokenizer.ggml.eos_token_id");
  }
  if (g.find("tokenizer.ggml.eot_token_id")) {
    token_at(g, tokens, "tokenizer.ggml.eot_token_id");  // range check
    cfg.eos_ids.push_back(int32_t(g.get_int("tokenizer.ggml.eot_token_id")));
  }
  const std::string pre = g.get_string("tokenizer.ggml.pre", "");
  const bool bos_default = spm || pre == "llama-bpe" || pre == "llama3" || pre == "llama-v3";
  cfg.add_bos_token = g.get_bool("tokenizer.ggml.add_bos_token", bos_default);
  cfg.add_eos_token = g.get_bool("tokenizer.ggml.add_eos_token", false);
  return std::make_unique<tok::HfTokenizer>(j, f, cfg);
}

}  // namespace moa
