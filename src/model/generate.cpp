#include "moa/model/generate.h"

#include <algorithm>

#include "moa/core/error.h"
#include "moa/model/forward.h"

namespace moa {

GreedyAnswer greedy_answer(const Model& m, const Tokenizer& tok, const std::string& prompt,
                           int64_t max_new, const SpecFactory& spec) {
  std::vector<int32_t> ids = tok.encode(prompt, true);
  GreedyAnswer a;
  a.prompt_tokens = int64_t(ids.size());
  const int64_t n_ctx = a.prompt_tokens + max_new;
  if (n_ctx > m.cfg.max_position) {
    input_error(
        "prompt of {} tokens + {} to generate exceeds the model's context of {} "
        "(max_position_embeddings)",
        ids.size(), max_new, m.cfg.max_position);
  }
  Session s(m, spec(n_ctx));
  std::vector<float> logits = s.prefill(ids);
  a.kv_bytes = s.kv_bytes();
  const auto eos = tok.eos_ids();
  const int64_t tok_vocab = std::min<int64_t>(tok.vocab_size(), m.cfg.vocab);
  int32_t prev = ids.back();
  bool digit = false;
  for (int64_t i = 0; i < max_new; ++i) {
    const int32_t next =
        int32_t(std::max_element(logits.begin(), logits.begin() + tok_vocab) - logits.begin());
    if (std::find(eos.begin(), eos.end(), next) != eos.end()) break;
    std::string piece = tok.token_bytes(next, prev);
    prev = next;
    a.text += piece;
    for (char c : piece) {
      if (c >= '0' && c <= '9') digit = true;
    }
    // The answer ends with its line, or with the sentence (passkey) or the bracket (LongEval).
    if (digit && piece.find_first_of("\n.>") != std::string::npos) break;
    if (i + 1 < max_new) logits = s.decode(next);
  }
  return a;
}

}  // namespace moa
