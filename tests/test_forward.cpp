// The forward pass against float64 PyTorch fixtures (tests/data/make_llama_fixtures.py):
// logits of a full prefill, step-by-step decode equal to prefill, and the sink+window mask.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "moa/core/error.h"
#include "moa/model/forward.h"
#include "moa/attention/h2o_cache.h"
#include "moa/model/model.h"
#include "test_util.h"

namespace moa {
namespace {

const std::string kFixtures = std::string(MOA_TEST_DATA) + "/fixtures/";

nlohmann::json load_json(const std::string& path) {
  std::ifstream f(path);
  EXPECT_TRUE(f.good()) << path;
  return nlohmann::json::parse(f);
}

std::vector<float> flat_logits(const nlohmann::json& e) {
  std::vector<float> r;
  for (auto& row : e["logits"]) {
    for (auto& x : row) r.push_back(x.get<float>());
  }
  return r;
}

// Logits for all positions from one prefill.
std::vector<float> prefill_logits(const Model& m, const AttentionSpec& spec, const std::vector<int32_t>& ids) {
  return test::prefill_logits(m, ids, &spec);
}

class ForwardFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(ForwardFixture, PrefillMatchesPyTorch) {
  const std::string dir = kFixtures + GetParam();
  Model m = Model::load(dir);
  auto e = load_json(dir + "/expected.json");
  std::vector<int32_t> ids = e["ids"].get<std::vector<int32_t>>();
  auto spec = AttentionSpec::dense(m.cfg.layers, m.cfg.heads, m.cfg.kv_heads, m.cfg.head_dim,
                                   int64_t(ids.size()));
  auto got = prefill_logits(m, spec, ids);
  auto want = flat_logits(e);
  // 1e-4 relative to the logit scale (absolute floor for logits near zero).
  EXPECT_TRUE(test::all_close(got, want, 1e-4, 1e-4));
  // NLL per token.
  const int64_t V = m.cfg.vocab;
  auto nll = e["nll_per_token"].get<std::vector<double>>();
  for (size_t t = 0; t + 1 < ids.size(); ++t) {
    EXPECT_NEAR(token_nll(&got[t * size_t(V)], V, ids[t + 1]), nll[t], 1e-4) << "token " << t + 1;
  }
}

TEST_P(ForwardFixture, DecodeStepByStepEqualsPrefill) {
  const std::string dir = kFixtures + GetParam();
  Model m = Model::load(dir);
  auto e = load_json(dir + "/expected.json");
  std::vector<int32_t> ids = e["ids"].get<std::vector<int32_t>>();
  const int64_t T = int64_t(ids.size()), V = m.cfg.vocab;
  auto spec = AttentionSpec::dense(m.cfg.layers, m.cfg.heads, m.cfg.kv_heads, m.cfg.head_dim, T);
  auto full = prefill_logits(m, spec, ids);
  Session s(m, spec);
  std::vector<float> step = s.prefill({ids[0]});
  std::vector<float> got(step);
  for (int64_t t = 1; t < T; ++t) {
    step = s.decode(ids[size_t(t)]);
    got.insert(got.end(), step.begin(), step.end());
  }
  EXPECT_TRUE(test::all_close(got, full, 1e-5, 1e-5));
  // Prefill of a prefix then decode of the rest agrees too.
  Session s2(m, spec);
  std::vector<int32_t> prefix(ids.begin(), ids.begin() + T / 2);
  step = s2.prefill(prefix);
  for (int64_t t = T / 2; t < T; ++t) step = s2.decode(ids[size_t(t)]);
  EXPECT_TRUE(test::all_close(step, std::span<const float>(full).subspan(size_t((T - 1) * V)), 1e-5, 1e-5));
}

INSTANTIATE_TEST_SUITE_P(Variants, ForwardFixture,
                         ::testing::Values("llama_gqa_bf16", "llama_mqa_llama3rope", "qwen2_bias_f16",
                                           "mistral_f32", "llama_linear_rope"));

// Per-head sink + window masks (different windows inside one GQA group) against PyTorch, in
// prefill and in step-by-step decode through the ring buffer.
TEST(ForwardMasked, SinkWindowMatchesPyTorch) {
  const std::string dir = kFixtures + "llama_gqa_bf16";
  Model m = Model::load(dir);
  auto e = load_json(dir + "/expected_masked.json");
  std::vector<int32_t> ids = e["ids"].get<std::vector<int32_t>>();
  const int64_t T = int64_t(ids.size()), V = m.cfg.vocab, sink = e["sink"].get<int64_t>();
  AttentionSpec spec = AttentionSpec::dense(m.cfg.layers, m.cfg.heads, m.cfg.kv_heads, m.cfg.head_dim, T);
  auto caches = e["cache_sizes"];
  for (int64_t l = 0; l < m.cfg.layers; ++l) {
    for (int64_t h = 0; h < m.cfg.heads; ++h) {
      const int64_t cache = caches[size_t(l)][size_t(h)].get<int64_t>();
      const int64_t S = std::min(cache, sink);
      spec.spans[size_t(l * m.cfg.heads + h)] = {S, cache - S};
    }
  }
  auto want = flat_logits(e);
  auto got = prefill_logits(m, spec, ids);
  EXPECT_TRUE(test::all_close(got, want, 1e-4, 1e-4));
  Session s(m, spec);
  std::vector<float> step = s.prefill({ids[0]});
  std::vector<float> dec(step);
  for (int64_t t = 1; t < T; ++t) {
    step = s.decode(ids[size_t(t)]);
    dec.insert(dec.end(), step.begin(), step.end());
  }
  EXPECT_TRUE(test::all_close(dec, want, 1e-4, 1e-4));
  // The cache is smaller than dense: sink + largest window of each group.
  WindowCache dense(AttentionSpec::dense(m.cfg.attention_shape(), T));
  EXPECT_LT(s.cache().bytes(), dense.bytes());
  (void)V;
}

}  // namespace
}  // namespace moa

