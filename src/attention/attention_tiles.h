// Tile helpers shared by the tiled attention forward (inference prefill, training) and its
// backward (training, profiling). The mask is HeadSpan's (attention_spec.h), per (layer, query
// head); GQA: query head h reads KV head h / (H / G).
#pragma once

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "moa/core/error.h"
#include "moa/attention/attention_spec.h"

namespace moa::tiles {

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
  if (sp.sees_all(i0, i0 + bq, j0, j0 + bk)) return;
  for (int64_t r = 0; r < bq; ++r) {
    for (int64_t c = 0; c < bk; ++c) {
      if (!sp.sees(i0 + r, j0 + c)) S[r * tile + c] = -INFINITY;
    }
  }
}


}  // namespace moa::tiles
