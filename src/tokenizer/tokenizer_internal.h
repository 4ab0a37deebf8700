// Private pieces of the tokenizers (src/tokenizer/tokenizer_*.cpp). The pipeline follows Hugging Face
// tokenizers (reference: the JavaScript port @huggingface/tokenizers that transformers.js runs):
//   text -> split on added tokens -> normalizer -> split on normalized added tokens
//        -> pre-tokenizer -> BPE model -> post-processor (BOS/EOS template)
// and decode: ids -> token strings -> decoder chain, run by run between added tokens.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "moa/tokenizer/tokenizer.h"

namespace moa::tok {

// Token ids from 2^24 on are a broken file, not a vocabulary (the largest real ones are ~2^18):
// every loader refuses them before allocating per-id tables.
inline constexpr int64_t kMaxVocab = int64_t(1) << 24;

// ---- string helpers -------------------------------------------------------------------------

// Hash that lets unordered_map<std::string, ..> be queried with a string_view.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using StringIdMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

void replace_all(std::string& s, std::string_view from, std::string_view to);

// GPT-2 byte <-> printable character mapping of byte-level BPE (UTF-8 of each mapped char).
const std::array<std::string, 256>& byte_to_unicode();
// The byte for a mapped code point, or -1.
int unicode_to_byte(char32_t cp);

// ---- added tokens -----------------------------------------------------------------------------

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool special = false;
  bool lstrip = false;
  bool rstrip = false;
  bool single_word = false;
  bool normalized = false;
};

// Leftmost-longest, non-overlapping matching of a set of strings (Aho-Corasick LeftmostLongest /
// the reference's DictionarySplitter), with the added-token flags applied like HF tokenizers:
// single_word drops matches inside words, lstrip/rstrip absorb the whitespace beside the match.
class AddedTokenMatcher {
 public:
  struct Split {
    size_t begin, end;
    int token = -1;  // index into the tokens given to build(), -1 for plain text
  };
  void build(const std::vector<const AddedToken*>& tokens);
  bool empty() const { return tokens_.empty(); }
  // Splits text into plain and token pieces covering it (empty plain pieces are left out).
  std::vector<Split> split(std::string_view text) const;
  const AddedToken& token(int i) const { return *tokens_[i]; }

 private:
  struct Node {
    std::unordered_map<unsigned char, int32_t> next;
    int token = -1;  // longest pattern ending here
  };
  std::vector<const AddedToken*> tokens_;
  std::vector<Node> nodes_;
  std::array<int32_t, 256> root_{};  // child of the root per byte, 0 = none
};

// ---- normalizers ------------------------------------------------------------------------------

struct NormalizerStep {
  enum Kind { kPrepend, kReplace, kNfc, kStrip } kind = kNfc;
  std::string a, b;                  // Prepend: a = prefix; Replace: a -> b
  bool left = false, right = false;  // Strip
};
std::string normalize(const std::vector<NormalizerStep>& steps, std::string text);

// ---- pre-tokenizers ---------------------------------------------------------------------------

// The split regexes we implement by hand (Split pre-tokenizer / ByteLevel use_regex).
enum class SplitPattern {
  kGpt2,    // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
  kLlama3,  // (?i:'s|..)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
            // ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|..
  kQwen2,   // as kLlama3 with \p{N} (single digits)
};
// The pattern with this regex source (as written in tokenizer.json), if we implement it.
std::optional<SplitPattern> find_split_pattern(std::string_view regex);
// Appends the byte ranges of the regex matches of text (they cover all of it).
void regex_split(SplitPattern pattern, std::string_view text,
                 std::vector<std::pair<size_t, size_t>>* out);

struct PreTokStep {
  enum Kind { kSplit, kByteLevel, kMetaspace } kind = kSplit;
  SplitPattern pattern = SplitPattern::kGpt2;                  // Split, ByteLevel with use_regex
  bool use_regex = false;                                      // ByteLevel
  bool add_prefix_space = false;                               // ByteLevel
  std::string replacement;                                     // Metaspace
  enum Prepend { kAlways, kFirst, kNever } prepend = kAlways;  // Metaspace
  bool split = true;                                           // Metaspace
};
// Runs the steps on one section of text; first_section: the section starts the input (for
// Metaspace prepend_scheme "first").
void pre_tokenize(const std::vector<PreTokStep>& steps, std::string text, bool first_section,
                  std::vector<std::string>* words);

// ---- BPE model --------------------------------------------------------------------------------

class BpeModel {
 public:
  std::vector<std::string> id_to_token;  // vocabulary and added tokens (for decoding); "" unused
  StringIdMap token_to_id;               // the BPE vocabulary only
  bool byte_fallback = false;
  bool ignore_merges = false;
  bool fuse_unk = false;
  int32_t unk_id = -1;

  // Call after filling the vocabulary; merges are "a b" strings or [a, b] pairs. Throws
  // InputError naming `where` for a malformed entry.
  void set_merges(const nlohmann::json& merges, const std::string& where);
  // Appends the ids of one pre-tokenized word.
  void encode_word(std::string_view word, std::vector<int32_t>* ids) const;

