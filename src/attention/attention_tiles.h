// Tile helpers shared by the tiled attention forward (inference prefill, training) and its
// backward (training, profiling). Mask (DESIGN.md): query i sees key j iff j <= i and
// (j < sink_h or i - j < window_h), per (layer, query head); GQA: query head h reads KV head
// h / (H / G).
#pragma once

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "moa/core/error.h"
#include "moa/attention/kv_cache.h"

namespace moa::tiles {


inline bool visible(const HeadSpan& sp, int64_t i, int64_t j) {
  return j <= i && (j < sp.sink || i - j < sp.window);
}

// Does some query of [i0, i1) see some key of [j0, j1)?
inline bool tile_visible(const HeadSpan& sp, int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
  if (j0 > i1 - 1) return false;                           // above the diagonal
  if (j0 < sp.sink) return true;                           // key j0 seen by query max(i0, j0)
  return std::max<int64_t>(0, i0 - (j1 - 1)) < sp.window;  // the closest causal pair
}

// Does every query of [i0, i1) see every key of [j0, j1)? (then no per-entry mask is needed)
inline bool tile_full(const HeadSpan& sp, int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
  return j1 - 1 <= i0 && (j1 - 1 < sp.sink || (i1 - 1) - j0 < sp.window);
}

inline void check_spec(const AttentionSpec& spec, int64_t layer) {
  MOA_CHECK(layer >= 0 && layer < spec.layers && spec.heads % spec.kv_heads == 0);
  MOA_CHECK(int64_t(spec.spans.size()) == spec.layers * spec.heads);
  for (int64_t h = 0; h < spec.heads; ++h) {
    const HeadSpan& sp = spec.span(layer, h);
    // Every query must see at least itself, or its softmax is empty.
    MOA_CHECK(sp.window >= 1 && sp.sink >= 0, "layer {} head {}: sink {} window {}", layer, h,
              sp.sink, sp.window);
  }
}

// S (bq, bk) = scale * Q K^T with Q rows at q (stride ldq) and K rows at k (stride ldk); entries
// the mask hides become -inf.
inline void scores_tile(const HeadSpan& sp, const float* q, int64_t ldq, const float* k, int64_t ldk,
                 int64_t i0, int64_t bq, int64_t j0, int64_t bk, int64_t D, float scale,
                 int64_t tile, float* S) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(bq), int(bk), int(D), scale, q, int(ldq),
              k, int(ldk), 0.0f, S, int(tile));
  if (tile_full(sp, i0, i0 + bq, j0, j0 + bk)) return;
  for (int64_t r = 0; r < bq; ++r) {
    for (int64_t c = 0; c < bk; ++c) {
      if (!visible(sp, i0 + r, j0 + c)) S[r * tile + c] = -INFINITY;
    }
  }
}


}  // namespace moa::tiles
