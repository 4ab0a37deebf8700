// The influence kernel and one sample's forward + backward with the profiler hook.
#include "moa/compress/profiler.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "moa/core/error.h"

namespace moa {

namespace {

// One query row that sees n keys: s (n) scaled scores, g (n) = dO_i . v_j. Writes E (n).
// s is overwritten (with the unnormalised probabilities). A is formed in double from the f32
// exponentials and the double sum, so 1 - A keeps its precision when one entry holds almost all
// of the row (attention sinks): in f32, 1 - A would be off by 6e-8 / (1 - A) relative.
void influence_row(float* s, const float* g, int64_t n, double* E) {
  if (n == 1) {  // A[0,0] = 1: removing it leaves the row empty, its output becomes 0
    E[0] = -double(g[0]);
    return;
  }
  float mx = s[0];
  for (int64_t j = 1; j < n; ++j) mx = std::max(mx, s[j]);
  double Z = 0;
  for (int64_t j = 0; j < n; ++j) Z += s[j] = std::exp(s[j] - mx);
  const double inv = 1.0 / Z;
  double S = 0;  // sum_k A G
  for (int64_t j = 0; j < n; ++j) S += double(s[j]) * inv * double(g[j]);
  for (int64_t j = 0; j < n; ++j) {
    const double a = double(s[j]) * inv;
    E[j] = -a * (double(g[j]) - S) / (1.0 - a + kInfluenceEps);
  }
}

// The same row, tile-joint: out[kb] = the change of L, to first order in G = dL/dA and exact in
// the renormalisation, when all of the row's entries in key tile kb are removed together:
//   (M S - S_T) / (1 - M),  M = sum_T A,  S_T = sum_T A G,  S = sum_k A G.
// A tile holding every key the row sees leaves it empty (output zero): -S, as E[0,0].
// zt, st: scratch of ceil(n / block) doubles each. O(n) per row.
void joint_row(float* s, const float* g, int64_t n, int64_t block, double* out, double* zt, double* st) {
  float mx = s[0];
  for (int64_t j = 1; j < n; ++j) mx = std::max(mx, s[j]);
  const int64_t nt = (n + block - 1) / block;
  double Z = 0, SZ = 0;  // sum s, sum s g (unnormalised)
  for (int64_t kb = 0; kb < nt; ++kb) {
    double z = 0, sg = 0;
    for (int64_t j = kb * block; j < std::min(n, (kb + 1) * block); ++j) {
      s[j] = std::exp(s[j] - mx);
      z += s[j];
      sg += double(s[j]) * double(g[j]);
    }
    zt[kb] = z;
    st[kb] = sg;
    Z += z;
    SZ += sg;
  }
  const double S = SZ / Z;
  if (nt == 1) {
    out[0] = -S;
    return;
  }
  // The kept mass as the sum of the other tiles (before + after), not Z - zt: exact when the tile
  // holds almost all of the row.
  double before = 0;  // out[kb] holds the mass before tile kb until the second pass
  for (int64_t kb = 0; kb < nt; ++kb) {
    out[kb] = before;
    before += zt[kb];
  }
  double after = 0;
  for (int64_t kb = nt - 1; kb >= 0; --kb) {
    const double rest = out[kb] + after;
    out[kb] = (zt[kb] * S - st[kb]) / (rest + kInfluenceEps * Z);
    after += zt[kb];
  }
}

}  // namespace

void influence_tiles(const float* q, const float* k, const float* v, const float* d_out, int64_t T,
                     int64_t H, int64_t G, int64_t D, int64_t block, int64_t nb, double* tiles,
                     InfluenceKind kind) {
  MOA_CHECK(T >= 1 && H >= 1 && G >= 1 && H % G == 0 && D >= 1 && block >= 1);
  MOA_CHECK(T <= nb * block, "T {} does not fit {} blocks of {}", T, nb, block);
  const int64_t HD = H * D, GD = G * D, grp = H / G;
  // Query rows per work unit: whole tile rows (so a unit owns its tiles), about 64 of them.
  const int64_t rows = block * std::max<int64_t>(1, 64 / block);
  const int64_t units = (T + rows - 1) / rows;
  const float scale = 1.0f / std::sqrt(float(D));
#pragma omp parallel
  {
    // S, Gm: (rows, T) scores then probabilities, and dO V^T; E: one row's influence
    std::vector<float> S(static_cast<size_t>(rows * T)), Gm(static_cast<size_t>(rows * T));
    std::vector<double> E(static_cast<size_t>(T)), zt(static_cast<size_t>(nb)), st(static_cast<size_t>(nb));
#pragma omp for collapse(2) schedule(dynamic, 1)
    for (int64_t h = 0; h < H; ++h) {
      for (int64_t u = 0; u < units; ++u) {
        const int64_t g = h / grp, i0 = u * rows, b = std::min(rows, T - i0), i1 = i0 + b;
        // S (b, i1) = scale * Q (b, D) K^T (D, i1);  Gm (b, i1) = dO (b, D) V^T (D, i1)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(b), int(i1), int(D), scale,
                    q + i0 * HD + h * D, int(HD), k + g * D, int(GD), 0.0f, S.data(), int(T));
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(b), int(i1), int(D), 1.0f,
                    d_out + i0 * HD + h * D, int(HD), v + g * D, int(GD), 0.0f, Gm.data(), int(T));
        for (int64_t r = 0; r < b; ++r) {
          const int64_t i = i0 + r;
          double* trow = tiles + (h * nb + i / block) * nb;  // (nb) key tiles of this row's block
          if (kind == InfluenceKind::kTile) {
            joint_row(&S[size_t(r * T)], &Gm[size_t(r * T)], i + 1, block, E.data(), zt.data(), st.data());
            for (int64_t kb = 0; kb * block <= i; ++kb) trow[kb] += E[size_t(kb)];
            continue;
          }
          influence_row(&S[size_t(r * T)], &Gm[size_t(r * T)], i + 1, E.data());
          for (int64_t kb = 0; kb * block <= i; ++kb) {
            const int64_t j1 = std::min((kb + 1) * block, i + 1);
            double acc = 0;
            for (int64_t j = kb * block; j < j1; ++j) acc += E[size_t(j)];
            trow[kb] += acc;
          }
        }
      }
    }
  }
}

double sample_influence(const Model& m, const TokenizedSample& s, int64_t length, int64_t block,
                        const InfluenceSink& sink, bool recompute_layers, InfluenceKind kind) {
  const ModelConfig& c = m.cfg;
  const int64_t T = s.size(), nb = (length + block - 1) / block;
  MOA_CHECK(T >= 2 && T <= length && s.scored_tokens() > 0, "sample of {} tokens, length {}", T,
            length);
  const AttentionSpec spec = AttentionSpec::dense(c.layers, c.heads, c.kv_heads, c.head_dim, T);
  std::vector<double> tiles(static_cast<size_t>(c.heads * nb * nb));
  BackwardOptions opt;
  opt.recompute_layers = recompute_layers;
  opt.hook = [&](int64_t l, const float* q, const float* k, const float* v, const float* d_out) {
    std::fill(tiles.begin(), tiles.end(), 0.0);
    influence_tiles(q, k, v, d_out, T, c.heads, c.kv_heads, c.head_dim, block, nb, tiles.data(), kind);
    sink(l, tiles.data());
  };
  return forward_backward(m, spec, s.ids, s.loss_mask, nullptr, opt);
}

}  // namespace moa
