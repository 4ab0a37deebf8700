// The hand-written backward pass (include/moa/model/backward.h).
//  - every op: forward against a double-precision reference written here, backward against
//    central finite differences of that reference (so the differences are meaningful), including
//    the attention mask's window and sink edges and tile edges;
//  - the whole model: loss, every parameter's gradient and the profiler hook's Q/K/V/dO against
//    PyTorch float64 autograd (tests/data/make_grad_fixture.py), forward logits against
//    Session::prefill, activation recompute, accumulation, half-width weights;
//  - peak memory: linear in T, and the per-token figure is printed;
//  - AdamW: 10 steps on the fixture against torch.optim.AdamW (losses and final weights).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "moa/train/adamw.h"
#include "moa/attention/attention.h"
#include "moa/model/backward.h"
#include "moa/model/forward.h"
#include "moa/model/model.h"
#include "moa/model/safetensors.h"
#include "test_util.h"

namespace moa {
namespace {

using Vec = std::vector<double>;
const std::string kFixtures = std::string(MOA_TEST_DATA) + "/fixtures/";

// ---- helpers --------------------------------------------------------------------------------

std::vector<float> randn(size_t n, uint64_t seed, float std = 1.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.0f, std);
  std::vector<float> v(n);
  for (auto& x : v) x = nd(rng);
  return v;
}
Vec to_d(const std::vector<float>& v) { return Vec(v.begin(), v.end()); }
std::vector<float> to_f(const Vec& v) { return std::vector<float>(v.begin(), v.end()); }

// Central finite differences of f at x (double), for the coordinates `which` (all when empty).
Vec finite_diff(const std::function<double(const Vec&)>& f, Vec x,
                const std::vector<size_t>& which = {}) {
  Vec g(x.size(), 0.0);
  auto one = [&](size_t i) {
    const double x0 = x[i], h = 1e-6 * std::max(1.0, std::fabs(x0));
    x[i] = x0 + h;
    const double fp = f(x);
    x[i] = x0 - h;
    const double fm = f(x);
    x[i] = x0;
    g[i] = (fp - fm) / (2 * h);
  };
  if (which.empty()) {
    for (size_t i = 0; i < x.size(); ++i) one(i);
  } else {
    for (size_t i : which) one(i);
  }
  return g;
}

double max_abs(const Vec& v) {
  double m = 0;
  for (double x : v) m = std::max(m, std::fabs(x));
  return m;
}

// Analytic f32 gradient against the double reference: |got - want| <= rel * max|want| + floor,
// reporting the first bad index and the max error.
::testing::AssertionResult grad_close(const std::vector<float>& got, const Vec& want,
                                      double rel = 2e-4, const std::vector<size_t>& which = {},
                                      double floor = 1e-6) {
  std::vector<float> a, b;
  if (which.empty()) {
    a = got;
    b = to_f(want);
  } else {
    for (size_t i : which) {
      a.push_back(got[i]);
      b.push_back(float(want[i]));
    }
  }
  return test::all_close(a, b, 0.0, rel * max_abs(to_d(b)) + floor);
}

// L = sum(w * y): the scalar whose gradient wrt y is w.
double dot(const Vec& w, const Vec& y) {
  double s = 0;
  for (size_t i = 0; i < y.size(); ++i) s += w[i] * y[i];
  return s;
}

// ---- double-precision references of the ops -------------------------------------------------

Vec rmsnorm_ref(const Vec& x, const Vec& w, int64_t T, int64_t C, double eps) {
  Vec y(x.size());
  for (int64_t t = 0; t < T; ++t) {
    double ss = 0;
    for (int64_t i = 0; i < C; ++i) ss += x[size_t(t * C + i)] * x[size_t(t * C + i)];
    const double r = 1.0 / std::sqrt(ss / double(C) + eps);
    for (int64_t i = 0; i < C; ++i) y[size_t(t * C + i)] = x[size_t(t * C + i)] * r * w[size_t(i)];
  }
  return y;
}

Vec linear_ref(const Vec& x, const Vec& W, const Vec& b, int64_t T, int64_t in, int64_t out) {
  Vec y(static_cast<size_t>(T * out));
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t o = 0; o < out; ++o) {
      double s = b.empty() ? 0.0 : b[size_t(o)];
      for (int64_t i = 0; i < in; ++i) s += x[size_t(t * in + i)] * W[size_t(o * in + i)];
      y[size_t(t * out + o)] = s;
    }
  }
  return y;
}

