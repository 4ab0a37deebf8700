// Candidate rules and the exact loss / density tables the optimiser chooses from.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "moa/core/error.h"
#include "moa/compress/optimizer.h"

namespace moa {

std::vector<ElasticRule> candidate_rules(const std::vector<int64_t>& profile_lengths,
                                         const std::vector<int64_t>& extend_lengths) {
  MOA_CHECK(!profile_lengths.empty(), "candidate rules need at least one profile length");
  const int64_t lmax = *std::max_element(profile_lengths.begin(), profile_lengths.end());
  const int64_t lmin = *std::min_element(profile_lengths.begin(), profile_lengths.end());
  MOA_CHECK(lmin >= 1, "profile length {}", lmin);
  std::vector<ElasticRule> out;
  // alpha = k*lmax/8 and beta = j/8: every test below is multiplied by 8 to stay in integers, so
  // that a rule exactly on a boundary (alpha + beta*L == L) is kept as the reference keeps it.
  for (int64_t j = 0; j <= 8; ++j) {
    for (int64_t k = -2; k <= 8; ++k) {
      if (k * lmax + j * lmax > 8 * lmax) continue;
      bool ok = k * lmax + j * lmin > 0;
      for (int64_t e : extend_lengths) ok = ok && k * lmax + j * e <= 8 * e;
      if (ok) out.push_back({double(k) * double(lmax) / 8.0, double(j) / 8.0});
    }
  }
  return out;
}

namespace {

// sum over u in [a, b] of clamp(u, 0, cap), cap >= 0.
int64_t sum_clamped(int64_t a, int64_t b, int64_t cap) {
  if (a > b || cap <= 0) return 0;
  int64_t s = 0;
  int64_t lo1 = std::max<int64_t>(a, 1), hi1 = std::min(b, cap - 1);
  if (lo1 <= hi1) s += (lo1 + hi1) * (hi1 - lo1 + 1) / 2;
  int64_t lo2 = std::max(a, cap);
  if (lo2 <= b) s += cap * (b - lo2 + 1);
  return s;
}

}  // namespace

int64_t dropped_entries(int64_t q0, int64_t q1, int64_t k0, int64_t k1, int64_t sink,
                        int64_t window) {
  MOA_CHECK(sink >= 0 && window >= 0, "sink {} window {}", sink, window);
  if (q0 >= q1 || k0 >= k1) return 0;
  // Row i drops keys j in [max(k0, S), min(k1, i + 1 - W)): an arithmetic sequence of counts
  // clamped to [0, k1 - max(k0, S)].
  const int64_t low = std::max(k0, sink);
  const int64_t cap = k1 - low;
  return sum_clamped(q0 + 1 - window - low, q1 - window - low, cap);
}

int64_t causal_entries(int64_t q0, int64_t q1, int64_t k0, int64_t k1) {
  return dropped_entries(q0, q1, k0, k1, 0, 0);  // a mask with no sink and no window drops all
}

void check_profiles(const std::vector<Profile>& profiles, const std::vector<std::string>& names) {
  MOA_CHECK(profiles.size() == names.size());
  if (profiles.empty()) input_error("optimize: give at least one --profile");
  const Profile& a = profiles[0];
  for (size_t i = 1; i < profiles.size(); ++i) {
    const Profile& b = profiles[i];
    if (b.layers != a.layers || b.heads != a.heads || b.block != a.block) {
      input_error(
          "{}: {} layers x {} heads, block {}, but {} has {} layers x {} heads, block {} "
          "(profiles must come from one model, with one block size)",
          names[i], b.layers, b.heads, b.block, names[0], a.layers, a.heads, a.block);
    }
    for (size_t j = 0; j < i; ++j) {
      if (profiles[j].length == b.length) {
        input_error("{}: length {} is also the length of {} (give each profile length once)",
                    names[i], b.length, names[j]);
      }
    }
  }
}

namespace {

// Loss of every (row, rule) of one profile at its length, into loss[row][rule].
void profile_losses(const Profile& p, const std::vector<ElasticRule>& rules,
                    const CacheParams& cp, double* loss) {
  const int64_t n = p.length, b = p.block, nb = p.nb();
  const int64_t nr = int64_t(rules.size());
  std::vector<HeadCache> hc(rules.size());
  int64_t kx = 0;  // key blocks [0, kx) may hold sink tokens of some rule
  for (int64_t r = 0; r < nr; ++r) {
    hc[size_t(r)] = head_cache_rule(rules[size_t(r)].alpha, rules[size_t(r)].beta, n, cp.sink,
                                    cp.block, cp.min_cache);
    kx = std::max(kx, (hc[size_t(r)].sink + b - 1) / b);
  }
  kx = std::min(kx, nb);
  // Query blocks [0, qfull) are full; a partial last block is handled tile by tile.
  const int64_t qfull = (n % b == 0) ? nb : nb - 1;
  // Regular tiles (kb >= kx, kb <= qb < qfull) drop the same count on each diagonal d = qb - kb:
  // shifting queries and keys together keeps i - j, and no key is a sink key.
  const int64_t nd = std::max<int64_t>(0, qfull - kx);
  struct Tile {
    int64_t qb, kb;
  };
  std::vector<Tile> irregular;
  for (int64_t kb = 0; kb < kx; ++kb)
    for (int64_t qb = kb; qb < nb; ++qb) irregular.push_back({qb, kb});
  if (qfull < nb) {
    for (int64_t kb = kx; kb < nb; ++kb) irregular.push_back({nb - 1, kb});
  }
  // Per rule: fraction per diagonal (with the diagonals [d0, d1) between all-kept and
  // all-dropped), and the irregular tiles with a non-zero fraction.
  struct RuleFractions {
    std::vector<double> diag;
    int64_t d0 = 0, d1 = 0;
    std::vector<std::pair<int32_t, double>> irr;  // (index into irregular, fraction)
  };
  std::vector<RuleFractions> fr(rules.size());
  const int64_t x0 = kx * b;
  for (int64_t r = 0; r < nr; ++r) {
    RuleFractions& f = fr[size_t(r)];
    const int64_t s = hc[size_t(r)].sink, w = hc[size_t(r)].window;
    f.diag.resize(size_t(nd));
    for (int64_t d = 0; d < nd; ++d) {
      int64_t q0 = x0 + d * b;
      f.diag[size_t(d)] = double(dropped_entries(q0, q0 + b, x0, x0 + b, s, w)) /
                          double(causal_entries(q0, q0 + b, x0, x0 + b));
    }
    f.d0 = 0;
    while (f.d0 < nd && f.diag[size_t(f.d0)] == 0.0) ++f.d0;
    f.d1 = nd;
    while (f.d1 > f.d0 && f.diag[size_t(f.d1 - 1)] == 1.0) --f.d1;
    for (size_t t = 0; t < irregular.size(); ++t) {
      const Tile& tl = irregular[t];
      int64_t q0 = tl.qb * b, q1 = std::min(n, q0 + b), k0 = tl.kb * b, k1 = std::min(n, k0 + b);
      int64_t dropped = dropped_entries(q0, q1, k0, k1, s, w);
      if (dropped > 0) f.irr.push_back({int32_t(t), double(dropped) / double(causal_entries(q0, q1, k0, k1))});
    }
  }
  const int64_t rows = p.layers * p.heads;
#pragma omp parallel
  {
    std::vector<double> diag(static_cast<size_t>(nd)), suffix(static_cast<size_t>(nd) + 1), irr(irregular.size());
#pragma omp for schedule(static)
    for (int64_t row = 0; row < rows; ++row) {
      const float* tiles = p.influence.data() + size_t(row) * size_t(nb * nb);  // (nb, nb)
      std::fill(diag.begin(), diag.end(), 0.0);
      for (int64_t qb = kx; qb < qfull; ++qb) {
        const float* line = tiles + qb * nb;
        for (int64_t kb = kx; kb <= qb; ++kb) diag[size_t(qb - kb)] += std::fabs(double(line[kb]));
      }
      suffix[size_t(nd)] = 0;
      for (int64_t d = nd - 1; d >= 0; --d) suffix[size_t(d)] = suffix[size_t(d + 1)] + diag[size_t(d)];
      for (size_t t = 0; t < irregular.size(); ++t) {
        irr[t] = std::fabs(double(tiles[irregular[t].qb * nb + irregular[t].kb]));
      }
      for (int64_t r = 0; r < nr; ++r) {
        const RuleFractions& f = fr[size_t(r)];
        double sum = suffix[size_t(f.d1)];
        for (int64_t d = f.d0; d < f.d1; ++d) sum += f.diag[size_t(d)] * diag[size_t(d)];
        for (const auto& [t, frac] : f.irr) sum += frac * irr[size_t(t)];
        loss[size_t(row * nr + r)] = sum;
      }
    }
  }
}

}  // namespace

RuleTables build_rule_tables(const std::vector<Profile>& profiles,
                             const std::vector<int64_t>& extend_lengths,
                             const std::vector<ElasticRule>& rules, const CacheParams& params) {
  MOA_CHECK(!profiles.empty() && !rules.empty());
  RuleTables t;
  t.layers = profiles[0].layers;
  t.heads = profiles[0].heads;
  t.rules = rules;
  for (const Profile& p : profiles) {
    MOA_CHECK(p.layers == t.layers && p.heads == t.heads, "profiles disagree (call check_profiles)");
    MOA_CHECK(int64_t(p.influence.size()) == p.layers * p.heads * p.nb() * p.nb());
    if (t.model.empty()) t.model = p.model;
  }
  std::vector<size_t> order(profiles.size());
  std::iota(order.begin(), order.end(), size_t(0));
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return profiles[a].length < profiles[b].length; });
  for (size_t i : order) t.profile_lengths.push_back(profiles[i].length);
  for (int64_t e : extend_lengths) {
    MOA_CHECK(e >= 1, "extend length {}", e);
    if (std::find(t.profile_lengths.begin(), t.profile_lengths.end(), e) == t.profile_lengths.end())
      t.extend_lengths.push_back(e);
  }
  std::sort(t.extend_lengths.begin(), t.extend_lengths.end());
  t.extend_lengths.erase(std::unique(t.extend_lengths.begin(), t.extend_lengths.end()),
                         t.extend_lengths.end());
  t.lengths = t.profile_lengths;
  t.lengths.insert(t.lengths.end(), t.extend_lengths.begin(), t.extend_lengths.end());
  std::sort(t.lengths.begin(), t.lengths.end());

  const size_t nr = rules.size();
  t.density.resize(t.lengths.size() * nr);
  t.kept.resize(t.lengths.size() * nr);
  for (size_t n = 0; n < t.lengths.size(); ++n) {
    for (size_t r = 0; r < nr; ++r) {
      HeadCache h = head_cache_rule(rules[r].alpha, rules[r].beta, t.lengths[n], params.sink,
                                    params.block, params.min_cache);
      t.kept[n * nr + r] = h.kept;
      t.density[n * nr + r] = double(h.kept) / double(t.lengths[n]);
    }
  }
  const size_t rows = size_t(t.rows());
  t.loss.resize(profiles.size() * rows * nr);
  for (size_t pi = 0; pi < order.size(); ++pi) {
    profile_losses(profiles[order[pi]], rules, params, t.loss.data() + pi * rows * nr);
  }
  return t;
}

double rule_loss_reference(const Profile& p, int64_t layer, int64_t head, const ElasticRule& r,
                           const CacheParams& params) {
  HeadCache hc = head_cache_rule(r.alpha, r.beta, p.length, params.sink, params.block,
                                 params.min_cache);
  const int64_t n = p.length, b = p.block, nb = p.nb();
  double sum = 0;
  for (int64_t qb = 0; qb < nb; ++qb) {
    for (int64_t kb = 0; kb <= qb; ++kb) {
      int64_t causal = 0, dropped = 0;
      for (int64_t i = qb * b; i < std::min(n, qb * b + b); ++i) {
        for (int64_t j = kb * b; j < std::min(n, kb * b + b); ++j) {
          if (j > i) continue;
          ++causal;
          bool seen = j < hc.sink || i - j < hc.window;
          if (!seen) ++dropped;
        }
      }
      sum += std::fabs(double(p.at(layer, head, qb, kb))) * double(dropped) / double(causal);
    }
  }
  return sum;
}

}  // namespace moa
