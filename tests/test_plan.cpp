// Plans: reading and writing both forms, the cache rule on its edges, densities against
// brute-force counts of the token-exact mask, shape checks, and `moa plan check`.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "moa/model/config.h"
#include "moa/core/error.h"
#include "moa/attention/plan.h"
#include "test_util.h"

namespace moa {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const char* kModels[] = {
    "lmsys--vicuna-7b-v1.5-16k",
    "lmsys--vicuna-13b-v1.5-16k",
    "gradientai--Llama-3-8B-Instruct-262k",
    "gradientai--Llama-3-70B-Instruct-262k",
    "meta-llama--Llama-3.2-1B-Instruct",
    "meta-llama--Llama-3.2-3B-Instruct",
};

// The shape table of data/moa-reference/README.md: layers, query heads, KV heads.
struct RefShape {
  const char* model;
  AttentionShape shape;
};
const RefShape kShapes[] = {
    {"lmsys--vicuna-7b-v1.5-16k", {32, 32, 32}},
    {"lmsys--vicuna-13b-v1.5-16k", {40, 40, 40}},
    {"gradientai--Llama-3-8B-Instruct-262k", {32, 32, 8}},
    {"gradientai--Llama-3-70B-Instruct-262k", {80, 64, 8}},
    {"meta-llama--Llama-3.2-1B-Instruct", {16, 32, 8}},
    {"meta-llama--Llama-3.2-3B-Instruct", {28, 24, 8}},
};

fs::path plan_path(const std::string& model, const std::string& kind) {
  return fs::path(MOA_REF_DATA) / "plans" / model / (kind + "_alpha_beta.json");
}
fs::path config_path(const std::string& model) {
  return fs::path(MOA_TEST_DATA) / "configs" / (model + ".json");
}
AttentionShape shape_of(const ModelConfig& c) { return {c.layers, c.heads, c.kv_heads}; }

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void spit(const fs::path& p, const std::string& text) {
  std::ofstream f(p, std::ios::binary);
  f << text;
}

// The message of the InputError that `fn` throws ("" and a test failure when none).
template <typename Fn>
std::string input_error_of(Fn&& fn) {
  try {
    fn();
  } catch (const InputError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an InputError";
  return "";
}

bool same_rules(const Plan& a, const Plan& b) {
  if (a.rule_set_count() != b.rule_set_count()) return false;
  for (size_t s = 0; s < a.rule_set_count(); ++s) {
    const auto& x = a.rule_sets()[s];
    const auto& y = b.rule_sets()[s];
    if (x.max_length != y.max_length || x.alphas != y.alphas || x.betas != y.betas) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Reference plans

TEST(PlanReference, ConfigsMatchTheReadmeTable) {
  for (const auto& r : kShapes) {
    ModelConfig c = ModelConfig::load(config_path(r.model));
    EXPECT_EQ(c.layers, r.shape.layers) << r.model;
    EXPECT_EQ(c.heads, r.shape.heads) << r.model;
    EXPECT_EQ(c.kv_heads, r.shape.kv_heads) << r.model;
  }
}

TEST(PlanReference, AllSixLoadAndCheckAgainstTheirModel) {
  for (const auto& r : kShapes) {
    AttentionShape m = shape_of(ModelConfig::load(config_path(r.model)));
    for (const char* kind : {"moa", "streamingllm"}) {
      SCOPED_TRACE(std::string(r.model) + " " + kind);
      Plan p = Plan::load(plan_path(r.model, kind));
      EXPECT_EQ(p.form(), PlanForm::kReference);
      EXPECT_EQ(p.layers(), m.layers);
      EXPECT_EQ(p.heads(), m.heads);  // reference plans are per query head
      EXPECT_EQ(p.sink(), 64);
      EXPECT_EQ(p.block(), 64);
      EXPECT_EQ(p.min_cache(), 128);
      EXPECT_FALSE(p.check_shape(m));  // not per KV head
      for (int64_t n : {2048, 8192, 16384}) {
        double d = p.kv_density(m, n);
        EXPECT_GT(d, 0.0);
        EXPECT_LE(d, 1.0);
        double pd = p.prefill_density(m, n);
        EXPECT_GT(pd, 0.0);
        EXPECT_LE(pd, 1.0);
      }
    }
  }
}

TEST(PlanReference, StreamingLlmPlansAreUniformAtHalf) {
  for (const auto& r : kShapes) {
    SCOPED_TRACE(r.model);
    Plan p = Plan::load(plan_path(r.model, "streamingllm"));
    auto u = p.uniform_rule();
    ASSERT_TRUE(u.has_value());
    EXPECT_EQ(u->first, 0.0);
    EXPECT_EQ(u->second, 0.5);
    EXPECT_EQ(p.kv_density(r.shape, 8192), 0.5);
    // The MoA plans are not uniform.
    EXPECT_FALSE(Plan::load(plan_path(r.model, "moa")).uniform_rule().has_value());
  }
}

TEST(PlanReference, RefusedForAnotherModelsShape) {
  // Vicuna-7B's plan (32 x 32) against Llama-3.2-3B (28 layers): layer count.
  Plan v7 = Plan::load(plan_path("lmsys--vicuna-7b-v1.5-16k", "moa"));
  std::string msg = input_error_of([&] { v7.check_shape(28, 24, 8); });
  EXPECT_NE(msg.find(plan_path("lmsys--vicuna-7b-v1.5-16k", "moa").string()), std::string::npos)
      << msg;
  EXPECT_NE(msg.find("32 layers"), std::string::npos) << msg;
  EXPECT_NE(msg.find("28 layers"), std::string::npos) << msg;
  EXPECT_NE(msg.find("another model"), std::string::npos) << msg;
  // Llama-3.2-3B's plan (28 x 24) against a 28-layer model with 32 query and 8 KV heads.
  Plan l3 = Plan::load(plan_path("meta-llama--Llama-3.2-3B-Instruct", "moa"));
  msg = input_error_of([&] { l3.check_shape(28, 32, 8); });
  EXPECT_NE(msg.find("layer 0 has 24 heads, model has 32 query heads and 8 KV heads"),
            std::string::npos)
      << msg;
  // Every reference plan against every other model whose shape differs.
  for (const auto& a : kShapes) {
    Plan p = Plan::load(plan_path(a.model, "moa"));
    for (const auto& b : kShapes) {
      bool fits = b.shape.layers == p.layers() &&
                  (b.shape.heads == p.heads() || b.shape.kv_heads == p.heads());
      if (fits) continue;
      msg = input_error_of([&] { p.check_shape(b.shape); });
      EXPECT_NE(msg.find("another model"), std::string::npos) << a.model << " vs " << b.model;
      EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Round trips

TEST(PlanFiles, ReferenceFilesRewriteByteForByte) {
  for (const char* model : kModels) {
    for (const char* kind : {"moa", "streamingllm"}) {
      fs::path src = plan_path(model, kind);
      SCOPED_TRACE(src.string());
      std::string original = slurp(src);
      Plan p = Plan::load(src);
      std::string text = p.to_reference_text();
      ASSERT_EQ(text.size(), original.size());
      EXPECT_TRUE(text == original);
      // Through a file: written atomically, read back identical.
      fs::path dir = test::temp_dir("plan-ref");
      fs::path out = dir / "plan.json";
      p.save(out);
      EXPECT_EQ(slurp(out), original);
      EXPECT_TRUE(same_rules(Plan::load(out), p));
      size_t files = 0;
      for (auto& e : fs::directory_iterator(dir)) files += e.is_regular_file();
      EXPECT_EQ(files, 1u) << "a temp file was left behind";
      fs::remove_all(dir);
    }
  }
}

TEST(PlanFiles, IntegersStayIntegersAndFloatsRoundTripExactly) {
  const std::string text =
      R"({"alphas": [[0, 1024, -2048.0, 0.1]], "betas": [[0.125, 1, 0.3333333333333333, 1e-07]]})";
  Plan p = Plan::parse(text, "ints.json");
  EXPECT_EQ(p.to_reference_text(), text);
  const auto& r = p.rule_sets()[0];
  EXPECT_EQ(r.alphas[0][3], 0.1);
  EXPECT_EQ(r.betas[0][2], 1.0 / 3.0);
  EXPECT_EQ(r.betas[0][3], 1e-7);
  // Extended form keeps them too.
  Plan q = Plan::parse(p.to_extended_text(), "ints-ext.json");
  EXPECT_TRUE(same_rules(p, q));
  EXPECT_EQ(q.to_reference_text(PlanLayout::kCompact), text);
}

TEST(PlanFiles, ExtendedFormRoundTrip) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> ua(-3000, 9000), ub(0, 1);
  std::vector<PlanRules> sets(3);
  sets[0].max_length = 8192;
  sets[1].max_length = 16384;
  for (auto& s : sets) {
    s.alphas.assign(4, std::vector<double>(6));
    s.betas.assign(4, std::vector<double>(6));
    for (auto& row : s.alphas) {
      for (auto& v : row) v = ua(rng);
    }
    for (auto& row : s.betas) {
      for (auto& v : row) v = ub(rng);
    }
  }
  sets[0].alphas[0][0] = 1024;
  sets[0].alphas_int.assign(4, std::vector<bool>(6, false));
  sets[0].alphas_int[0][0] = true;
  Plan p = Plan::from_rules(sets);
  p.set_params(16, 32, 96);
  p.set_per_kv_head(true);
  p.set_model("org/some-model");
  p.density()[8192] = 0.49;
  p.density()[16384] = 0.3333333333333333;
  p.set_lengths(json{{"profile", {2048, 4096, 8192}}, {"extend", 16384}});

  fs::path dir = test::temp_dir("plan-ext");
  fs::path out = dir / "plan.json";
  p.save(out, PlanForm::kExtended);
  Plan q = Plan::load(out);
  EXPECT_EQ(q.form(), PlanForm::kExtended);
  EXPECT_TRUE(same_rules(p, q));
  EXPECT_EQ(q.sink(), 16);
  EXPECT_EQ(q.block(), 32);
  EXPECT_EQ(q.min_cache(), 96);
  EXPECT_TRUE(q.per_kv_head());
  EXPECT_EQ(q.model(), std::optional<std::string>("org/some-model"));
  EXPECT_EQ(q.density(), p.density());
  EXPECT_EQ(q.lengths(), p.lengths());
  EXPECT_EQ(q.to_extended_text(), p.to_extended_text());
  EXPECT_NE(slurp(out).find("[1024, "), std::string::npos);  // integer literal kept
  // Valid JSON that any parser reads.
  json j = json::parse(slurp(out));
  EXPECT_EQ(j["format"], "moa-plan/1");
  EXPECT_TRUE(j["rules"][2]["max_length"].is_null());
  // Not representable in the reference form.
  std::string msg = input_error_of([&] { p.save(dir / "ref.json", PlanForm::kReference); });
  EXPECT_NE(msg.find("extended form"), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(dir / "ref.json"));
  fs::remove_all(dir);
}

TEST(PlanFiles, ReferencePlanThroughExtendedFormAndBack) {
  fs::path src = plan_path("meta-llama--Llama-3.2-1B-Instruct", "moa");
  Plan p = Plan::load(src);
  Plan q = Plan::parse(p.to_extended_text(), "ext.json");
  EXPECT_TRUE(same_rules(p, q));
  EXPECT_EQ(q.to_reference_text(PlanLayout::kCompact), slurp(src));
}

TEST(PlanFiles, UnknownFieldsAreKept) {
  Plan p = Plan::parse(
      R"({"format": "moa-plan/1", "rules": [{"alphas": [[1]], "betas": [[0.5]]}], "note": "x"})",
      "extra.json");
  EXPECT_EQ(p.extra().at("note"), "x");
  EXPECT_EQ(Plan::parse(p.to_extended_text(), "e2.json").extra().at("note"), "x");
}

// ---------------------------------------------------------------------------------------------
// Bad input: one InputError naming the file and the field.

TEST(PlanFiles, BadInputIsOneClearError) {
  struct Case {
    const char* text;
    const char* expect;
  };
  const Case cases[] = {
      {R"({"alphas": [[0, 1], [0]], "betas": [[0, 0], [0, 0]]})",
       "alphas[1] has 1 heads, alphas[0] has 2"},
      {R"({"alphas": [[0, 1], [0, 1]], "betas": [[0, 0], [0, 0], [0, 0]]})",
       "betas has 3 layers, alphas has 2"},
      {R"({"alphas": [[0, 1]], "betas": [[0, 0, 0]]})", "betas[0] has 3 heads, alphas[0] has 2"},
      {R"({"alphas": [[0, "x"]], "betas": [[0, 0]]})", "alphas[0][1] is a string"},
      {R"({"alphas": [[0, true]], "betas": [[0, 0]]})", "alphas[0][1] is a boolean"},
      {R"({"alphas": [[0, null]], "betas": [[0, 0]]})", "alphas[0][1] is null"},
      {R"({"alphas": [[0, 1]], "betas": [[0, NaN]]})", "NaN is not a JSON number"},
      {R"({"alphas": [[0, 1]], "betas": [[0, 1e999]]})", "number overflow"},
      {R"({"alphas": [], "betas": []})", "alphas is empty"},
      {R"({"alphas": [[]], "betas": [[]]})", "alphas[0] is empty"},
      {R"({"alphas": [0, 1], "betas": [[0, 0]]})", "alphas[0] is a number"},
      {R"({"alphas": {"a": 1}, "betas": [[0, 0]]})", "alphas is an object"},
      {R"({"alphas": [[0, 1]]})", "missing field 'betas'"},
      {R"({"betas": [[0, 1]]})", "missing field 'alphas'"},
      {R"([[0, 1]])", "top level is a list"},
      {R"({"alphas": [[0, 1]], "betas": [[0, 0]])", "not valid JSON"},
      {"", "not valid JSON"},
      {R"({"rules": [{"alphas": [[0]], "betas": [[0]]}]})", "has 'rules' but no 'format'"},
      {R"({"format": "moa-plan/2", "rules": []})", "field 'format' is \"moa-plan/2\""},
      {R"({"format": "moa-plan/1"})", "missing field 'rules'"},
      {R"({"format": "moa-plan/1", "rules": []})", "field 'rules' is [], expected a non-empty"},
      {R"({"format": "moa-plan/1", "rules": [{"alphas": [[0]]}]})",
       "missing field 'rules[0].betas'"},
      {R"({"format": "moa-plan/1", "rules": [{"max_length": 8192, "alphas": [[0]], "betas": [[0]]},
          {"max_length": 4096, "alphas": [[0]], "betas": [[0]]}]})",
       "rules[1].max_length is 4096 after rules[0].max_length 8192"},
      {R"({"format": "moa-plan/1", "rules": [{"max_length": null, "alphas": [[0]], "betas": [[0]]},
          {"max_length": 4096, "alphas": [[0]], "betas": [[0]]}]})",
       "rules[0].max_length is null but rules[1] follows it"},
      {R"({"format": "moa-plan/1", "rules": [{"max_length": 8192, "alphas": [[0]], "betas": [[0]]},
          {"max_length": null, "alphas": [[0, 1]], "betas": [[0, 1]]}]})",
       "rules[1].alphas is 1 x 2, rules[0].alphas is 1 x 1"},
      {R"({"format": "moa-plan/1", "rules": [{"max_length": 0, "alphas": [[0]], "betas": [[0]]}]})",
       "rules[0].max_length is 0"},
      {R"({"format": "moa-plan/1", "rules": [{"max_length": "8k", "alphas": [[0]], "betas": [[0]]}]})",
       "rules[0].max_length is \"8k\""},
      {R"({"format": "moa-plan/1", "rules": [{"alphas": [[0]], "betas": [[0, 1]]}]})",
       "rules[0].betas[0] has 2 heads, rules[0].alphas[0] has 1"},
      {R"({"format": "moa-plan/1", "sink": 128, "rules": [{"alphas": [[0]], "betas": [[0]]}]})",
       "sink is 128 but min_cache is 128"},
      {R"({"format": "moa-plan/1", "block": 0, "rules": [{"alphas": [[0]], "betas": [[0]]}]})",
       "block is 0"},
      {R"({"format": "moa-plan/1", "sink": "64", "rules": [{"alphas": [[0]], "betas": [[0]]}]})",
       "field 'sink' is \"64\", expected an integer"},
      {R"({"format": "moa-plan/1", "model": 7, "rules": [{"alphas": [[0]], "betas": [[0]]}]})",
       "field 'model' is 7"},
      {R"({"format": "moa-plan/1", "per_kv_head": 1, "rules": [{"alphas": [[0]], "betas": [[0]]}]})",
       "field 'per_kv_head' is 1"},
      {R"({"format": "moa-plan/1", "density": {"8k": 0.5}, "rules": [{"alphas": [[0]], "betas": [[0]]}]})",
       "density has key \"8k\""},
      {R"({"format": "moa-plan/1", "density": {"8192": "half"}, "rules": [{"alphas": [[0]], "betas": [[0]]}]})",
       "density[\"8192\"] is \"half\""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.text);
    std::string msg = input_error_of([&] { Plan::parse(c.text, "bad.json"); });
    EXPECT_EQ(msg.rfind("bad.json: ", 0), 0u) << msg;
    EXPECT_NE(msg.find(c.expect), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
  std::string msg = input_error_of([] { Plan::load("/nonexistent/plan.json"); });
  EXPECT_NE(msg.find("/nonexistent/plan.json"), std::string::npos) << msg;
}

