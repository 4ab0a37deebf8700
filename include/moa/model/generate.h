// Greedy generation through the one engine: the answer step shared by evaluation (retrieval) and
// compression (the calibration set's own answers). Dense, MoA plan, StreamingLLM and H2O are only
// different CacheSpecs.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "moa/attention/attention_spec.h"
#include "moa/model/model.h"
#include "moa/tokenizer/tokenizer.h"

namespace moa {

// The cache spec to run a model at n_ctx = prompt + generation budget positions.
using SpecFactory = std::function<CacheSpec(int64_t n_ctx)>;

struct GreedyAnswer {
  std::string text;
  int64_t prompt_tokens = 0;
  int64_t kv_bytes = 0;
};

// Greedy continuation of BOS + prompt, at most max_new tokens; stops at the end of the first line
// that holds a digit (the answer line: a newline, '.' or '>' after a digit), or at EOS.
// N = prompt tokens + max_new; InputError when that exceeds the model's context.
GreedyAnswer greedy_answer(const Model& m, const Tokenizer& tok, const std::string& prompt,
                           int64_t max_new, const SpecFactory& spec);

}  // namespace moa
