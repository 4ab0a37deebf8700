// KV cache storage types (include/moa/attention/kv_type.h): the row codecs against their
// definitions, the typed kernels against a double-precision computation over decoded rows, a
// covering plan equal to dense bit for bit within each type (prefill and decode), every type
// against f32 at a stated tolerance on the shipped model, and cache bytes per type.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "attention/kv_simd.h"
#include "moa/attention/kv_cache.h"
#include "moa/attention/kv_type.h"
#include "moa/attention/plan.h"
#include "moa/attention/spans.h"
#include "moa/core/half.h"
#include "moa/model/forward.h"
#include "moa/model/model.h"
#include "test_util.h"

namespace moa {
namespace {

const KvType kAll[] = {KvType::kF32, KvType::kF16, KvType::kBF16, KvType::kQ8_0};

std::vector<float> randn(std::mt19937& rng, size_t n, float scale = 1.0f) {
  std::normal_distribution<float> d(0.f, scale);
  std::vector<float> x(n);
  for (auto& v : x) v = d(rng);
  return x;
}

TEST(KvType, NamesAndSizes) {
  for (KvType t : kAll) EXPECT_EQ(parse_kv_type(kv_type_name(t)), t);
  EXPECT_FALSE(parse_kv_type("q4_0").has_value());
  EXPECT_EQ(kv_row_bytes(KvType::kF32, 64), 256);
  EXPECT_EQ(kv_row_bytes(KvType::kF16, 64), 128);
  EXPECT_EQ(kv_row_bytes(KvType::kBF16, 64), 128);
  EXPECT_EQ(kv_row_bytes(KvType::kQ8_0, 64), 68);
  EXPECT_FALSE(kv_type_fits(KvType::kQ8_0, 48));
  EXPECT_TRUE(kv_type_fits(KvType::kF16, 48));
}

TEST(KvType, RowCodecsFollowTheirDefinitions) {
  const uint64_t seed = test::draw_seed();
  std::mt19937 rng{uint32_t(seed)};
  const int64_t D = 96;
  std::vector<float> x = randn(rng, size_t(D), 3.0f);
  std::vector<float> y(static_cast<size_t>(D));
  x[5] = 0.0f;
  std::vector<uint8_t> buf(size_t(kv_row_bytes(KvType::kQ8_0, D)));
  for (KvType t : {KvType::kF16, KvType::kBF16}) {
    std::vector<uint8_t> b(size_t(kv_row_bytes(t, D)));
    kv_encode_row(t, x.data(), D, b.data());
    kv_decode_row(t, b.data(), D, y.data());
    for (int64_t i = 0; i < D; ++i) {
      const float want =
          t == KvType::kF16 ? f16_to_f32(f32_to_f16(x[i])) : bf16_to_f32(f32_to_bf16(x[i]));
      ASSERT_EQ(y[i], want) << kv_type_name(t) << " index " << i << " seed " << seed;
    }
  }
  kv_encode_row(KvType::kQ8_0, x.data(), D, buf.data());
  kv_decode_row(KvType::kQ8_0, buf.data(), D, y.data());
  for (int64_t b = 0; b < D / 32; ++b) {
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[size_t(b * 32 + j)]));
    // The scale is stored as f16: the reconstruction is within half a step plus the scale's own
    // rounding (2^-11 relative) times the largest code.
    const float step = amax / 127.0f, tol = 0.5f * step + 127.0f * step * 0x1p-11f;
    for (int j = 0; j < 32; ++j) {
      const size_t i = size_t(b * 32 + j);
      ASSERT_LE(std::fabs(y[i] - x[i]), tol) << "q8_0 index " << i << " seed " << seed;
    }
  }
  // A block of zeros stays zeros (scale 0, no division by it).
  std::vector<float> z(32, 0.0f), zy(32, 1.0f);
  kv_encode_row(KvType::kQ8_0, z.data(), 32, buf.data());
  kv_decode_row(KvType::kQ8_0, buf.data(), 32, zy.data());
  for (float v : zy) EXPECT_EQ(v, 0.0f);
}