// Sizes no model has are refused, naming the numbers, before the plan's tables are allocated (the
// reliability issue: a plan for 10^6 layers), and token counts stay where the cache rule's
// rounding cannot overflow.
// fuzz_plan's finding (2026-12-05): a density key of 200 characters, mostly digits, overflowed
// int64 while it was being parsed (UBSan) before the length check refused it.
TEST(PlanFiles, FuzzFindingLongDensityKey) {
  const std::string file = std::string(MOA_TEST_DATA) + "/fuzz/plan-long-density-key.json";
  std::ifstream in(file);
  std::stringstream text;
  text << in.rdbuf();
  ASSERT_FALSE(text.str().empty()) << file;
  const std::string msg = input_error_of([&] { Plan::parse(text.str(), "p.json"); });
  EXPECT_NE(msg.find("p.json: density has key"), std::string::npos) << msg;
  EXPECT_NE(msg.find("expected an input length such as \"8192\""), std::string::npos) << msg;
}

TEST(PlanFiles, RefusesImplausibleSizes) {
  std::string layers = "{\"alphas\": [";
  for (int l = 0; l < 65537; ++l) layers += l ? ",[0]" : "[0]";
  layers += "], \"betas\": [[0]]}";
  std::string msg = input_error_of([&] { Plan::parse(layers, "big.json"); });
  EXPECT_NE(msg.find("big.json: alphas has 65537 layers, more than the 65536 a plan may hold"),
            std::string::npos)
      << msg;
  std::string heads = "{\"alphas\": [[0";
  for (int h = 0; h < 65536; ++h) heads += ",0";
  heads += "]], \"betas\": [[0]]}";
  msg = input_error_of([&] { Plan::parse(heads, "big.json"); });
  EXPECT_NE(msg.find("big.json: alphas[0] has 65537 heads, more than the 65536"), std::string::npos)
      << msg;
  for (auto [field, value] :
       {std::pair{"block", "2199023255552"}, {"min_cache", "4611686018427387904"}}) {
    const std::string text = fmt::format(
        R"({{"format": "moa-plan/1", "{}": {}, "rules": [{{"alphas": [[0]], "betas": [[0]]}}]}})",
        field, value);
    msg = input_error_of([&] { Plan::parse(text, "big.json"); });
    EXPECT_NE(msg.find(fmt::format("big.json: {} is {}, expected an integer in 1..1099511627776",
                                   field, value)),
              std::string::npos)
        << msg;
  }
}