// x: (T, heads, D), HF rotate-half, angle = t * inv_freq[i]
Vec rope_ref(const Vec& x, const std::vector<double>& inv, int64_t T, int64_t heads, int64_t D) {
  Vec y(x.size());
  const int64_t half = D / 2;
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t h = 0; h < heads; ++h) {
      for (int64_t i = 0; i < half; ++i) {
        const double a = double(t) * inv[size_t(i)], c = std::cos(a), s = std::sin(a);
        const size_t p = size_t((t * heads + h) * D + i);
        y[p] = x[p] * c - x[p + size_t(half)] * s;
        y[p + size_t(half)] = x[p + size_t(half)] * c + x[p] * s;
      }
    }
  }
  return y;
}

bool sees(const HeadSpan& sp, int64_t i, int64_t j) {
  return j <= i && (j < sp.sink || i - j < sp.window);
}

// q: (T, H, D) k, v: (T, G, D) -> out (T, H, D), lse (H, T): explicit loops over every (i, j).
Vec attention_ref(const std::vector<HeadSpan>& spans, int64_t H, int64_t G, int64_t D, int64_t T,
                  const Vec& q, const Vec& k, const Vec& v, Vec* lse = nullptr) {
  Vec out(static_cast<size_t>(T * H * D), 0.0);
  if (lse) lse->assign(size_t(H * T), 0.0);
  const double scale = 1.0 / std::sqrt(double(D));
  for (int64_t h = 0; h < H; ++h) {
    const int64_t g = h / (H / G);
    for (int64_t i = 0; i < T; ++i) {
      Vec s(static_cast<size_t>(T), -INFINITY);
      double mx = -INFINITY;
      for (int64_t j = 0; j < T; ++j) {
        if (!sees(spans[size_t(h)], i, j)) continue;
        double d = 0;
        for (int64_t e = 0; e < D; ++e)
          d += q[size_t((i * H + h) * D + e)] * k[size_t((j * G + g) * D + e)];
        s[size_t(j)] = d * scale;
        mx = std::max(mx, s[size_t(j)]);
      }
      double z = 0;
      for (int64_t j = 0; j < T; ++j) z += std::exp(s[size_t(j)] - mx);
      for (int64_t j = 0; j < T; ++j) {
        const double p = std::exp(s[size_t(j)] - mx) / z;
        for (int64_t e = 0; e < D; ++e)
          out[size_t((i * H + h) * D + e)] += p * v[size_t((j * G + g) * D + e)];
      }
      if (lse) (*lse)[size_t(h * T + i)] = mx + std::log(z);
    }
  }
  return out;
}

// ---- ops ------------------------------------------------------------------------------------

TEST(OpsBackward, Embedding) {
  const int64_t V = 7, C = 5, T = 6;
  std::vector<int32_t> ids = {3, 0, 3, 6, 3, 1};  // repeated ids accumulate
  auto table = randn(size_t(V * C), 1);
  std::vector<float> out(static_cast<size_t>(T * C));
  embedding_forward(Weight::from_f32(table, V, C), ids.data(), T, out.data());
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t i = 0; i < C; ++i)
      ASSERT_EQ(out[size_t(t * C + i)], table[size_t(ids[size_t(t)] * C + i)]);
  }
  const Vec w = to_d(randn(size_t(T * C), 2));
  auto f = [&](const Vec& tab) {
    Vec y(static_cast<size_t>(T * C));
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t i = 0; i < C; ++i) y[size_t(t * C + i)] = tab[size_t(ids[size_t(t)] * C + i)];
    }
    return dot(w, y);
  };
  std::vector<float> dtab(static_cast<size_t>(V * C), 0.0f);
  embedding_backward(to_f(w).data(), ids.data(), T, C, dtab.data());
  EXPECT_TRUE(grad_close(dtab, finite_diff(f, to_d(table))));
}

TEST(OpsBackward, RmsNorm) {
  const int64_t T = 4, C = 9;
  const double eps = 1e-5;
  auto x = randn(size_t(T * C), 3), w = randn(size_t(C), 4);
  for (auto& e : w) e += 1.0f;
  x[5] = 0.0f;  // a zero entry
  std::vector<float> y(x.size()), rstd(static_cast<size_t>(T));
  rmsnorm_forward(x.data(), w.data(), T, C, eps, y.data(), rstd.data());
  EXPECT_TRUE(test::all_close(y, to_f(rmsnorm_ref(to_d(x), to_d(w), T, C, eps)), 1e-6, 1e-6));
  // the inference path's rms_norm gives the same numbers
  std::vector<float> y2(x.size());
  rms_norm(x.data(), w.data(), T, C, eps, y2.data());
  EXPECT_EQ(y, y2);
  const Vec dy = to_d(randn(y.size(), 5));
  std::vector<float> dx(x.size(), 0.0f), dw(w.size(), 0.0f);
  rmsnorm_backward(to_f(dy).data(), x.data(), w.data(), rstd.data(), T, C, dx.data(), dw.data());
  EXPECT_TRUE(grad_close(
      dx, finite_diff([&](const Vec& xx) { return dot(dy, rmsnorm_ref(xx, to_d(w), T, C, eps)); },
                      to_d(x))));
  EXPECT_TRUE(grad_close(
      dw, finite_diff([&](const Vec& ww) { return dot(dy, rmsnorm_ref(to_d(x), ww, T, C, eps)); },
                      to_d(w))));
  // accumulation: a second call adds the same amount
  std::vector<float> dx2(dx), dw2(dw);
  rmsnorm_backward(to_f(dy).data(), x.data(), w.data(), rstd.data(), T, C, dx2.data(), dw2.data());
  for (size_t i = 0; i < dx.size(); ++i) EXPECT_FLOAT_EQ(dx2[i], 2 * dx[i]);
}

