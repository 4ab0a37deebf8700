// From plans to per-head spans and KV memory: the reference plans' KV bytes equal their KV density
// times dense bytes (within one block per head), and a plan whose caches cover N runs exactly as
// dense.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "moa/model/forward.h"
#include "moa/attention/kv_cache.h"
#include "moa/model/model.h"
#include "moa/attention/plan.h"
#include "moa/attention/spans.h"
#include "test_util.h"

namespace moa {
namespace {

namespace fs = std::filesystem;

TEST(Spans, ReferencePlansKvBytesFollowDensity) {
  for (auto& e : fs::directory_iterator(fs::path(MOA_REF_DATA) / "plans")) {
    const std::string name = e.path().filename().string();
    ModelConfig cfg = ModelConfig::load(fs::path(MOA_TEST_DATA) / "configs" / (name + ".json"));
    Plan plan = Plan::load(e.path() / "moa_alpha_beta.json");
    for (int64_t n : {4096, 8192, 16384}) {
      AttentionSpec spec = spec_from_plan(plan, cfg, n);
      const int64_t bytes = KvCache::bytes_for(spec);
      const double dense = double(dense_kv_bytes(cfg, n));
      // A KV head stores the largest cache of its query group: for MHA that is the plan's KV
      // density exactly; for GQA it is the group maxima's mean, which `plan check` reports as
      // stored_density.
      const ModelShape shape{cfg.layers, cfg.heads, cfg.kv_heads};
      PlanCaches caches = plan.caches(shape, n);
      double group_max = 0;
      for (int64_t l = 0; l < cfg.layers; ++l) {
        for (int64_t g = 0; g < cfg.kv_heads; ++g) {
          int64_t m = 0;
          for (int64_t h = g * cfg.group(); h < (g + 1) * cfg.group(); ++h) m = std::max(m, caches(l, h).kept);
          group_max += double(m);
        }
      }
      const double per_kv_head = double(2 * cfg.head_dim * sizeof(float));
      const double slack = double(kPlanBlock) * per_kv_head * double(cfg.layers * cfg.kv_heads);
      EXPECT_NEAR(double(bytes), group_max * per_kv_head, slack) << name << " N=" << n;
      const double stored = plan.stored_density(shape, n);
      EXPECT_NEAR(stored, group_max / double(cfg.layers * cfg.kv_heads * n), 1e-12) << name << " N=" << n;
      EXPECT_NEAR(double(bytes), stored * dense, slack) << name << " N=" << n;
      EXPECT_GE(stored, plan.kv_density(shape, n) - 1e-12) << name << " N=" << n;
      if (cfg.kv_heads == cfg.heads) {
        EXPECT_NEAR(stored, plan.kv_density(shape, n), 1e-12) << name;
        EXPECT_NEAR(double(bytes), plan.kv_density(shape, n) * dense, slack) << name << " N=" << n;
      }
      EXPECT_LT(double(bytes), 0.8 * dense) << name << " N=" << n;
      // StreamingLLM at 0.5 is uniform, so every group's maximum is the mean: exactly density.
      Plan uni = Plan::load(e.path() / "streamingllm_alpha_beta.json");
      EXPECT_NEAR(double(KvCache::bytes_for(spec_from_plan(uni, cfg, n))),
                  uni.kv_density(shape, n) * dense, slack) << name << " streaming N=" << n;
    }
  }
}

// When every head's cache covers N, the sparse path must be the dense computation exactly.
TEST(Spans, CoveringPlanEqualsDenseBitwise) {
  Model m = Model::load(std::string(MOA_TEST_DATA) + "/fixtures/llama_gqa_bf16");
  std::vector<int32_t> ids;
  for (int i = 0; i < 24; ++i) ids.push_back((i * 37 + 5) % int(m.cfg.vocab));
  const int64_t T = int64_t(ids.size());
  Plan plan = Plan::uniform(m.cfg.layers, m.cfg.heads, 0.0, 1.0);
  plan.set_sink(4);
  AttentionSpec sparse = spec_from_plan(plan, m.cfg, T);
  AttentionSpec dense = AttentionSpec::dense(m.cfg.layers, m.cfg.heads, m.cfg.kv_heads, m.cfg.head_dim, T);
  Session a(m, sparse), b(m, dense);
  std::vector<float> ha, hb;
  a.prefill(ids, &ha);
  b.prefill(ids, &hb);
  ASSERT_EQ(ha.size(), hb.size());
  for (size_t i = 0; i < ha.size(); ++i) ASSERT_EQ(ha[i], hb[i]) << "index " << i;
}

}  // namespace
}  // namespace moa