// ---------------------------------------------------------------------------------------------
// The cache rule

TEST(PlanCacheRule, EdgeValues) {
  struct Case {
    double alpha, beta;
    int64_t n, cache, kept, sink, window;
  };
  const Case cases[] = {
      // alpha + beta*N below the minimum cache: 128.
      {0, 0.01, 8192, 128, 128, 64, 64},
      {100, 0, 8192, 128, 128, 64, 64},
      // Above N: clamped to N (a multiple of 64 here).
      {8192, 1, 4096, 4096, 4096, 64, 4032},
      // Above N with N off the block grid: cache rounds up past N, kept stays N.
      {2000, 0, 1000, 1024, 1000, 64, 960},
      // Exactly on a block boundary stays; one above goes to the next block.
      {0, 0.5, 1024, 512, 512, 64, 448},
      {1, 0.5, 1024, 576, 576, 64, 512},
      {-0.5, 0.5, 1024, 512, 512, 64, 448},  // floor(511.5) = 511 -> 512
      {64, 0, 8192, 128, 128, 64, 64},
      {192, 0, 8192, 192, 192, 64, 128},
      {193, 0, 8192, 256, 256, 64, 192},
      // Negative alpha.
      {-1024, 0.25, 8192, 1024, 1024, 64, 960},
      {-1024, 0.25, 4096, 128, 128, 64, 64},
      {-2048, 0.375, 16384, 4096, 4096, 64, 4032},
      // N below the minimum cache and below the sink.
      {0, 1, 50, 128, 50, 64, 64},
      {0, 1, 10, 128, 10, 64, 64},
      {0, 1, 1, 128, 1, 64, 64},
      // Dense rule: alpha 0, beta 1.
      {0, 1, 8191, 8192, 8191, 64, 8128},
      {0, 1, 8192, 8192, 8192, 64, 8128},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(fmt::format("alpha {} beta {} N {}", c.alpha, c.beta, c.n));
    HeadCache h = head_cache_rule(c.alpha, c.beta, c.n, 64, 64, 128);
    EXPECT_EQ(h.cache, c.cache);
    EXPECT_EQ(h.kept, c.kept);
    EXPECT_EQ(h.span.sink, c.sink);
    EXPECT_EQ(h.span.window, c.window);
    Plan p = Plan::uniform(1, 1, c.alpha, c.beta);
    EXPECT_EQ(p.cache_tokens(0, 0, c.n), c.cache);
    EXPECT_EQ(p.kept_tokens(0, 0, c.n), c.kept);
    EXPECT_EQ(p.sink_tokens(0, 0, c.n), c.sink);
    EXPECT_EQ(p.window_tokens(0, 0, c.n), c.window);
  }
  // Other block, minimum and sink.
  HeadCache h = head_cache_rule(0, 0.3, 100, 4, 16, 32);  // floor(30) -> 32
  EXPECT_EQ(h.cache, 32);
  EXPECT_EQ(h.span.sink, 4);
  EXPECT_EQ(h.span.window, 28);
  h = head_cache_rule(0, 0.35, 100, 4, 16, 32);  // 35 -> 48
  EXPECT_EQ(h.cache, 48);
  h = head_cache_rule(0, 1, 100, 4, 16, 32);  // 100 -> 112 > N
  EXPECT_EQ(h.cache, 112);
  EXPECT_EQ(h.kept, 100);
  h = head_cache_rule(0, 0, 100, 0, 1, 1);  // no sink, block 1, minimum 1
  EXPECT_EQ(h.cache, 1);
  EXPECT_EQ(h.span.sink, 0);
  EXPECT_EQ(h.span.window, 1);
}

