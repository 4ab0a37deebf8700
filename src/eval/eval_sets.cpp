// The generated evaluation sets (moa/eval/eval.h): one recipe, so that `moa eval` and `moa inspect`
// given the same seed and line count see the same prompts.
#include <random>

#include "moa/core/error.h"
#include "moa/eval/eval.h"
#include "moa/data/tasks.h"

namespace moa {

namespace {

// Each length draws from its own stream, so adding a length leaves the others' items unchanged.
std::mt19937_64 length_rng(uint64_t seed, int64_t n) {
  return std::mt19937_64(seed * 1000003ULL + uint64_t(n));
}

}  // namespace

std::vector<RetrievalItem> longeval_eval_set(const WordLists& words,
                                             const std::vector<int64_t>& lines, int64_t samples,
                                             uint64_t seed, KeySplit split) {
  std::vector<RetrievalItem> items;
  for (int64_t n : lines) {
    if (n < 1) input_error("--lines: {} is not a positive line count", n);
    std::mt19937_64 rng = length_rng(seed, n);
    for (int64_t i = 0; i < samples; ++i) {
      const int64_t ask = (i * n) / samples;
      LongEvalRecord r = make_longeval(rng, words, n, split, ask);
      items.push_back({r.prompt, r.expected_number, n, n > 1 ? double(ask) / double(n - 1) : 0.0});
    }
  }
  return items;
}

std::vector<RetrievalItem> passkey_eval_set(const std::vector<int64_t>& repeats,
                                            const std::vector<double>& depths, int64_t samples,
                                            uint64_t seed) {
  MOA_CHECK(!depths.empty());
  std::vector<RetrievalItem> items;
  for (int64_t r : repeats) {
    if (r < 0) input_error("--repeats: {} is negative", r);
    std::mt19937_64 rng = length_rng(seed, r);
    for (int64_t i = 0; i < samples; ++i) {
      const double d = depths[size_t(i) % depths.size()];
      if (d < 0 || d > 1) input_error("--depths: {} is not in [0, 1]", d);
      PasskeyRecord p = make_passkey(rng, r, d);
      items.push_back({p.prompt, p.passkey, r, d});
    }
  }
  return items;
}

}  // namespace moa
