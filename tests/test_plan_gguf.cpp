// Plans inside GGUF files (model/plan_gguf.h): the moa.* keys round trip through moa convert and
// moa quantize, and every malformed key is one InputError naming the file and the key; the
// convert / quantize command lines.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "moa/attention/plan.h"
#include "moa/convert/convert.h"
#include "moa/core/error.h"
#include "moa/core/file_io.h"
#include "moa/gguf/gguf.h"
#include "moa/gguf/gguf_writer.h"
#include "moa/model/plan_gguf.h"
#include "test_util.h"

namespace moa {
namespace {

namespace fs = std::filesystem;
using V = GgufOwnedValue;

// The fixture model of tests/data/convert (llama, 2 layers, 4 query heads, 2 KV heads).
const fs::path kTiny = fs::path(MOA_TEST_DATA) / "convert" / "tiny";

// Two rule sets of float-exact values (FLOAT32 keys hold them exactly).
Plan two_rule_plan(int64_t rows) {
  std::vector<PlanRules> rs(2);
  for (int k = 0; k < 2; ++k) {
    rs[k].alphas.assign(2, std::vector<double>(size_t(rows)));
    rs[k].betas.assign(2, std::vector<double>(size_t(rows)));
    for (int l = 0; l < 2; ++l) {
      for (int64_t h = 0; h < rows; ++h) {
        rs[k].alphas[l][size_t(h)] = 128 + 64 * (l + h + k);
        rs[k].betas[l][size_t(h)] = 0.125 * double(h + 1) + 0.5 * k;
      }
    }
  }
  rs[0].max_length = 4096;
  Plan p = Plan::from_rules(rs);
  p.set_params(32, 16, 64);
  p.set_model("tiny");
  return p;
}

void expect_same_plan(const Plan& a, const Plan& b) {
  EXPECT_EQ(a.sink(), b.sink());
  EXPECT_EQ(a.block(), b.block());
  EXPECT_EQ(a.min_cache(), b.min_cache());
  EXPECT_EQ(a.model(), b.model());
  ASSERT_EQ(a.rule_set_count(), b.rule_set_count());
  for (size_t k = 0; k < a.rule_set_count(); ++k) {
    EXPECT_EQ(a.rule_sets()[k].max_length, b.rule_sets()[k].max_length);
    EXPECT_EQ(a.rule_sets()[k].alphas, b.rule_sets()[k].alphas);
    EXPECT_EQ(a.rule_sets()[k].betas, b.rule_sets()[k].betas);
  }
}

TEST(PlanGguf, RoundTripsThroughConvertAndQuantize) {
  const fs::path dir = test::temp_dir("plan_gguf");
  for (int64_t rows : {4, 2}) {  // per query head, per KV head
    SCOPED_TRACE(rows);
    const Plan p = two_rule_plan(rows);
    p.save(dir / "plan.json");
    ConvertOptions o;
    o.model_dir = kTiny;
    o.out = dir / "with_plan.gguf";
    o.type = "f16";
    o.plan = dir / "plan.json";
    EXPECT_TRUE(convert_checkpoint(o).plan);
    const std::optional<Plan> e = embedded_plan(GgufFile(o.out));
    ASSERT_TRUE(e.has_value());
    expect_same_plan(p, *e);
    EXPECT_EQ(e->per_kv_head(), rows == 2);
    quantize_gguf(o.out, dir / "q.gguf", "q8_0");
    const std::optional<Plan> q = embedded_plan(GgufFile(dir / "q.gguf"));
    ASSERT_TRUE(q.has_value());
    expect_same_plan(p, *q);
  }
  ConvertOptions o;
  o.model_dir = kTiny;
  o.out = dir / "no_plan.gguf";
  convert_checkpoint(o);
  EXPECT_FALSE(embedded_plan(GgufFile(o.out)).has_value());
  // A plan for another shape is refused before anything is written.
  Plan::uniform(3, 4, 0, 0.5).save(dir / "other.json");
  o.out = dir / "refused.gguf";
  o.plan = dir / "other.json";
  test::expect_input_error(dir / "other.json", [&] { convert_checkpoint(o); }, {"layer"});
  EXPECT_FALSE(fs::exists(o.out));
}

// Rewrites `src` with its metadata changed by `edit`.
fs::path rewrite(const fs::path& src, const fs::path& out,
                 const std::function<void(GgufWriter&)>& edit) {
  GgufFile g(src);
  GgufWriter w;
  for (const auto& [k, v] : g.metadata()) w.set(k, V::copy_of(v));
  edit(w);
  for (const GgufTensor& t : g.tensors()) {
    w.add_tensor({t.name, t.type(), t.ne, [&t](GgufSink& s) { s.write(t.data, t.nbytes); }});
  }
  w.write(out);
  return out;
}

TEST(PlanGguf, MalformedKeysAreOneClearError) {
  const fs::path dir = test::temp_dir("plan_gguf_bad");
  two_rule_plan(4).save(dir / "plan.json");
  ConvertOptions o;
  o.model_dir = kTiny;
  o.out = dir / "good.gguf";
  o.plan = dir / "plan.json";
  convert_checkpoint(o);
  struct Case {
    const char* name;
    std::function<void(GgufWriter&)> edit;
    std::vector<std::string> needles;
  };
  const std::vector<Case> cases = {
      {"format",
       [](GgufWriter& w) { w.set("moa.format", V::string("moa-plan/9")); },
       {"moa.format", "moa-plan/9", "moa-plan/1"}},
      {"no_format", [](GgufWriter& w) { w.remove("moa.format"); }, {"moa.", "moa.format"}},
      {"sink_type",
       [](GgufWriter& w) { w.set("moa.sink", V::i32(32)); },
       {"moa.sink", "INT32", "UINT32"}},
      {"no_count", [](GgufWriter& w) { w.remove("moa.rule_count"); }, {"moa.rule_count"}},
      {"count",
       [](GgufWriter& w) { w.set("moa.rule_count", V::u32(3)); },
       {"moa.rules.2.alphas", "missing"}},
      {"shape",
       [](GgufWriter& w) {
         w.set("moa.rules.0.alphas", V::f32_array({1, 2, 3}));
       },
       {"moa.rules.0.alphas", "3 values", "2 layers x 4 heads"}},
      {"elem",
       [](GgufWriter& w) {
         w.set("moa.rules.1.betas", V::i32_array({1, 2, 3, 4, 5, 6, 7, 8}));
       },
       {"moa.rules.1.betas"}},
      {"max_length",
       [](GgufWriter& w) { w.set("moa.rules.0.max_length", V::u32(4096)); },
       {"moa.rules.0.max_length", "UINT64"}},
      {"sink_vs_min", [](GgufWriter& w) { w.set("moa.sink", V::u32(64)); }, {"sink"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const fs::path f = rewrite(o.out, dir / (std::string(c.name) + ".gguf"), c.edit);
    test::expect_input_error(
        f, [&] { embedded_plan(GgufFile(f)); }, c.needles);
  }
}

TEST(ConvertCli, JsonProgressAndErrors) {
  const fs::path dir = test::temp_dir("convert_cli");
  const fs::path out = dir / "m.gguf";
  auto r = test::run_moa("convert -m " + kTiny.string() + " --out " + out.string() +
                         " --type q8_0 --json");
  ASSERT_EQ(r.status, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["out"], out.string());
  EXPECT_EQ(j["type"], "q8_0");
  EXPECT_EQ(j["tensors"], 2 + 2 * 9);
  EXPECT_EQ(j["bytes"], fs::file_size(out));
  EXPECT_EQ(j["tokenizer"], true);
  EXPECT_NE(r.err.find("token_embd.weight"), std::string::npos) << r.err;
  r = test::run_moa("quantize " + out.string() + " " + (dir / "q.gguf").string() +
                    " q4_k_m --json");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["type"], "q4_k_m");
  EXPECT_EQ(GgufFile(dir / "q.gguf").get_int("general.file_type"), 15);
  // The converted model scores like the checkpoint (f32).
  r = test::run_moa("convert -m " + kTiny.string() + " --out " + (dir / "f32.gguf").string() +
                    " --type f32");
  ASSERT_EQ(r.status, 0) << r.err;
  write_text_atomic(dir / "ids.txt", "256 5 9 13 2 7 30 41 63 0 12 200 100");
  auto a = test::run_moa("score -m " + kTiny.string() + " --ids " + (dir / "ids.txt").string() +
                         " --json");
  auto b = test::run_moa("score -m " + (dir / "f32.gguf").string() + " --ids " +
                         (dir / "ids.txt").string() + " --json");
  ASSERT_EQ(a.status, 0) << a.err;
  ASSERT_EQ(b.status, 0) << b.err;
  EXPECT_NEAR(nlohmann::json::parse(b.out)["nll"].get<double>(),
              nlohmann::json::parse(a.out)["nll"].get<double>(), 1e-5);
  // The plan travels in the file: plan check reads it from -m F.gguf alone.
  two_rule_plan(4).save(dir / "plan.json");
  r = test::run_moa("convert -m " + kTiny.string() + " --out " + (dir / "p.gguf").string() +
                    " --type q8_0 --plan " + (dir / "plan.json").string());
  ASSERT_EQ(r.status, 0) << r.err;
  auto pc = test::run_moa("plan check -m " + (dir / "p.gguf").string() + " --json");
  auto pj = test::run_moa("plan check -m " + kTiny.string() + " --plan " +
                          (dir / "plan.json").string() + " --json");
  ASSERT_EQ(pc.status, 0) << pc.err;
  ASSERT_EQ(pj.status, 0) << pj.err;
  EXPECT_EQ(nlohmann::json::parse(pc.out)["density"], nlohmann::json::parse(pj.out)["density"]);
  r = test::run_moa("plan check -m " + out.string());
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("no embedded plan"), std::string::npos) << r.err;
  // Bad input: exit 2, one line naming what is wrong, no output file.
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"convert -m " + kTiny.string() + " --out " + (dir / "x.gguf").string() + " --type q3_k",
       "q3_k"},
      {"convert -m " + (dir / "nope").string() + " --out " + (dir / "x.gguf").string(), "nope"},
      {"quantize " + (dir / "ids.txt").string() + " " + (dir / "x.gguf").string() + " q8_0",
       "ids.txt"},
      {"quantize " + out.string() + " " + out.string() + " q8_0", "m.gguf"},
  };
  for (const auto& [args, needle] : bad) {
    SCOPED_TRACE(args);
    r = test::run_moa(args);
    EXPECT_EQ(r.status, 2);
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(dir / "x.gguf"));
  }
}

