// Attention backward for training and profiling, flash-attention style: the forward
// (src/attention/attention_tiled.cpp) keeps one log-sum-exp per (head, query row); the backward
// recomputes the probabilities tile by tile.
// Tiles are multiplied with sgemm (OpenBLAS runs single-threaded inside our OpenMP regions).
//
// Mask (DESIGN.md): query i sees key j iff j <= i and (j < sink_h or i - j < window_h), per
// (layer, query head); GQA: query head h reads KV head h / (H / G).
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "attention/attention_tiles.h"
#include "moa/model/backward.h"
#include "moa/core/error.h"

namespace moa {

using namespace tiles;


void attention_backward(const AttentionSpec& spec, int64_t layer, const float* q, const float* k,
                        const float* v, const float* out, const float* lse, const float* dout,
                        int64_t T, float* dq, float* dk, float* dv, int64_t tile) {
  check_spec(spec, layer);
  const int64_t H = spec.heads, G = spec.kv_heads, D = spec.head_dim, grp = spec.group();
  const int64_t HD = H * D, GD = G * D, nt = (T + tile - 1) / tile;
  const float scale = 1.0f / std::sqrt(float(D));
  // rowdot (H, T) = sum_d dout * out = sum_j P_ij dP_ij: the softmax backward's row term.
  std::vector<float> rowdot(static_cast<size_t>(H * T));
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < T; ++i) {
    for (int64_t h = 0; h < H; ++h) {
      const float* a = dout + i * HD + h * D;
      const float* b = out + i * HD + h * D;
      float s = 0;
      for (int64_t d = 0; d < D; ++d) s += a[d] * b[d];
      rowdot[size_t(h * T + i)] = s;
    }
  }
  // One (query tile, key tile) pair of head h: P into P, dS = P * (dO V^T - rowdot) into dS.
  auto probs = [&](const HeadSpan& sp, int64_t h, int64_t i0, int64_t bq, int64_t j0, int64_t bk,
                   float* P, float* dS) {
    const int64_t g = h / grp;
    scores_tile(sp, q + i0 * HD + h * D, HD, k + j0 * GD + g * D, GD, i0, bq, j0, bk, D, scale,
                tile, P);
    // dP (bq, bk) = dO (bq, D) V^T (D, bk)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(bq), int(bk), int(D), 1.0f,
                dout + i0 * HD + h * D, int(HD), v + j0 * GD + g * D, int(GD), 0.0f, dS, int(tile));
    for (int64_t r = 0; r < bq; ++r) {
      const float L = lse[h * T + i0 + r], rd = rowdot[size_t(h * T + i0 + r)];
      float* p = P + r * tile;
      float* ds = dS + r * tile;
      for (int64_t c = 0; c < bk; ++c) {
        p[c] = std::exp(p[c] - L);  // exp(-inf) = 0 where masked
        ds[c] = p[c] * (ds[c] - rd);
      }
    }
  };
  // Pass 1: dq. A (head, query tile) unit owns its dq rows.
#pragma omp parallel
  {
    std::vector<float> P(static_cast<size_t>(tile * tile)), dS(static_cast<size_t>(tile * tile));
#pragma omp for collapse(2) schedule(dynamic, 1)
    for (int64_t h = 0; h < H; ++h) {
      for (int64_t qt = 0; qt < nt; ++qt) {
        const HeadSpan& sp = spec.span(layer, h);
        const int64_t g = h / grp, i0 = qt * tile, bq = std::min(tile, T - i0);
        for (int64_t kt = 0; kt <= qt; ++kt) {
          const int64_t j0 = kt * tile, bk = std::min(tile, T - j0);
          if (!tile_visible(sp, i0, i0 + bq, j0, j0 + bk)) continue;
          probs(sp, h, i0, bq, j0, bk, P.data(), dS.data());
          // dq (bq, D) += scale * dS (bq, bk) K (bk, D)
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(bq), int(D), int(bk), scale,
                      dS.data(), int(tile), k + j0 * GD + g * D, int(GD), 1.0f,
                      dq + i0 * HD + h * D, int(HD));
        }
      }
    }
  }
  // Pass 2: dk, dv. A (KV head, key tile) unit owns its dk/dv rows and visits the query tiles of
  // every query head of its group that see the key tile.
#pragma omp parallel
  {
    std::vector<float> P(static_cast<size_t>(tile * tile)), dS(static_cast<size_t>(tile * tile));
#pragma omp for collapse(2) schedule(dynamic, 1)
    for (int64_t g = 0; g < G; ++g) {
      for (int64_t kt = 0; kt < nt; ++kt) {
        const int64_t j0 = kt * tile, bk = std::min(tile, T - j0);
        for (int64_t h = g * grp; h < (g + 1) * grp; ++h) {
          const HeadSpan& sp = spec.span(layer, h);
          for (int64_t qt = kt; qt < nt; ++qt) {
            const int64_t i0 = qt * tile, bq = std::min(tile, T - i0);
            if (!tile_visible(sp, i0, i0 + bq, j0, j0 + bk)) {
              if (j0 >= sp.sink) break;  // band only: later query tiles are even further away
              continue;
            }
            probs(sp, h, i0, bq, j0, bk, P.data(), dS.data());
            // dv (bk, D) += P^T (bk, bq) dO (bq, D);  dk (bk, D) += scale * dS^T (bk, bq) Q (bq, D)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, int(bk), int(D), int(bq), 1.0f,
                        P.data(), int(tile), dout + i0 * HD + h * D, int(HD), 1.0f,
                        dv + j0 * GD + g * D, int(GD));
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, int(bk), int(D), int(bq), scale,
                        dS.data(), int(tile), q + i0 * HD + h * D, int(HD), 1.0f,
                        dk + j0 * GD + g * D, int(GD));
          }
        }
      }
    }
  }
}

}  // namespace moa
