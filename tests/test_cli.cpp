// The command line as users and scripts see it (CLI.md): JSON fields, exit codes, and
// `moa score --ids` on checkpoints written by an independent safetensors writer against float64
// PyTorch.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "moa/core/file_io.h"
#include "test_util.h"

namespace moa {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

json parse_out(const test::RunResult& r) {
  EXPECT_EQ(r.status, 0) << r.err;
  return json::parse(r.out);
}

class ScoreFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(ScoreFixture, ScoreIdsMatchesFloat64Reference) {
  const fs::path dir = fs::path(MOA_TEST_DATA) / "fixtures" / GetParam();
  json e = json::parse(read_text(dir / "expected.json"));
  fs::path tmp = test::temp_dir("score");
  std::string ids;
  for (auto& id : e["ids"]) ids += std::to_string(id.get<int>()) + " ";
  write_text_atomic(tmp / "ids.txt", ids);
  json j = parse_out(test::run_moa("score -m " + dir.string() + " --ids " + (tmp / "ids.txt").string() + " --kv-type f32 --json"));
  auto got = j["nll_per_token"].get<std::vector<double>>();
  auto want = e["nll_per_token"].get<std::vector<double>>();
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-3) << "token " << i + 1;
  EXPECT_NEAR(j["nll"].get<double>(), e["nll"].get<double>(), 1e-3);
  EXPECT_NEAR(j["ppl"].get<double>(), std::exp(e["nll"].get<double>()), 1e-2);
  EXPECT_EQ(j["tokens"].get<size_t>(), want.size());
  // --from K scores tokens K.. only.
  j = parse_out(test::run_moa("score -m " + dir.string() + " --ids " + (tmp / "ids.txt").string() + " --from 5 --kv-type f32 --json"));
  ASSERT_EQ(j["nll_per_token"].size(), want.size() - 4);
  EXPECT_NEAR(j["nll_per_token"][0].get<double>(), want[4], 1e-3);
  fs::remove_all(tmp);
}

INSTANTIATE_TEST_SUITE_P(Variants, ScoreFixture,
                         ::testing::Values("llama_gqa_bf16", "llama_mqa_llama3rope", "qwen2_bias_f16",
                                           "mistral_f32", "llama_linear_rope"));

// init -> info -> generate -> bench, with the JSON fields of the contract, and every attention.
TEST(Cli, InitInfoGenerateBench) {
  fs::path tmp = test::temp_dir("cli");
  write_text_atomic(tmp / "config.json", R"({"architectures": ["LlamaForCausalLM"], "hidden_size": 64,
    "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
    "vocab_size": 300, "max_position_embeddings": 512})");
  const std::string m = (tmp / "m").string();
  auto r = test::run_moa("init --config " + (tmp / "config.json").string() + " --out " + m + " --seed 3 --dtype bf16");
  ASSERT_EQ(r.status, 0) << r.err;
  json info = parse_out(test::run_moa("info -m " + m + " --json"));
  for (auto* k : {"layers", "heads", "kv_heads", "head_dim", "hidden", "vocab", "params"}) {
    EXPECT_TRUE(info.contains(k)) << k;
  }
  EXPECT_EQ(info["kv_heads"], 2);
  EXPECT_EQ(info["head_dim"], 16);
  EXPECT_EQ(info["dtypes"].begin().key(), "BF16");
  for (std::string attn : {"", "--streaming 0.5", "--h2o 0.5", "--sink 8 --streaming 0.3"}) {
    json g = parse_out(test::run_moa("generate -m " + m + " -p 'hello there' -n 5 --temp 0 --ignore-eos --json " + attn));
    EXPECT_EQ(g["tokens"], 5) << attn;
    EXPECT_TRUE(g["text"].is_string());
    EXPECT_EQ(g["prompt_tokens"], 12) << attn;  // BOS + 11 bytes
    json b = parse_out(test::run_moa("bench -m " + m + " --ctx 64 --gen 4 --repeat 1 --batch 2 --json " + attn));
    for (auto* k : {"prefill_tok_s", "decode_tok_s", "kv_bytes", "peak_rss_bytes"}) EXPECT_TRUE(b.contains(k)) << k;
  }
  // A per-query-head plan on this GQA model (2 query heads per KV head) whose group heads differ:
  // generate's KV bytes are the stored density `plan check` reports, more than the query-head
  // density, since a KV head stores its group's largest cache.
  write_text_atomic(tmp / "gqa_plan.json", R"({"alphas": [[0, 0, 0, 0], [0, 0, 0, 0]],
    "betas": [[1.0, 0.25, 0.25, 0.25], [0.25, 0.25, 0.25, 0.25]]})");
  write_text_atomic(tmp / "prompt.txt", std::string(300, 'a'));
  json gp = parse_out(test::run_moa("generate -m " + m + " -f " + (tmp / "prompt.txt").string() +
                                    " -n 5 --temp 0 --ignore-eos --json --plan " + (tmp / "gqa_plan.json").string()));
  const int64_t n_ctx = gp["n_ctx"].get<int64_t>();
  EXPECT_EQ(n_ctx, gp["prompt_tokens"].get<int64_t>() + 5);
  json pc = parse_out(test::run_moa("plan check --plan " + (tmp / "gqa_plan.json").string() + " -m " + m +
                                    " --json --length " + std::to_string(n_ctx)));
  const double stored = pc["stored_density"][std::to_string(n_ctx)].get<double>();
  const double kv_frac = gp["kv_bytes"].get<double>() / gp["dense_kv_bytes"].get<double>();
  EXPECT_NEAR(kv_frac, stored, 1e-9);
  EXPECT_EQ(gp["kv_type"], "f16");  // the default
  // Every KV type halves or quarters the same cache: the ratio to its own dense bytes stays the
  // stored density. q8_0 needs head_dim % 32 == 0, which this model (head_dim 16) lacks.
  for (const char* t : {"f32", "bf16"}) {
    json gt = parse_out(test::run_moa("generate -m " + m + " -f " + (tmp / "prompt.txt").string() +
                                      " -n 5 --temp 0 --ignore-eos --json --kv-type " + t +
                                      " --plan " + (tmp / "gqa_plan.json").string()));
    EXPECT_EQ(gt["kv_type"], t);
    EXPECT_NEAR(gt["kv_bytes"].get<double>() / gt["dense_kv_bytes"].get<double>(), stored, 1e-9) << t;
    EXPECT_EQ(gt["kv_bytes"].get<double>(),
              gp["kv_bytes"].get<double>() * (std::string(t) == "f32" ? 2 : 1)) << t;
  }
  const auto bad = test::run_moa("generate -m " + m + " -p hi -n 2 --kv-type q8_0");
  EXPECT_EQ(bad.status, 2);
  EXPECT_NE(bad.err.find("head_dim"), std::string::npos) << bad.err;
  EXPECT_GT(stored, pc["density"][std::to_string(n_ctx)].get<double>() + 0.05);
  // Decode from a synthetic fill; --fit-gib picks a batch that fits (and reports it).
  json fb = parse_out(test::run_moa("bench -m " + m + " --ctx 256 --gen 2 --repeat 1 --fill synthetic --fit-gib 1 --json"));
  EXPECT_TRUE(fb["prefill_tok_s"].is_null());
  EXPECT_GE(fb["batch"].get<int64_t>(), 1);
  EXPECT_LE(fb["peak_rss_bytes"].get<double>(), 1.0 * (1 << 30));
  EXPECT_GT(fb["decode_tok_s"].get<double>(), 0);
  // Greedy generation is deterministic; sampling with a seed is repeatable.
  auto g1 = parse_out(test::run_moa("generate -m " + m + " -p hi -n 8 --temp 0.9 --top-p 0.9 --seed 7 --ignore-eos --json"));
  auto g2 = parse_out(test::run_moa("generate -m " + m + " -p hi -n 8 --temp 0.9 --top-p 0.9 --seed 7 --ignore-eos --json"));
  EXPECT_EQ(g1["ids"], g2["ids"]);
  // Bad usage: exit 2, one line.
  for (std::string bad : {"generate -m " + m + " -p hi --streaming 1.5", "bench -m " + m + " --fill synthetic",
                          "bench -m " + m + " --ctx 64 --fit-gib 0.0001", "generate -m " + m + " -p hi --plan /nonexistent.json",
                          "generate -m " + m + " -p hi --streaming 0.5 --h2o 0.5", "generate -m " + m + " -p hi -n 600",
                          "init --config /nonexistent.json --out " + m + "2", std::string("info -m /nonexistent")}) {
    auto e = test::run_moa(bad);
    EXPECT_EQ(e.status, 2) << bad << ": " << e.err;
    EXPECT_EQ(std::count(e.err.begin(), e.err.end(), '\n'), 1) << bad << ": " << e.err;
  }
  fs::remove_all(tmp);
}

