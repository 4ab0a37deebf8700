// Tiled attention forward, flash-attention style: per (head, query tile), visit only the key
// tiles the sink+window mask can reach, multiply them with sgemm (OpenBLAS runs single-threaded
// inside our OpenMP regions), keep an online softmax, and write one log-sum-exp per row (the
// backward recomputes probabilities from it).
#include <omp.h>

#include <vector>

#include "attention/attention_tiles.h"
#include "attention/simd.h"
#include "moa/attention/attention.h"

namespace moa {

using namespace tiles;

void attention_forward(const AttentionSpec& spec, int64_t layer, const float* q, const float* k,
                       const float* v, int64_t T, float* out, float* lse, int64_t tile) {
  check_spec(spec, layer);
  const int64_t H = spec.heads, G = spec.kv_heads, D = spec.head_dim, grp = spec.group();
  const int64_t HD = H * D, GD = G * D, nt = (T + tile - 1) / tile;
  const float scale = 1.0f / std::sqrt(float(D));
#pragma omp parallel
  {
    // S: (tile, tile) scores then probabilities; acc: (tile, D) unnormalised output
    std::vector<float> S(static_cast<size_t>(tile * tile)), acc(static_cast<size_t>(tile * D));
    std::vector<float> m(static_cast<size_t>(tile)), l(static_cast<size_t>(tile));
#pragma omp for collapse(2) schedule(dynamic, 1)
    for (int64_t h = 0; h < H; ++h) {
      for (int64_t qt = 0; qt < nt; ++qt) {
        const HeadSpan& sp = spec.span(layer, h);
        const int64_t g = h / grp, i0 = qt * tile, bq = std::min(tile, T - i0);
        const float* Q = q + i0 * HD + h * D;  // (bq, D), stride HD
        std::fill(acc.begin(), acc.end(), 0.0f);
        std::fill(m.begin(), m.end(), -INFINITY);
        std::fill(l.begin(), l.end(), 0.0f);
        for (int64_t kt = 0; kt <= qt; ++kt) {
          const int64_t j0 = kt * tile, bk = std::min(tile, T - j0);
          if (!tile_visible(sp, i0, i0 + bq, j0, j0 + bk)) continue;
          scores_tile(sp, Q, HD, k + j0 * GD + g * D, GD, i0, bq, j0, bk, D, scale, tile, S.data());
          // Online softmax: rescale what was accumulated when the row max grows.
          for (int64_t r = 0; r < bq; ++r) {
            float* s = &S[size_t(r * tile)];
            float mx = -INFINITY;
            for (int64_t c = 0; c < bk; ++c) mx = std::max(mx, s[c]);
            if (mx == -INFINITY) {  // this row sees nothing in this tile
              std::fill(s, s + bk, 0.0f);
              continue;
            }
            const float m_new = std::max(m[size_t(r)], mx);
            const float corr = simd::exp1(m[size_t(r)] - m_new);  // 0 on the first visible tile
            const float sum = simd::exp_sub(s, bk, m_new);
            l[size_t(r)] = l[size_t(r)] * corr + sum;
            m[size_t(r)] = m_new;
            if (corr != 1.0f) {
              for (int64_t d = 0; d < D; ++d) acc[size_t(r * D + d)] *= corr;
            }
          }
          // acc (bq, D) += P (bq, bk) V (bk, D)
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(bq), int(D), int(bk), 1.0f,
                      S.data(), int(tile), v + j0 * GD + g * D, int(GD), 1.0f, acc.data(), int(D));
        }
        for (int64_t r = 0; r < bq; ++r) {
          const float inv = 1.0f / l[size_t(r)];
          float* o = out + (i0 + r) * HD + h * D;
          for (int64_t d = 0; d < D; ++d) o[d] = acc[size_t(r * D + d)] * inv;
          lse[h * T + i0 + r] = m[size_t(r)] + std::log(l[size_t(r)]);
        }
      }
    }
  }
}

}  // namespace moa