TEST(OpsBackward, LinearWithBias) {
  const int64_t T = 5, in = 7, out = 6;
  auto x = randn(size_t(T * in), 6), W = randn(size_t(out * in), 7), b = randn(size_t(out), 8);
  std::vector<float> y(static_cast<size_t>(T * out));
  const Weight Wt = Weight::from_f32(W, out, in);
  linear_forward(x.data(), Wt, b.data(), T, y.data());
  EXPECT_TRUE(
      test::all_close(y, to_f(linear_ref(to_d(x), to_d(W), to_d(b), T, in, out)), 1e-5, 1e-5));
  const Vec dy = to_d(randn(y.size(), 9));
  std::vector<float> dx(x.size(), 0.0f), dW(W.size(), 0.0f), db(b.size(), 0.0f);
  linear_backward(to_f(dy).data(), x.data(), Wt, T, dx.data(), dW.data(), db.data());
  EXPECT_TRUE(grad_close(
      dx, finite_diff(
              [&](const Vec& v) { return dot(dy, linear_ref(v, to_d(W), to_d(b), T, in, out)); },
              to_d(x))));
  EXPECT_TRUE(grad_close(
      dW, finite_diff(
              [&](const Vec& v) { return dot(dy, linear_ref(to_d(x), v, to_d(b), T, in, out)); },
              to_d(W))));
  EXPECT_TRUE(grad_close(
      db, finite_diff(
              [&](const Vec& v) { return dot(dy, linear_ref(to_d(x), to_d(W), v, T, in, out)); },
              to_d(b))));
}

TEST(OpsBackward, LinearHalfWeightsInputGradient) {
  // BF16 / F16 weights: dx uses panels converted to f32, equal to the f32 path on the same values.
  const int64_t T = 3, in = 40, out = 70;
  auto x = randn(size_t(T * in), 10), dy = randn(size_t(T * out), 11);
  for (DType dt : {DType::kBF16, DType::kF16}) {
    Weight h;
    h.dtype = dt;
    h.rows = out;
    h.cols = in;
    for (float f : randn(size_t(out * in), 12))
      h.half.push_back(dt == DType::kBF16 ? f32_to_bf16(f) : f32_to_f16(f));
    const Weight f = Weight::from_f32(h.to_f32(), out, in);
    std::vector<float> a(x.size(), 0.0f), bb(x.size(), 0.0f);
    linear_backward(dy.data(), x.data(), h, T, a.data(), nullptr, nullptr);
    linear_backward(dy.data(), x.data(), f, T, bb.data(), nullptr, nullptr);
    EXPECT_TRUE(test::all_close(a, bb, 1e-6, 1e-6)) << dtype_name(dt);
  }
}

TEST(OpsBackward, RopeLlama3AndLinear) {
  const int64_t T = 7, heads = 3, D = 8;
  ModelConfig c;
  c.head_dim = D;
  c.rope_theta = 5e5;
  c.rope_scaling = RopeScaling::kLlama3;
  c.rope_factor = 8;
  c.rope_original_max_position = 8;
  for (int variant = 0; variant < 2; ++variant) {
    if (variant == 1) {
      c.rope_scaling = RopeScaling::kLinear;
      c.rope_factor = 2;
      c.rope_theta = 1e4;
    }
    const auto inv = rope_inv_freq(c);
    const RopeTable rope(c, T);
    auto x = randn(size_t(T * heads * D), 13);
    std::vector<float> y(x);
    rope_forward(rope, y.data(), T, heads);
    EXPECT_TRUE(test::all_close(y, to_f(rope_ref(to_d(x), inv, T, heads, D)), 1e-5, 1e-6))
        << variant;
    const Vec dy = to_d(randn(y.size(), 14));
    std::vector<float> dx = to_f(dy);
    rope_backward(rope, dx.data(), T, heads);
    EXPECT_TRUE(grad_close(
        dx,
        finite_diff([&](const Vec& v) { return dot(dy, rope_ref(v, inv, T, heads, D)); }, to_d(x))))
        << variant;
  }
}