TEST(PlanCacheRule, RuleSetsByLength) {
  std::vector<PlanRules> sets(3);
  sets[0].max_length = 8192;
  sets[1].max_length = 16384;
  for (size_t s = 0; s < 3; ++s) {
    sets[s].alphas = {{double(1024 * (s + 1))}};
    sets[s].betas = {{0.0}};
  }
  Plan p = Plan::from_rules(sets);
  EXPECT_EQ(p.cache_tokens(0, 0, 5000), 1024);
  EXPECT_EQ(p.cache_tokens(0, 0, 8192), 1024);
  EXPECT_EQ(p.cache_tokens(0, 0, 8193), 2048);
  EXPECT_EQ(p.cache_tokens(0, 0, 16384), 2048);
  EXPECT_EQ(p.cache_tokens(0, 0, 16385), 3072);
  EXPECT_EQ(p.cache_tokens(0, 0, 1 << 20), 3072);
  // Only bounded sets: the last one extrapolates.
  sets.pop_back();
  Plan q = Plan::from_rules(sets);
  EXPECT_EQ(q.cache_tokens(0, 0, 1 << 20), 2048);
}

TEST(PlanDensity, UniformAndDense) {
  AttentionShape m{4, 8, 2};
  Plan half = Plan::uniform(4, 8, 0, 0.5);
  EXPECT_EQ(half.kv_density(m, 8192), 0.5);
  // 4096 kept of 8192: entries 4096*4097/2 + 4096*4096 of 8192*8193/2.
  double expect = (4096.0 * 4097 / 2 + 4096.0 * 4096) / (8192.0 * 8193 / 2);
  EXPECT_DOUBLE_EQ(half.prefill_density(m, 8192), expect);
  EXPECT_FALSE(half.is_dense_at(8192));
  EXPECT_TRUE(half.is_dense_at(128));  // below the minimum cache every head keeps everything
  Plan dense = Plan::dense(4, 8);
  for (int64_t n : {1, 63, 64, 65, 1000, 8192, 100000}) {
    EXPECT_TRUE(dense.is_dense_at(n)) << n;
    EXPECT_EQ(dense.kv_density(m, n), 1.0) << n;
    EXPECT_EQ(dense.prefill_density(m, n), 1.0) << n;
  }
}

