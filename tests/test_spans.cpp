// From plans to per-head spans and KV memory: the reference plans' KV bytes equal their KV density
// times dense bytes (within one block per head), and a plan whose caches cover N runs exactly as
// dense.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

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
      AttentionSpec spec = spec_from_plan(plan, cfg.attention_shape(), n);
      const int64_t bytes = WindowCache::bytes_for(spec);
      const double dense = double(dense_kv_bytes(cfg.attention_shape(), n));
      // A KV head stores the largest cache of its query group: for MHA that is the plan's KV
      // density exactly; for GQA it is the group maxima's mean, which `plan check` reports as
      // stored_density.
      const AttentionShape shape{cfg.layers, cfg.heads, cfg.kv_heads};
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
      EXPECT_NEAR(double(WindowCache::bytes_for(spec_from_plan(uni, cfg.attention_shape(), n))),
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
  AttentionSpec sparse = spec_from_plan(plan, m.cfg.attention_shape(), T);
  AttentionSpec dense = AttentionSpec::dense(m.cfg.layers, m.cfg.heads, m.cfg.kv_heads, m.cfg.head_dim, T);
  Session a(m, sparse), b(m, dense);
  std::vector<float> ha, hb;
  a.prefill(ids, &ha);
  b.prefill(ids, &hb);
  ASSERT_EQ(ha.size(), hb.size());
  for (size_t i = 0; i < ha.size(); ++i) ASSERT_EQ(ha[i], hb[i]) << "index " << i;
}

// A moa-plan/1 file states its own sink (item 5 of the architecture issue): `moa score --plan`
// without --sink must run with it. The plan below gives every head of the PyTorch masked fixture
// its cache (alpha = cache, beta 0, block 1) with the fixture's sink of 2 and a min_cache of 3,
// which a silent --sink 64 would refuse ("sink is 64 but min_cache is 3"). The NLL per token must
// match PyTorch's double-precision reference.
TEST(Spans, PlanOwnSinkIsHonoured) {
  const fs::path dir = fs::path(MOA_TEST_DATA) / "fixtures" / "llama_gqa_bf16";
  nlohmann::json e = nlohmann::json::parse(std::ifstream(dir / "expected_masked.json"));
  ASSERT_EQ(e["sink"].get<int64_t>(), 2);
  nlohmann::json alphas = nlohmann::json::array(), betas = nlohmann::json::array();
  for (auto& layer : e["cache_sizes"]) {
    alphas.push_back(layer);
    betas.push_back(std::vector<double>(layer.size(), 0.0));
  }
  nlohmann::json plan = {{"format", "moa-plan/1"}, {"sink", 2}, {"block", 1}, {"min_cache", 3},
                         {"rules", {{{"max_length", nullptr}, {"alphas", alphas}, {"betas", betas}}}}};
  const fs::path tmp = test::temp_dir("plan_own_sink");
  std::ofstream(tmp / "plan.json") << plan.dump();
  std::ofstream ids(tmp / "ids.txt");
  for (auto& id : e["ids"]) ids << id.get<int64_t>() << " ";
  ids.close();
  test::RunResult r = test::run_moa("score -m " + dir.string() + " --ids " + (tmp / "ids.txt").string() +
                                    " --plan " + (tmp / "plan.json").string() + " --kv-type f32 --json -t 1");
  ASSERT_EQ(r.status, 0) << r.err;
  auto got = nlohmann::json::parse(r.out)["nll_per_token"].get<std::vector<double>>();
  auto want = e["nll_per_token"].get<std::vector<double>>();
  ASSERT_EQ(got.size(), want.size());
  for (size_t t = 0; t < got.size(); ++t) EXPECT_NEAR(got[t], want[t], 1e-4) << "token " << t + 1;
  // --sink still overrides when given: 0 sink tokens is a different mask, so different NLLs.
  r = test::run_moa("score -m " + dir.string() + " --ids " + (tmp / "ids.txt").string() + " --plan " +
                    (tmp / "plan.json").string() + " --sink 0 --kv-type f32 --json -t 1");
  ASSERT_EQ(r.status, 0) << r.err;
  auto no_sink = nlohmann::json::parse(r.out)["nll_per_token"].get<std::vector<double>>();
  double diff = 0;
  for (size_t t = 0; t < got.size(); ++t) diff = std::max(diff, std::fabs(no_sink[t] - want[t]));
  EXPECT_GT(diff, 1e-3);
}

}  // namespace
}  // namespace moa