// A plan embedded by convert is the default attention of score, generate and eval; --dense or
// another attention option overrides it.
TEST(PlanGguf, EmbeddedPlanIsHonoured) {
  const fs::path dir = test::temp_dir("embedded_plan");
  Plan plan = Plan::uniform(2, 4, 0.0, 0.25);
  plan.set_params(4, 8, 16);  // at 100 tokens: caches of 32, far from dense
  plan.save(dir / "plan.json");
  auto r = test::run_moa("convert -m " + kTiny.string() + " --out " + (dir / "e.gguf").string() +
                         " --type f32 --plan " + (dir / "plan.json").string());
  ASSERT_EQ(r.status, 0) << r.err;
  std::string ids;
  for (int k = 0; k < 100; ++k) ids += std::to_string((k * 37 + 11) % 256) + " ";
  write_text_atomic(dir / "ids.txt", ids);
  const std::string e = (dir / "e.gguf").string(), idf = " --ids " + (dir / "ids.txt").string();
  auto nll = [&](const std::string& args) {
    auto res = test::run_moa("score " + args + " --kv-type f32 --json");
    EXPECT_EQ(res.status, 0) << args << ": " << res.err;
    return nlohmann::json::parse(res.status == 0 ? res.out : "{\"nll_per_token\": []}")["nll_per_token"]
        .get<std::vector<double>>();
  };
  const std::vector<double> embedded = nll("-m " + e + idf);
  const std::vector<double> given = nll("-m " + e + idf + " --plan " + (dir / "plan.json").string());
  const std::vector<double> dense = nll("-m " + e + idf + " --dense");
  const std::vector<double> checkpoint = nll("-m " + kTiny.string() + idf);
  ASSERT_EQ(embedded.size(), 99u);
  ASSERT_EQ(given.size(), 99u);
  ASSERT_EQ(dense.size(), 99u);
  ASSERT_EQ(checkpoint.size(), 99u);
  double plan_vs_dense = 0;
  for (size_t k = 0; k < embedded.size(); ++k) {
    EXPECT_EQ(embedded[k], given[k]) << "token " << k + 1;
    EXPECT_NEAR(dense[k], checkpoint[k], 1e-5) << "token " << k + 1;
    plan_vs_dense = std::max(plan_vs_dense, std::fabs(embedded[k] - dense[k]));
  }
  EXPECT_GT(plan_vs_dense, 1e-4) << "the embedded plan changed nothing";
  // generate keeps only the plan's caches; eval names the method.
  write_text_atomic(dir / "p.txt", std::string(90, 'a'));
  r = test::run_moa("generate -m " + e + " -f " + (dir / "p.txt").string() +
                    " -n 4 --temp 0 --ignore-eos --json");
  ASSERT_EQ(r.status, 0) << r.err;
  auto g = nlohmann::json::parse(r.out);
  EXPECT_LT(g["kv_bytes"].get<double>(), 0.6 * g["dense_kv_bytes"].get<double>());
  r = test::run_moa("generate -m " + e + " -f " + (dir / "p.txt").string() +
                    " -n 4 --temp 0 --ignore-eos --dense --json");
  ASSERT_EQ(r.status, 0) << r.err;
  g = nlohmann::json::parse(r.out);
  EXPECT_EQ(g["kv_bytes"], g["dense_kv_bytes"]);
  r = test::run_moa("eval ppl -m " + e + " -f " + (dir / "p.txt").string() + " --length 64 --json");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["method"], "moa");
  EXPECT_EQ(nlohmann::json::parse(r.out)["plan"], "embedded");
  // --dense with another choice is a usage error.
  r = test::run_moa("score -m " + e + idf + " --dense --streaming 0.5");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("--dense"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace moa
