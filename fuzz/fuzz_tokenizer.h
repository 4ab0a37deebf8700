// What the tokenizer harnesses (tokenizer_json, sentencepiece, gguf) do with a tokenizer their
// loader accepted: what `moa` does with one (encode with and without special tokens, decode, the
// streamed bytes of each token), on a text meant to reach every branch of the pipelines.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "moa/tokenizer/tokenizer.h"

namespace moa::fuzz {

// ASCII, digits, whitespace runs, multi-byte UTF-8, an invalid byte, and special-token spellings.
inline constexpr const char kTokenizerText[] =
    "Hello, world! 12345  tabs\tand\nnew lines \xc3\xa9t\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac "
    "\xf0\x9f\x91\x8b \xff <s></s><|bos|><|eos|><unk>";

inline void exercise_tokenizer(const moa::Tokenizer& tok) {
  size_t sum = 0;
  for (bool special : {false, true}) {
    const std::vector<int32_t> ids = tok.encode(kTokenizerText, special);
    sum += tok.decode(ids).size();
    for (size_t i = 0; i < ids.size(); ++i) {
      sum += tok.token_bytes(ids[i], i ? ids[i - 1] : -1).size();
    }
  }
  // The first ids' bytes, each after its predecessor (byte-fallback and leading-space rules).
  const int32_t n = std::min<int32_t>(tok.vocab_size(), 512);
  for (int32_t id = 0; id < n; ++id) sum += tok.token_bytes(id, id - 1).size();
  sum += size_t(tok.bos_id()) + tok.eos_ids().size();
  if (sum == 1) std::fputc(' ', stderr);  // keeps the work from being optimised away
}

}  // namespace moa::fuzz
