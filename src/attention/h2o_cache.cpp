#include "moa/attention/h2o_cache.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "attention/decode_group.h"
#include "moa/core/error.h"

namespace moa {

H2oCache::H2oCache(const CacheSpec& spec) : KvCache(spec) {
  const AttentionSpec& a = spec.attn;
  MOA_CHECK(spec.is_h2o() && spec.h2o->heavy > 0, "H2O needs heavy slots");
  MOA_CHECK(a.heads % a.kv_heads == 0 && a.n_ctx > 0);
  MOA_CHECK(spec.h2o->slots() < a.n_ctx, "H2O budget {} covers the context {}", spec.h2o->slots(),
            a.n_ctx);
  const size_t groups = size_t(a.layers * a.kv_heads), cap = size_t(capacity());
  rows_ = KvRows(spec.kv_type, a.head_dim, int64_t(groups * cap * 2));
  slot_pos_.assign(groups * cap, -1);
  slot_score_.assign(size_t(a.layers * a.heads) * cap, 0.0f);
  filled_.assign(groups, 0);
}

int64_t H2oCache::bytes_for(const CacheSpec& spec) {
  const AttentionSpec& a = spec.attn;
  return a.layers * a.kv_heads * spec.h2o->slots() * 2 * kv_row_bytes(spec.kv_type, a.head_dim);
}

float H2oCache::group_score(int64_t layer, int64_t g, int64_t slot) {
  const int64_t grp = spec().group();
  float s = 0;
  for (int64_t r = 0; r < grp; ++r) s += scores(layer, g * grp + r)[slot];
  return s;
}

void H2oCache::store(int64_t layer, int64_t pos, const float* k_row, const float* v_row) {
  const int64_t D = spec().head_dim, grp = spec().group(), cap = capacity();
  for (int64_t g = 0; g < spec().kv_heads; ++g) {
    const size_t gi = index(layer, g);
    int64_t* P = &slot_pos_[gi * size_t(cap)];
    int64_t s = filled_[gi];
    if (s < cap) {
      ++filled_[gi];
    } else {
      // Evict the lowest accumulated score (summed over the group) outside the recent window.
      float best = INFINITY;
      s = -1;
      for (int64_t j = 0; j < cap; ++j) {
        if (P[j] > pos - budget().recent) continue;
        const float sc = group_score(layer, g, j);
        if (sc < best || (sc == best && s >= 0 && P[j] < P[s])) {
          best = sc;
          s = j;
        }
      }
      MOA_CHECK(s >= 0, "no evictable slot: heavy {} recent {}", budget().heavy, budget().recent);
    }
    P[s] = pos;
    for (int64_t r = 0; r < grp; ++r) scores(layer, g * grp + r)[s] = 0.0f;
    rows_.put(k_base(layer, g) + s, k_row + g * D);
    rows_.put(v_base(layer, g) + s, v_row + g * D);
  }
}

void H2oCache::store_prefill(int64_t layer, int64_t T, const float* kk, const float* vv,
                             const float* col_sums) {
  const int64_t D = spec().head_dim, KD = spec().kv_heads * D, grp = spec().group(),
                cap = capacity();
  MOA_CHECK(T <= spec().n_ctx, "prefill of {} tokens into a cache for {}", T, spec().n_ctx);
  MOA_CHECK(col_sums != nullptr, "H2O prefill needs the attention column sums");
  for (int64_t g = 0; g < spec().kv_heads; ++g) {
    const size_t gi = index(layer, g);
    // Keep: the last `recent` positions, then the highest group-summed scores before them.
    const int64_t recent_from = T <= cap ? 0 : T - std::min(budget().recent, T);
    std::vector<int64_t> older;
    for (int64_t p = 0; p < recent_from; ++p) older.push_back(p);
    auto prompt_score = [&](int64_t p) {
      float s = 0;
      for (int64_t r = 0; r < grp; ++r) s += col_sums[(g * grp + r) * T + p];
      return s;
    };
    const int64_t n_heavy = std::min<int64_t>(int64_t(older.size()), cap - (T - recent_from));
    std::partial_sort(older.begin(), older.begin() + n_heavy, older.end(),
                      [&](int64_t a, int64_t b) {
                        const float sa = prompt_score(a), sb = prompt_score(b);
                        return sa > sb || (sa == sb && a < b);
                      });
    std::vector<int64_t> keep(older.begin(), older.begin() + n_heavy);
    for (int64_t p = recent_from; p < T; ++p) keep.push_back(p);
    std::sort(keep.begin(), keep.end());
    int64_t* P = &slot_pos_[gi * size_t(cap)];
    for (size_t s = 0; s < keep.size(); ++s) {
      const int64_t p = keep[s];
      P[s] = p;
      for (int64_t r = 0; r < grp; ++r) {
        scores(layer, g * grp + r)[s] = col_sums[(g * grp + r) * T + p];
      }
      rows_.put(k_base(layer, g) + int64_t(s), kk + p * KD + g * D);
      rows_.put(v_base(layer, g) + int64_t(s), vv + p * KD + g * D);
    }
    filled_[gi] = int64_t(keep.size());
  }
}

void H2oCache::attend(int64_t layer, const float* q, int64_t /*pos*/, float* out) {
  const int64_t H = spec().heads, D = spec().head_dim, grp = spec().group();
  const float scale = 1.0f / std::sqrt(float(D));
#pragma omp parallel
  {
    std::vector<float>& sc = detail::decode_scores();
    float mx = 0, sum = 0;
#pragma omp for schedule(static)
    for (int64_t h = 0; h < H; ++h) {
      // Every filled slot, in slot order (softmax does not care which; slot indices stand in
      // for positions, all visible), then the scores.
      const int64_t g = h / grp;
      const int64_t n = filled(layer, g);
      const detail::PosSegment seg{rows_.row(k_base(layer, g)), rows_.row(v_base(layer, g)), n, 0};
      const VisibleRanges all{n, n};
      detail::attend_group(rows_.type(), q + h * D, 1, &all, &seg, 1, D, scale, sc, &mx, &sum,
                           out + h * D);
      float* acc = scores(layer, h);
      for (int64_t j = 0; j < n; ++j) acc[j] += sc[size_t(j)] / sum;
    }
  }
}

}  // namespace moa