 private:
  struct Merge {
    int32_t rank;
    int32_t result;  // symbol id; >= id_to_token.size() for a merge result outside the vocab
  };
  int32_t symbol_id(std::string_view s) const;
  int32_t intern_symbol(const std::string& s);
  void bpe(const std::vector<int32_t>& initial, std::vector<int32_t>* out) const;
  void emit(int32_t sym, std::string_view text, std::vector<int32_t>* ids) const;

  std::unordered_map<uint64_t, Merge> merges_;
  std::vector<std::string> extra_symbols_;  // merge results not in the vocabulary
  StringIdMap extra_ids_;
  std::array<int32_t, 256> byte_ids_{};  // <0xXX> tokens for byte fallback, -1 when absent
  std::vector<int32_t> small_char_ids_;  // id of each code point below 0x800, -2 = unknown

  static constexpr size_t kMaxCachedWord = 256;
  static constexpr size_t kCacheCapacity = 1 << 16;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> cache_;
};

// ---- decoders ---------------------------------------------------------------------------------

struct DecoderStep {
  enum Kind { kByteLevel, kReplace, kByteFallback, kFuse, kStrip, kMetaspace } kind = kFuse;
  std::string a, b;            // Replace: a -> b; Strip: a = content; Metaspace: a = replacement
  int start = 0, stop = 0;     // Strip
  bool strip_first = true;     // Metaspace: drop the leading space of a run's first token...
  bool only_at_start = false;  // ... only when the run starts the sequence (prepend_scheme first)
};
// Raw bytes of a run of model tokens (no added tokens inside), before UTF-8 sanitizing. Runs are
// decoded separately because each text section between added tokens was encoded separately (a
// Prepend normalizer gave each its own leading "▁"); Metaspace with prepend_scheme "first" only
// prepended to the section that starts the text: sequence_start says whether this run does.
std::string decode_run(const std::vector<DecoderStep>& steps, std::vector<std::string> tokens,
                       bool sequence_start);

// ---- the tokenizer.json tokenizer ---------------------------------------------------------------

struct TemplateItem {
  bool is_sequence = false;
  std::vector<int32_t> ids;  // special token ids
};

// What the model directory's config files say about BOS/EOS.
struct SpecialConfig {
  std::optional<std::string> bos_token, eos_token;   // tokenizer_config.json
  bool bos_token_null = false;                       // tokenizer_config.json says "bos_token": null
  std::optional<bool> add_bos_token, add_eos_token;  // tokenizer_config.json
  std::vector<int32_t> bos_ids, eos_ids;             // generation_config.json, config.json
  std::vector<AddedToken> added_tokens;              // tokenizer_config.json added_tokens_decoder
};
SpecialConfig read_special_config(const std::filesystem::path& dir);

class HfTokenizer final : public Tokenizer {
 public:
  HfTokenizer(const nlohmann::json& j, const std::string& file, const SpecialConfig& cfg);

  std::vector<int32_t> encode(const std::string& text, bool add_special) const override;
  std::string decode(const std::vector<int32_t>& ids) const override;
  std::string token_bytes(int32_t id, int32_t prev) const override;
  int32_t vocab_size() const override { return vocab_size_; }
  int32_t bos_id() const override { return bos_id_; }
  std::vector<int32_t> eos_ids() const override { return eos_ids_; }

 private:
  void parse_normalizer(const nlohmann::json& j, const std::string& where);
  void parse_pre_tokenizer(const nlohmann::json& j, const std::string& where);
  void parse_post_processor(const nlohmann::json& j, const std::string& where);
  void parse_decoder(const nlohmann::json& j, const std::string& where);
  void encode_section(std::string text, bool first_section, std::vector<int32_t>* ids) const;
  int32_t find_token(std::string_view s) const;
  bool is_added(int32_t id) const { return added_index_.count(id) != 0; }
  std::string run_bytes(const std::vector<int32_t>& run, bool sequence_start) const;

  std::string file_;
  BpeModel model_;
  bool has_normalizer_ = false;
  std::vector<NormalizerStep> normalizer_;
  std::vector<PreTokStep> pre_tokenizer_;
  std::vector<AddedToken> added_;
  std::vector<AddedToken> normalized_added_;         // "normalized" ones, with normalized content
  std::unordered_map<int32_t, size_t> added_index_;  // id -> index in added_
  StringIdMap added_ids_;                            // content -> id
  AddedTokenMatcher match_raw_, match_normalized_;
  std::vector<std::vector<TemplateItem>> templates_;  // TemplateProcessing "single", in order
  bool has_decoder_ = false;
  std::vector<DecoderStep> decoder_;
  bool add_bos_ = false, add_eos_ = false;  // without a template: tokenizer_config.json
  int32_t vocab_size_ = 0;
  int32_t bos_id_ = -1;
  std::vector<int32_t> eos_ids_;
};

// ---- tokenizer.model ----------------------------------------------------------------------------

std::unique_ptr<Tokenizer> load_sentencepiece(const std::filesystem::path& file,
                                              const SpecialConfig& cfg);
// InputError unless libsentencepiece can be handed these bytes safely (sentencepiece_check.cpp):
// a well-formed protobuf, at most kMaxVocab pieces, none empty or holding NUL, and normalizer
// tries whose every lookup stays inside them.
void check_sentencepiece_model(std::string_view bytes, const std::string& file);

}  // namespace moa::tok
