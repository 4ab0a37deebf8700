// Byte-level BPE training (GPT-2 style merges over pre-tokenized words), producing a standard
// Hugging Face tokenizer.json that every tokenizer.json consumer loads. The pre-tokenizer is
// Qwen2's split regex, which isolates every digit, so numbers are always one token per digit
// (what retrieval of numbers needs, and what Llama-2/Qwen2 tokenizers do too). Bytes are the first
// 256 ids, so any text encodes; <|bos|> = 256 and <|eos|> = 257 as in `moa init`'s tokenizer.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace moa {

struct BpeTrainOptions {
  int32_t vocab_size = 2048;   // total, bytes and the two special tokens included
  int64_t min_frequency = 2;   // a pair seen fewer times is never merged
};

// Trains on `texts` (each pre-tokenized on its own) and returns the tokenizer.json text.
// `progress(merges_done, merges_total)` is called now and then when set.
std::string train_bpe_tokenizer(const std::vector<std::string>& texts, const BpeTrainOptions& o,
                                const std::function<void(int64_t, int64_t)>& progress = {});

}  // namespace moa
