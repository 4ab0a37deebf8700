#include "moa/kv_cache.h"

#include <algorithm>
#include <cstring>

#include "moa/error.h"

namespace moa {

AttentionSpec AttentionSpec::dense(int64_t layers, int64_t heads, int64_t kv_heads,
                                   int64_t head_dim, int64_t n_ctx) {
  AttentionSpec s{layers, heads, kv_heads, head_dim, n_ctx, {}};
  s.spans.assign(size_t(layers * heads), HeadSpan{0, n_ctx});
  return s;
}

bool AttentionSpec::is_dense() const {
  for (auto& sp : spans) {
    if (sp.sink + sp.window < n_ctx && sp.window < n_ctx) return false;
  }
  return true;
}

KvCache::KvCache(const AttentionSpec& spec) : spec_(spec) {
  MOA_CHECK(spec.heads % spec.kv_heads == 0 && spec.n_ctx > 0);
  MOA_CHECK(int64_t(spec.spans.size()) == spec.layers * spec.heads, "{} spans for {}x{} heads",
            spec.spans.size(), spec.layers, spec.heads);
  const int64_t n = spec.layers * spec.kv_heads, grp = spec.group();
  kv_sink_.resize(static_cast<size_t>(n));
  kv_window_.resize(static_cast<size_t>(n));
  offset_.resize(static_cast<size_t>(n));
  int64_t total = 0;
  for (int64_t l = 0; l < spec.layers; ++l) {
    for (int64_t g = 0; g < spec.kv_heads; ++g) {
      int64_t sink = 0, window = 1;
      for (int64_t h = g * grp; h < (g + 1) * grp; ++h) {
        sink = std::max(sink, spec.span(l, h).sink);
        window = std::max(window, spec.span(l, h).window);
      }
      sink = std::min(sink, spec.n_ctx);
      // Never more slots than positions: a head that covers the context is a plain array.
      // A sink that covers the context leaves no ring (slot() is then never asked past it).
      window = std::min(window, spec.n_ctx - sink);
      const size_t i = size_t(l * spec.kv_heads + g);
      kv_sink_[i] = sink;
      kv_window_[i] = window;
      offset_[i] = total;
      total += 2 * (sink + window) * spec.head_dim;
    }
  }
  data_.assign(size_t(total), 0.0f);
}

void KvCache::store(int64_t layer, int64_t pos, const float* k_row, const float* v_row) {
  const int64_t D = spec_.head_dim;
  for (int64_t g = 0; g < spec_.kv_heads; ++g) {
    const int64_t s = slot(layer, g, pos);
    std::memcpy(k(layer, g) + s * D, k_row + g * D, size_t(D) * sizeof(float));
    std::memcpy(v(layer, g) + s * D, v_row + g * D, size_t(D) * sizeof(float));
  }
}

void KvCache::store_prefill(int64_t layer, int64_t T, const float* kk, const float* vv) {
  const int64_t D = spec_.head_dim, KD = spec_.kv_heads * D;
  MOA_CHECK(T <= spec_.n_ctx, "prefill of {} tokens into a cache for {}", T, spec_.n_ctx);
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
