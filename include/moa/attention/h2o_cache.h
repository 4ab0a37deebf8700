// H2O (Zhang et al. 2023) as a cache policy: per KV head, `heavy` slots kept by the attention they
// have accumulated (summed over the group's query heads) plus the `recent` most recent positions.
// The prompt is attended densely; its column sums pick the first heavy hitters, and every decode
// step adds its probabilities to the scores. A full cache evicts the lowest score outside the
// recent window (ties: the oldest position).
#pragma once

#include <cstdint>
#include <vector>

#include "moa/attention/kv_cache.h"

namespace moa {

class H2oCache : public KvCache {
 public:
  explicit H2oCache(const CacheSpec& spec);

  bool wants_col_sums() const override { return true; }
  void store_prefill(int64_t layer, int64_t T, const float* k, const float* v,
                     const float* col_sums) override;
  void store(int64_t layer, int64_t pos, const float* k_row, const float* v_row) override;
  void attend(int64_t layer, const float* q, int64_t pos, float* out) override;
  int64_t bytes() const override { return rows_.bytes(); }
  std::unique_ptr<KvCache> clone() const override { return std::make_unique<H2oCache>(*this); }
  static int64_t bytes_for(const CacheSpec& spec);

  const H2oBudget& budget() const { return *spec_.h2o; }
  int64_t capacity() const { return budget().slots(); }  // slots per (layer, KV head)
  // Per (layer, KV head): filled slots and the position each slot holds.
  int64_t filled(int64_t layer, int64_t g) const { return filled_[index(layer, g)]; }
  const int64_t* positions(int64_t layer, int64_t g) const {
    return &slot_pos_[index(layer, g) * size_t(capacity())];
  }
  // Per (layer, query head): the accumulated attention of each slot of its KV head.
  float* scores(int64_t layer, int64_t h) {
    return &slot_score_[(size_t(layer) * size_t(spec().heads) + size_t(h)) * size_t(capacity())];
  }
  // Rows of one (layer, KV head), in the cache's KvType: K from k_base, V from v_base (capacity
  // rows each).
  const KvRows& rows() const { return rows_; }
  int64_t k_base(int64_t layer, int64_t g) const { return int64_t(index(layer, g)) * 2 * capacity(); }
  int64_t v_base(int64_t layer, int64_t g) const { return k_base(layer, g) + capacity(); }

 private:
  size_t index(int64_t layer, int64_t g) const { return size_t(layer * spec().kv_heads + g); }
  float group_score(int64_t layer, int64_t g, int64_t slot);
  KvRows rows_;
  std::vector<int64_t> slot_pos_, filled_;
  std::vector<float> slot_score_;
};

}  // namespace moa