template <KvType T>
void check_kernels(std::mt19937& rng, int64_t D, uint64_t seed) {
  std::vector<float> q = randn(rng, size_t(D)), x = randn(rng, size_t(D));
  std::vector<float> dec(static_cast<size_t>(D));
  std::vector<uint8_t> row(size_t(kv_row_bytes(T, D)));
  kv_encode_row(T, x.data(), D, row.data());
  kv_decode_row(T, row.data(), D, dec.data());
  double want = 0, mag = 0;
  for (int64_t i = 0; i < D; ++i) {
    want += double(q[size_t(i)]) * dec[size_t(i)];
    mag += std::fabs(double(q[size_t(i)]) * dec[size_t(i)]);
  }
  EXPECT_NEAR(kv::dot<T>(q.data(), row.data(), D), want, 1e-6 * mag + 1e-7)
      << kv_type_name(T) << " D " << D << " seed " << seed;
  std::vector<float> y = randn(rng, size_t(D)), y0 = y;
  const float a = 0.75f;
  kv::axpy<T>(a, row.data(), y.data(), D);
  for (int64_t i = 0; i < D; ++i) {
    const double w = double(y0[size_t(i)]) + double(a) * dec[size_t(i)];
    ASSERT_NEAR(y[size_t(i)], w, 1e-6 * (std::fabs(w) + 1))
        << kv_type_name(T) << " D " << D << " index " << i << " seed " << seed;
  }
}

TEST(KvType, TypedKernelsMatchDecodedRows) {
  const uint64_t seed = test::draw_seed();
  std::mt19937 rng{uint32_t(seed)};
  for (int64_t D : {8, 24, 32, 40, 64, 128}) {
    check_kernels<KvType::kF32>(rng, D, seed);
    check_kernels<KvType::kF16>(rng, D, seed);
    check_kernels<KvType::kBF16>(rng, D, seed);
    if (D % 32 == 0) check_kernels<KvType::kQ8_0>(rng, D, seed);
  }
}

const Model& tiny() {
  static const Model m = Model::load(
      std::filesystem::path(MOA_REF_DATA).parent_path().parent_path() / "models" / "moa-tiny");
  return m;
}

std::vector<int32_t> test_ids(int64_t vocab, int n) {
  std::vector<int32_t> ids;
  for (int i = 0; i < n; ++i) ids.push_back(int32_t((i * 37 + 5) % vocab));
  return ids;
}

// Prefill logits of the prompt's last position, then the logits of `steps` decoded tokens.
std::vector<float> run(const Model& m, const CacheSpec& spec, const std::vector<int32_t>& ids,
                       int steps) {
  Session s(m, spec);
  std::vector<float> out = s.prefill(ids);
  for (int k = 0; k < steps; ++k) {
    std::vector<float> l = s.decode(int32_t((k * 11 + 3) % m.cfg.vocab));
    out.insert(out.end(), l.begin(), l.end());
  }
  return out;
}

CacheSpec with_type(CacheSpec s, KvType t) {
  s.kv_type = t;
  return s;
}

TEST(KvType, CoveringPlanEqualsDenseBitwiseInEveryType) {
  const Model& m = tiny();
  const std::vector<int32_t> ids = test_ids(m.cfg.vocab, 80);
  const int steps = 6;
  const int64_t n = int64_t(ids.size()) + steps;
  Plan plan = Plan::uniform(m.cfg.layers, m.cfg.heads, 0.0, 1.0);
  plan.set_sink(4);
  const CacheSpec sparse = spec_from_plan(plan, m.cfg.attention_shape(), n);
  const CacheSpec dense = AttentionSpec::dense(m.cfg.attention_shape(), n);
  for (KvType t : kAll) {
    const std::vector<float> a = run(m, with_type(sparse, t), ids, steps);
    const std::vector<float> b = run(m, with_type(dense, t), ids, steps);
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i)
      ASSERT_EQ(a[i], b[i]) << kv_type_name(t) << " index " << i;
  }
}