TEST(OpsBackward, SwiGlu) {
  const int64_t n = 23;
  auto g = randn(size_t(n), 15, 3.0f), u = randn(size_t(n), 16);
  auto ref = [&](const Vec& gg, const Vec& uu) {
    Vec h(gg.size());
    for (size_t i = 0; i < gg.size(); ++i) h[i] = gg[i] / (1 + std::exp(-gg[i])) * uu[i];
    return h;
  };
  std::vector<float> h(static_cast<size_t>(n));
  swiglu_forward(g.data(), u.data(), n, h.data());
  EXPECT_TRUE(test::all_close(h, to_f(ref(to_d(g), to_d(u))), 1e-6, 1e-6));
  const Vec dh = to_d(randn(size_t(n), 17));
  std::vector<float> dg(static_cast<size_t>(n), 0.0f), du(static_cast<size_t>(n), 0.0f);
  swiglu_backward(to_f(dh).data(), g.data(), u.data(), n, dg.data(), du.data());
  EXPECT_TRUE(
      grad_close(dg, finite_diff([&](const Vec& v) { return dot(dh, ref(v, to_d(u))); }, to_d(g))));
  EXPECT_TRUE(
      grad_close(du, finite_diff([&](const Vec& v) { return dot(dh, ref(to_d(g), v)); }, to_d(u))));
}

TEST(OpsBackward, ResidualAdd) {
  std::vector<float> x = {1, 2, 3}, y = {10, 20, 30};
  residual_add(x.data(), 3, y.data());
  EXPECT_EQ(y, (std::vector<float>{11, 22, 33}));
}

TEST(OpsBackward, CrossEntropy) {
  const int64_t T = 4, V = 11;
  auto logits = randn(size_t(T * V), 18, 3.0f);
  std::vector<int32_t> tg = {3, 0, 10, 3};
  const Vec dnll = {0.5, 0.0, 1.5, -0.25};
  auto ref = [&](const Vec& x) {
    Vec nll(static_cast<size_t>(T));
    for (int64_t t = 0; t < T; ++t) {
      double mx = -INFINITY, z = 0;
      for (int64_t i = 0; i < V; ++i) mx = std::max(mx, x[size_t(t * V + i)]);
      for (int64_t i = 0; i < V; ++i) z += std::exp(x[size_t(t * V + i)] - mx);
      nll[size_t(t)] = std::log(z) + mx - x[size_t(t * V + tg[size_t(t)])];
    }
    return nll;
  };
  std::vector<float> nll(static_cast<size_t>(T));
  cross_entropy_forward(logits.data(), tg.data(), T, V, nll.data());
  EXPECT_TRUE(test::all_close(nll, to_f(ref(to_d(logits))), 1e-6, 1e-6));
  std::vector<float> dl(logits.size(), 0.0f);
  cross_entropy_backward(logits.data(), tg.data(), to_f(dnll).data(), T, V, dl.data());
  EXPECT_TRUE(
      grad_close(dl, finite_diff([&](const Vec& v) { return dot(dnll, ref(v)); }, to_d(logits))));
}

// ---- attention, table driven ----------------------------------------------------------------

struct AttnCase {
  const char* name;
  int64_t T, H, G, D, tile;
  std::vector<HeadSpan> spans;  // per query head
  size_t fd_samples = 0;        // 0: every coordinate; else this many random ones per tensor
};

std::ostream& operator<<(std::ostream& os, const AttnCase& c) { return os << c.name; }

constexpr int64_t kDense = int64_t(1) << 40;

std::vector<AttnCase> attn_cases() {
  return {
      {"dense_tile4", 13, 4, 2, 4, 4, {{0, kDense}, {0, kDense}, {0, kDense}, {0, kDense}}},
      {"dense_one_tile", 13, 2, 1, 4, 64, {{0, kDense}, {0, kDense}}},
      {"window1", 11, 2, 2, 4, 4, {{0, 1}, {0, 1}}},
      {"window1_sink2", 11, 2, 1, 4, 3, {{2, 1}, {0, 1}}},
      {"window_T_minus_1", 12, 2, 1, 4, 5, {{0, 11}, {1, 11}}},
      {"sink_beyond_T", 10, 2, 2, 4, 4, {{20, 2}, {11, 1}}},
      {"gqa_groups_differ", 14, 4, 2, 4, 4, {{0, 1}, {2, 3}, {1, 13}, {20, 2}}},
      {"mqa_mixed", 15, 3, 1, 6, 4, {{3, 2}, {0, 5}, {0, kDense}}},
      {"long_default_tile", 150, 2, 1, 8, kAttnTile, {{3, 70}, {0, 64}}, 150},
      {"long_sink_band", 140, 2, 2, 4, 32, {{40, 33}, {1, 1}}, 150},
  };
}

