// What E means, measured: the loss of the model with attention entries scaled or dropped
// (forward only, through forward_backward's attention override), and tile ablations against the
// profile's prediction.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "moa/attention/attention.h"
#include "moa/core/error.h"
#include "moa/compress/profiler.h"

namespace moa {

AttentionForwardFn edited_attention(const AttentionSpec& spec, const AttentionEdit& e) {
  MOA_CHECK(e.layer >= 0 && e.layer < spec.layers && e.head >= 0 && e.head < spec.heads);
  MOA_CHECK(spec.is_dense(), "edits are defined on dense attention");
  return [spec, e](int64_t layer, const float* q, const float* k, const float* v, int64_t T,
                   float* out, float* lse) {
    attention_forward(spec, layer, q, k, v, T, out, lse);
    if (layer != e.layer) return;
    const int64_t H = spec.heads, D = spec.head_dim, HD = H * D, GD = spec.kv_heads * D;
    const int64_t g = e.head / spec.group();
    const double scale = 1.0 / std::sqrt(double(D));
    std::vector<double> p(static_cast<size_t>(T)), o(static_cast<size_t>(D));
    // Rows [i0, i1) of the head, each over keys [0, i]: (q . k_j) scaled, softmax with the
    // edited weights, output sum_j p_j v_j / sum_j p_j.
    for (int64_t i = std::max<int64_t>(e.i0, 0); i < std::min(e.i1, T); ++i) {
      const float* qi = q + i * HD + e.head * D;
      double mx = -INFINITY;
      for (int64_t j = 0; j <= i; ++j) {
        const float* kj = k + j * GD + g * D;
        double s = 0;
        for (int64_t d = 0; d < D; ++d) s += double(qi[d]) * double(kj[d]);
        p[size_t(j)] = s * scale;
        mx = std::max(mx, p[size_t(j)]);
      }
      double Z = 0, Z_plain = 0;
      for (int64_t j = 0; j <= i; ++j) {
        const double ex = std::exp(p[size_t(j)] - mx);
        Z_plain += ex;
        p[size_t(j)] = (j >= e.j0 && j < e.j1) ? ex * e.weight : ex;
        Z += p[size_t(j)];
      }
      std::fill(o.begin(), o.end(), 0.0);
      if (Z > 0) {
        for (int64_t j = 0; j <= i; ++j) {
          const float* vj = v + j * GD + g * D;
          const double w = p[size_t(j)] / Z;
          for (int64_t d = 0; d < D; ++d) o[size_t(d)] += w * double(vj[d]);
        }
      }
      for (int64_t d = 0; d < D; ++d) out[i * HD + e.head * D + d] = float(o[size_t(d)]);
      lse[e.head * T + i] = float(mx + std::log(Z_plain));
    }
  };
}

double edited_loss(const Model& m, const TokenizedSample& s, const AttentionEdit& e) {
  const ModelConfig& c = m.cfg;
  const AttentionSpec spec =
      AttentionSpec::dense(c.layers, c.heads, c.kv_heads, c.head_dim, s.size());
  BackwardOptions opt;
  opt.attention_override = edited_attention(spec, e);
  return forward_backward(m, spec, s.ids, s.loss_mask, nullptr, opt);
}

namespace {

std::vector<double> ranks(const std::vector<double>& x) {
  std::vector<size_t> idx(x.size());
  std::iota(idx.begin(), idx.end(), size_t(0));
  std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return x[a] < x[b]; });
  std::vector<double> r(x.size());
  for (size_t i = 0; i < idx.size();) {
    size_t j = i;
    while (j + 1 < idx.size() && x[idx[j + 1]] == x[idx[i]]) ++j;
    for (size_t t = i; t <= j; ++t) r[idx[t]] = 0.5 * double(i + j);  // average rank of the ties
    i = j + 1;
  }
  return r;
}

}  // namespace

