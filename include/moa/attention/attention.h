// Attention kernels over sink + window spans. Work is proportional to the kept entries: each
// query row visits only its sink and its band, never an N x N score matrix.
#pragma once

#include <cstdint>

#include "moa/attention/kv_cache.h"

namespace moa {

// Prefill of positions [0, T) of one layer from the fresh (post-RoPE) keys and values.
// q: (T, H, D)  k, v: (T, G, D)  out: (T, H, D)
// col_sums (optional, H2O): (H, T), receives each key's attention probability summed over queries.
void attention_prefill(const AttentionSpec& spec, int64_t layer, const float* q, const float* k,
                       const float* v, int64_t T, float* out, float* col_sums = nullptr);

// Tiled forward (flash-attention style) used by prefill and training: q (T,H,D)  k,v (T,G,D)
// out (T,H,D)  lse (H,T) = per-row log-sum-exp, for the backward.
constexpr int64_t kAttnTile = 64;
void attention_forward(const AttentionSpec& spec, int64_t layer, const float* q, const float* k,
                       const float* v, int64_t T, float* out, float* lse, int64_t tile = kAttnTile);

// One decode step at position `pos` (already stored in the cache). Under H2O the step's
// attention probabilities are added to the cache's scores.
// q: (H, D)  out: (H, D)
void attention_decode(KvCache& cache, int64_t layer, const float* q, int64_t pos, float* out);

// The visible key positions of head span `sp` for a query at position i, as two ranges:
// [0, sink_end) and [band_begin, i] (band_begin >= sink_end).
struct VisibleRanges {
  int64_t sink_end, band_begin;
};
inline VisibleRanges visible_ranges(const HeadSpan& sp, int64_t i) {
  int64_t sink_end = sp.sink < i + 1 ? sp.sink : i + 1;
  int64_t band_begin = i - sp.window + 1;
  if (band_begin < sink_end) band_begin = sink_end;
  return {sink_end, band_begin};
}

}  // namespace moa
