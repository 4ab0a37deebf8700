// Attention kernels against a plain reference on fresh random inputs: ragged lengths, windows at
// and across tile edges, sink larger than N, GQA groups with different windows, 1 and 2 threads.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <map>
#include <random>
#include <set>

#include "attention/simd.h"
#include "moa/attention/attention.h"
#include "moa/attention/kv_cache.h"
#include "test_util.h"

namespace moa {
namespace {

// Reference: explicit mask "j <= i and (j < sink or i - j < window)", double precision.
// q: (T, H, D)  k, v: (T, G, D)  out: (T, H, D)
std::vector<float> reference_attention(const AttentionSpec& spec, int64_t layer,
                                       const std::vector<float>& q, const std::vector<float>& k,
                                       const std::vector<float>& v, int64_t T) {
  const int64_t H = spec.heads, G = spec.kv_heads, D = spec.head_dim;
  std::vector<float> out(size_t(T * H * D));
  for (int64_t h = 0; h < H; ++h) {
    const int64_t g = h / (H / G);
    const HeadSpan& sp = spec.span(layer, h);
    for (int64_t i = 0; i < T; ++i) {
      std::vector<double> w(size_t(T), 0.0);
      double mx = -1e300;
      for (int64_t j = 0; j <= i; ++j) {
        if (!(j < sp.sink || i - j < sp.window)) continue;
        double s = 0;
        for (int64_t d = 0; d < D; ++d) s += double(q[size_t((i * H + h) * D + d)]) * k[size_t((j * G + g) * D + d)];
        w[size_t(j)] = s / std::sqrt(double(D));
        mx = std::max(mx, w[size_t(j)]);
      }
      double sum = 0;
      for (int64_t j = 0; j <= i; ++j) {
        bool vis = j < sp.sink || i - j < sp.window;
        w[size_t(j)] = vis ? std::exp(w[size_t(j)] - mx) : 0.0;
        sum += w[size_t(j)];
      }
      for (int64_t d = 0; d < D; ++d) {
        double acc = 0;
        for (int64_t j = 0; j <= i; ++j) acc += w[size_t(j)] * v[size_t((j * G + g) * D + d)];
        out[size_t((i * H + h) * D + d)] = float(acc / sum);
      }
    }
  }
  return out;
}

struct Case {
  int64_t T, H, G, D;
  std::vector<HeadSpan> spans;  // per head (one layer)
};

std::vector<Case> cases() {
  const int64_t inf = std::numeric_limits<int64_t>::max() / 4;
  return {
      {1, 2, 1, 8, {{0, inf}, {4, 4}}},
      {37, 4, 2, 16, {{0, inf}, {3, 5}, {0, 1}, {2, 36}}},     // ragged T, window 1, window T-1
      {130, 4, 2, 32, {{64, 64}, {64, 65}, {0, 63}, {64, 128}}},  // windows at and across 64 edges
      {50, 2, 2, 8, {{64, 64}, {100, 1}}},                     // sink larger than N
      {200, 8, 2, 24, {{4, 16}, {8, 200}, {1, 7}, {0, 64}, {16, 17}, {2, 3}, {64, 70}, {0, inf}}},
      {96, 3, 1, 12, {{5, 9}, {0, inf}, {1, 1}}},               // MQA, D not a multiple of 8
  };
}

AttentionSpec make_spec(const Case& c, int64_t n_ctx) {
  AttentionSpec s = AttentionSpec::dense(1, c.H, c.G, c.D, n_ctx);
  s.spans = c.spans;
  return s;
}

std::vector<float> randn(size_t n, std::mt19937& rng) {
  std::normal_distribution<float> nd(0, 1);
  std::vector<float> r(n);
  for (auto& x : r) x = nd(rng);
  return r;
}

class AttentionKernels : public ::testing::TestWithParam<int> {};

TEST_P(AttentionKernels, PrefillMatchesReference) {
  omp_set_num_threads(GetParam());
  std::mt19937 rng(std::random_device{}());
  for (const Case& c : cases()) {
    auto spec = make_spec(c, c.T);
    auto q = randn(size_t(c.T * c.H * c.D), rng), k = randn(size_t(c.T * c.G * c.D), rng),
         v = randn(size_t(c.T * c.G * c.D), rng);
    std::vector<float> out(q.size());
    attention_prefill(spec, 0, q.data(), k.data(), v.data(), c.T, out.data());
    auto want = reference_attention(spec, 0, q, k, v, c.T);
    EXPECT_TRUE(test::all_close(out, want, 1e-4, 1e-5)) << "T=" << c.T << " H=" << c.H;
  }
}

// Decode through the cache's sink + ring, one position at a time, equals the reference row.
TEST_P(AttentionKernels, DecodeMatchesReference) {
  omp_set_num_threads(GetParam());
  std::mt19937 rng(std::random_device{}());
  for (const Case& c : cases()) {
    auto spec = make_spec(c, c.T);
    auto q = randn(size_t(c.T * c.H * c.D), rng), k = randn(size_t(c.T * c.G * c.D), rng),
         v = randn(size_t(c.T * c.G * c.D), rng);
    auto want = reference_attention(spec, 0, q, k, v, c.T);
    // Start with a prefill of a prefix (stored sparsely), then decode the rest.
    for (int64_t P : {int64_t(1), c.T / 2}) {
      if (P < 1) continue;
      KvCache cache(spec);
      cache.store_prefill(0, P, k.data(), v.data());
      std::vector<float> out(size_t(c.H * c.D));
      for (int64_t p = P; p < c.T; ++p) {
        cache.store(0, p, &k[size_t(p * c.G * c.D)], &v[size_t(p * c.G * c.D)]);
        attention_decode(cache, 0, &q[size_t(p * c.H * c.D)], p, out.data());
        EXPECT_TRUE(test::all_close(out, std::span<const float>(want).subspan(size_t(p * c.H * c.D), out.size()), 1e-4, 1e-5))
            << "T=" << c.T << " prefix " << P << " pos " << p;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Threads, AttentionKernels, ::testing::Values(1, 2));

// The vector exp against std::exp on fresh random inputs: close everywhere it matters, exactly 0
// where a softmax entry is masked (-inf) or underflows, and the same value wherever in an array
// an element sits (the dense and sparse paths must stay bit-identical).
TEST(Simd, ExpMatchesStdExp) {
  std::mt19937 rng(std::random_device{}());
  std::uniform_real_distribution<float> u(-87.0f, 88.0f);
  std::vector<float> x(1003);
  for (auto& f : x) f = u(rng);
  std::vector<float> y = x;
  simd::exp_sub(y.data(), int64_t(y.size()), 0.0f);
  for (size_t i = 0; i < x.size(); ++i) {
    const double want = std::exp(double(x[i]));
    ASSERT_NEAR(y[i] / want, 1.0, 1e-6) << "x=" << x[i];
  }
  std::vector<float> tail(x.begin() + 5, x.end());
  simd::exp_sub(tail.data(), int64_t(tail.size()), 0.0f);
  for (size_t i = 0; i < tail.size(); ++i) ASSERT_EQ(tail[i], y[i + 5]);
  std::vector<float> low = {-INFINITY, -88.0f, -1000.0f, 0.0f, -87.0f};
  simd::exp_sub(low.data(), int64_t(low.size()), 0.0f);
  EXPECT_EQ(low[0], 0.0f);
  EXPECT_EQ(low[1], 0.0f);
  EXPECT_EQ(low[2], 0.0f);
  EXPECT_FLOAT_EQ(low[3], 1.0f);
  EXPECT_GT(low[4], 0.0f);
  EXPECT_EQ(simd::exp1(-INFINITY), 0.0f);
  EXPECT_NEAR(simd::exp1(0.5f), std::exp(0.5), 1e-6);
}

TEST(KvCache, StoresSinkPlusLargestWindowOfGroup) {
  AttentionSpec s = AttentionSpec::dense(1, 4, 2, 8, 1000);
  s.spans = {{64, 100}, {64, 300}, {0, 1000}, {64, 64}};
  KvCache c(s);
  EXPECT_EQ(c.capacity(0, 0), 64 + 300);
  EXPECT_EQ(c.capacity(0, 1), 1000);  // never more than n_ctx
  EXPECT_EQ(c.bytes(), int64_t((364 + 1000) * 2 * 8 * sizeof(float)));
}

}  // namespace
}  // namespace moa

namespace moa {
namespace {

// H2O against a plain simulation: after a dense prefill each KV head keeps the `heavy` positions
// with the largest group-summed attention plus the `recent` newest; each decode step adds its
// probabilities and evicts the lowest score outside the recent window. The kernel's output must
// equal exact attention over the kept set, and the kept sets must agree.
TEST(H2O, MatchesSimulation) {
  std::mt19937 rng(std::random_device{}());
  const int64_t H = 4, G = 2, D = 8, T = 60, P = 24, grp = H / G;
  AttentionSpec spec = AttentionSpec::h2o_budget(1, H, G, D, T, 0.25);  // budget 15: 7 heavy, 8 recent
  ASSERT_TRUE(spec.h2o);
  auto q = randn(size_t(T * H * D), rng), k = randn(size_t(T * G * D), rng), v = randn(size_t(T * G * D), rng);
  // Prefill of P positions with column sums.
  std::vector<float> out(size_t(P * H * D)), cols(size_t(H * P));
  attention_prefill(spec, 0, q.data(), k.data(), v.data(), P, out.data(), cols.data());
  auto dense = reference_attention(AttentionSpec::dense(1, H, G, D, T), 0, q, k, v, P);
  EXPECT_TRUE(test::all_close(out, dense, 1e-4, 1e-5));  // the prompt is attended densely
  KvCache cache(spec);
  cache.store_prefill(0, P, k.data(), v.data(), cols.data());
  // Simulation state: per KV head, kept positions -> per query head score.
  std::vector<std::map<int64_t, std::vector<double>>> kept(G);
  for (int64_t g = 0; g < G; ++g) {
    std::vector<std::pair<double, int64_t>> older;
    for (int64_t p = 0; p < P - spec.h2o_recent; ++p) {
      double s = 0;
      for (int64_t r = 0; r < grp; ++r) s += cols[size_t((g * grp + r) * P + p)];
      older.push_back({-s, p});
    }
    std::sort(older.begin(), older.end());
    std::vector<int64_t> keep;
    for (int64_t i = 0; i < spec.h2o_heavy; ++i) keep.push_back(older[size_t(i)].second);
    for (int64_t p = P - spec.h2o_recent; p < P; ++p) keep.push_back(p);
    for (int64_t p : keep) {
      std::vector<double> sc(static_cast<size_t>(grp));
      for (int64_t r = 0; r < grp; ++r) sc[size_t(r)] = cols[size_t((g * grp + r) * P + p)];
      kept[size_t(g)][p] = sc;
    }
  }
  auto check_sets = [&](int64_t step) {
    for (int64_t g = 0; g < G; ++g) {
      std::set<int64_t> got(cache.h2o_positions(0, g), cache.h2o_positions(0, g) + cache.h2o_filled(0, g));
      std::set<int64_t> want;
      for (auto& [p, s] : kept[size_t(g)]) want.insert(p);
      EXPECT_EQ(got, want) << "kv head " << g << " at step " << step;
    }
  };
  check_sets(P - 1);
  std::vector<float> o(size_t(H * D));
  for (int64_t p = P; p < T; ++p) {
    // Simulated insertion with eviction.
    for (int64_t g = 0; g < G; ++g) {
      auto& m = kept[size_t(g)];
      if (int64_t(m.size()) >= spec.h2o_heavy + spec.h2o_recent) {
        int64_t victim = -1;
        double best = 1e300;
        for (auto& [pp, sc] : m) {
          if (pp > p - spec.h2o_recent) continue;
          double s = 0;
          for (double x : sc) s += x;
          if (s < best) best = s, victim = pp;
        }
        m.erase(victim);
      }
      m[p] = std::vector<double>(size_t(grp), 0.0);
    }
    cache.store(0, p, &k[size_t(p * G * D)], &v[size_t(p * G * D)]);
    check_sets(p);
    attention_decode(cache, 0, &q[size_t(p * H * D)], p, o.data());
    // Exact attention over the kept set; then add probabilities to the simulated scores.
    for (int64_t h = 0; h < H; ++h) {
      const int64_t g = h / grp;
      std::vector<std::pair<int64_t, double>> w;
      double mx = -1e300;
      for (auto& [pp, sc] : kept[size_t(g)]) {
        double s = 0;
        for (int64_t d = 0; d < D; ++d) s += double(q[size_t((p * H + h) * D + d)]) * k[size_t((pp * G + g) * D + d)];
        w.push_back({pp, s / std::sqrt(double(D))});
        mx = std::max(mx, w.back().second);
      }
      double sum = 0;
      for (auto& [pp, s] : w) sum += s = std::exp(s - mx);
      for (int64_t d = 0; d < D; ++d) {
        double acc = 0;
        for (auto& [pp, s] : w) acc += s / sum * v[size_t((pp * G + g) * D + d)];
        EXPECT_NEAR(o[size_t(h * D + d)], acc, 1e-4) << "pos " << p << " head " << h;
      }
      for (auto& [pp, s] : w) kept[size_t(g)][pp][size_t(h % grp)] += s / sum;
    }
  }
}

}  // namespace
}  // namespace moa
