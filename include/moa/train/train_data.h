// Training data sources behind one interface, so that generators (synthetic long-dependency
// tasks) and text files plug into the same trainer. A sample is a pure function of
// (seed, step, index): resuming at any step replays exactly the data an uninterrupted run sees.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "moa/tokenizer/tokenizer.h"

namespace moa {

struct TrainSample {
  std::vector<int32_t> ids;   // (T)
  std::vector<float> mask;    // (T): weight of predicting ids[t+1] at position t (last unused)
};

class TrainData {
 public:
  virtual ~TrainData() = default;
  virtual TrainSample sample(uint64_t seed, int64_t step, int64_t index, int64_t T) const = 0;
  virtual std::string describe() const = 0;

  // SPEC: "text:FILE[,FILE...]" (windows of the tokenized files, loss on every token) or
  // "copy" (induction: a random segment then its repetition, loss on the repetition), or
  // "retrieval:text=F[+F..],words=DIR,lines=MIN-MAX,queries=K,passkey=P,copy=P,textonly=P,text_weight=W"
  // (passkey prompts, shuffled-text induction copies and plain text with their probabilities,
  // LongEval records with up to K questions each otherwise; loss on the answers and W on filler
  // text; the evaluation stream, step -1, is LongEval and passkey only, with held-out key words).
  // InputError names the spec on anything else.
  static std::unique_ptr<TrainData> from_spec(const std::string& spec, const Tokenizer& tok,
                                              int64_t vocab);
};

// Deterministic 64-bit mixing of (seed, step, index) into one RNG seed.
uint64_t sample_seed(uint64_t seed, int64_t step, int64_t index);

}  // namespace moa
