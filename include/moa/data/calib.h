// Calibration and validation samples: JSONL, one object per line.
//   {"prompt": str, "answer": str, ...}         (written by `moa data calib`; the answer is the
//                                                model's own; "prompt_tokens", "answer_tokens",
//                                                "length" may follow and are not needed here)
//   {"prompt": str, "expected_number": int, ...} (LongEval reference records: answer =
//                                                std::to_string(expected_number))
// A sample's tokens are encode(prompt, add_special = true) followed by encode(answer, false); its
// loss is the mean cross-entropy over the answer tokens only (DESIGN.md, "Influence").
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "moa/tokenizer/tokenizer.h"

namespace moa {

struct CalibSample {
  std::string prompt, answer;
};

// Every non-blank line must be a sample; one InputError per bad line, naming file:line and the
// field ("data.jsonl:7: field 'answer' is a number, expected a string"). Empty files are an error.
std::vector<CalibSample> load_calib(const std::filesystem::path& path);
std::vector<CalibSample> parse_calib(const std::string& text, const std::string& source);

struct TokenizedSample {
  std::vector<int32_t> ids;      // (n) prompt tokens (with BOS when the tokenizer adds one), answer
  std::vector<float> loss_mask;  // (n) 1 at positions t whose target ids[t+1] is an answer token
  int64_t prompt_tokens = 0;
  int64_t size() const { return int64_t(ids.size()); }
  int64_t answer_tokens() const { return size() - prompt_tokens; }
  // Answer tokens that are predicted (all of them, unless the prompt is empty without a BOS).
  int64_t scored_tokens() const;
};

TokenizedSample tokenize_sample(const Tokenizer& tok, const CalibSample& s);

}  // namespace moa
