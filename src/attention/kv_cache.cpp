#include "moa/attention/kv_cache.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "moa/core/error.h"

namespace moa {

AttentionSpec AttentionSpec::dense(int64_t layers, int64_t heads, int64_t kv_heads,
                                   int64_t head_dim, int64_t n_ctx) {
  AttentionSpec s{layers, heads, kv_heads, head_dim, n_ctx, {}};
  s.spans.assign(size_t(layers * heads), HeadSpan{0, n_ctx});
  return s;
}

AttentionSpec AttentionSpec::h2o_budget(int64_t layers, int64_t heads, int64_t kv_heads,
                                        int64_t head_dim, int64_t n_ctx, double density) {
  AttentionSpec s = dense(layers, heads, kv_heads, head_dim, n_ctx);
  const int64_t budget = std::clamp<int64_t>(int64_t(std::ceil(density * double(n_ctx))), 2, n_ctx);
  s.h2o = budget < n_ctx;
  s.h2o_heavy = budget / 2;
  s.h2o_recent = budget - s.h2o_heavy;
  return s;
}

bool AttentionSpec::is_dense() const {
  if (h2o) return false;
  for (auto& sp : spans) {
    if (sp.sink + sp.window < n_ctx && sp.window < n_ctx) return false;
  }
  return true;
}

namespace {

// Per (layer, KV head): the slots the cache holds, as (sink, window).
std::vector<std::pair<int64_t, int64_t>> kv_layout(const AttentionSpec& spec) {
  const int64_t grp = spec.group();
  std::vector<std::pair<int64_t, int64_t>> r;
  r.reserve(size_t(spec.layers * spec.kv_heads));
  for (int64_t l = 0; l < spec.layers; ++l) {
    for (int64_t g = 0; g < spec.kv_heads; ++g) {
      int64_t sink = 0, window = 1;
      for (int64_t h = g * grp; h < (g + 1) * grp; ++h) {
        sink = std::max(sink, spec.span(l, h).sink);
        window = std::max(window, spec.span(l, h).window);
      }
      if (spec.h2o) {  // slots hold any positions; no sink region, no ring
        sink = 0;
        window = spec.h2o_heavy + spec.h2o_recent;
      }
      sink = std::min(sink, spec.n_ctx);
      // Never more slots than positions; a sink that covers the context leaves no ring
      // (slot() is then never asked past it).
      window = std::min(window, spec.n_ctx - sink);
      r.emplace_back(sink, window);
    }
  }
  return r;
}

}  // namespace

int64_t KvCache::bytes_for(const AttentionSpec& spec) {
  int64_t slots = 0;
  for (auto [sink, window] : kv_layout(spec)) slots += sink + window;
  return slots * 2 * spec.head_dim * int64_t(sizeof(float));
}

KvCache::KvCache(const AttentionSpec& spec) : spec_(spec) {
  MOA_CHECK(spec.heads % spec.kv_heads == 0 && spec.n_ctx > 0);
  MOA_CHECK(int64_t(spec.spans.size()) == spec.layers * spec.heads, "{} spans for {}x{} heads",
            spec.spans.size(), spec.layers, spec.heads);
  const int64_t n = spec.layers * spec.kv_heads, grp = spec.group();
  MOA_CHECK(!spec.h2o || spec.h2o_heavy > 0, "H2O needs heavy slots");
  kv_sink_.resize(static_cast<size_t>(n));
  kv_window_.resize(static_cast<size_t>(n));
  offset_.resize(static_cast<size_t>(n));
  int64_t total = 0;
  auto layout = kv_layout(spec);
  for (size_t i = 0; i < layout.size(); ++i) {
    kv_sink_[i] = layout[i].first;
    kv_window_[i] = layout[i].second;
    offset_[i] = total;
    total += 2 * (layout[i].first + layout[i].second) * spec.head_dim;
  }
  data_.assign(size_t(total), 0.0f);
  if (spec.h2o) {
    slot_pos_.assign(size_t(total / (2 * spec.head_dim)), -1);
    slot_score_.assign(size_t(total / (2 * spec.head_dim) * grp), 0.0f);
    filled_.assign(size_t(n), 0);
  }
}

void KvCache::h2o_store(int64_t layer, int64_t pos, const float* k_row, const float* v_row) {
  const int64_t D = spec_.head_dim, grp = spec_.group();
  for (int64_t g = 0; g < spec_.kv_heads; ++g) {
    const size_t gi = size_t(layer * spec_.kv_heads + g);
    int64_t* P = &slot_pos_[size_t(offset_[gi] / (2 * D))];
    const int64_t cap = capacity(layer, g);
    int64_t s = filled_[gi];
    if (s < cap) {
      ++filled_[gi];
    } else {
      // Evict the lowest accumulated score (summed over the group) outside the recent window.
      float best = INFINITY;
      s = -1;
      for (int64_t j = 0; j < cap; ++j) {
        if (P[j] > pos - spec_.h2o_recent) continue;
        float sc = 0;
        for (int64_t r = 0; r < grp; ++r) sc += h2o_scores(layer, g * grp + r)[j];
        if (sc < best || (sc == best && s >= 0 && P[j] < P[s])) {
          best = sc;
          s = j;
        }
      }
      MOA_CHECK(s >= 0, "no evictable slot: heavy {} recent {}", spec_.h2o_heavy, spec_.h2o_recent);
    }
    P[s] = pos;
    for (int64_t r = 0; r < grp; ++r) h2o_scores(layer, g * grp + r)[s] = 0.0f;
    std::memcpy(k(layer, g) + s * D, k_row + g * D, size_t(D) * sizeof(float));
    std::memcpy(v(layer, g) + s * D, v_row + g * D, size_t(D) * sizeof(float));
  }
}

void KvCache::store(int64_t layer, int64_t pos, const float* k_row, const float* v_row) {
  if (spec_.h2o) return h2o_store(layer, pos, k_row, v_row);
  const int64_t D = spec_.head_dim;
  for (int64_t g = 0; g < spec_.kv_heads; ++g) {
    const int64_t s = slot(layer, g, pos);
    std::memcpy(k(layer, g) + s * D, k_row + g * D, size_t(D) * sizeof(float));
    std::memcpy(v(layer, g) + s * D, v_row + g * D, size_t(D) * sizeof(float));
  }
}

void KvCache::store_prefill(int64_t layer, int64_t T, const float* kk, const float* vv,
                            const float* col_sums) {
  const int64_t D = spec_.head_dim, KD = spec_.kv_heads * D;
  MOA_CHECK(T <= spec_.n_ctx, "prefill of {} tokens into a cache for {}", T, spec_.n_ctx);
  if (spec_.h2o) {
    MOA_CHECK(col_sums != nullptr, "H2O prefill needs the attention column sums");
    const int64_t grp = spec_.group();
    for (int64_t g = 0; g < spec_.kv_heads; ++g) {
      const size_t gi = size_t(layer * spec_.kv_heads + g);
      const int64_t cap = capacity(layer, g);
      // Keep: the last `recent` positions, then the highest group-summed scores before them.
      std::vector<int64_t> keep;
      const int64_t recent_from = T <= cap ? 0 : T - std::min(spec_.h2o_recent, T);
      std::vector<int64_t> older;
      for (int64_t p = 0; p < recent_from; ++p) older.push_back(p);
      auto group_score = [&](int64_t p) {
        float s = 0;
        for (int64_t r = 0; r < grp; ++r) s += col_sums[(g * grp + r) * T + p];
        return s;
      };
      const int64_t n_heavy = std::min<int64_t>(int64_t(older.size()), cap - (T - recent_from));
      std::partial_sort(older.begin(), older.begin() + n_heavy, older.end(), [&](int64_t a, int64_t b) {
        const float sa = group_score(a), sb = group_score(b);
        return sa > sb || (sa == sb && a < b);
      });
      keep.assign(older.begin(), older.begin() + n_heavy);
      for (int64_t p = recent_from; p < T; ++p) keep.push_back(p);
      std::sort(keep.begin(), keep.end());
      int64_t* P = &slot_pos_[size_t(offset_[gi] / (2 * D))];
      for (size_t s = 0; s < keep.size(); ++s) {
        const int64_t p = keep[s];
        P[s] = p;
        for (int64_t r = 0; r < grp; ++r) h2o_scores(layer, g * grp + r)[s] = col_sums[(g * grp + r) * T + p];
        std::memcpy(k(layer, g) + int64_t(s) * D, kk + p * KD + g * D, size_t(D) * sizeof(float));
        std::memcpy(v(layer, g) + int64_t(s) * D, vv + p * KD + g * D, size_t(D) * sizeof(float));
      }
      filled_[gi] = int64_t(keep.size());
    }
    return;
  }
  for (int64_t g = 0; g < spec_.kv_heads; ++g) {
    const int64_t sink = kv_sink(layer, g), win = kv_window(layer, g);
    // Sink positions, then the last `win` positions not in the sink (older ones would be
    // overwritten by the ring anyway).
    auto put = [&](int64_t pos) {
      const int64_t s = slot(layer, g, pos);
      std::memcpy(k(layer, g) + s * D, kk + pos * KD + g * D, size_t(D) * sizeof(float));
      std::memcpy(v(layer, g) + s * D, vv + pos * KD + g * D, size_t(D) * sizeof(float));
    };
    for (int64_t p = 0; p < std::min(sink, T); ++p) put(p);
    for (int64_t p = std::max(sink, T - win); p < T; ++p) put(p);
  }
}

}  // namespace moa
