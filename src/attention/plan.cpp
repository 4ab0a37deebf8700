// Plans: the cache rule, shapes and densities. Reading and writing files is in plan_json.cpp.
#include "moa/attention/plan.h"

#include <algorithm>
#include <cmath>

#include "moa/core/error.h"

namespace moa {

HeadCache head_cache_rule(double alpha, double beta, int64_t n, int64_t sink, int64_t block,
                          int64_t min_cache) {
  MOA_CHECK(n >= 1, "length {}", n);
  MOA_CHECK(block >= 1 && min_cache >= 1 && sink >= 0, "block {} min_cache {} sink {}", block,
            min_cache, sink);
  // The product is stored before the sum so that the compiler cannot fuse them into one FMA:
  // the reference computes alpha + beta*N in Python doubles, two roundings.
  volatile double product = beta * double(n);
  double span = std::floor(alpha + product);
  double clamped = std::max(double(min_cache), std::min(span, double(n)));  // in [min_cache, max]
  int64_t c = int64_t(clamped);
  HeadCache h;
  h.cache = (c + block - 1) / block * block;
  h.kept = std::min(n, h.cache);
  h.span.sink = std::min(h.cache, sink);
  h.span.window = h.cache - h.span.sink;
  return h;
}

int64_t prefill_entries(int64_t cache, int64_t n) {
  MOA_CHECK(cache >= 0 && n >= 0, "cache {} n {}", cache, n);
  // Query i sees j <= i with j < S or i - j < c - S: that is min(i+1, c) keys, whatever S is.
  if (cache >= n) return n * (n + 1) / 2;
  return cache * (cache + 1) / 2 + (n - cache) * cache;
}

Plan Plan::from_rules(std::vector<PlanRules> rule_sets) {
  MOA_CHECK(!rule_sets.empty(), "a plan needs at least one rule set");
  const auto& first = rule_sets[0].alphas;
  MOA_CHECK(!first.empty() && !first[0].empty(), "empty rule set");
  for (size_t s = 0; s < rule_sets.size(); ++s) {
    const auto& r = rule_sets[s];
    MOA_CHECK(r.alphas.size() == first.size() && r.betas.size() == first.size(),
              "rule set {}: {} / {} layers, expected {}", s, r.alphas.size(), r.betas.size(),
              first.size());
    for (size_t l = 0; l < first.size(); ++l) {
      MOA_CHECK(r.alphas[l].size() == first[0].size() && r.betas[l].size() == first[0].size(),
                "rule set {} layer {}: {} / {} heads, expected {}", s, l, r.alphas[l].size(),
                r.betas[l].size(), first[0].size());
      for (size_t h = 0; h < first[0].size(); ++h) {
        MOA_CHECK(std::isfinite(r.alphas[l][h]) && std::isfinite(r.betas[l][h]),
                  "rule set {} layer {} head {}: alpha {} beta {}", s, l, h, r.alphas[l][h],
                  r.betas[l][h]);
      }
    }
    if (s + 1 < rule_sets.size()) {
      const auto& next = rule_sets[s + 1].max_length;
      MOA_CHECK(r.max_length && (!next || *next > *r.max_length),
                "rule sets must be sorted by max_length, unbounded last");
    }
    MOA_CHECK(!r.max_length || *r.max_length >= 1, "max_length {}", *r.max_length);
  }
  Plan p;
  p.rules_ = std::move(rule_sets);
  return p;
}

Plan Plan::uniform(int64_t layers, int64_t heads, double alpha, double beta) {
  MOA_CHECK(layers >= 1 && heads >= 1, "layers {} heads {}", layers, heads);
  PlanRules r;
  r.alphas.assign(size_t(layers), std::vector<double>(size_t(heads), alpha));
  r.betas.assign(size_t(layers), std::vector<double>(size_t(heads), beta));
  return from_rules({std::move(r)});
}

Plan Plan::dense(int64_t layers, int64_t heads) { return uniform(layers, heads, 0.0, 1.0); }

int64_t Plan::layers() const { return rules_.empty() ? 0 : int64_t(rules_[0].alphas.size()); }

int64_t Plan::heads() const {
  return rules_.empty() || rules_[0].alphas.empty() ? 0 : int64_t(rules_[0].alphas[0].size());
}

const PlanRules& Plan::rules_for(int64_t n) const {
  MOA_CHECK(!rules_.empty(), "empty plan");
  for (const auto& r : rules_) {
    if (!r.max_length || n <= *r.max_length) return r;
  }
  return rules_.back();  // beyond the last bounded set, its rules extrapolate
}

bool Plan::check_shape(int64_t layers, int64_t heads, int64_t kv_heads) const {
  MOA_CHECK(layers >= 1 && heads >= 1 && kv_heads >= 1 && heads % kv_heads == 0,
            "model shape {} x {} / {}", layers, heads, kv_heads);
  const std::string kv =
      kv_heads == heads ? std::string() : fmt::format(" and {} KV heads", kv_heads);
  if (this->layers() != layers) {
    input_error(
        "{}: plan has {} layers of {} heads, model has {} layers of {} query heads{} (is "
        "this plan for another model?)",
        source_, this->layers(), this->heads(), layers, heads, kv);
  }
  for (int64_t l = 0; l < layers; ++l) {
    int64_t h = int64_t(rules_[0].alphas[size_t(l)].size());
    if (h != heads && h != kv_heads) {
      input_error(
          "{}: layer {} has {} heads, model has {} query heads{} (is this plan for another "
          "model?)",
          source_, l, h, heads, kv);
    }
  }
  bool per_kv = this->heads() != heads;
  if (per_kv_head_ && this->heads() != kv_heads) {
    input_error(
        "{}: per_kv_head is true but each layer has {} heads, model has {} KV heads (set "
        "per_kv_head to false for a plan per query head)",
        source_, this->heads(), kv_heads);
  }
  return per_kv;
}

int64_t Plan::row_of(int64_t q_head, const AttentionShape& m) const {
  MOA_CHECK(q_head >= 0 && q_head < m.heads, "query head {} of {}", q_head, m.heads);
  if (heads() == m.heads) return q_head;
  MOA_CHECK(heads() == m.kv_heads, "plan rows {} match neither {} nor {} heads", heads(), m.heads,
            m.kv_heads);
  return q_head / (m.heads / m.kv_heads);
}

HeadCache Plan::head_cache(int64_t layer, int64_t row, int64_t n) const {
  const PlanRules& r = rules_for(n);
  MOA_CHECK(layer >= 0 && layer < layers() && row >= 0 && row < heads(), "layer {} row {}", layer,
            row);
  return head_cache_rule(r.alphas[size_t(layer)][size_t(row)], r.betas[size_t(layer)][size_t(row)],
                         n, sink_, block_, min_cache_);
}

int64_t Plan::cache_tokens(int64_t layer, int64_t row, int64_t n) const {
  return head_cache(layer, row, n).cache;
}
int64_t Plan::kept_tokens(int64_t layer, int64_t row, int64_t n) const {
  return head_cache(layer, row, n).kept;
}
int64_t Plan::sink_tokens(int64_t layer, int64_t row, int64_t n) const {
  return head_cache(layer, row, n).span.sink;
}
int64_t Plan::window_tokens(int64_t layer, int64_t row, int64_t n) const {
  return head_cache(layer, row, n).span.window;
}

PlanCaches Plan::caches(const AttentionShape& m, int64_t n) const {
  check_shape(m);
  MOA_CHECK(n >= 1, "length {}", n);
  PlanCaches out;
  out.length = n;
  out.layers = m.layers;
  out.heads = m.heads;
  out.at.resize(size_t(m.layers * m.heads));
  // One rule per plan row; query heads of a group share their KV head's row.
  std::vector<HeadCache> rows(static_cast<size_t>(heads()));
  for (int64_t l = 0; l < m.layers; ++l) {
    for (int64_t r = 0; r < heads(); ++r) rows[size_t(r)] = head_cache(l, r, n);
    for (int64_t q = 0; q < m.heads; ++q)
      out.at[size_t(l * m.heads + q)] = rows[size_t(row_of(q, m))];
  }
  return out;
}

double Plan::kv_density(const AttentionShape& m, int64_t n) const {
  PlanCaches c = caches(m, n);
  long double kept = 0;
  for (const auto& h : c.at) kept += (long double)h.kept;
  return double(kept / ((long double)c.at.size() * (long double)n));
}

double Plan::stored_density(const AttentionShape& m, int64_t n) const {
  PlanCaches c = caches(m, n);
  const int64_t grp = m.heads / m.kv_heads;
  long double kept = 0;
  for (int64_t l = 0; l < m.layers; ++l) {
    for (int64_t g = 0; g < m.kv_heads; ++g) {
      int64_t mx = 0;
      for (int64_t q = g * grp; q < (g + 1) * grp; ++q)
        mx = std::max(mx, c.at[size_t(l * m.heads + q)].kept);
      kept += (long double)mx;
    }
  }
  return double(kept / ((long double)(m.layers * m.kv_heads) * (long double)n));
}

double Plan::prefill_density(const AttentionShape& m, int64_t n) const {
  PlanCaches c = caches(m, n);
  __int128 kept = 0;
  for (const auto& h : c.at) kept += prefill_entries(h.cache, n);
  __int128 total = __int128(c.at.size()) * (__int128(n) * (n + 1) / 2);
  return double((long double)kept / (long double)total);
}

bool Plan::is_dense_at(int64_t n) const {
  for (int64_t l = 0; l < layers(); ++l) {
    for (int64_t r = 0; r < heads(); ++r) {
      if (head_cache(l, r, n).kept < n) return false;
    }
  }
  return true;
}

std::optional<std::pair<double, double>> Plan::uniform_rule() const {
  if (rules_.empty()) return std::nullopt;
  double a = rules_[0].alphas[0][0], b = rules_[0].betas[0][0];
  for (const auto& r : rules_) {
    for (size_t l = 0; l < r.alphas.size(); ++l) {
      for (size_t h = 0; h < r.alphas[l].size(); ++h) {
        if (r.alphas[l][h] != a || r.betas[l][h] != b) return std::nullopt;
      }
    }
  }
  return std::pair{a, b};
}

void Plan::set_params(int64_t sink, int64_t block, int64_t min_cache) {
  // Token counts beyond 2^40 are no context length; bounding them keeps the cache rule's rounding
  // (c + block - 1) inside int64.
  constexpr int64_t kMaxTokens = int64_t(1) << 40;
  if (block < 1 || block > kMaxTokens) {
    input_error("{}: block is {}, expected an integer in 1..{} (2^40)", source_, block, kMaxTokens);
  }
  if (min_cache < 1 || min_cache > kMaxTokens) {
    input_error("{}: min_cache is {}, expected an integer in 1..{} (2^40)", source_, min_cache,
                kMaxTokens);
  }
  if (sink < 0) input_error("{}: sink is {}, expected 0 or more", source_, sink);
  if (sink >= min_cache) {
    input_error(
        "{}: sink is {} but min_cache is {}: a head whose cache is the minimum would have "
        "no recent window (use a sink below min_cache)",
        source_, sink, min_cache);
  }
  sink_ = sink;
  block_ = block;
  min_cache_ = min_cache;
}

void Plan::set_sink(int64_t sink) { set_params(sink, block_, min_cache_); }

}  // namespace moa
