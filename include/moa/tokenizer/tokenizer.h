// Tokenizers: Hugging Face tokenizer.json (byte-level BPE as in GPT-2/Llama-3/Qwen2, and
// SentencePiece-style BPE with byte fallback as in Llama-2/Mistral/Vicuna) and tokenizer.model
// (SentencePiece, through libsentencepiece). One interface; the model directory decides which.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace moa {

class GgufFile;

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Loads from a model directory (tokenizer.json preferred, else tokenizer.model; BOS/EOS from
  // tokenizer_config.json / generation_config.json / config.json when present), from a
  // tokenizer.json / tokenizer.model file, or from a .gguf file's metadata. Throws InputError
  // naming the file and field.
  static std::unique_ptr<Tokenizer> load(const std::filesystem::path& dir_or_file);
  // A GGUF file's tokenizer.ggml.* metadata (src/tokenizer/tokenizer_gguf.cpp); load() calls it for
  // a .gguf path.
  static std::unique_ptr<Tokenizer> from_gguf(const GgufFile& g);
  // True when the directory has tokenizer files (a checkpoint may ship without them), or the
  // GGUF file has tokenizer metadata.
  static bool exists(const std::filesystem::path& dir);

  // Encodes text. add_special: prepend BOS when the tokenizer's config says so (HF semantics of
  // add_special_tokens=True, e.g. Llama adds <s> / <|begin_of_text|>, Qwen2 adds nothing).
  // Special/added tokens written in the text are matched as such (HF behaviour).
  virtual std::vector<int32_t> encode(const std::string& text, bool add_special) const = 0;
  // Decodes ids to text (HF decode with skip_special_tokens=false semantics, but without BOS
  // duplication quirks): decode(encode(x, false)) == x for any valid UTF-8 x.
  // Except where the tokenizer itself loses information: an NFC normalizer (Qwen2) gives back
  // NFC(x), Metaspace with prepend_scheme "first" one leading space less, and lstrip/rstrip added
  // tokens eat the whitespace beside them. Special tokens decode to their text ("<s>"). The
  // result is the concatenated token_bytes() with invalid UTF-8 replaced by U+FFFD.
  virtual std::string decode(const std::vector<int32_t>& ids) const = 0;
  // The raw bytes one token contributes when streamed after `prev` (handles SentencePiece's
  // leading-space rule and byte-fallback pieces; may be a partial UTF-8 sequence).
  virtual std::string token_bytes(int32_t id, int32_t prev) const = 0;

  virtual int32_t vocab_size() const = 0;
  virtual int32_t bos_id() const = 0;                // -1 when none
  virtual std::vector<int32_t> eos_ids() const = 0;  // generation stops at any of these
};

// The byte-level tokenizer.json that `moa init` writes for random-weight checkpoints: token id b
// is byte b (GPT-2 byte-to-character mapping, no merges), then kByteLevelBosId "<|bos|>" and
// kByteLevelEosId "<|eos|>". encode(text, true) prepends BOS. Any byte string round-trips, so a
// model's vocab must be at least kByteLevelVocabSize.
inline constexpr int32_t kByteLevelBosId = 256;
inline constexpr int32_t kByteLevelEosId = 257;
inline constexpr int32_t kByteLevelVocabSize = 258;
std::string make_byte_level_tokenizer_json();

}  // namespace moa