namespace moa {
namespace {

// A batch of sequences decoding together gives each sequence what it gets alone.
TEST(ForwardBatch, BatchDecodeEqualsSingle) {
  Model m = Model::load(kFixtures + "llama_gqa_bf16");
  const int64_t V = m.cfg.vocab, T = 20;
  AttentionSpec spec = AttentionSpec::dense(m.cfg.layers, m.cfg.heads, m.cfg.kv_heads, m.cfg.head_dim, T);
  spec.spans[1] = {2, 5};  // one sparse head, so the ring is exercised too
  const int64_t B = 5;
  std::vector<std::vector<int32_t>> prompts(B);
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t t = 0; t < 3 + b; ++t) prompts[size_t(b)].push_back(int32_t((b * 31 + t * 7) % V));
  }
  Session batch(m, spec, B);
  for (int64_t b = 0; b < B; ++b) batch.prefill(prompts[size_t(b)], nullptr, b);
  std::vector<Session> singles;
  singles.reserve(B);
  for (int64_t b = 0; b < B; ++b) {
    singles.emplace_back(m, spec);
    singles.back().prefill(prompts[size_t(b)]);
  }
  for (int step = 0; step < 8; ++step) {
    std::vector<int32_t> ids;
    for (int64_t b = 0; b < B; ++b) ids.push_back(int32_t((step * 13 + b * 5) % V));
    auto got = batch.decode_batch(ids);
    for (int64_t b = 0; b < B; ++b) {
      auto want = singles[size_t(b)].decode(ids[size_t(b)]);
      EXPECT_TRUE(test::all_close(std::span<const float>(got).subspan(size_t(b * V), size_t(V)), want, 1e-5, 1e-5))
          << "step " << step << " seq " << b;
    }
  }
}

// The benchmark's synthetic fill leaves every cache as a prefill of the same length would: same
// length, bytes and (H2O) filled slots, and decoding from it works.
TEST(ForwardBatch, SyntheticFillMatchesPrefillShape) {
  Model m = Model::load(kFixtures + "llama_gqa_bf16");
  const int64_t T = 17, n_ctx = 24, V = m.cfg.vocab;
  AttentionSpec windowed = AttentionSpec::dense(m.cfg.layers, m.cfg.heads, m.cfg.kv_heads, m.cfg.head_dim, n_ctx);
  windowed.spans[1] = {2, 5};
  CacheSpec h2o = CacheSpec::h2o_at_density(m.cfg.attention_shape(), n_ctx, 0.5);
  ASSERT_TRUE(h2o.is_h2o());
  for (const CacheSpec& spec : {CacheSpec(windowed), h2o}) {
    std::vector<int32_t> ids(static_cast<size_t>(T));
    for (int64_t t = 0; t < T; ++t) ids[size_t(t)] = int32_t((t * 11 + 3) % V);
    Session real(m, spec, 2), fake(m, spec, 2);
    real.prefill(ids, nullptr, 0);
    real.prefill(ids, nullptr, 1);
    fake.fill_synthetic(T, 5);
    EXPECT_EQ(fake.kv_bytes(), real.kv_bytes());
    for (int64_t b = 0; b < 2; ++b) {
      EXPECT_EQ(fake.pos(b), T);
      if (spec.is_h2o()) {
        const auto& f = dynamic_cast<const H2oCache&>(fake.cache(b));
        const auto& r = dynamic_cast<const H2oCache&>(real.cache(b));
        for (int64_t l = 0; l < m.cfg.layers; ++l) {
          for (int64_t g = 0; g < m.cfg.kv_heads; ++g) {
            EXPECT_EQ(f.filled(l, g), r.filled(l, g));
          }
        }
      }
    }
    auto logits = fake.decode_batch({1, 2});
    for (float x : logits) ASSERT_TRUE(std::isfinite(x));
    EXPECT_EQ(fake.pos(0), T + 1);
    EXPECT_DEATH(fake.fill_synthetic(T, 5), "used cache");
  }
}

}  // namespace
}  // namespace moa