// `moa expand` grows a checkpoint that scores exactly as the original; bad indices and writing over
// the input are refused with one line.
TEST(Cli, ExpandKeepsScores) {
  fs::path tmp = test::temp_dir("expand");
  write_text_atomic(tmp / "config.json", R"({"architectures": ["LlamaForCausalLM"], "hidden_size": 64,
    "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
    "vocab_size": 300, "max_position_embeddings": 512})");
  const std::string m = (tmp / "m").string(), e = (tmp / "e").string();
  ASSERT_EQ(test::run_moa("init --config " + (tmp / "config.json").string() + " --out " + m + " --seed 3").status, 0);
  auto r = test::run_moa("expand -m " + m + " --insert-after 0,1 --out " + e + " --seed 9");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(parse_out(test::run_moa("info -m " + e + " --json"))["layers"], 4);
  write_text_atomic(tmp / "ids.txt", "256 5 17 99 3 42 42 7 120 8");
  json a = parse_out(test::run_moa("score -m " + m + " --ids " + (tmp / "ids.txt").string() + " --json"));
  json b = parse_out(test::run_moa("score -m " + e + " --ids " + (tmp / "ids.txt").string() + " --json"));
  EXPECT_EQ(a["nll_per_token"], b["nll_per_token"]);
  const std::string c = (tmp / "c").string();
  r = test::run_moa("expand -m " + m + " --insert-after 1 --new-layers copy --out " + c);
  ASSERT_EQ(r.status, 0) << r.err;
  json d = parse_out(test::run_moa("score -m " + c + " --ids " + (tmp / "ids.txt").string() + " --json"));
  EXPECT_EQ(a["nll_per_token"], d["nll_per_token"]);
  for (std::string bad : {"expand -m " + m + " --insert-after 2 --out " + e + "2", "expand -m " + m + " --insert-after 0 --out " + m,
                          "expand -m " + m + " --insert-after 0 --new-layers zero --out " + e + "2"}) {
    auto x = test::run_moa(bad);
    EXPECT_EQ(x.status, 2) << bad << ": " << x.err;
    EXPECT_EQ(std::count(x.err.begin(), x.err.end(), '\n'), 1) << bad << ": " << x.err;
    EXPECT_FALSE(fs::exists(e + "2")) << bad;
  }
  fs::remove_all(tmp);
}

}  // namespace
}  // namespace moa