TEST(PlanDensity, PerKvHeadPlans) {
  // 2 layers x 2 KV heads, 8 query heads (groups of 4).
  PlanRules r;
  r.alphas = {{1024, 2048}, {0, 4096}};
  r.betas = {{0, 0}, {0, 0}};
  Plan p = Plan::from_rules({r});
  AttentionShape m{2, 8, 2};
  EXPECT_TRUE(p.check_shape(m));
  PlanCaches c = p.caches(m, 8192);
  for (int64_t q = 0; q < 8; ++q) {
    EXPECT_EQ(c(0, q).cache, q < 4 ? 1024 : 2048) << q;
    EXPECT_EQ(c(1, q).cache, q < 4 ? 128 : 4096) << q;
  }
  EXPECT_DOUBLE_EQ(p.kv_density(m, 8192), (1024 + 2048 + 128 + 4096) / 4.0 / 8192);
  // The same plan is refused by a model with 8 KV heads.
  std::string msg = input_error_of([&] { p.check_shape(2, 8, 8); });
  EXPECT_NE(msg.find("layer 0 has 2 heads, model has 8 query heads (is this plan"),
            std::string::npos)
      << msg;
  // A plan marked per KV head must match the KV heads.
  PlanRules w;
  w.alphas = w.betas = std::vector<std::vector<double>>(2, std::vector<double>(8, 0.0));
  Plan marked = Plan::from_rules({w});
  marked.set_per_kv_head(true);
  msg = input_error_of([&] { marked.check_shape(2, 8, 2); });
  EXPECT_NE(msg.find("per_kv_head is true"), std::string::npos) << msg;
}

