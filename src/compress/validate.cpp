#include "moa/compress/validate.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "moa/core/dist.h"
#include "moa/core/error.h"
#include "moa/model/forward.h"
#include "moa/attention/spans.h"

namespace moa {

std::vector<std::filesystem::path> list_plan_files(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    input_error("{}: not a directory (expected the plans of `moa optimize`)", dir.string());
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const fs::path& p = e.path();
    if (p.extension() == ".json" && p.filename() != "summary.json" && e.is_regular_file()) {
      files.push_back(p);
    }
  }
  if (ec) input_error("{}: cannot list the directory ({})", dir.string(), ec.message());
  std::sort(files.begin(), files.end());
  if (files.empty())
    input_error("{}: holds no plan (*.json other than summary.json)", dir.string());
  return files;
}

namespace {

// The mean NLL over the answer tokens of one sample under spec_for(its length).
double sample_answer_nll(const Model& m, const TokenizedSample& s,
                         const std::function<AttentionSpec(int64_t n)>& spec_for) {
  const int64_t C = m.cfg.hidden, V = m.cfg.vocab, chunk = 256;
  std::vector<float> hidden, logits(static_cast<size_t>(chunk * V));
  const int64_t T = s.size();
  Session session(m, spec_for(T));
  session.prefill(s.ids, &hidden);
  // The scored positions are one contiguous run (the answer); logits only for those rows.
  int64_t t0 = 0;
  while (t0 + 1 < T && s.loss_mask[size_t(t0)] == 0.0f) ++t0;
  MOA_CHECK(t0 + 1 < T, "sample without a scored answer token");
  double sum = 0;
  int64_t n = 0;
  for (int64_t r0 = t0; r0 < T - 1; r0 += chunk) {
    const int64_t rows = std::min(chunk, T - 1 - r0);
    compute_logits(m, &hidden[size_t(r0 * C)], rows, logits.data());
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t t = r0 + r;
      const float w = s.loss_mask[size_t(t)];
      if (w == 0.0f) continue;
      sum += double(w) * token_nll(&logits[size_t(r * V)], V, s.ids[size_t(t + 1)]);
      n += 1;
    }
  }
  return sum / double(n);
}

}  // namespace

double answer_nll(const Model& m, const std::vector<TokenizedSample>& samples,
                  const std::function<AttentionSpec(int64_t n)>& spec_for,
                  const std::function<void()>& on_sample) {
  MOA_CHECK(!samples.empty());
  double total = 0;
  for (const TokenizedSample& s : samples) {
    total += sample_answer_nll(m, s, spec_for);
    if (on_sample) on_sample();
  }
  return total / double(samples.size());
}

ValidationResult validate_plans(const Model& m, const std::vector<NamedPlan>& plans,
                                const std::vector<TokenizedSample>& samples, int64_t length,
                                const std::function<void(int64_t, int64_t)>& progress) {
  MOA_CHECK(!plans.empty());
  const ModelConfig& c = m.cfg;
  ValidationResult r;
  std::vector<TokenizedSample> use;
  int64_t shortest = -1;
  for (const TokenizedSample& s : samples) {
    if (shortest < 0 || s.size() < shortest) shortest = s.size();
    if (s.size() > length) {
      ++r.too_long;
    } else if (s.scored_tokens() > 0) {
      use.push_back(s);
    }
  }
  if (use.empty()) {
    input_error(
        "none of the {} samples fits in --length {} with an answer to score (the shortest "
        "has {} tokens)",
        samples.size(), length, shortest);
  }
  r.samples = int64_t(use.size());
  // Check every plan against the model before the long work.
  for (const NamedPlan& p : plans) p.plan.check_shape(c.layers, c.heads, c.kv_heads);
  // Items are (attention, sample) pairs, dense first then each plan, split across ranks
  // (core/dist.h); each attention's total is summed in sample order, as answer_nll sums it, and
  // every rank gets the totals.
  const int64_t S = r.samples, total = (int64_t(plans.size()) + 1) * S;
  auto spec_of = [&](int64_t a) -> std::function<AttentionSpec(int64_t)> {
    if (a == 0) {
      return [&](int64_t n) { return AttentionSpec::dense(c.layers, c.heads, c.kv_heads, c.head_dim, n); };
    }
    const Plan& plan = plans[size_t(a - 1)].plan;
    return [&](int64_t n) { return spec_from_plan(plan, c.attention_shape(), n); };
  };
  std::string totals((plans.size() + 1) * sizeof(double), '\0');
  auto work = [&](int64_t i) {
    const double v = sample_answer_nll(m, use[size_t(i % S)], spec_of(i / S));
    return std::string(reinterpret_cast<const char*>(&v), sizeof v);
  };
  auto consume = [&](int64_t i, const std::string& res) {
    double v = 0, t = 0;
    std::memcpy(&v, res.data(), sizeof v);
    char* slot = totals.data() + size_t(i / S) * sizeof(double);
    std::memcpy(&t, slot, sizeof t);
    t += v;
    std::memcpy(slot, &t, sizeof t);
    if (progress) progress(i + 1, total);
  };
  dist::map_ordered(0, total, work, consume);
  dist::broadcast(totals);
  auto mean = [&](size_t a) {
    double t = 0;
    std::memcpy(&t, totals.data() + a * sizeof(double), sizeof t);
    return t / double(S);
  };
  r.dense_nll = mean(0);
  double best = 0;
  for (size_t i = 0; i < plans.size(); ++i) {
    const double v = mean(i + 1);
    r.nll[plans[i].name] = v;
    if (std::isfinite(v) && (r.best.empty() || v < best)) {
      r.best = plans[i].name;
      best = v;
    }
  }
  return r;
}

ValidationResult validate_plan_dir(const Model& m, const Tokenizer& tok,
                                   const std::filesystem::path& plans_dir,
                                   const std::filesystem::path& data, int64_t length,
                                   int64_t max_samples,
                                   const std::function<void(int64_t, int64_t)>& progress) {
  if (length < 2) input_error("--length {}: expected at least 2 tokens", length);
  const ModelConfig& c = m.cfg;
  std::vector<NamedPlan> plans;
  for (const auto& f : list_plan_files(plans_dir)) {
    Plan p = Plan::load(f);
    p.check_shape(c.layers, c.heads, c.kv_heads);
    plans.push_back({f.filename().string(), std::move(p)});
  }
  std::vector<TokenizedSample> samples;
  int64_t fitting = 0;
  for (TokenizedSample& s : load_tokenized_calib(data, tok, c.vocab)) {
    const bool fits = s.size() <= length && s.scored_tokens() > 0;
    if (max_samples > 0 && fits && fitting >= max_samples) continue;  // only the first K that fit
    fitting += fits;
    samples.push_back(std::move(s));
  }
  return validate_plans(m, plans, samples, length, progress);
}

}  // namespace moa
