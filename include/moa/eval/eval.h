// Evaluation tasks run through the one engine (dense, MoA plan, StreamingLLM and H2O are only
// different AttentionSpecs): LongEval line retrieval and passkey retrieval with greedy answers
// ("first integer compared", as the reference's LongEval scorer does).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "moa/attention/kv_cache.h"
#include "moa/model/model.h"
#include "moa/tokenizer/tokenizer.h"

namespace moa {

// One retrieval question: a prompt, the number it must answer, and where the answer sits.
struct RetrievalItem {
  std::string prompt;
  int64_t expected = 0;
  int64_t num_lines = 0;  // LongEval lines (0 for passkey)
  double depth = 0;       // relative position of the answer in the prompt, [0, 1]
};

// Reads a JSONL of LongEval records (the reference's format: prompt, expected_number, num_lines,
// random_idx [key, index]) or passkey records (prompt, expected_number, depth). One InputError per
// bad line, naming file:line and field.
std::vector<RetrievalItem> load_retrieval_jsonl(const std::filesystem::path& path);

// The spec to run a model at n_ctx = prompt + generation budget positions.
using SpecFactory = std::function<AttentionSpec(int64_t n_ctx)>;

struct GreedyAnswer {
  std::string text;
  int64_t prompt_tokens = 0;
  int64_t answer = -1;  // first integer of text, -1 if none
  int64_t kv_bytes = 0;
};

// Greedy continuation of BOS + prompt, at most max_new tokens; stops at the end of the first line
// that holds a digit (the answer line), or at EOS. N = prompt tokens + max_new.
GreedyAnswer greedy_answer(const Model& m, const Tokenizer& tok, const std::string& prompt,
                           int64_t max_new, const SpecFactory& spec);

struct RetrievalResult {
  int64_t n = 0, correct = 0;
  double accuracy() const { return n ? double(correct) / double(n) : 0.0; }
  std::map<int64_t, std::pair<int64_t, int64_t>> by_lines;   // lines -> (correct, n)
  std::map<int64_t, std::pair<int64_t, int64_t>> by_depth;   // depth bucket 0..4 -> (correct, n)
  // lines -> depth bucket 0..4 -> (correct, n): the length x depth heatmap of `moa report`
  std::map<int64_t, std::map<int64_t, std::pair<int64_t, int64_t>>> by_lines_depth;
  std::map<int64_t, double> mean_prompt_tokens;              // lines -> mean prompt tokens
  double mean_kv_bytes = 0;
  std::vector<int64_t> answers;  // per item, in order
  // accuracy, n, by_lines, by_position, prompt_tokens, by_lines_position {lines: {bucket: acc}}
  nlohmann::json to_json() const;
};

// Runs every item; progress (done, total) after each one.
RetrievalResult eval_retrieval(const Model& m, const Tokenizer& tok,
                               const std::vector<RetrievalItem>& items, int64_t max_new,
                               const SpecFactory& spec,
                               const std::function<void(int64_t, int64_t)>& progress = {});

}  // namespace moa
