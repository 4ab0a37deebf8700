#include "moa/attention/attention.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "attention/decode_group.h"
#include "attention/kv_simd.h"
#include "attention/simd.h"
#include "moa/core/error.h"
#include "moa/core/prefetch.h"
#include "moa/attention/kv_cache.h"

namespace moa {

// Scores of one query against keys [a, b) of a transposed key panel KT: (D, T). Eight keys per
// vector, the query broadcast one dimension at a time: no horizontal sums.
static void scores_transposed(const float* q, const float* KT, int64_t T, int64_t D, int64_t a,
                              int64_t b, float scale, float* out) {
  int64_t j = a;
  for (; j + 8 <= b; j += 8) {
    __m256 acc = _mm256_setzero_ps();
    for (int64_t d = 0; d < D; ++d) {
      acc = _mm256_fmadd_ps(_mm256_set1_ps(q[d]), _mm256_loadu_ps(KT + d * T + j), acc);
    }
    _mm256_storeu_ps(out + (j - a), _mm256_mul_ps(acc, _mm256_set1_ps(scale)));
  }
  for (; j < b; ++j) {
    float acc = 0;
    // std::fma so that a key scored here rounds exactly as it would in a vector lane above.
    for (int64_t d = 0; d < D; ++d) acc = std::fma(q[d], KT[d * T + j], acc);
    out[j - a] = acc * scale;
  }
}

void attention_prefill(const AttentionSpec& spec, int64_t layer, const float* q, const float* k,
                       const float* v, int64_t T, float* out, float* col_sums) {
  const int64_t H = spec.heads, G = spec.kv_heads, D = spec.head_dim, grp = spec.group();
  if (!col_sums) {
    // The tiled kernel (sgemm per visible tile) is the fast path; the row kernel below stays for
    // H2O, which needs every probability to sum columns.
    std::vector<float> lse(static_cast<size_t>(H * T));
    attention_forward(spec, layer, q, k, v, T, out, lse.data());
    return;
  }
  const float scale = 1.0f / std::sqrt(float(D));
  // Per KV head, keys transposed into (D, T) panels and values gathered into (T, D) panels, once,
  // shared by the group's query heads.
  std::vector<float> kt(static_cast<size_t>(G * D * T)), vp(static_cast<size_t>(G * T * D));
#pragma omp parallel for schedule(static)
  for (int64_t g = 0; g < G; ++g) {
    for (int64_t t = 0; t < T; ++t) {
      const float* kr = k + (t * G + g) * D;
      for (int64_t d = 0; d < D; ++d) kt[size_t((g * D + d) * T + t)] = kr[d];
      std::memcpy(&vp[size_t((g * T + t) * D)], v + (t * G + g) * D, size_t(D) * sizeof(float));
    }
  }
  if (col_sums) std::memset(col_sums, 0, size_t(H * T) * sizeof(float));
#pragma omp parallel
  {
    std::vector<float> scores(static_cast<size_t>(T));
    // Column sums are accumulated per thread and added under a lock once at the end.
    std::vector<float> my_cols(col_sums ? static_cast<size_t>(H * T) : 0);
#pragma omp for collapse(2) schedule(dynamic, 16)
    for (int64_t h = 0; h < H; ++h) {
      for (int64_t i = 0; i < T; ++i) {
        const HeadSpan& sp = spec.span(layer, h);
        const int64_t g = h / grp;
        const float* KT = &kt[size_t(g * D * T)];
        const float* V = &vp[size_t(g * T * D)];
        const float* qi = q + (i * H + h) * D;
        float* o = out + (i * H + h) * D;
        VisibleRanges r = sp.visible(i);
        // Adjacent sink and band are one range: a span that covers the row computes exactly
        // what dense attention computes.
        if (r.band_begin == r.sink_end) r = {0, 0};
        const int64_t n_sink = r.sink_end, n = n_sink + (i + 1 - r.band_begin);
        scores_transposed(qi, KT, T, D, 0, r.sink_end, scale, scores.data());
        scores_transposed(qi, KT, T, D, r.band_begin, i + 1, scale, scores.data() + n_sink);
        float mx = -INFINITY;
        for (int64_t j = 0; j < n; ++j) mx = std::max(mx, scores[size_t(j)]);
        const float sum = simd::exp_sub(scores.data(), n, mx);
        std::memset(o, 0, size_t(D) * sizeof(float));
        for (int64_t j = 0; j < n_sink; ++j) simd::axpy(scores[size_t(j)], V + j * D, o, D);
        for (int64_t j = n_sink; j < n; ++j) {
          simd::axpy(scores[size_t(j)], V + (r.band_begin + j - n_sink) * D, o, D);
        }
        simd::scale(1.0f / sum, o, D);
        if (col_sums) {
          float* cs = &my_cols[size_t(h * T)];
          const float inv = 1.0f / sum;
          for (int64_t j = 0; j < n_sink; ++j) cs[j] += scores[size_t(j)] * inv;
          for (int64_t j = n_sink; j < n; ++j) cs[r.band_begin + j - n_sink] += scores[size_t(j)] * inv;
        }
      }
    }
    if (col_sums) {
#pragma omp critical
      for (int64_t i = 0; i < H * T; ++i) col_sums[i] += my_cols[size_t(i)];
    }
  }
}

namespace detail {

namespace {

template <KvType T>
void attend_group_t(const float* q, int64_t grp, const VisibleRanges* vis, const PosSegment* segs,
                    int nseg, int64_t D, float scale, std::vector<float>& scores, float* mx,
                    float* sum, float* out) {
  const int64_t rb = kv_row_bytes(T, D);
  int64_t n = 0;
  for (int s = 0; s < nseg; ++s) n += segs[s].count;
  // Grow only: resizing down and up again re-zeroes the regrown part on every call, which a thread
  // whose groups alternate long and short windows paid once per group.
  if (scores.size() < size_t(grp * n)) scores.resize(size_t(grp * n));
  for (int64_t r = 0; r < grp; ++r) mx[r] = -INFINITY;
  int64_t idx = 0;
  for (int s = 0; s < nseg; ++s) {
    for (int64_t j = 0; j < segs[s].count; ++j, ++idx) {
      const int64_t p = segs[s].pos0 + j;
      const uint8_t* kr = segs[s].k + j * rb;
      prefetch_ahead(kr, rb);  // the cache is heap memory in 4 KiB pages, like a mapped file
      for (int64_t r = 0; r < grp; ++r) {
        float x = -INFINITY;
        if (p < vis[r].sink_end || p >= vis[r].band_begin) {
          x = kv::dot<T>(q + r * D, kr, D) * scale;
          mx[r] = std::max(mx[r], x);
        }
        scores[size_t(r * n + idx)] = x;
      }
    }
  }
  for (int64_t r = 0; r < grp; ++r) {
    float* sc = &scores[size_t(r * n)];
    sum[r] = simd::exp_sub(sc, n, mx[r]);  // exactly 0 for the rows this head does not see
  }
  std::memset(out, 0, size_t(grp * D) * sizeof(float));
  idx = 0;
  for (int s = 0; s < nseg; ++s) {
    for (int64_t j = 0; j < segs[s].count; ++j, ++idx) {
      const uint8_t* vr = segs[s].v + j * rb;
      prefetch_ahead(vr, rb);
      for (int64_t r = 0; r < grp; ++r) {
        const float w = scores[size_t(r * n + idx)];
        if (w != 0.0f) kv::axpy<T>(w, vr, out + r * D, D);
      }
    }
  }
  for (int64_t r = 0; r < grp; ++r) simd::scale(1.0f / sum[r], out + r * D, D);
}

}  // namespace

void attend_group(KvType t, const float* q, int64_t grp, const VisibleRanges* vis,
                  const PosSegment* segs, int nseg, int64_t D, float scale,
                  std::vector<float>& scores, float* mx, float* sum, float* out) {
  switch (t) {
    case KvType::kF32:
      return attend_group_t<KvType::kF32>(q, grp, vis, segs, nseg, D, scale, scores, mx, sum, out);
    case KvType::kF16:
      return attend_group_t<KvType::kF16>(q, grp, vis, segs, nseg, D, scale, scores, mx, sum, out);
    case KvType::kBF16:
      return attend_group_t<KvType::kBF16>(q, grp, vis, segs, nseg, D, scale, scores, mx, sum, out);
    case KvType::kQ8_0:
      return attend_group_t<KvType::kQ8_0>(q, grp, vis, segs, nseg, D, scale, scores, mx, sum, out);
  }
}

std::vector<float>& decode_scores() {
  static thread_local std::vector<float> scores;
  return scores;
}

}  // namespace detail

void attention_decode(const WindowCache& cache, int64_t layer, const float* q, int64_t pos,
                      float* out) {
  using detail::PosSegment;
  const AttentionSpec& spec = cache.spec();
  const int64_t G = spec.kv_heads, D = spec.head_dim, grp = spec.group();
  const float scale = 1.0f / std::sqrt(float(D));
  // GQA-native: one KV head's query heads together, so each stored row is read once per group
  // instead of once per head (decode at long contexts is bound by these reads).
#pragma omp parallel
  {
    std::vector<float>& scores = detail::decode_scores();
    std::vector<float> mx(static_cast<size_t>(grp)), sum(static_cast<size_t>(grp));
    std::vector<VisibleRanges> vis(static_cast<size_t>(grp));
#pragma omp for schedule(static)
    for (int64_t g = 0; g < G; ++g) {
      const KvRows& rows = cache.rows();
      const uint8_t* K = rows.row(cache.k_base(layer, g));
      const uint8_t* V = rows.row(cache.v_base(layer, g));
      const int64_t rb = rows.row_bytes();
      // The union of the group's visible positions: [0, sink_end) and [band_begin, pos].
      int64_t sink_end = 0, band_begin = pos + 1;
      for (int64_t r = 0; r < grp; ++r) {
        vis[size_t(r)] = spec.span(layer, g * grp + r).visible(pos);
        sink_end = std::max(sink_end, vis[size_t(r)].sink_end);
        band_begin = std::min(band_begin, vis[size_t(r)].band_begin);
      }
      band_begin = std::max(band_begin, sink_end);
      PosSegment segs[4];
      int nseg = 0;
      // A position range maps to contiguous slots except where the ring wraps.
      auto add_range = [&](int64_t p0, int64_t p1) {  // [p0, p1)
        const int64_t ks = cache.kv_sink(layer, g);
        while (p0 < p1) {
          const int64_t s = cache.slot(layer, g, p0);
          int64_t run = p1 - p0;
          if (p0 >= ks) run = std::min(run, cache.capacity(layer, g) - s);
          else run = std::min(run, ks - p0);
          segs[nseg++] = {K + s * rb, V + s * rb, run, p0};
          p0 += run;
        }
      };
      add_range(0, sink_end);
      add_range(band_begin, pos + 1);
      MOA_CHECK(nseg <= 4, "nseg {}", nseg);
      detail::attend_group(rows.type(), q + g * grp * D, grp, vis.data(), segs, nseg, D, scale,
                           scores, mx.data(), sum.data(), out + g * grp * D);
    }
  }
}

}  // namespace moa