namespace moa {
namespace {

// e computes exactly m's logits on a fixed sequence of n tokens.
void expect_same_logits(const Model& e, const Model& m, int n, const std::string& name) {
  std::vector<int32_t> ids;
  for (int t = 0; t < n; ++t) ids.push_back(int32_t((t * 37 + 3) % m.cfg.vocab));
  auto spec = [n](const Model& x) {
    return AttentionSpec::dense(x.cfg.layers, x.cfg.heads, x.cfg.kv_heads, x.cfg.head_dim, n);
  };
  EXPECT_EQ(prefill_logits(e, spec(e), ids), prefill_logits(m, spec(m), ids)) << name;
}

// A depth-expanded model computes exactly the original's logits (zero output projections make
// the new layers identities), for every fixture family, while its new layers are trainable.
TEST(ModelExpand, ExpandedModelKeepsLogitsExactly) {
  for (std::string name : {"llama_gqa_bf16", "qwen2_bias_f16", "mistral_f32"}) {
    Model m = Model::load(kFixtures + name);
    Model e = expand_depth(m, {0, int64_t(m.cfg.layers - 1), 0}, 5);
    ASSERT_EQ(e.cfg.layers, m.cfg.layers + 3) << name;
    // Inserted after layer 0 twice: layers 1 and 2 are new, layer 3 is the original layer 1.
    for (int64_t i : {1, 2}) {
      for (float x : e.layers[size_t(i)].wo.to_f32()) ASSERT_EQ(x, 0.0f) << name;
      for (float x : e.layers[size_t(i)].w_down.to_f32()) ASSERT_EQ(x, 0.0f) << name;
      float q_abs = 0;
      for (float x : e.layers[size_t(i)].wq.to_f32()) q_abs += std::fabs(x);
      EXPECT_GT(q_abs, 0.0f) << name;  // random, not zero: the block can learn
    }
    EXPECT_EQ(e.layers[3].wq.to_f32(), m.layers[1].wq.to_f32()) << name;
    expect_same_logits(e, m, 13, name);
  }
  Model m = Model::load(kFixtures + "mistral_f32");
  EXPECT_THROW(expand_depth(m, {m.cfg.layers}, 0), InputError);
  EXPECT_THROW(expand_depth(m, {-1}, 0), InputError);
  EXPECT_THROW(expand_depth(m, {}, 0), InputError);
}

TEST(ModelExpand, CopiedLayersKeepLogitsAndStartFromTheirSource) {
  for (std::string name : {"llama_gqa_bf16", "qwen2_bias_f16", "mistral_f32"}) {
    Model m = Model::load(kFixtures + name);
    const int64_t last = m.cfg.layers - 1;
    Model e = expand_depth(m, {0, last}, 5, ExpandInit::kCopy);
    ASSERT_EQ(e.cfg.layers, m.cfg.layers + 2) << name;
    // Layer 1 is the copy of layer 0; the last layer is the copy of the original last one.
    for (auto [copy, src] : {std::pair<int64_t, int64_t>{1, 0}, {e.cfg.layers - 1, last}}) {
      const LayerWeights& c = e.layers[size_t(copy)];
      const LayerWeights& s = m.layers[size_t(src)];
      EXPECT_EQ(c.wq.to_f32(), s.wq.to_f32()) << name;
      EXPECT_EQ(c.wk.to_f32(), s.wk.to_f32()) << name;
      EXPECT_EQ(c.wv.to_f32(), s.wv.to_f32()) << name;
      EXPECT_EQ(c.w_gate.to_f32(), s.w_gate.to_f32()) << name;
      EXPECT_EQ(c.bq, s.bq) << name;
      EXPECT_EQ(c.attn_norm, s.attn_norm) << name;
      for (float x : c.wo.to_f32()) ASSERT_EQ(x, 0.0f) << name;
      for (float x : c.w_down.to_f32()) ASSERT_EQ(x, 0.0f) << name;
      for (float x : c.bo) ASSERT_EQ(x, 0.0f) << name;
      for (float x : c.b_down) ASSERT_EQ(x, 0.0f) << name;
    }
    expect_same_logits(e, m, 11, name);
  }
}

}  // namespace
}  // namespace moa