double spearman(const std::vector<double>& a, const std::vector<double>& b) {
  MOA_CHECK(a.size() == b.size());
  const std::vector<double> ra = ranks(a), rb = ranks(b);
  const double n = double(a.size());
  double ma = 0, mb = 0;
  for (size_t i = 0; i < ra.size(); ++i) {
    ma += ra[i] / n;
    mb += rb[i] / n;
  }
  double sab = 0, saa = 0, sbb = 0;
  for (size_t i = 0; i < ra.size(); ++i) {
    sab += (ra[i] - ma) * (rb[i] - mb);
    saa += (ra[i] - ma) * (ra[i] - ma);
    sbb += (rb[i] - mb) * (rb[i] - mb);
  }
  return saa > 0 && sbb > 0 ? sab / std::sqrt(saa * sbb) : 0.0;
}

AblationReport check_ablations(const Model& m, const std::vector<TokenizedSample>& samples,
                               int64_t length, int64_t block, int64_t count, uint64_t seed,
                               const std::function<void(int64_t, int64_t)>& progress,
                               bool droppable_only) {
  MOA_CHECK(!samples.empty() && count >= 2);
  const ModelConfig& c = m.cfg;
  const int64_t nb = (length + block - 1) / block, per_layer = c.heads * nb * nb;
  // The profile of these samples (mean over them), kept in double.
  std::vector<double> prof(static_cast<size_t>(c.layers * per_layer), 0.0), joint(prof.size(), 0.0);
  int64_t longest = 0;
  for (const TokenizedSample& s : samples) {
    longest = std::max(longest, s.size());
    for (InfluenceKind kind : {InfluenceKind::kEntry, InfluenceKind::kTile}) {
      std::vector<double>& dst = kind == InfluenceKind::kEntry ? prof : joint;
      sample_influence(m, s, length, block, [&](int64_t l, const double* tiles) {
        for (int64_t i = 0; i < per_layer; ++i) {
          dst[size_t(l * per_layer + i)] += tiles[i] / double(samples.size());
        }
      }, false, kind);
    }
  }
  // Candidates: every causal tile within the longest sample, but those whose E is exactly zero
  // (rows that cannot reach the loss, e.g. the last layer's before the answer): their measured
  // change is exactly zero too, and agreeing on them would flatter the correlation.
  const int64_t used = (longest + block - 1) / block;
  std::vector<TileAblation> cand;
  for (int64_t l = 0; l < c.layers; ++l) {
    for (int64_t h = 0; h < c.heads; ++h) {
      for (int64_t qb = 0; qb < used; ++qb) {
        for (int64_t kb = 0; kb <= (droppable_only ? qb - 1 : qb); ++kb) {
          const size_t at = size_t(((l * c.heads + h) * nb + qb) * nb + kb);
          if (prof[at] != 0.0) cand.push_back({l, h, qb, kb, prof[at], joint[at], 0});
        }
      }
    }
  }
  std::stable_sort(cand.begin(), cand.end(), [](const TileAblation& a, const TileAblation& b) {
    return a.predicted < b.predicted;
  });
  const int64_t n = std::min<int64_t>(count, int64_t(cand.size()));
  std::mt19937_64 rng(seed);
  AblationReport rep;
  rep.samples = int64_t(samples.size());
  for (int64_t s = 0; s < n; ++s) {  // one tile from each stratum of the sorted predictions
    const size_t lo = size_t(s) * cand.size() / size_t(n),
                 hi = size_t(s + 1) * cand.size() / size_t(n);
    rep.ablations.push_back(cand[lo + size_t(rng() % (hi - lo))]);
  }
  std::vector<double> pred, pred_joint, meas;
  for (size_t a = 0; a < rep.ablations.size(); ++a) {
    TileAblation& t = rep.ablations[a];
    AttentionEdit e{
        t.layer, t.head, t.qb * block, (t.qb + 1) * block, t.kb * block, (t.kb + 1) * block, 0.0};
    for (const TokenizedSample& s : samples) {
      if (t.qb * block >= s.size()) continue;  // the tile lies beyond this sample: no change
      AttentionEdit same = e;
      same.weight = 1.0;
      t.measured += (edited_loss(m, s, e) - edited_loss(m, s, same)) / double(samples.size());
    }
    pred.push_back(t.predicted);
    pred_joint.push_back(t.predicted_joint);
    meas.push_back(t.measured);
    if (progress) progress(int64_t(a + 1), int64_t(rep.ablations.size()));
  }
  rep.spearman = spearman(pred, meas);
  rep.spearman_joint = spearman(pred_joint, meas);
  return rep;
}

}  // namespace moa
