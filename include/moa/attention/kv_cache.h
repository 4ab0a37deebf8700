// KV caches, one per sequence, built from a CacheSpec (never from the model). Keys are stored after
// RoPE, at their original positions. A cache policy decides which positions its slots keep and
// runs the decode attention over them:
// - WindowCache (dense, MoA, StreamingLLM): a KV head stores the largest sink and window of its
//   query group, its first `sink` positions then a ring buffer of the `window` most recent ones;
//   each query head reads only its own span.
// - H2oCache (h2o_cache.h): heavy hitters by accumulated attention plus a recent window.
// A new policy implements KvCache and is chosen in make_cache (docs/ARCHITECTURE.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "moa/attention/attention_spec.h"

namespace moa {

class KvCache {
 public:
  explicit KvCache(const CacheSpec& spec) : spec_(spec) {}
  virtual ~KvCache() = default;

  const CacheSpec& cache_spec() const { return spec_; }
  // The spans attention sees (prefill kernels take these).
  const AttentionSpec& spec() const { return spec_.attn; }
  // True when store_prefill needs each key's attention summed over the prompt's queries.
  virtual bool wants_col_sums() const { return false; }

  // Stores the positions of a prefill [0, T) whose K/V rows are (T, G*D): only what the cache
  // keeps. col_sums (H, T): each query head's attention probabilities summed over the prompt's
  // queries (only when wants_col_sums()).
  virtual void store_prefill(int64_t layer, int64_t T, const float* k, const float* v,
                             const float* col_sums = nullptr) = 0;
  // Stores one position's keys and values for all KV heads of a layer. k_row, v_row: (G, D).
  virtual void store(int64_t layer, int64_t pos, const float* k_row, const float* v_row) = 0;
  // One decode step at `pos` (already stored). q: (H, D)  out: (H, D)
  virtual void attend(int64_t layer, const float* q, int64_t pos, float* out) = 0;

  virtual int64_t bytes() const = 0;
  // A copy of this cache in its current state (a server's checkpoint at a turn boundary: cheap,
  // since a cache holds at most its sinks and windows).
  virtual std::unique_ptr<KvCache> clone() const = 0;
  int64_t length() const { return length_; }  // positions seen so far
  void set_length(int64_t n) { length_ = n; }

 protected:
  CacheSpec spec_;

 private:
  int64_t length_ = 0;
};

// The cache of `spec`'s policy.
std::unique_ptr<KvCache> make_cache(const CacheSpec& spec);
// What that cache would take, without allocating it.
int64_t cache_bytes(const CacheSpec& spec);

class WindowCache : public KvCache {
 public:
  explicit WindowCache(const CacheSpec& spec);

  // Per (layer, KV head): stored sink positions, ring length, total slots.
  int64_t kv_sink(int64_t layer, int64_t g) const { return kv_sink_[index(layer, g)]; }
  int64_t kv_window(int64_t layer, int64_t g) const { return kv_window_[index(layer, g)]; }
  int64_t capacity(int64_t layer, int64_t g) const {
    return kv_sink(layer, g) + kv_window(layer, g);
  }
  // Slot holding position `pos` (which must be stored: a sink position or one of the ring's).
  int64_t slot(int64_t layer, int64_t g, int64_t pos) const {
    const int64_t s = kv_sink(layer, g);
    return pos < s ? pos : s + (pos - s) % kv_window(layer, g);
  }
  // The stored rows: for one (layer, KV head), K in rows [k_base, k_base + capacity) and V in the
  // capacity rows from v_base, each row one slot of D values in the cache's KvType.
  const KvRows& rows() const { return rows_; }
  int64_t k_base(int64_t layer, int64_t g) const { return offset_[index(layer, g)]; }
  int64_t v_base(int64_t layer, int64_t g) const { return k_base(layer, g) + capacity(layer, g); }

  void store_prefill(int64_t layer, int64_t T, const float* k, const float* v,
                     const float* col_sums = nullptr) override;
  void store(int64_t layer, int64_t pos, const float* k_row, const float* v_row) override;
  void attend(int64_t layer, const float* q, int64_t pos, float* out) override;
  int64_t bytes() const override { return rows_.bytes(); }
  std::unique_ptr<KvCache> clone() const override { return std::make_unique<WindowCache>(*this); }
  static int64_t bytes_for(const CacheSpec& spec);

 private:
  size_t index(int64_t layer, int64_t g) const { return size_t(layer * spec().kv_heads + g); }
  std::vector<int64_t> kv_sink_, kv_window_, offset_;
  KvRows rows_;
};

}  // namespace moa
