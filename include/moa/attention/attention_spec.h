// The attention module's vocabulary: a shape, what one head sees, and what a sequence's cache is
// built from. Nothing here knows the model: the model hands over an AttentionShape
// (ModelConfig::attention_shape()) and everything below it works from these structs.
//
// The mask (docs/ARCHITECTURE.md, "The mask"): head h at query position i sees key j iff
//   j <= i  and  (j < sink_h  or  i - j < window_h).
// Dense attention is the special case sink 0, window >= context. HeadSpan::sees is the one place
// the rule is written; the range and tile forms below are derived from it and tested against it.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <vector>

#include "moa/attention/kv_type.h"

namespace moa {

// Layers and heads as attention sees them. head_dim is 0 where only the head counts matter
// (plans).
struct AttentionShape {
  int64_t layers = 0;
  int64_t heads = 0;                                  // H, query heads
  int64_t kv_heads = 0;                               // G, KV heads
  int64_t head_dim = 0;                               // D
  int64_t group() const { return heads / kv_heads; }  // query heads per KV head
};

// The keys a query at position i sees, as two ranges: [0, sink_end) and [band_begin, i]
// (band_begin >= sink_end).
struct VisibleRanges {
  int64_t sink_end, band_begin;
};

// One head's mask: `sink` first positions plus a window of the `window` most recent ones (the
// query itself included).
struct HeadSpan {
  int64_t sink = 0;
  int64_t window = std::numeric_limits<int64_t>::max() / 4;  // unbounded = dense

  // The rule.
  bool sees(int64_t i, int64_t j) const { return j <= i && (j < sink || i - j < window); }
  // The rule as ranges of keys, for kernels that walk a row.
  VisibleRanges visible(int64_t i) const {
    const int64_t sink_end = std::min(sink, i + 1);
    return {sink_end, std::max(i - window + 1, sink_end)};
  }
  // Does some query of [i0, i1) see some key of [j0, j1)?
  bool sees_any(int64_t i0, int64_t i1, int64_t j0, int64_t j1) const {
    if (j0 > i1 - 1) return false;                        // above the diagonal
    if (j0 < sink) return true;                           // key j0 seen by query max(i0, j0)
    return std::max<int64_t>(0, i0 - (j1 - 1)) < window;  // the closest causal pair
  }
  // Does every query of [i0, i1) see every key of [j0, j1)? (then no per-entry mask is needed)
  bool sees_all(int64_t i0, int64_t i1, int64_t j0, int64_t j1) const {
    // Causal for every pair, and the farthest non-sink pair within the window.
    return j1 - 1 <= i0 && (j1 <= sink || (i1 - 1) - std::max(j0, sink) < window);
  }
};

// The spans of every (layer, query head) of a cache that holds at most n_ctx positions: what the
// attention kernels (prefill, training, decode) are given.
struct AttentionSpec : AttentionShape {
  int64_t n_ctx = 0;            // the most positions this cache will ever hold (prompt + budget)
  std::vector<HeadSpan> spans;  // (layers, heads)

  static AttentionSpec dense(const AttentionShape& shape, int64_t n_ctx);
  static AttentionSpec dense(int64_t layers, int64_t heads, int64_t kv_heads, int64_t head_dim,
                             int64_t n_ctx) {
    return dense(AttentionShape{layers, heads, kv_heads, head_dim}, n_ctx);
  }
  const HeadSpan& span(int64_t layer, int64_t head) const {
    return spans[size_t(layer * heads + head)];
  }
  // True when every head sees every earlier position up to n_ctx (plain causal attention).
  bool is_dense() const;
};

// H2O's budget per KV head: `heavy` slots kept by accumulated attention plus the `recent` most
// recent positions.
struct H2oBudget {
  int64_t heavy = 0, recent = 0;
  int64_t slots() const { return heavy + recent; }
  // At KV density d: ceil(d * n_ctx) positions (at least 2), half heavy hitters and half recent
  // (the H2O paper's split); nullopt when that budget holds the whole context (dense).
  static std::optional<H2oBudget> at_density(int64_t n_ctx, double density);
};

// What one sequence's KV cache is built from: the spans its attention sees and the policy that
// decides which positions its slots keep. Without `h2o` the policy is the window one (sink +
// ring: dense, MoA, StreamingLLM); with it, H2O (spans are then dense: the prompt is attended in
// full before eviction). kv_type is the rows' storage type (kv_type.h). Room for what comes next
// (checkpoints) is here.
struct CacheSpec {
  AttentionSpec attn;
  std::optional<H2oBudget> h2o;
  KvType kv_type = KvType::kF32;

  CacheSpec() = default;
  CacheSpec(AttentionSpec a) : attn(std::move(a)) {}  // NOLINT: every window spec is a cache spec
  // H2O at KV density d over a dense attention of n_ctx positions.
  static CacheSpec h2o_at_density(const AttentionShape& shape, int64_t n_ctx, double density);
  bool is_h2o() const { return h2o.has_value(); }
  int64_t n_ctx() const { return attn.n_ctx; }
};

}  // namespace moa