// Brute force: count the token-exact mask entries of every query head, O(N^2) per head.
TEST(PlanDensity, PrefillAndKvDensityMatchBruteForce) {
  MOA_RANDOM_SEED(seed);
  std::mt19937_64 rng(seed);
  auto uni = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  for (int trial = 0; trial < 300; ++trial) {
    SCOPED_TRACE(fmt::format("seed {} trial {}", seed, trial));
    int64_t block = uni(1, 16), min_cache = uni(1, 48), sink = uni(0, min_cache - 1);
    int64_t kv = uni(1, 3), group = uni(1, 3), layers = uni(1, 3);
    AttentionShape m{layers, kv * group, kv};
    bool per_kv = uni(0, 1) == 1;
    int64_t rows = per_kv ? kv : kv * group;
    PlanRules r;
    r.alphas.assign(size_t(layers), std::vector<double>(size_t(rows)));
    r.betas.assign(size_t(layers), std::vector<double>(size_t(rows)));
    for (int64_t l = 0; l < layers; ++l) {
      for (int64_t h = 0; h < rows; ++h) {
        r.alphas[l][h] = std::uniform_real_distribution<double>(-60, 150)(rng);
        r.betas[l][h] = uni(0, 1) ? double(uni(0, 24)) / 16
                                  : std::uniform_real_distribution<double>(0, 1.2)(rng);
      }
    }
    Plan p = Plan::from_rules({r});
    p.set_params(sink, block, min_cache);
    int64_t n = uni(1, 200);
    int64_t seen = 0, last_row_kept = 0;
    for (int64_t l = 0; l < layers; ++l) {
      for (int64_t q = 0; q < m.heads; ++q) {
        int64_t row = per_kv ? q / group : q;
        double a = r.alphas[l][row], b = r.betas[l][row];
        // The rule, written out plainly.
        double span = std::floor(a + b * double(n));
        int64_t c = std::max<int64_t>(min_cache, int64_t(std::min(span, double(n))));
        while (c % block) ++c;
        int64_t s = std::min(c, sink), w = c - s;
        ASSERT_EQ(p.caches(m, n)(l, q).cache, c);
        for (int64_t i = 0; i < n; ++i) {
          for (int64_t j = 0; j <= i; ++j) {
            bool visible = j < s || i - j < w;
            seen += visible;
            if (i == n - 1) last_row_kept += visible;
          }
        }
      }
    }
    int64_t heads_total = layers * m.heads;
    double prefill = double(seen) / (double(heads_total) * double(n * (n + 1) / 2));
    double kvd = double(last_row_kept) / (double(heads_total) * double(n));
    EXPECT_NEAR(p.prefill_density(m, n), prefill, 1e-14);
    EXPECT_NEAR(p.kv_density(m, n), kvd, 1e-14);
  }
}

