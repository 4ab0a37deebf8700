// The validator (include/moa/compress/validate.h) on a tiny random model: a plan covering every token
// gives exactly the dense NLL, a tiny-window plan another one, the best is the argmin; the NLL is
// the answer tokens' (checked against forward_backward's masked loss); `moa validate` prints the
// same and refuses bad inputs with one line.
#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>
#include <random>

#include "moa/model/backward.h"
#include "moa/compress/calib_set.h"
#include "moa/core/error.h"
#include "moa/core/file_io.h"
#include "moa/attention/plan.h"
#include "moa/compress/profile.h"
#include "moa/data/tasks.h"
#include "moa/tokenizer/tokenizer.h"
#include "moa/compress/validate.h"
#include "test_util.h"

namespace moa {
namespace {

namespace fs = std::filesystem;

ModelConfig tiny_config() {
  ModelConfig c;
  c.architecture = "LlamaForCausalLM";
  c.model_type = "llama";
  c.layers = 2;
  c.heads = 4;
  c.kv_heads = 2;
  c.head_dim = 8;
  c.hidden = 32;
  c.intermediate = 64;
  c.vocab = kByteLevelVocabSize;
  c.max_position = 1024;
  c.rms_eps = 1e-5;
  return c;
}

struct Bench {  // one test's files and model
  fs::path dir, model_dir, plans, data;
  Model model;
  std::vector<TokenizedSample> samples;
};

// A model directory, a data file (4 samples of 60..110 tokens and one of 300) and a plans
// directory with a covering plan, a 8-token plan, a 24-token plan and a summary.json.
Bench make_setup(const std::string& name) {
  Bench s;
  s.dir = test::temp_dir(name);
  s.model_dir = s.dir / "tiny";
  s.model = Model::random(tiny_config(), 3, 0.25f);
  s.model.save(s.model_dir, DType::kF32);
  write_text_atomic(s.model_dir / "tokenizer.json", make_byte_level_tokenizer_json());
  std::string text;
  std::mt19937_64 rng(4);
  for (int i = 0; i < 4; ++i) {
    std::string prompt;
    for (int t = 0, n = 55 + 15 * i; t < n; ++t) prompt.push_back(char('a' + rng() % 26));
    text += nlohmann::json({{"prompt", prompt}, {"answer", std::to_string(10000 + rng() % 90000)}})
                .dump() +
            "\n";
  }
  text += nlohmann::json({{"prompt", std::string(300, 'z')}, {"expected_number", 7}}).dump() + "\n";
  s.data = s.dir / "val.jsonl";
  write_text_atomic(s.data, text);
  auto tok = Tokenizer::load(s.model_dir);
  for (const CalibSample& c : load_calib(s.data)) s.samples.push_back(tokenize_sample(*tok, c));

  s.plans = s.dir / "plans";
  fs::create_directories(s.plans);
  const ModelConfig& c = s.model.cfg;
  Plan::dense(c.layers, c.heads).save(s.plans / "plan_0.json", PlanForm::kExtended);
  Plan tiny = Plan::uniform(c.layers, c.heads, 0, 0);
  tiny.set_params(4, 4, 8);  // every head: 4 sink + 4 window tokens
  tiny.save(s.plans / "plan_1.json", PlanForm::kExtended);
  Plan mid = Plan::uniform(c.layers, c.heads, 0, 0);
  mid.set_params(4, 4, 24);
  mid.save(s.plans / "plan_2.json", PlanForm::kExtended);
  write_text_atomic(s.plans / "summary.json", "{\"plans\": []}");
  return s;
}

std::vector<NamedPlan> load_plans(const fs::path& dir) {
  std::vector<NamedPlan> out;
  for (const auto& f : list_plan_files(dir)) out.push_back({f.filename().string(), Plan::load(f)});
  return out;
}

TEST(Validate, CoveringPlanIsExactlyDenseAndBestIsArgmin) {
  Bench s = make_setup("validate_lib");
  auto plans = load_plans(s.plans);
  ASSERT_EQ(plans.size(), 3u);  // summary.json skipped
  EXPECT_EQ(plans[0].name, "plan_0.json");
  ValidationResult r = validate_plans(s.model, plans, s.samples, 128);
  EXPECT_EQ(r.samples, 4);
  EXPECT_EQ(r.too_long, 1);
  EXPECT_EQ(r.nll.at("plan_0.json"), r.dense_nll);  // exactly
  EXPECT_NE(r.nll.at("plan_1.json"), r.dense_nll);
  EXPECT_NE(r.nll.at("plan_2.json"), r.nll.at("plan_1.json"));
  std::string argmin;
  for (const auto& [name, v] : r.nll) {
    if (argmin.empty() || v < r.nll.at(argmin)) argmin = name;
  }
  EXPECT_EQ(r.best, argmin);
  std::printf("dense %.6f  plan_0 %.6f  plan_1 (8 tokens) %.6f  plan_2 (24 tokens) %.6f  best %s\n",
              r.dense_nll, r.nll.at("plan_0.json"), r.nll.at("plan_1.json"),
              r.nll.at("plan_2.json"), r.best.c_str());
  // the best is the argmin whichever plan it is: drop the covering plan and ask again
  plans.erase(plans.begin());
  ValidationResult r2 = validate_plans(s.model, plans, s.samples, 128);
  EXPECT_EQ(r2.best,
            r.nll.at("plan_1.json") < r.nll.at("plan_2.json") ? "plan_1.json" : "plan_2.json");
  fs::remove_all(s.dir);
}

// The dense NLL is the mean over samples of the answer-token loss forward_backward computes.
TEST(Validate, DenseNllIsTheAnswerLoss) {
  Bench s = make_setup("validate_loss");
  const ModelConfig& c = s.model.cfg;
  double want = 0;
  int n = 0;
  for (const TokenizedSample& t : s.samples) {
    if (t.size() > 128) continue;
    want += forward_backward(
        s.model, AttentionSpec::dense(c.layers, c.heads, c.kv_heads, c.head_dim, t.size()), t.ids,
        t.loss_mask, nullptr);
    ++n;
  }
  want /= n;
  ValidationResult r = validate_plans(s.model, load_plans(s.plans), s.samples, 128);
  EXPECT_NEAR(r.dense_nll, want, 1e-5 * want);
  fs::remove_all(s.dir);
}

TEST(Validate, Errors) {
  Bench s = make_setup("validate_err");
  EXPECT_THROW(list_plan_files(s.dir / "nothing"), InputError);
  fs::create_directories(s.dir / "empty");
  write_text_atomic(s.dir / "empty" / "summary.json", "{}");
  EXPECT_THROW(list_plan_files(s.dir / "empty"), InputError);
  try {
    validate_plans(s.model, load_plans(s.plans), s.samples, 20);
    ADD_FAILURE() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("none of the 5 samples fits in --length 20"),
              std::string::npos)
        << e.what();
  }
  fs::remove_all(s.dir);
}

TEST(ValidateCli, PrintsTheSameAndRefusesBadPlans) {
  Bench s = make_setup("validate_cli");
  ValidationResult r = validate_plans(s.model, load_plans(s.plans), s.samples, 128);
  const std::string base = "validate -m " + s.model_dir.string() + " --data " + s.data.string() +
                           " --length 128 --plans ";
  auto run = test::run_moa(base + s.plans.string() + " --json");
  ASSERT_EQ(run.status, 0) << run.err;
  auto j = nlohmann::json::parse(run.out);
  EXPECT_EQ(j["best"], r.best);
  EXPECT_EQ(j["nll"].size(), 3u);
  EXPECT_EQ(j["nll"]["plan_0.json"].get<double>(), j["dense_nll"].get<double>());
  for (const auto& [name, v] : r.nll) EXPECT_NEAR(j["nll"][name].get<double>(), v, 1e-5) << name;
  EXPECT_NEAR(j["dense_nll"].get<double>(), r.dense_nll, 1e-5);
  EXPECT_EQ(j["samples"], 4);
  auto text = test::run_moa(base + s.plans.string());
  ASSERT_EQ(text.status, 0) << text.err;
  EXPECT_NE(text.out.find("<- best"), std::string::npos) << text.out;

  // a plan for another model: one line naming the file, exit 2
  Plan::dense(3, 4).save(s.plans / "plan_9.json", PlanForm::kExtended);
  auto bad = test::run_moa(base + s.plans.string());
  EXPECT_EQ(bad.status, 2);
  EXPECT_NE(bad.err.find("plan_9.json"), std::string::npos) << bad.err;
  fs::remove_all(s.dir);
}

// Calibration answers fit their length as stored: a random byte-level model's greedy answer holds
// invalid UTF-8, which the JSONL file keeps as U+FFFD (three tokens each when encoded again). With
// these settings (compress --seed 3 at 1024) the re-encoded answers used to overflow every sample.
TEST(CalibSet, StoredAnswersFitTheirLength) {
  Bench s = make_setup("calib_fit");
  auto tok = Tokenizer::load(s.model_dir);
  CalibOptions c;
  c.lengths = {1024};
  c.samples_per_length = 2;
  c.seed = 3 * 7919 + 1024;
  const WordLists words = WordLists::load(fs::path(MOA_REF_DATA).parent_path() / "words");
  for (const auto& row : make_calibration_set(s.model, *tok, words, c, nullptr)) {
    const auto stored = nlohmann::json::parse(to_jsonl({row}));
    const int64_t answer = int64_t(tok->encode(stored["answer"].get<std::string>(), false).size());
    EXPECT_EQ(answer, stored["answer_tokens"].get<int64_t>());
    EXPECT_LE(stored["prompt_tokens"].get<int64_t>() + answer, 1024) << stored["answer"];
  }
  fs::remove_all(s.dir);
}

// `moa compress` end to end on a tiny random model (context 1024: profiles at 256/512/1024):
// writes a plan within the budget, reuses every stage when re-run, and refuses a work directory
// whose stages belong to another checkpoint.
TEST(CompressCli, RunsReusesAndRefusesAnotherModelsStages) {
  Bench s = make_setup("compress_cli");
  const fs::path work = s.dir / "work", plan = s.dir / "plan.json";
  const std::string base = "compress -m " + s.model_dir.string() + " --density 0.5 --work " + work.string() +
                           " --out " + plan.string() + " --samples 2 --profile-lengths 640,1024 --validation-length 768 --json --words " +
                           (fs::path(MOA_REF_DATA).parent_path() / "words").string();
  auto first = test::run_moa(base);
  ASSERT_EQ(first.status, 0) << first.err;
  auto j = nlohmann::json::parse(first.out);
  EXPECT_TRUE(fs::exists(plan));
  for (const auto& [n, d] : j["kv_density"].items()) EXPECT_LE(d.get<double>(), 0.5 + 1e-9) << n;
  Plan::load(plan);  // readable, and checked against the model below
  EXPECT_EQ(test::run_moa("plan check --plan " + plan.string() + " -m " + s.model_dir.string()).status, 0);
  auto again = test::run_moa(base);
  ASSERT_EQ(again.status, 0) << again.err;
  EXPECT_GE(nlohmann::json::parse(again.out)["reused"].size(), 5u) << again.out;

  // At 0.25 the minimum cache (128 tokens) is 0.8 of 640's budget: that length is left out of the
  // objectives and bounds, 1024 (exactly half) stays.
  const fs::path plan25 = s.dir / "plan25.json";
  std::string base25 = base;
  base25.replace(base25.find("--density 0.5"), 13, "--density 0.25");
  base25.replace(base25.find(plan.string()), plan.string().size(), plan25.string());
  base25 += " --short-validation-length 700";  // (the default, 256, holds no prompt with this tokenizer)
  auto quarter = test::run_moa(base25);
  ASSERT_EQ(quarter.status, 0) << quarter.err;
  EXPECT_NE(quarter.err.find("profile length 640 left out at density 0.25"), std::string::npos) << quarter.err;
  EXPECT_EQ(Plan::load(plan25).lengths()["profile"], nlohmann::json({1024}));
  // Validated at both lengths; the winner has the lowest mean NLL relative to dense.
  EXPECT_EQ(Plan::load(plan25).lengths()["validation_lengths"], nlohmann::json({700, 768}));
  auto v = nlohmann::json::parse(std::ifstream(work / "validate-d0.2500.json"));
  ASSERT_TRUE(v["per_length"].contains("700") && v["per_length"].contains("768")) << v.dump();
  std::string best;
  double best_score = 0;
  for (const auto& [name, nll] : v["nll"].items()) {
    double sc = 0;
    for (const char* L : {"700", "768"})
      sc += v["per_length"][L]["nll"][name].get<double>() / v["per_length"][L]["dense_nll"].get<double>() / 2;
    if (best.empty() || sc < best_score) {
      best = name;
      best_score = sc;
    }
  }
  EXPECT_EQ(v["best"], best);
  EXPECT_NEAR(v["score"][best].get<double>(), best_score, 1e-12);

  // Tile-joint profiles: the entry profiles are not reused, the plans are made again from them.
  auto tile = test::run_moa(base + " --influence tile");
  ASSERT_EQ(tile.status, 0) << tile.err;
  EXPECT_NE(tile.err.find("holds 'entry' influence, this run 'tile'; profiling again"), std::string::npos) << tile.err;
  EXPECT_NE(tile.err.find("another influence kind; making it again"), std::string::npos) << tile.err;
  EXPECT_EQ(nlohmann::json::parse(tile.out)["influence"], "tile");
  EXPECT_EQ(Profile::load(work / "profile_1024.safetensors").influence_kind, "tile");

  // Another calibration seed: every stage is made again (the calibration prompts differ), and a
  // file that is not a stage stays.
  write_text_atomic(work / "notes.txt", "mine\n");
  auto reseeded = test::run_moa(base + " --seed 3");
  ASSERT_EQ(reseeded.status, 0) << reseeded.err;
  EXPECT_NE(reseeded.err.find("--samples 2 --seed 0; this run has --samples 2 --seed 3: making every stage again"),
            std::string::npos) << reseeded.err;
  EXPECT_TRUE(nlohmann::json::parse(reseeded.out)["reused"].empty()) << reseeded.out;
  EXPECT_TRUE(fs::exists(work / "notes.txt"));
  EXPECT_EQ(nlohmann::json::parse(std::ifstream(work / "calib.json")), nlohmann::json({{"samples", 2}, {"seed", 3}}));
  write_text_atomic(work / "calib.json", "[not json\n");  // an unreadable stamp counts as unrecorded
  auto unstamped = test::run_moa(base + " --seed 3");
  ASSERT_EQ(unstamped.status, 0) << unstamped.err;
  EXPECT_NE(unstamped.err.find("unrecorded calibration settings"), std::string::npos) << unstamped.err;

  auto bad = test::run_moa(base + " --short-validation-length 5");
  EXPECT_EQ(bad.status, 2);
  EXPECT_NE(bad.err.find("--short-validation-length 5"), std::string::npos) << bad.err;

  Model::random(tiny_config(), 99, 0.25f).save(s.model_dir, DType::kF32);  // another checkpoint
  auto stale = test::run_moa(base);
  EXPECT_EQ(stale.status, 2);
  EXPECT_NE(stale.err.find("another checkpoint"), std::string::npos) << stale.err;
  EXPECT_NE(stale.err.find(work.string()), std::string::npos) << stale.err;
  fs::remove_all(s.dir);
}

}  // namespace
}  // namespace moa
