// Perplexity (include/moa/eval/ppl.h): windows, answer-only NLL, every attention through the engine,
// checked against the training forward's masked loss (a second implementation of the same
// model); H2O token by token equals dense until its first eviction; then `moa eval ppl`.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <random>

#include "moa/model/backward.h"
#include "moa/core/error.h"
#include "moa/core/file_io.h"
#include "moa/attention/plan.h"
#include "moa/eval/ppl.h"
#include "moa/attention/spans.h"
#include "moa/tokenizer/tokenizer.h"
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

std::string random_text(uint32_t seed, int n) {
  std::mt19937 rng(seed);
  std::string s;
  for (int i = 0; i < n; ++i) s.push_back(char('a' + rng() % 26));
  return s;
}

TEST(Ppl, TextWindows) {
  std::vector<int32_t> ids(10);
  for (int i = 0; i < 10; ++i) ids[size_t(i)] = i;
  auto w = text_windows(ids, 4, 256);
  ASSERT_EQ(w.size(), 3u);  // the trailing [9] is dropped
  EXPECT_EQ(w[1].ids, (std::vector<int32_t>{256, 3, 4, 5}));
  EXPECT_EQ(w[2].from, 1);
  auto one = text_windows({7, 8}, 16, 256);  // shorter than a window: scored whole
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].ids, (std::vector<int32_t>{256, 7, 8}));
  auto nobos = text_windows(ids, 5, -1);
  ASSERT_EQ(nobos.size(), 2u);
  EXPECT_EQ(nobos[1].ids, (std::vector<int32_t>{5, 6, 7, 8, 9}));
  EXPECT_THROW(text_windows({}, 8, 256), InputError);
  EXPECT_THROW(text_windows({1}, 8, -1), InputError);
  EXPECT_THROW(text_windows(ids, 1, 256), InputError);
}

// Mean NLL of ids[from..] by the training forward (forward_backward, no grads).
double reference_nll(const Model& m, const AttentionSpec& spec, const ScoredSequence& s) {
  std::vector<float> mask(s.ids.size(), 0.0f);
  for (size_t t = size_t(s.from - 1); t + 1 < s.ids.size(); ++t) mask[t] = 1.0f;
  return forward_backward(m, spec, s.ids, mask, nullptr);
}

TEST(Ppl, MatchesTrainingForward) {
  const Model m = Model::random(tiny_config(), 3, 0.25f);
  std::vector<int32_t> text;
  for (char ch : random_text(1, 1100)) text.push_back(int32_t(uint8_t(ch)));
  const auto seqs = text_windows(text, 512, kByteLevelBosId);
  ASSERT_EQ(seqs.size(), 2u);
  const ModelConfig& c = m.cfg;
  // Dense, and a sparse uniform plan (sink 64 + window 64 at N = 512).
  const Plan sparse = Plan::uniform(c.layers, c.heads, 0.0, 0.25);
  for (int which = 0; which < 2; ++which) {
    SpecFactory spec = [&](int64_t n) {
      return which == 0 ? AttentionSpec::dense(c.layers, c.heads, c.kv_heads, c.head_dim, n)
                        : spec_from_plan(sparse, c.attention_shape(), n);
    };
    const PplResult r = eval_ppl(m, seqs, spec);
    EXPECT_EQ(r.tokens, 2 * 511);
    EXPECT_EQ(r.windows, 2);
    double want = 0;
    for (const auto& s : seqs) want += reference_nll(m, spec(512).attn, s) * 511;
    EXPECT_NEAR(r.nll_sum, want, 1e-4 * want) << "attention " << which;
    EXPECT_NEAR(r.ppl(), std::exp(want / 1022), 1e-4 * r.ppl());
  }
  const double dense = eval_ppl(m, seqs, [&](int64_t n) {
                         return AttentionSpec::dense(c.layers, c.heads, c.kv_heads, c.head_dim, n);
                       }).nll();
  const double narrow =
      eval_ppl(m, seqs, [&](int64_t n) { return spec_from_plan(sparse, c.attention_shape(), n); }).nll();
  EXPECT_GT(std::abs(dense - narrow), 1e-4);  // the sparse plan really drops keys
}

TEST(Ppl, H2oTokenByTokenEqualsDenseBeforeEviction) {
  const Model m = Model::random(tiny_config(), 4, 0.25f);
  const ModelConfig& c = m.cfg;
  ScoredSequence s;
  s.ids.push_back(kByteLevelBosId);
  for (char ch : random_text(2, 299)) s.ids.push_back(int32_t(uint8_t(ch)));
  s.from = 1;
  std::vector<double> dense, h2o;
  sequence_nll(m, AttentionSpec::dense(c.layers, c.heads, c.kv_heads, c.head_dim, 300), s, dense);
  const CacheSpec hs = CacheSpec::h2o_at_density(c.attention_shape(), 300, 0.5);
  ASSERT_TRUE(hs.is_h2o());
  sequence_nll(m, hs, s, h2o);
  ASSERT_EQ(dense.size(), 299u);
  ASSERT_EQ(h2o.size(), 299u);
  // Token t is predicted from positions 0..t-1: nothing is evicted while t <= budget (150).
  for (size_t t = 0; t < 149; ++t) EXPECT_NEAR(h2o[t], dense[t], 1e-4) << "token " << t + 1;
  double diff = 0;
  for (size_t t = 160; t < 299; ++t) diff += std::abs(h2o[t] - dense[t]);
  EXPECT_GT(diff, 1e-3);
}

