// Generated tokens to client text, incrementally: a streamed answer must equal the non-streamed
// one, so text is released only when it can no longer change. Two things hold text back: an
// incomplete UTF-8 sequence (a byte-fallback token may end mid-character), and a tail that could
// still become one of the request's stop strings (OpenAI semantics: the stop string and what
// follows it are never returned).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace moa::serve {

class TextStream {
 public:
  explicit TextStream(std::vector<std::string> stop) : stop_(std::move(stop)) {}

  // Appends one token's bytes; returns the text now safe to release (maybe empty). After a stop
  // string is seen, stopped() is true and nothing more is released.
  std::string push(const std::string& bytes);
  // The end of generation: whatever was held back, with an incomplete UTF-8 tail replaced by
  // U+FFFD (as the tokenizer's decode does).
  std::string finish();
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stop_;
  std::string pending_;  // received, not yet released
  bool stopped_ = false;
};

// Length of the longest prefix of s that ends on a UTF-8 character boundary (an incomplete
// trailing sequence is excluded; invalid bytes count as complete, one byte each).
size_t complete_utf8_prefix(const std::string& s);

}  // namespace moa::serve
