#include "moa/tokenizer/tokenizer_train.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <string_view>
#include <unordered_map>

#include "tokenizer/tokenizer_internal.h"
#include "moa/core/error.h"
#include "moa/tokenizer/tokenizer.h"

namespace moa {

namespace {

using json = nlohmann::json;

constexpr const char* kQwen2Regex =
    R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";

uint64_t pair_key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }

struct Word {
  std::vector<int32_t> sym;
  int64_t count = 0;
};

}  // namespace

std::string train_bpe_tokenizer(const std::vector<std::string>& texts, const BpeTrainOptions& o,
                                const std::function<void(int64_t, int64_t)>& progress) {
  if (o.vocab_size < kByteLevelVocabSize) {
    input_error("--vocab: {} is below the {} byte and special tokens", o.vocab_size, kByteLevelVocabSize);
  }
  // Word frequencies over the corpus (raw bytes of each pre-tokenized piece).
  std::unordered_map<std::string, int64_t> freq;
  std::vector<std::pair<size_t, size_t>> spans;
  for (const auto& t : texts) {
    spans.clear();
    tok::regex_split(tok::SplitPattern::kQwen2, t, &spans);
    for (auto [b, e] : spans) ++freq[t.substr(b, e - b)];
  }
  // Sorted so that the result does not depend on hash order.
  std::vector<std::pair<std::string, int64_t>> sorted(freq.begin(), freq.end());
  std::sort(sorted.begin(), sorted.end());
  std::vector<Word> words;
  words.reserve(sorted.size());
  for (auto& [w, c] : sorted) {
    Word x;
    x.count = c;
    for (unsigned char ch : w) x.sym.push_back(int32_t(ch));
    words.push_back(std::move(x));
  }

  const auto& b2u = tok::byte_to_unicode();
  std::vector<std::string> token(256);
  for (int b = 0; b < 256; ++b) token[size_t(b)] = b2u[size_t(b)];
  token.push_back("<|bos|>");
  token.push_back("<|eos|>");
  std::unordered_map<std::string, int32_t> token_id;
  for (int32_t i = 0; i < 256; ++i) token_id.emplace(token[size_t(i)], i);

  std::unordered_map<uint64_t, int64_t> pairs;
  std::unordered_map<uint64_t, std::vector<int32_t>> where;  // may hold stale word indices
  for (int32_t wi = 0; wi < int32_t(words.size()); ++wi) {
    const auto& s = words[size_t(wi)].sym;
    for (size_t i = 0; i + 1 < s.size(); ++i) {
      uint64_t k = pair_key(s[i], s[i + 1]);
      pairs[k] += words[size_t(wi)].count;
      where[k].push_back(wi);
    }
  }

  json merges = json::array();
  const int64_t total = o.vocab_size - kByteLevelVocabSize;
  for (int64_t m = 0; int64_t(token.size()) < o.vocab_size; ++m) {
    // Most frequent pair; ties go to the pair of smaller ids (deterministic).
    uint64_t best = 0;
    int64_t best_count = 0;
    for (const auto& [k, c] : pairs) {
      if (c > best_count || (c == best_count && c > 0 && k < best)) {
        best = k;
        best_count = c;
      }
    }
    if (best_count < o.min_frequency) break;
    const int32_t a = int32_t(best >> 32), b = int32_t(best & 0xffffffffu);
    // Two merges can spell the same string ("ab"+"c", "a"+"bc"): they share one id, as in
    // Hugging Face's trainer.
    std::string merged = token[size_t(a)] + token[size_t(b)];
    auto [it, fresh] = token_id.emplace(merged, int32_t(token.size()));
    const int32_t id = it->second;
    if (fresh) token.push_back(merged);
    merges.push_back(token[size_t(a)] + " " + token[size_t(b)]);

    std::vector<int32_t> list = std::move(where[best]);
    where.erase(best);
    std::sort(list.begin(), list.end());
    list.erase(std::unique(list.begin(), list.end()), list.end());
    for (int32_t wi : list) {
      Word& w = words[size_t(wi)];
      auto& s = w.sym;
      bool has = false;
      for (size_t i = 0; i + 1 < s.size(); ++i) has |= (s[i] == a && s[i + 1] == b);
      if (!has) continue;
      for (size_t i = 0; i + 1 < s.size(); ++i) {
        uint64_t k = pair_key(s[i], s[i + 1]);
        if ((pairs[k] -= w.count) <= 0) pairs.erase(k);
      }
      std::vector<int32_t> next;
      next.reserve(s.size());
      for (size_t i = 0; i < s.size(); ++i) {
        if (i + 1 < s.size() && s[i] == a && s[i + 1] == b) {
          next.push_back(id);
          ++i;
        } else {
          next.push_back(s[i]);
        }
      }
      s.swap(next);
      for (size_t i = 0; i + 1 < s.size(); ++i) {
        uint64_t k = pair_key(s[i], s[i + 1]);
        pairs[k] += w.count;
        if (s[i] == id || s[i + 1] == id) where[k].push_back(wi);
      }
    }
    if (progress && m % 64 == 0) progress(int64_t(token.size()) - kByteLevelVocabSize, total);
  }

  // The skeleton (added tokens, post-processor, decoder) is `moa init`'s byte-level tokenizer; the
  // model gains the merges and the pre-tokenizer Qwen2's split.
  json j = json::parse(make_byte_level_tokenizer_json());
  json vocab = json::object();
  for (size_t i = 0; i < token.size(); ++i) {
    if (i == size_t(kByteLevelBosId) || i == size_t(kByteLevelEosId)) continue;
    vocab[token[i]] = int64_t(i);
  }
  j["model"]["vocab"] = vocab;
  j["model"]["merges"] = merges;
  j["pre_tokenizer"] = {
      {"type", "Sequence"},
      {"pretokenizers",
       {{{"type", "Split"}, {"pattern", {{"Regex", kQwen2Regex}}}, {"behavior", "Isolated"}, {"invert", false}},
        {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}}}}};
  return j.dump(1) + "\n";
}

}  // namespace moa
