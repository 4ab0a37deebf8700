// Evaluation tasks run through the one engine (dense, MoA plan, StreamingLLM and H2O are only
// different CacheSpecs): LongEval line retrieval and passkey retrieval with greedy answers
// ("first integer compared", as the reference's LongEval scorer does).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "moa/data/tasks.h"
#include "moa/model/generate.h"
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

// The generated evaluation sets (`moa eval retrieval`, `moa eval passkey`, `moa inspect heads`):
// for each line count n, `samples` LongEval records drawn from std::mt19937_64(seed * 1000003 + n),
// the asked line of record i being (i * n) / samples so that the asked line sweeps the record and
// every depth bucket is covered. InputError for a line count below 1.
std::vector<RetrievalItem> longeval_eval_set(const WordLists& words,
                                             const std::vector<int64_t>& lines, int64_t samples,
                                             uint64_t seed, KeySplit split);
// For each filler repeat count r, `samples` passkey prompts from std::mt19937_64(seed * 1000003 +
// r), the key of prompt i at depths[i % depths.size()]; num_lines holds r, so that the by_lines
// groups of the result are the lengths. InputError for a negative count or a depth outside [0, 1].
std::vector<RetrievalItem> passkey_eval_set(const std::vector<int64_t>& repeats,
                                            const std::vector<double>& depths, int64_t samples,
                                            uint64_t seed);

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