TEST(Ppl, AnswerTokensOnly) {
  const fs::path dir = test::temp_dir("ppl_answers");
  write_text_atomic(dir / "tokenizer.json", make_byte_level_tokenizer_json());
  const auto tok = Tokenizer::load(dir / "tokenizer.json");
  const Model m = Model::random(tiny_config(), 5, 0.25f);
  const ModelConfig& c = m.cfg;
  std::vector<TokenizedSample> samples;
  for (uint32_t i = 0; i < 3; ++i) {
    samples.push_back(tokenize_sample(
        *tok, {random_text(10 + i, 80 + 40 * int(i)), random_text(20 + i, 5 + int(i))}));
  }
  const auto seqs = answer_sequences(samples);
  ASSERT_EQ(seqs.size(), 3u);
  auto dense = [&](int64_t n) {
    return AttentionSpec::dense(c.layers, c.heads, c.kv_heads, c.head_dim, n);
  };
  const PplResult r = eval_ppl(m, seqs, dense);
  EXPECT_EQ(r.tokens, 5 + 6 + 7);
  double want = 0;
  for (const auto& t : samples) {
    // tokenize_sample's own loss mask: the answer tokens.
    want += forward_backward(m, dense(t.size()), t.ids, t.loss_mask, nullptr) *
            double(t.answer_tokens());
  }
  EXPECT_NEAR(r.nll_sum, want, 1e-4 * want);
  fs::remove_all(dir);
}

TEST(Ppl, Cli) {
  const fs::path dir = test::temp_dir("ppl_cli");
  const Model m = Model::random(tiny_config(), 6, 0.25f);
  m.save(dir / "model", DType::kF32);
  write_text_atomic(dir / "model" / "tokenizer.json", make_byte_level_tokenizer_json());
  const std::string text = random_text(7, 1100);
  write_text_atomic(dir / "t.txt", text);
  const std::string model = (dir / "model").string();
  const auto r = test::run_moa(
      fmt::format("eval ppl -m {} -f {} --length 512 --kv-type f32 --json", model, (dir / "t.txt").string()));
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  std::vector<int32_t> ids;
  for (char ch : text) ids.push_back(int32_t(uint8_t(ch)));
  const ModelConfig& c = m.cfg;
  const PplResult want = eval_ppl(m, text_windows(ids, 512, kByteLevelBosId), [&](int64_t n) {
    return AttentionSpec::dense(c.layers, c.heads, c.kv_heads, c.head_dim, n);
  });
  EXPECT_EQ(j["method"], "dense");
  EXPECT_EQ(j["tokens"], 1022);
  EXPECT_EQ(j["windows"], 2);
  EXPECT_NEAR(j["nll"].get<double>(), want.nll(), 1e-6);
  EXPECT_NEAR(j["ppl"].get<double>(), want.ppl(), 1e-5 * want.ppl());

  const auto s = test::run_moa(
      fmt::format("eval ppl -m {} -f {} --length 512 --streaming 0.25 --vs-dense --kv-type f32 --json", model,
                  (dir / "t.txt").string()));
  ASSERT_EQ(s.status, 0) << s.err;
  const auto sj = nlohmann::json::parse(s.out);
  EXPECT_EQ(sj["method"], "streaming");
  EXPECT_DOUBLE_EQ(sj["density"].get<double>(), 0.25);
  EXPECT_NEAR(sj["dense"]["ppl"].get<double>(), want.ppl(), 1e-5 * want.ppl());
  EXPECT_NEAR(sj["relative_change"].get<double>(), sj["ppl"].get<double>() / want.ppl() - 1.0,
              1e-9);
  EXPECT_NE(sj["ppl"].get<double>(), sj["dense"]["ppl"].get<double>());

  write_text_atomic(
      dir / "c.jsonl",
      nlohmann::json({{"prompt", random_text(8, 100)}, {"answer", "12345"}}).dump() + "\n");
  const auto cj = test::run_moa(
      fmt::format("eval ppl -m {} --data {} --h2o 0.5 --json", model, (dir / "c.jsonl").string()));
  ASSERT_EQ(cj.status, 0) << cj.err;
  EXPECT_EQ(nlohmann::json::parse(cj.out)["tokens"], 5);

  const auto both =
      test::run_moa(fmt::format("eval ppl -m {} -f {} --data {}", model, (dir / "t.txt").string(),
                                (dir / "c.jsonl").string()));
  EXPECT_EQ(both.status, 2);
  EXPECT_NE(both.err.find("exactly one"), std::string::npos) << both.err;
  const auto longer = test::run_moa(
      fmt::format("eval ppl -m {} -f {} --length 4096", model, (dir / "t.txt").string()));
  EXPECT_EQ(longer.status, 2);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace moa
