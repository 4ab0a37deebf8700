// Attention spans and the window+sink KV cache, built from a small spec (never from the model).
//
// Head h (of layer l) at query position i sees key j iff j <= i and (j < sink_h or i - j < window_h).
// Dense attention is the special case sink 0, window >= context. A KV head stores the largest
// sink and window of its query group: its first `sink` positions, then a ring buffer of the
// `window` most recent ones. Keys are stored after RoPE, at their original positions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace moa {

struct HeadSpan {
  int64_t sink = 0;
  int64_t window = std::numeric_limits<int64_t>::max() / 4;  // unbounded = dense
};

struct AttentionSpec {
  int64_t layers = 0, heads = 0, kv_heads = 0, head_dim = 0;
  int64_t n_ctx = 0;            // the most positions this cache will ever hold (prompt + budget)
  std::vector<HeadSpan> spans;  // (layers, heads)
  // H2O policy (spans are then dense: the prompt is attended in full before eviction).
  bool h2o = false;
  int64_t h2o_heavy = 0, h2o_recent = 0;

  // H2O at KV density d: a budget of ceil(d * n_ctx) positions per KV head, half heavy hitters
  // and half recent (the H2O paper's split).
  static AttentionSpec h2o_budget(int64_t layers, int64_t heads, int64_t kv_heads, int64_t head_dim,
                                  int64_t n_ctx, double density);

  static AttentionSpec dense(int64_t layers, int64_t heads, int64_t kv_heads, int64_t head_dim,
                             int64_t n_ctx);
  const HeadSpan& span(int64_t layer, int64_t head) const { return spans[size_t(layer * heads + head)]; }
  int64_t group() const { return heads / kv_heads; }
  // True when every head sees every earlier position up to n_ctx (plain causal attention).
  bool is_dense() const;
};

class KvCache {
 public:
  explicit KvCache(const AttentionSpec& spec);

  const AttentionSpec& spec() const { return spec_; }
  // Per (layer, KV head): stored sink positions, ring length, total slots.
  int64_t kv_sink(int64_t layer, int64_t g) const { return kv_sink_[size_t(layer * spec_.kv_heads + g)]; }
  int64_t kv_window(int64_t layer, int64_t g) const { return kv_window_[size_t(layer * spec_.kv_heads + g)]; }
  int64_t capacity(int64_t layer, int64_t g) const { return kv_sink(layer, g) + kv_window(layer, g); }
  // Slot holding position `pos` (which must be stored: a sink position or one of the ring's).
  // (Window policy only.)
  int64_t slot(int64_t layer, int64_t g, int64_t pos) const {
    const int64_t s = kv_sink(layer, g);
    return pos < s ? pos : s + (pos - s) % kv_window(layer, g);
  }
  // k/v: (capacity, D) for one (layer, KV head).
  float* k(int64_t layer, int64_t g) { return data_.data() + offset_[size_t(layer * spec_.kv_heads + g)]; }
  float* v(int64_t layer, int64_t g) { return k(layer, g) + capacity(layer, g) * spec_.head_dim; }
  const float* k(int64_t layer, int64_t g) const { return const_cast<KvCache*>(this)->k(layer, g); }
  const float* v(int64_t layer, int64_t g) const { return const_cast<KvCache*>(this)->v(layer, g); }

  // Stores one position's keys and values for all KV heads of a layer.
  // k_row, v_row: (G, D) with a row stride of `stride` floats between positions (for batched rows).
  void store(int64_t layer, int64_t pos, const float* k_row, const float* v_row);
  // Stores the positions of a prefill [0, T) whose K/V rows are (T, G*D): only what the cache keeps.
  // H2O: col_sums (H, T) are each query head's attention probabilities summed over the prompt's
  // queries; they pick the heavy hitters and seed the scores.
  void store_prefill(int64_t layer, int64_t T, const float* k, const float* v,
                     const float* col_sums = nullptr);

  // H2O state per (layer, KV head): filled slots, the position in each slot; per (layer, query
  // head): the accumulated attention of each slot.
  bool h2o() const { return spec_.h2o; }
  int64_t h2o_filled(int64_t layer, int64_t g) const { return filled_[size_t(layer * spec_.kv_heads + g)]; }
  const int64_t* h2o_positions(int64_t layer, int64_t g) const {
    return &slot_pos_[size_t(offset_[size_t(layer * spec_.kv_heads + g)] / (2 * spec_.head_dim))];
  }
  float* h2o_scores(int64_t layer, int64_t h) {
    const int64_t g = h / spec_.group();
    return &slot_score_[size_t(offset_[size_t(layer * spec_.kv_heads + g)] / (2 * spec_.head_dim) * spec_.group() +
                               (h % spec_.group()) * capacity(layer, g))];
  }

  int64_t bytes() const { return int64_t(data_.size() * sizeof(float)); }
  // What a cache for this spec would take, without allocating it.
  static int64_t bytes_for(const AttentionSpec& spec);
  int64_t length() const { return length_; }  // positions seen so far
  void set_length(int64_t n) { length_ = n; }

 private:
  AttentionSpec spec_;
  std::vector<int64_t> kv_sink_, kv_window_, offset_;
  std::vector<float> data_;
  int64_t length_ = 0;
  // H2O only: per slot position, per (query head, slot) accumulated score, filled count.
  std::vector<int64_t> slot_pos_, filled_;
  std::vector<float> slot_score_;
  void h2o_store(int64_t layer, int64_t pos, const float* k_row, const float* v_row);
};

}  // namespace moa