// ---------------------------------------------------------------------------------------------
// `moa plan check`

TEST(PlanCheckCommand, JsonForEveryReferencePlan) {
  for (const auto& r : kShapes) {
    ModelConfig cfg = ModelConfig::load(config_path(r.model));
    for (const char* kind : {"moa", "streamingllm"}) {
      SCOPED_TRACE(std::string(r.model) + " " + kind);
      auto res = test::run_moa("plan check --plan " + plan_path(r.model, kind).string() +
                               " --config " + config_path(r.model).string() + " --json");
      ASSERT_EQ(res.status, 0) << res.err;
      json j = json::parse(res.out);
      EXPECT_EQ(j["layers"], r.shape.layers);
      EXPECT_EQ(j["heads"], r.shape.heads);
      EXPECT_EQ(j["kv_heads"], r.shape.kv_heads);
      EXPECT_EQ(j["per_kv_head"], false);
      Plan p = Plan::load(plan_path(r.model, kind));
      for (int64_t n : {int64_t(2048), int64_t(4096), int64_t(8192), int64_t(16384), int64_t(32768),
                        cfg.max_position}) {
        std::string key = std::to_string(n);
        ASSERT_TRUE(j["density"].contains(key)) << key;
        ASSERT_TRUE(j["prefill_density"].contains(key)) << key;
        ASSERT_TRUE(j["stored_density"].contains(key)) << key;
        EXPECT_EQ(j["density"][key].get<double>(), p.kv_density(r.shape, n));
        EXPECT_EQ(j["prefill_density"][key].get<double>(), p.prefill_density(r.shape, n));
        EXPECT_EQ(j["stored_density"][key].get<double>(), p.stored_density(r.shape, n));
      }
      if (std::string(kind) == "streamingllm") {
        EXPECT_EQ(j["density"]["8192"], 0.5);
      }
    }
  }
}