// Relative L2 distance of each type's logits (prefill, decode) from the f32 cache's, on the shipped
// model, dense and under a window plan and H2O. Measured on 2026-12-03: f16 about 1.0e-3 in all
// three; bf16 1.8e-2 / 3.7e-2 / 6.7e-2; q8_0 5.8e-2 / 1.0e-1 / 9.2e-2 (head_dim 32: one q8_0 block
// per row, so one outlier dimension sets the whole row's step). The limits are about twice that.
TEST(KvType, EveryTypeCloseToF32) {
  const Model& m = tiny();
  const std::vector<int32_t> ids = test_ids(m.cfg.vocab, 160);
  const int steps = 8;
  const int64_t n = int64_t(ids.size()) + steps;
  Plan plan = Plan::uniform(m.cfg.layers, m.cfg.heads, 0.0, 0.25);
  plan.set_params(8, 16, 32);
  struct Case {
    const char* name;
    CacheSpec spec;
  } cases[] = {{"dense", AttentionSpec::dense(m.cfg.attention_shape(), n)},
               {"window", spec_from_plan(plan, m.cfg.attention_shape(), n)},
               {"h2o", CacheSpec::h2o_at_density(m.cfg.attention_shape(), n, 0.5)}};
  const std::pair<KvType, double> limits[] = {
      {KvType::kF16, 3e-3}, {KvType::kBF16, 0.15}, {KvType::kQ8_0, 0.2}};
  for (const Case& c : cases) {
    const std::vector<float> ref = run(m, c.spec, ids, steps);
    for (auto [t, limit] : limits) {
      const std::vector<float> got = run(m, with_type(c.spec, t), ids, steps);
      double num = 0, den = 0;
      for (size_t i = 0; i < ref.size(); ++i) {
        num += (double(got[i]) - ref[i]) * (double(got[i]) - ref[i]);
        den += double(ref[i]) * ref[i];
      }
      const double rel = std::sqrt(num / den);
      std::printf("%s %s: relative L2 of logits vs f32 %.2e (limit %.0e)\n", c.name,
                  kv_type_name(t), rel, limit);
      EXPECT_LT(rel, limit) << c.name << " " << kv_type_name(t);
      EXPECT_GT(rel, 0.0) << c.name << " " << kv_type_name(t) << ": the type changed nothing";
    }
  }
}

TEST(KvType, CacheBytesFollowTheType) {
  const Model& m = tiny();
  const int64_t n = 1024;
  const int64_t D = m.cfg.head_dim;
  Plan plan = Plan::uniform(m.cfg.layers, m.cfg.heads, 0.0, 0.25);
  const CacheSpec dense = AttentionSpec::dense(m.cfg.attention_shape(), n);
  const CacheSpec sparse = spec_from_plan(plan, m.cfg.attention_shape(), n);
  const CacheSpec h2o = CacheSpec::h2o_at_density(m.cfg.attention_shape(), n, 0.25);
  for (KvType t : kAll) {
    const double ratio = double(kv_row_bytes(t, D)) / double(kv_row_bytes(KvType::kF32, D));
    for (const CacheSpec* s : {&dense, &sparse, &h2o}) {
      const CacheSpec typed = with_type(*s, t);
      EXPECT_EQ(double(cache_bytes(typed)), ratio * double(cache_bytes(*s))) << kv_type_name(t);
      EXPECT_EQ(make_cache(typed)->bytes(), cache_bytes(typed)) << kv_type_name(t);
    }
    // Window caches: the stored density times the dense bytes, in every type.
    const double stored = plan.stored_density(m.cfg.attention_shape(), n);
    EXPECT_NEAR(double(cache_bytes(with_type(sparse, t))),
                stored * double(cache_bytes(with_type(dense, t))),
                1e-9 * double(cache_bytes(with_type(dense, t))))
        << kv_type_name(t);
  }
}

}  // namespace
}  // namespace moa
