#include "moa/attention/kv_cache.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "moa/attention/attention.h"
#include "moa/core/error.h"
#include "moa/attention/h2o_cache.h"

namespace moa {

AttentionSpec AttentionSpec::dense(const AttentionShape& shape, int64_t n_ctx) {
  AttentionSpec s;
  static_cast<AttentionShape&>(s) = shape;
  s.n_ctx = n_ctx;
  s.spans.assign(size_t(shape.layers * shape.heads), HeadSpan{0, n_ctx});
  return s;
}

bool AttentionSpec::is_dense() const {
  for (auto& sp : spans) {
    if (sp.sink + sp.window < n_ctx && sp.window < n_ctx) return false;
  }
  return true;
}

std::optional<H2oBudget> H2oBudget::at_density(int64_t n_ctx, double density) {
  const int64_t budget = std::clamp<int64_t>(int64_t(std::ceil(density * double(n_ctx))), 2, n_ctx);
  if (budget >= n_ctx) return std::nullopt;
  H2oBudget b;
  b.heavy = budget / 2;
  b.recent = budget - b.heavy;
  return b;
}

CacheSpec CacheSpec::h2o_at_density(const AttentionShape& shape, int64_t n_ctx, double density) {
  CacheSpec s(AttentionSpec::dense(shape, n_ctx));
  s.h2o = H2oBudget::at_density(n_ctx, density);
  return s;
}

std::unique_ptr<KvCache> make_cache(const CacheSpec& spec) {
  if (spec.is_h2o()) return std::make_unique<H2oCache>(spec);
  return std::make_unique<WindowCache>(spec);
}

int64_t cache_bytes(const CacheSpec& spec) {
  return spec.is_h2o() ? H2oCache::bytes_for(spec) : WindowCache::bytes_for(spec);
}

namespace {

// Per (layer, KV head): the slots the cache holds, as (sink, window).
std::vector<std::pair<int64_t, int64_t>> kv_layout(const AttentionSpec& spec) {
  const int64_t grp = spec.group();
  std::vector<std::pair<int64_t, int64_t>> r;
  r.reserve(size_t(spec.layers * spec.kv_heads));
  for (int64_t l = 0; l < spec.layers; ++l) {
    for (int64_t g = 0; g < spec.kv_heads; ++g) {
      int64_t sink = 0, window = 1;
      for (int64_t h = g * grp; h < (g + 1) * grp; ++h) {
        sink = std::max(sink, spec.span(l, h).sink);
        window = std::max(window, spec.span(l, h).window);
      }
      sink = std::min(sink, spec.n_ctx);
      // Never more slots than positions; a sink that covers the context leaves no ring
      // (slot() is then never asked past it).
      window = std::min(window, spec.n_ctx - sink);
      r.emplace_back(sink, window);
    }
  }
  return r;
}

}  // namespace

int64_t WindowCache::bytes_for(const CacheSpec& cs) {
  int64_t slots = 0;
  for (auto [sink, window] : kv_layout(cs.attn)) slots += sink + window;
  return slots * 2 * kv_row_bytes(cs.kv_type, cs.attn.head_dim);
}

WindowCache::WindowCache(const CacheSpec& cs) : KvCache(cs) {
  const AttentionSpec& spec = cs.attn;
  MOA_CHECK(spec.heads % spec.kv_heads == 0 && spec.n_ctx > 0);
  MOA_CHECK(int64_t(spec.spans.size()) == spec.layers * spec.heads, "{} spans for {}x{} heads",
            spec.spans.size(), spec.layers, spec.heads);
  const int64_t n = spec.layers * spec.kv_heads;
  kv_sink_.resize(static_cast<size_t>(n));
  kv_window_.resize(static_cast<size_t>(n));
  offset_.resize(static_cast<size_t>(n));
  int64_t total = 0;
  auto layout = kv_layout(spec);
  for (size_t i = 0; i < layout.size(); ++i) {
    kv_sink_[i] = layout[i].first;
    kv_window_[i] = layout[i].second;
    offset_[i] = total;
    total += 2 * (layout[i].first + layout[i].second);
  }
  rows_ = KvRows(cs.kv_type, spec.head_dim, total);
}

void WindowCache::store(int64_t layer, int64_t pos, const float* k_row, const float* v_row) {
  const int64_t D = spec().head_dim;
  for (int64_t g = 0; g < spec().kv_heads; ++g) {
    const int64_t s = slot(layer, g, pos);
    rows_.put(k_base(layer, g) + s, k_row + g * D);
    rows_.put(v_base(layer, g) + s, v_row + g * D);
  }
}

void WindowCache::store_prefill(int64_t layer, int64_t T, const float* kk, const float* vv,
                                const float* /*col_sums*/) {
  const int64_t D = spec().head_dim, KD = spec().kv_heads * D;
  MOA_CHECK(T <= spec().n_ctx, "prefill of {} tokens into a cache for {}", T, spec().n_ctx);
  for (int64_t g = 0; g < spec().kv_heads; ++g) {
    const int64_t sink = kv_sink(layer, g), win = kv_window(layer, g);
    // Sink positions, then the last `win` positions not in the sink (older ones would be
    // overwritten by the ring anyway).
    auto put = [&](int64_t pos) {
      const int64_t s = slot(layer, g, pos);
      rows_.put(k_base(layer, g) + s, kk + pos * KD + g * D);
      rows_.put(v_base(layer, g) + s, vv + pos * KD + g * D);
    };
    for (int64_t p = 0; p < std::min(sink, T); ++p) put(p);
    for (int64_t p = std::max(sink, T - win); p < T; ++p) put(p);
  }
}

void WindowCache::attend(int64_t layer, const float* q, int64_t pos, float* out) {
  attention_decode(*this, layer, q, pos, out);
}

}  // namespace moa
