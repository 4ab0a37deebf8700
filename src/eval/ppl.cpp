#include "moa/eval/ppl.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "moa/core/dist.h"
#include "moa/core/error.h"
#include "moa/model/forward.h"

namespace moa {

std::vector<ScoredSequence> text_windows(const std::vector<int32_t>& ids, int64_t length,
                                         int32_t bos) {
  if (length < 2) input_error("--length {}: a window needs at least 2 tokens", length);
  const int64_t n = int64_t(ids.size());
  // Text tokens per window: BOS takes one slot.
  const int64_t step = bos >= 0 ? length - 1 : length;
  std::vector<ScoredSequence> out;
  for (int64_t p = 0; p < n; p += step) {
    const int64_t take = std::min(step, n - p);
    if (take < step && !out.empty()) break;  // trailing partial window
    ScoredSequence s;
    if (bos >= 0) s.ids.push_back(bos);
    s.ids.insert(s.ids.end(), ids.begin() + p, ids.begin() + p + take);
    s.from = 1;
    if (int64_t(s.ids.size()) < 2) break;
    out.push_back(std::move(s));
  }
  if (out.empty())
    input_error("text of {} tokens has nothing to score (need at least 2 tokens)", n);
  return out;
}

std::vector<ScoredSequence> answer_sequences(const std::vector<TokenizedSample>& samples) {
  std::vector<ScoredSequence> out;
  for (const auto& t : samples) {
    // A BOS-less empty prompt leaves the first answer token unpredicted.
    const int64_t from = std::max<int64_t>(1, t.prompt_tokens);
    if (from >= t.size()) continue;
    out.push_back({t.ids, from});
  }
  return out;
}

double PplResult::ppl() const { return std::exp(nll()); }

void sequence_nll(const Model& m, const CacheSpec& spec, const ScoredSequence& s,
                  std::vector<double>& nll) {
  const int64_t T = int64_t(s.ids.size()), V = m.cfg.vocab, C = m.cfg.hidden;
  MOA_CHECK(s.from >= 1 && s.from < T, "from {} T {}", s.from, T);
  Session session(m, spec);
  if (spec.is_h2o()) {
    std::vector<int32_t> prefix(s.ids.begin(), s.ids.begin() + s.from);
    std::vector<float> lg = session.prefill(prefix);
    for (int64_t t = s.from; t < T; ++t) {
      nll.push_back(token_nll(lg.data(), V, s.ids[size_t(t)]));
      if (t + 1 < T) lg = session.decode(s.ids[size_t(t)]);
    }
    return;
  }
  std::vector<float> hidden;
  session.prefill(s.ids, &hidden);
  // Logits a chunk of rows at a time: (chunk, V) never (T, V).
  const int64_t chunk = 256;
  std::vector<float> logits(static_cast<size_t>(chunk * V));
  for (int64_t r0 = s.from - 1; r0 < T - 1; r0 += chunk) {
    const int64_t n = std::min(chunk, T - 1 - r0);
    compute_logits(m, &hidden[size_t(r0 * C)], n, logits.data());
    for (int64_t r = 0; r < n; ++r) {
      nll.push_back(token_nll(&logits[size_t(r * V)], V, s.ids[size_t(r0 + r + 1)]));
    }
  }
}

PplResult eval_ppl(const Model& m, const std::vector<ScoredSequence>& seqs, const SpecFactory& spec,
                   const std::function<void(int64_t, int64_t)>& progress) {
  int64_t total = 0;
  for (const auto& s : seqs) {
    if (int64_t(s.ids.size()) > m.cfg.max_position) {
      input_error(
          "a sequence of {} tokens exceeds the model's context of {} "
          "(max_position_embeddings); use a shorter --length or shorter samples",
          s.ids.size(), m.cfg.max_position);
    }
    total += int64_t(s.ids.size());
  }
  PplResult r;
  int64_t done = 0;
  // One sequence's result travels as its per-token NLLs (core/dist.h splits sequences across
  // ranks; rank 0 sums them in sequence order).
  auto work = [&](int64_t i) {
    const ScoredSequence& s = seqs[size_t(i)];
    std::vector<double> nll;
    sequence_nll(m, spec(int64_t(s.ids.size())), s, nll);
    return std::string(reinterpret_cast<const char*>(nll.data()), nll.size() * sizeof(double));
  };
  auto consume = [&](int64_t i, const std::string& res) {
    std::vector<double> nll(res.size() / sizeof(double));
    std::memcpy(nll.data(), res.data(), nll.size() * sizeof(double));
    double sum = 0;
    for (double x : nll) sum += x;
    r.nll_sum += sum;
    r.tokens += int64_t(nll.size());
    r.windows += 1;
    r.window_nll.push_back(nll.empty() ? 0.0 : sum / double(nll.size()));
    done += int64_t(seqs[size_t(i)].ids.size());
    if (progress) progress(done, total);
  };
  dist::map_ordered(0, int64_t(seqs.size()), work, consume);
  return r;
}

}  // namespace moa
