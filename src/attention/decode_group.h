// The decode kernel's inner step, shared by the window policy (attention.cpp) and H2O
// (h2o_cache.cpp): the query heads of one KV group against runs of stored rows.
#pragma once

#include <cstdint>
#include <vector>

#include "moa/attention/attention_spec.h"
#include "moa/attention/kv_type.h"

namespace moa::detail {

// A run of stored rows (kv_type.h: row_bytes apart) at consecutive positions
// [pos0, pos0 + count).
struct PosSegment {
  const uint8_t* k;
  const uint8_t* v;
  int64_t count, pos0;
};

// The `grp` query heads of one KV group (q: (grp, D)) against the group's stored rows: head r
// sees position p iff p < vis[r].sink_end or p >= vis[r].band_begin. Every K and V row is read
// once for the whole group, in its stored type t. On return, scores (grp, n) hold each head's
// unnormalised probabilities and sum[r] their total (H2O accumulates them). out: (grp, D)
void attend_group(KvType t, const float* q, int64_t grp, const VisibleRanges* vis,
                  const PosSegment* segs, int nseg, int64_t D, float scale,
                  std::vector<float>& scores, float* mx, float* sum, float* out);

// attend_group's score buffer, one per thread for the life of the thread, so a decode step
// neither allocates nor zeroes it again in every layer.
std::vector<float>& decode_scores();

}  // namespace moa::detail