class AttentionOp : public ::testing::TestWithParam<AttnCase> {};

TEST_P(AttentionOp, ForwardMatchesReferenceAndInference) {
  const AttnCase& c = GetParam();
  AttentionSpec spec = AttentionSpec::dense(1, c.H, c.G, c.D, c.T);
  spec.spans = c.spans;
  auto q = randn(size_t(c.T * c.H * c.D), 20), k = randn(size_t(c.T * c.G * c.D), 21),
       v = randn(size_t(c.T * c.G * c.D), 22);
  std::vector<float> out(q.size()), lse(static_cast<size_t>(c.H * c.T));
  attention_forward(spec, 0, q.data(), k.data(), v.data(), c.T, out.data(), lse.data(), c.tile);
  Vec lse_ref;
  auto ref = attention_ref(c.spans, c.H, c.G, c.D, c.T, to_d(q), to_d(k), to_d(v), &lse_ref);
  EXPECT_TRUE(test::all_close(out, to_f(ref), 1e-5, 1e-5));
  EXPECT_TRUE(test::all_close(lse, to_f(lse_ref), 1e-5, 1e-5));
  std::vector<float> inf(q.size());
  attention_prefill(spec, 0, q.data(), k.data(), v.data(), c.T, inf.data());
  EXPECT_TRUE(test::all_close(out, inf, 1e-5, 1e-5));
}