namespace moa {
namespace {

// A sequence built in chunks (a prompt prefilled in pieces, or a follow-up turn appended to reused
// history) gives the logits of one full prefill, for dense and per-head sink + window spans, with
// f32 and f16 caches; and a checkpoint restored then extended equals a fresh prefill.
TEST(ForwardExtend, ChunksEqualOnePrefill) {
  Model m = Model::load(kFixtures + "llama_gqa_bf16");
  const int64_t V = m.cfg.vocab, T = 40;
  std::vector<int32_t> ids;
  for (int64_t t = 0; t < T; ++t) ids.push_back(int32_t((t * 37 + 11) % V));
  AttentionSpec sparse = AttentionSpec::dense(m.cfg.attention_shape(), T);
  for (size_t i = 0; i < sparse.spans.size(); ++i) sparse.spans[i] = {int64_t(i % 3), 6 + int64_t(i) % 9};
  for (const AttentionSpec& a : {AttentionSpec::dense(m.cfg.attention_shape(), T), sparse}) {
    for (KvType kv : {KvType::kF32, KvType::kF16}) {
      CacheSpec spec(a);
      spec.kv_type = kv;
      Session full(m, spec);
      const std::vector<float> want = full.prefill(ids);
      Session chunked(m, spec);
      chunked.prefill({ids.begin(), ids.begin() + 7});
      chunked.extend({ids.begin() + 7, ids.begin() + 8});
      chunked.extend({ids.begin() + 8, ids.begin() + 29});
      const std::vector<float> got = chunked.extend({ids.begin() + 29, ids.end()});
      EXPECT_EQ(chunked.pos(), T);
      EXPECT_TRUE(test::all_close(got, want, 1e-5, 1e-5)) << "dense " << a.is_dense();
      // Checkpoint after 12 tokens, wander off, come back and take another branch.
      Session s(m, spec);
      s.prefill({ids.begin(), ids.begin() + 12});
      auto cp = s.checkpoint(0);
      s.extend({ids.begin() + 20, ids.end()});
      s.restore(0, *cp);
      EXPECT_EQ(s.pos(), 12);
      const std::vector<float> branch = s.extend({ids.begin() + 12, ids.end()});
      EXPECT_TRUE(test::all_close(branch, want, 1e-5, 1e-5));
      s.reset(0);
      EXPECT_EQ(s.pos(), 0);
      EXPECT_TRUE(test::all_close(s.prefill(ids), want, 0, 0));
    }
  }
}

// Decoding a subset of a session's sequences leaves the others untouched and gives each what a
// full batch step gives it.
TEST(ForwardBatch, SubsetDecodeEqualsFullBatch) {
  Model m = Model::load(kFixtures + "llama_gqa_bf16");
  const int64_t V = m.cfg.vocab, T = 16;
  AttentionSpec spec = AttentionSpec::dense(m.cfg.attention_shape(), T);
  Session all(m, spec, 3), some(m, spec, 3);
  for (int64_t b = 0; b < 3; ++b) {
    std::vector<int32_t> p = {int32_t(b + 1), int32_t(b + 2), int32_t(b + 3)};
    all.prefill(p, nullptr, b);
    some.prefill(p, nullptr, b);
  }
  const auto want = all.decode_batch({5, 6, 7});
  const auto got = some.decode_seqs({2, 0}, {7, 5});
  EXPECT_EQ(some.pos(1), 3);
  EXPECT_EQ(some.pos(0), 4);
  EXPECT_TRUE(test::all_close(std::span<const float>(got).subspan(0, size_t(V)),
                              std::span<const float>(want).subspan(size_t(2 * V), size_t(V)), 1e-5, 1e-5));
  EXPECT_TRUE(test::all_close(std::span<const float>(got).subspan(size_t(V), size_t(V)),
                              std::span<const float>(want).subspan(0, size_t(V)), 1e-5, 1e-5));
}

}  // namespace
}  // namespace moa
