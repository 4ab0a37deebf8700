#include "moa/compress/validate.h"

#include <algorithm>
#include <cmath>

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

double answer_nll(const Model& m, const std::vector<TokenizedSample>& samples,
                  const std::function<AttentionSpec(int64_t n)>& spec_for,
                  const std::function<void()>& on_sample) {
  MOA_CHECK(!samples.empty());
  const int64_t C = m.cfg.hidden, V = m.cfg.vocab, chunk = 256;
  std::vector<float> hidden, logits(static_cast<size_t>(chunk * V));
  double total = 0;
  for (const TokenizedSample& s : samples) {
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
    total += sum / double(n);
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
  const int64_t total = (int64_t(plans.size()) + 1) * r.samples;
  int64_t done = 0;
  auto tick = [&] {
    if (progress) progress(++done, total);
  };
  r.dense_nll = answer_nll(
      m, use,
      [&](int64_t n) { return AttentionSpec::dense(c.layers, c.heads, c.kv_heads, c.head_dim, n); },
      tick);
  double best = 0;
  for (size_t i = 0; i < plans.size(); ++i) {
    const Plan& plan = plans[i].plan;
    const double v = answer_nll(
        m, use, [&](int64_t n) { return spec_from_plan(plan, c, n); }, tick);
    r.nll[plans[i].name] = v;
    if (std::isfinite(v) && (r.best.empty() || v < best)) {
      r.best = plans[i].name;
      best = v;
    }
  }
  return r;
}

}  // namespace moa