TEST_P(AttentionOp, BackwardMatchesFiniteDifferences) {
  const AttnCase& c = GetParam();
  AttentionSpec spec = AttentionSpec::dense(1, c.H, c.G, c.D, c.T);
  spec.spans = c.spans;
  auto q = randn(size_t(c.T * c.H * c.D), 30), k = randn(size_t(c.T * c.G * c.D), 31),
       v = randn(size_t(c.T * c.G * c.D), 32);
  const Vec w = to_d(randn(q.size(), 33));  // L = sum(w * out)
  std::vector<float> out(q.size()), lse(static_cast<size_t>(c.H * c.T));
  attention_forward(spec, 0, q.data(), k.data(), v.data(), c.T, out.data(), lse.data(), c.tile);
  std::vector<float> dq(q.size(), 0.0f), dk(k.size(), 0.0f), dv(v.size(), 0.0f);
  attention_backward(spec, 0, q.data(), k.data(), v.data(), out.data(), lse.data(), to_f(w).data(),
                     c.T, dq.data(), dk.data(), dv.data(), c.tile);
  const Vec qd = to_d(q), kd = to_d(k), vd = to_d(v);
  auto pick = [&](size_t n, uint64_t seed) {
    std::vector<size_t> idx;
    if (c.fd_samples == 0) return idx;
    std::mt19937_64 rng(seed);
    for (size_t i = 0; i < c.fd_samples; ++i) idx.push_back(size_t(rng() % n));
    return idx;
  };
  auto att = [&](const Vec& a, const Vec& b, const Vec& d) {
    return dot(w, attention_ref(c.spans, c.H, c.G, c.D, c.T, a, b, d));
  };
  auto iq = pick(q.size(), 1), ik = pick(k.size(), 2), iv = pick(v.size(), 3);
  EXPECT_TRUE(
      grad_close(dq, finite_diff([&](const Vec& x) { return att(x, kd, vd); }, qd, iq), 2e-4, iq))
      << "dq";
  EXPECT_TRUE(
      grad_close(dk, finite_diff([&](const Vec& x) { return att(qd, x, vd); }, kd, ik), 2e-4, ik))
      << "dk";
  EXPECT_TRUE(
      grad_close(dv, finite_diff([&](const Vec& x) { return att(qd, kd, x); }, vd, iv), 2e-4, iv))
      << "dv";
  // The tile size changes only the summation order.
  if (c.tile != 7) {
    std::vector<float> o2(q.size()), l2(lse.size()), dq2(q.size(), 0.0f), dk2(k.size(), 0.0f),
        dv2(v.size(), 0.0f);
    attention_forward(spec, 0, q.data(), k.data(), v.data(), c.T, o2.data(), l2.data(), 7);
    attention_backward(spec, 0, q.data(), k.data(), v.data(), o2.data(), l2.data(), to_f(w).data(),
                       c.T, dq2.data(), dk2.data(), dv2.data(), 7);
    EXPECT_TRUE(test::all_close(dq2, dq, 1e-4, 1e-5));
    EXPECT_TRUE(test::all_close(dk2, dk, 1e-4, 1e-5));
    EXPECT_TRUE(test::all_close(dv2, dv, 1e-4, 1e-5));
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, AttentionOp, ::testing::ValuesIn(attn_cases()),
                         [](const auto& info) { return std::string(info.param.name); });

// ---- whole model against PyTorch ------------------------------------------------------------

nlohmann::json load_json(const std::string& path) {
  std::ifstream f(path);
  EXPECT_TRUE(f.good()) << path;
  return nlohmann::json::parse(f);
}

// A small reader for the fixture's F64 safetensors (the library reads F32/F16/BF16 only).
std::map<std::string, Vec> read_f64_safetensors(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  EXPECT_TRUE(f.good()) << path;
  std::string data((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  uint64_t n = 0;
  std::memcpy(&n, data.data(), 8);
  auto header = nlohmann::json::parse(data.substr(8, n));
  const char* body = data.data() + 8 + n;
  std::map<std::string, Vec> out;
  for (auto& [name, info] : header.items()) {
    if (name == "__metadata__") continue;
    EXPECT_EQ(info["dtype"], "F64") << name;
    const size_t b = info["data_offsets"][0].get<size_t>(),
                 e = info["data_offsets"][1].get<size_t>();
    Vec v((e - b) / 8);
    std::memcpy(v.data(), body + b, e - b);
    out[name] = std::move(v);
  }
  return out;
}

struct Fixture {
  Model m;
  AttentionSpec spec;
  std::vector<int32_t> ids;
  std::vector<float> mask;
  double loss;
  std::map<std::string, Vec> want;
};

Fixture load_fixture(const std::string& name) {
  const std::string dir = kFixtures + name;
  Fixture fx{Model::load(dir), {}, {}, {}, 0, {}};
  auto e = load_json(dir + "/grad_expected.json");
  fx.ids = e["ids"].get<std::vector<int32_t>>();
  fx.mask = e["loss_mask"].get<std::vector<float>>();
  fx.loss = e["loss"].get<double>();
  const ModelConfig& c = fx.m.cfg;
  const int64_t T = int64_t(fx.ids.size());
  fx.spec = AttentionSpec::dense(c.layers, c.heads, c.kv_heads, c.head_dim, T);
  if (!e["spans"].is_null()) {
    for (int64_t l = 0; l < c.layers; ++l) {
      for (int64_t h = 0; h < c.heads; ++h) {
        auto s = e["spans"][size_t(l)][size_t(h)];
        fx.spec.spans[size_t(l * c.heads + h)] = {s[0].get<int64_t>(), s[1].get<int64_t>()};
      }
    }
  }
  fx.want = read_f64_safetensors(dir + "/grads.safetensors");
  return fx;
}

struct HookCapture {
  std::map<std::string, std::vector<float>> got;
  std::vector<int64_t> order;
  AttentionHook hook(const ModelConfig& c, int64_t T) {
    return
        [this, &c, T](int64_t l, const float* q, const float* k, const float* v, const float* d) {
          const int64_t QN = T * c.q_dim(), KN = T * c.kv_dim();
          const std::string p = "hook." + std::to_string(l) + ".";
          got[p + "q"].assign(q, q + QN);
          got[p + "k"].assign(k, k + KN);
          got[p + "v"].assign(v, v + KN);
          got[p + "d_out"].assign(d, d + QN);
          order.push_back(l);
        };
  }
};

class GradFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(GradFixture, MatchesPyTorch) {
  Fixture fx = load_fixture(GetParam());
  const ModelConfig& c = fx.m.cfg;
  const int64_t T = int64_t(fx.ids.size());
  Grads g = Grads::zeros_like(fx.m);
  HookCapture cap;
  BackwardOptions opt;
  opt.hook = cap.hook(c, T);
  std::vector<float> logits;
  opt.logits_out = &logits;
  const double loss = forward_backward(fx.m, fx.spec, fx.ids, fx.mask, &g, opt);
  EXPECT_NEAR(loss, fx.loss, 1e-5 * std::max(1.0, fx.loss));
  EXPECT_TRUE(grad_close(logits, fx.want.at("logits"), 1e-5)) << "logits";
  int n = 0;
  g.for_each([&](const std::string& name, std::vector<float>& got) {
    ASSERT_TRUE(fx.want.count(name)) << name << " missing from the fixture";
    EXPECT_TRUE(grad_close(got, fx.want.at(name), 1e-4)) << name;
    ++n;
  });
  // every fixture gradient was compared (none the model lacks)
  int expected = 0;
  for (auto& [name, v] : fx.want) expected += name.rfind("hook.", 0) != 0 && name != "logits";
  EXPECT_EQ(n, expected);
  // profiler hook: layers in descending order, post-RoPE Q/K, V and dO as PyTorch has them
  EXPECT_EQ(cap.order, (std::vector<int64_t>{1, 0}));
  for (auto& [name, v] : cap.got) EXPECT_TRUE(grad_close(v, fx.want.at(name), 1e-4)) << name;
}

TEST_P(GradFixture, ForwardEqualsPrefill) {
  Fixture fx = load_fixture(GetParam());
  const int64_t T = int64_t(fx.ids.size()), V = fx.m.cfg.vocab;
  std::vector<float> logits;
  BackwardOptions opt;
  opt.logits_out = &logits;
  forward_backward(fx.m, fx.spec, fx.ids, fx.mask, nullptr, opt);  // forward only
  Session s(fx.m, fx.spec);
  std::vector<float> hidden;
  s.prefill(fx.ids, &hidden);
  std::vector<float> want(static_cast<size_t>(T * V));
  compute_logits(fx.m, hidden.data(), T, want.data());
  EXPECT_TRUE(test::all_close(logits, want, 1e-5, 1e-5));
}

TEST_P(GradFixture, RecomputeHookOnlyAndAccumulation) {
  Fixture fx = load_fixture(GetParam());
  const ModelConfig& c = fx.m.cfg;
  const int64_t T = int64_t(fx.ids.size());
  Grads a = Grads::zeros_like(fx.m), b = Grads::zeros_like(fx.m);
  HookCapture ca, cb, cc;
  BackwardOptions oa;
  oa.hook = ca.hook(c, T);
  const double la = forward_backward(fx.m, fx.spec, fx.ids, fx.mask, &a, oa);
  // activation recompute: the same numbers, bit for bit
  BackwardOptions ob;
  ob.hook = cb.hook(c, T);
  ob.recompute_layers = true;
  const double lb = forward_backward(fx.m, fx.spec, fx.ids, fx.mask, &b, ob);
  EXPECT_EQ(la, lb);
  std::vector<std::vector<float>> va, vb;
  a.for_each([&](const std::string&, std::vector<float>& v) { va.push_back(v); });
  b.for_each([&](const std::string&, std::vector<float>& v) { vb.push_back(v); });
  EXPECT_EQ(va, vb);
  EXPECT_EQ(ca.got, cb.got);
  // hook only (no parameter gradients): the same Q/K/V/dO
  BackwardOptions oc;
  oc.hook = cc.hook(c, T);
  EXPECT_EQ(forward_backward(fx.m, fx.spec, fx.ids, fx.mask, nullptr, oc), la);
  EXPECT_EQ(cc.got, ca.got);
  // gradients add up over calls (gradient accumulation)
  forward_backward(fx.m, fx.spec, fx.ids, fx.mask, &a);
  size_t i = 0;
  a.for_each([&](const std::string& name, std::vector<float>& v) {
    std::vector<float> twice(vb[i]);
    for (auto& x : twice) x *= 2;
    EXPECT_TRUE(test::all_close(v, twice, 1e-6, 1e-7)) << name;
    ++i;
  });
  // no weight in the mask: loss 0, nothing touched
  Grads z = Grads::zeros_like(fx.m);
  std::vector<float> none(fx.mask.size(), 0.0f);
  none.back() = 1.0f;  // the last entry is ignored
  EXPECT_EQ(forward_backward(fx.m, fx.spec, fx.ids, none, &z), 0.0);
  z.for_each([](const std::string& n, std::vector<float>& v) {
    for (float x : v) ASSERT_EQ(x, 0.0f) << n;
  });
}

INSTANTIATE_TEST_SUITE_P(Variants, GradFixture, ::testing::Values("grad_dense", "grad_masked"));

// Half-width weights (BF16 checkpoint): gradients equal those of the same values held in f32.
TEST(GradModel, Bf16WeightsMatchF32Copy) {
  Model m = Model::load(kFixtures + "llama_gqa_bf16");
  Model f = m;
  auto conv = [](Weight& w) {
    if (!w.empty()) w = Weight::from_f32(w.to_f32(), w.rows, w.cols);
  };
  conv(f.embed);
  conv(f.lm_head);
  for (auto& L : f.layers) {
    for (Weight* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) conv(*w);
  }
  ASSERT_EQ(m.layers[0].wq.dtype, DType::kBF16);
  const int64_t T = 20;
  std::vector<int32_t> ids;
  for (int64_t t = 0; t < T; ++t) ids.push_back(int32_t((t * 37 + 5) % m.cfg.vocab));
  std::vector<float> mask(static_cast<size_t>(T), 1.0f);
  AttentionSpec spec =
      AttentionSpec::dense(m.cfg.layers, m.cfg.heads, m.cfg.kv_heads, m.cfg.head_dim, T);
  spec.spans[1] = {2, 3};
  Grads gm = Grads::zeros_like(m), gf = Grads::zeros_like(f);
  const double lm = forward_backward(m, spec, ids, mask, &gm);
  const double lf = forward_backward(f, spec, ids, mask, &gf);
  EXPECT_NEAR(lm, lf, 1e-5);
  std::vector<std::vector<float>> vf;
  gf.for_each([&](const std::string&, std::vector<float>& v) { vf.push_back(v); });
  size_t i = 0;
  gm.for_each([&](const std::string& name, std::vector<float>& v) {
    EXPECT_TRUE(grad_close(v, to_d(vf[i++]), 1e-5)) << name;
  });
}

// ---- AdamW ----------------------------------------------------------------------------------

TEST(AdamW, TenStepsMatchTorch) {
  const std::string dir = kFixtures + "grad_dense";
  Fixture fx = load_fixture("grad_dense");
  const auto hp = load_json(dir + "/grad_expected.json")["adamw"];
  const auto want = read_f64_safetensors(dir + "/adamw.safetensors");
  AdamWOptions o;
  o.lr = hp["lr"].get<double>();
  o.beta1 = hp["beta1"].get<double>();
  o.beta2 = hp["beta2"].get<double>();
  o.eps = hp["eps"].get<double>();
  o.weight_decay = hp["weight_decay"].get<double>();
  convert_to_f32(fx.m);
  AdamW opt(fx.m, o);
  Grads g = Grads::zeros_like(fx.m);
  const Vec& losses = want.at("losses");
  ASSERT_EQ(int64_t(losses.size()), hp["steps"].get<int64_t>());
  for (size_t step = 0; step < losses.size(); ++step) {
    g.zero();
    const double loss = forward_backward(fx.m, fx.spec, fx.ids, fx.mask, &g);
    EXPECT_NEAR(loss, losses[step], 1e-4 * losses[step]) << "step " << step;
    opt.step(fx.m, g);
  }
  EXPECT_EQ(opt.step_count(), int64_t(losses.size()));
  // Final weights, by their Hugging Face names (through a save / load round trip).
  const auto out = test::temp_dir("adamw");
  fx.m.save(out, DType::kF32);
  TensorStore st(out);
  int n = 0;
  for (auto& [name, w] : want) {
    if (name == "losses") continue;
    const TensorView& t = st.get(name);
    std::vector<float> got(static_cast<size_t>(t.numel()));
    t.to_f32(got.data());
    // Adam divides each gradient by its own magnitude, so the f32 rounding of a near-zero gradient
    // element shows in its update: allow 0.1% of the largest possible movement (lr per step).
    EXPECT_TRUE(test::all_close(got, to_f(w), 0.0, 1e-3 * o.lr * double(losses.size()))) << name;
    ++n;
  }
  EXPECT_EQ(n, int(st.names().size()));
  std::filesystem::remove_all(out);
}

// ---- memory ---------------------------------------------------------------------------------

// The backward's memory is linear in T (no N x N term anywhere), and the figure per token is
// what backward.h states.
TEST(GradMemory, LinearInTokens) {
  ModelConfig c;  // Llama-3-8B shapes
  c.hidden = 4096;
  c.intermediate = 14336;
  c.layers = 32;
  c.heads = 32;
  c.kv_heads = 8;
  c.head_dim = 128;
  c.vocab = 128256;
  for (bool rc : {false, true}) {
    const int64_t b1 = forward_backward_bytes(c, 1024, rc, 2),
                  b2 = forward_backward_bytes(c, 2048, rc, 2),
                  b4 = forward_backward_bytes(c, 4096, rc, 2);
    EXPECT_EQ(b4 - b2, 2 * (b2 - b1)) << "not linear in T";
    const int64_t per_token = (b2 - b1) / 1024;
    const int64_t C = c.hidden, F = c.intermediate, HD = c.q_dim(), GD = c.kv_dim(), H = c.heads,
                  L = c.layers;
    const int64_t S = 2 * C + 2 * HD + 2 * GD + H + 2 * F + 2;
    const int64_t R = 4 * C + 4 * F + 2 * HD + 2 * GD + H + c.head_dim + 1;
    const int64_t want = rc ? 4 * (L * C + S - C + R) + 8 : 4 * (L * S + R) + 8;  // + the row list
    EXPECT_EQ(per_token, want);
    std::printf(
        "Llama-3-8B shapes, recompute_layers=%d: %.2f MB per token (%.1f KB per token per layer), "
        "constant %.1f MB\n",
        int(rc), double(per_token) / 1e6, double(per_token) / 1e3 / double(L),
        double(b1 - per_token * 1024) / 1e6);
  }
}

}  // namespace
}  // namespace moa
