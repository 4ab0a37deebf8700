// Perplexity through the one engine (dense, MoA plan, StreamingLLM and H2O are only different
// AttentionSpecs): a text cut into windows, or the answers of a calibration set.
//
// Each sequence is scored teacher-forced with the attention sized at N = the sequence's length
// (as `moa score` does). Perplexity is exp(total NLL / scored tokens): every token weighs the
// same, so long answers count more than short ones (unlike the validator's per-sample mean).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "moa/data/calib.h"
#include "moa/eval/eval.h"
#include "moa/model/model.h"

namespace moa {

// Tokens ids[from..] are scored, each given all tokens before it.
struct ScoredSequence {
  std::vector<int32_t> ids;
  int64_t from = 1;  // >= 1
};

// Windows of `length` tokens: BOS + the next length-1 tokens of `ids` (tokens of the text without
// BOS), every token after BOS scored. A trailing partial window is dropped unless it is the only
// one (a text shorter than one window is scored whole). bos < 0: no BOS, windows of `length`
// text tokens scored from their second token. InputError when nothing is left to score.
std::vector<ScoredSequence> text_windows(const std::vector<int32_t>& ids, int64_t length,
                                         int32_t bos);

// Prompt + answer tokens (tokenize_sample), the answer tokens scored.
std::vector<ScoredSequence> answer_sequences(const std::vector<TokenizedSample>& samples);

struct PplResult {
  double nll_sum = 0;  // sum over scored tokens (nats)
  int64_t tokens = 0;  // scored tokens
  int64_t windows = 0;
  std::vector<double> window_nll;  // mean NLL per sequence, in order
  double nll() const { return tokens ? nll_sum / double(tokens) : 0.0; }
  double ppl() const;  // exp(nll)
};

// Scores every sequence with spec(N = its length). H2O specs are run token by token (the prefix
// ids[0..from) as one prefill, then one decode per token), because H2O evicts by the attention of
// earlier queries: each token is predicted from the cache as generation would leave it.
// progress(done, total) after each sequence, in tokens run (whole sequences, prompts included).
PplResult eval_ppl(const Model& m, const std::vector<ScoredSequence>& seqs, const SpecFactory& spec,
                   const std::function<void(int64_t, int64_t)>& progress = {});

// NLL (nats) of ids[from..] in one sequence under `spec`; nll_out receives one value per token.
void sequence_nll(const Model& m, const AttentionSpec& spec, const ScoredSequence& s,
                  std::vector<double>& nll_out);

}  // namespace moa