TEST(PlanCheckCommand, ModelDirAndTable) {
  fs::path dir = test::temp_dir("plan-model");
  fs::copy_file(config_path("gradientai--Llama-3-8B-Instruct-262k"), dir / "config.json");
  auto res = test::run_moa("plan check --plan " +
                           plan_path("gradientai--Llama-3-8B-Instruct-262k", "moa").string() +
                           " -m " + dir.string());
  EXPECT_EQ(res.status, 0) << res.err;
  EXPECT_NE(res.out.find("KV density"), std::string::npos) << res.out;
  EXPECT_NE(res.out.find("262144"), std::string::npos) << res.out;
  // A per-KV-head plan: 32 layers x 8 heads.
  fs::path kvplan = dir / "kv.json";
  Plan::uniform(32, 8, 0, 0.25).save(kvplan, PlanForm::kExtended);
  res = test::run_moa("plan check --plan " + kvplan.string() + " -m " + dir.string() + " --json");
  ASSERT_EQ(res.status, 0) << res.err;
  json j = json::parse(res.out);
  EXPECT_EQ(j["heads"], 8);
  EXPECT_EQ(j["per_kv_head"], true);
  EXPECT_EQ(j["density"]["8192"], 0.25);
  EXPECT_EQ(j["stored_density"]["8192"], 0.25);  // one rule per KV head: nothing stored unread
  fs::remove_all(dir);
}

TEST(PlanCheckCommand, MismatchAndMalformedExitTwoWithOneLine) {
  fs::path dir = test::temp_dir("plan-bad");
  auto one_line = [](const std::string& s) { return !s.empty() && s.find('\n') == s.size() - 1; };
  // Vicuna-13B's plan against Llama-3.2-1B.
  auto res = test::run_moa("plan check --plan " +
                           plan_path("lmsys--vicuna-13b-v1.5-16k", "moa").string() + " --config " +
                           config_path("meta-llama--Llama-3.2-1B-Instruct").string() + " --json");
  EXPECT_EQ(res.status, 2);
  EXPECT_TRUE(res.out.empty()) << res.out;
  EXPECT_TRUE(one_line(res.err)) << res.err;
  EXPECT_NE(res.err.find("40 layers"), std::string::npos) << res.err;
  EXPECT_NE(res.err.find("16 layers"), std::string::npos) << res.err;
  // Malformed JSON.
  spit(dir / "broken.json", "{\"alphas\": [[0.0, 1.0]], \"betas\": [[0.5, 0.5]]");
  res = test::run_moa("plan check --plan " + (dir / "broken.json").string() + " --config " +
                      config_path("meta-llama--Llama-3.2-1B-Instruct").string() + " --json");
  EXPECT_EQ(res.status, 2);
  EXPECT_TRUE(res.out.empty()) << res.out;
  EXPECT_TRUE(one_line(res.err)) << res.err;
  EXPECT_NE(res.err.find("broken.json"), std::string::npos) << res.err;
  // Ragged rows.
  spit(dir / "ragged.json", "{\"alphas\": [[0.0, 1.0], [0.0]], \"betas\": [[0.5, 0.5], [0.5]]}");
  res = test::run_moa("plan check --plan " + (dir / "ragged.json").string() + " --config " +
                      config_path("meta-llama--Llama-3.2-1B-Instruct").string());
  EXPECT_EQ(res.status, 2);
  EXPECT_TRUE(one_line(res.err)) << res.err;
  EXPECT_NE(res.err.find("alphas[1] has 1 heads"), std::string::npos) << res.err;
  // No model shape given.
  res =
      test::run_moa("plan check --plan " + plan_path("lmsys--vicuna-13b-v1.5-16k", "moa").string());
  EXPECT_EQ(res.status, 2);
  EXPECT_TRUE(one_line(res.err)) << res.err;
  fs::remove_all(dir);
}

}  // namespace
}  // namespace moa
