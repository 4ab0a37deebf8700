// Head statistics (include/moa/eval/inspect.h) against a plain double reference that materialises
// every T x T attention matrix: on random q/k crossing the 64 and 512 distance edges, on uniform
// attention (closed form), and on a tiny random model whose q/k the reference takes from the
// training backward's hook (a second path to the same tensors). Then `moa inspect heads`.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <random>

#include "moa/model/backward.h"
#include "moa/core/error.h"
#include "moa/core/file_io.h"
#include "moa/eval/inspect.h"
#include "moa/tokenizer/tokenizer.h"
#include "test_util.h"

namespace moa {
namespace {

namespace fs = std::filesystem;

// Plain reference: full A (T, T) per head in double, then every statistic by its definition.
void reference_stats(const std::vector<float>& q, const std::vector<float>& k, int64_t T, int64_t H,
                     int64_t G, int64_t D, std::vector<HeadStats>& all,
                     std::vector<HeadStats>& tail) {
  all.assign(size_t(H), HeadStats{});
  tail.assign(size_t(H), HeadStats{});
  const int64_t tail_rows = std::min<int64_t>(T, 32);
  for (int64_t h = 0; h < H; ++h) {
    const int64_t g = h / (H / G);
    std::vector<double> A(static_cast<size_t>(T * T), 0.0);
    for (int64_t i = 0; i < T; ++i) {
      double mx = -1e300;
      for (int64_t j = 0; j <= i; ++j) {
        double s = 0;
        for (int64_t d = 0; d < D; ++d)
          s += double(q[size_t((i * H + h) * D + d)]) * double(k[size_t((j * G + g) * D + d)]);
        A[size_t(i * T + j)] = s / std::sqrt(double(D));
        mx = std::max(mx, A[size_t(i * T + j)]);
      }
      double z = 0;
      for (int64_t j = 0; j <= i; ++j) z += std::exp(A[size_t(i * T + j)] - mx);
      for (int64_t j = 0; j <= i; ++j)
        A[size_t(i * T + j)] = std::exp(A[size_t(i * T + j)] - mx) / z;
    }
    for (int64_t i = 0; i < T; ++i) {
      HeadStats r;
      for (int64_t j = 0; j < T; ++j) {
        if (j > i) continue;
        const double a = A[size_t(i * T + j)];
        r.mean_distance += a * double(i - j);
        if (j < 64) r.sink_mass += a;
        if (i - j < 64) r.local_mass += a;
        if (i - j >= 512) r.far_mass += a;
      }
      for (auto* dst : {&all[size_t(h)], &tail[size_t(h)]}) {
        if (dst == &tail[size_t(h)] && i < T - tail_rows) continue;
        const double w = dst == &all[size_t(h)] ? 1.0 / double(T) : 1.0 / double(tail_rows);
        dst->mean_distance += w * r.mean_distance;
        dst->sink_mass += w * r.sink_mass;
        dst->local_mass += w * r.local_mass;
        dst->far_mass += w * r.far_mass;
      }
    }
  }
}

void expect_stats_near(const HeadStats& a, const HeadStats& b, double tol,
                       const std::string& where) {
  EXPECT_NEAR(a.mean_distance, b.mean_distance, tol * std::max(1.0, std::abs(b.mean_distance)))
      << where;
  EXPECT_NEAR(a.sink_mass, b.sink_mass, tol) << where;
  EXPECT_NEAR(a.local_mass, b.local_mass, tol) << where;
  EXPECT_NEAR(a.far_mass, b.far_mass, tol) << where;
}

TEST(Inspect, LayerStatsMatchReference) {
  // T crosses the sink/local edge (64), the far edge (512) and the tail (32); GQA group of 2.
  for (int64_t T : {1, 40, 600}) {
    const int64_t H = 4, G = 2, D = 8;
    std::mt19937 rng(static_cast<uint32_t>(T));
    std::normal_distribution<float> nd(0.0f, 1.5f);
    std::vector<float> q(static_cast<size_t>(T * H * D)), k(static_cast<size_t>(T * G * D));
    for (auto& x : q) x = nd(rng);
    for (auto& x : k) x = nd(rng);
    std::vector<HeadStats> all, tail, ra, rt;
    layer_attention_stats(q.data(), k.data(), T, H, G, D, all, tail);
    reference_stats(q, k, T, H, G, D, ra, rt);
    for (int64_t h = 0; h < H; ++h) {
      expect_stats_near(all[size_t(h)], ra[size_t(h)], 1e-9, fmt::format("T {} head {} all", T, h));
      expect_stats_near(tail[size_t(h)], rt[size_t(h)], 1e-9,
                        fmt::format("T {} head {} tail", T, h));
    }
    if (T == 600) {
      // The data must exercise every statistic, or the comparison proves little.
      EXPECT_GT(ra[0].far_mass, 1e-3);
      EXPECT_GT(ra[0].local_mass, 1e-3);
      EXPECT_LT(ra[0].local_mass, 0.999);
    }
  }
}

TEST(Inspect, UniformAttentionClosedForm) {
  // q = 0: every row attends uniformly to its i + 1 keys.
  const int64_t T = 700, H = 2, G = 1, D = 4;
  std::vector<float> q(static_cast<size_t>(T * H * D), 0.0f),
      k(static_cast<size_t>(T * G * D), 1.0f);
  std::vector<HeadStats> all, tail;
  layer_attention_stats(q.data(), k.data(), T, H, G, D, all, tail);
  HeadStats want, want_tail;
  for (int64_t i = 0; i < T; ++i) {
    const double n = double(i + 1);
    HeadStats r{double(i) / 2, std::min(n, 64.0) / n, std::min(n, 64.0) / n,
                std::max(0.0, double(i - 511)) / n};
    want.mean_distance += r.mean_distance / T, want.sink_mass += r.sink_mass / T;
    want.local_mass += r.local_mass / T, want.far_mass += r.far_mass / T;
    if (i >= T - 32) {
      want_tail.mean_distance += r.mean_distance / 32, want_tail.sink_mass += r.sink_mass / 32;
      want_tail.local_mass += r.local_mass / 32, want_tail.far_mass += r.far_mass / 32;
    }
  }
  for (int64_t h = 0; h < H; ++h) {
    expect_stats_near(all[size_t(h)], want, 1e-9, "all");
    expect_stats_near(tail[size_t(h)], want_tail, 1e-9, "tail");
  }
}

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

std::vector<int32_t> random_ids(std::mt19937& rng, int64_t n) {
  std::vector<int32_t> ids{kByteLevelBosId};
  for (int64_t i = 1; i < n; ++i) ids.push_back(int32_t('a' + rng() % 26));
  return ids;
}

TEST(Inspect, ModelMatchesReferenceFromBackwardHook) {
  const Model m = Model::random(tiny_config(), 7, 0.3f);
  std::mt19937 rng(11);
  const std::vector<std::vector<int32_t>> samples = {random_ids(rng, 600), random_ids(rng, 130)};
  int64_t calls = 0;
  const HeadStatsTable t = inspect_heads(m, samples, [&](int64_t, int64_t) { ++calls; });
  EXPECT_EQ(calls, 2);
  ASSERT_EQ(t.samples, 2);
  EXPECT_DOUBLE_EQ(t.mean_tokens, 365.0);
  const ModelConfig& c = m.cfg;
  std::vector<HeadStats> ref_all(size_t(c.layers * c.heads)), ref_tail = ref_all;
  for (const auto& ids : samples) {
    const int64_t T = int64_t(ids.size());
    const AttentionSpec spec = AttentionSpec::dense(c.layers, c.heads, c.kv_heads, c.head_dim, T);
    BackwardOptions opt;
    opt.hook = [&](int64_t layer, const float* q, const float* k, const float*, const float*) {
      std::vector<float> qv(q, q + T * c.heads * c.head_dim),
          kv(k, k + T * c.kv_heads * c.head_dim);
      std::vector<HeadStats> a, b;
      reference_stats(qv, kv, T, c.heads, c.kv_heads, c.head_dim, a, b);
      for (int64_t h = 0; h < c.heads; ++h) {
        auto add = [](HeadStats& d, const HeadStats& s) {
          d.mean_distance += s.mean_distance / 2, d.sink_mass += s.sink_mass / 2;
          d.local_mass += s.local_mass / 2, d.far_mass += s.far_mass / 2;
        };
        add(ref_all[size_t(layer * c.heads + h)], a[size_t(h)]);
        add(ref_tail[size_t(layer * c.heads + h)], b[size_t(h)]);
      }
    };
    std::vector<float> mask(static_cast<size_t>(T), 1.0f);
    forward_backward(m, spec, ids, mask, nullptr, opt);
  }
  for (int64_t l = 0; l < c.layers; ++l) {
    for (int64_t h = 0; h < c.heads; ++h) {
      const std::string where = fmt::format("layer {} head {}", l, h);
      expect_stats_near(t.at(l, h), ref_all[size_t(l * c.heads + h)], 1e-5, where + " all");
      expect_stats_near(t.tail_at(l, h), ref_tail[size_t(l * c.heads + h)], 1e-5, where + " tail");
    }
  }
  // Heads must differ (otherwise a layer/head mix-up would go unnoticed).
  EXPECT_GT(std::abs(t.at(0, 0).mean_distance - t.at(1, 3).mean_distance), 1e-3);

  const nlohmann::json j = t.to_json();
  ASSERT_EQ(j["stats"].size(), size_t(c.layers * c.heads));
  EXPECT_EQ(j["layers"], c.layers);
  EXPECT_EQ(j["stats"][5]["layer"], 1);
  EXPECT_EQ(j["stats"][5]["head"], 1);
  EXPECT_DOUBLE_EQ(j["stats"][5]["far_mass"].get<double>(), t.at(1, 1).far_mass);
  int64_t far = 0, local = 0;
  for (const auto& s : t.all) far += s.far_mass > 0.5, local += s.local_mass > 0.5;
  EXPECT_EQ(j["summary"]["far_heads"], far);
  EXPECT_EQ(j["summary"]["local_heads"], local);

  const std::string svg = head_stats_svg(t, "local_mass", false);
  EXPECT_EQ(svg.rfind("<?xml", 0), 0u);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  size_t cells = 0;
  for (size_t p = 0; (p = svg.find("class=\"cell\"", p)) != std::string::npos; ++p) ++cells;
  EXPECT_EQ(cells, size_t(c.layers * c.heads));
  EXPECT_THROW(head_stats_svg(t, "nope", false), InputError);
}

TEST(Inspect, TooLongSampleIsInputError) {
  const Model m = Model::random(tiny_config(), 7, 0.3f);
  std::mt19937 rng(1);
  EXPECT_THROW(inspect_heads(m, {random_ids(rng, 1025)}), InputError);
}

TEST(Inspect, Cli) {
  const fs::path dir = test::temp_dir("inspect_cli");
  const Model m = Model::random(tiny_config(), 5, 0.3f);
  m.save(dir / "model", DType::kF32);
  write_text_atomic(dir / "model" / "tokenizer.json", make_byte_level_tokenizer_json());
  std::string jsonl;
  std::mt19937 rng(3);
  std::vector<std::vector<int32_t>> samples;
  for (int n : {300, 90}) {
    std::string p;
    for (int i = 0; i < n; ++i) p.push_back(char('a' + rng() % 26));
    jsonl += nlohmann::json({{"prompt", p}, {"expected_number", 1}}).dump() + "\n";
    std::vector<int32_t> ids{kByteLevelBosId};
    for (char ch : p) ids.push_back(int32_t(uint8_t(ch)));
    samples.push_back(ids);
  }
  write_text_atomic(dir / "p.jsonl", jsonl);
  const auto r = test::run_moa(
      fmt::format("inspect heads -m {} --data {} --json --heatmap {} --stat mean_distance",
                  (dir / "model").string(), (dir / "p.jsonl").string(), (dir / "h.svg").string()));
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  const HeadStatsTable want = inspect_heads(m, samples);
  ASSERT_EQ(j["stats"].size(), 8u);
  for (const auto& s : j["stats"]) {
    const HeadStats& w = want.at(s["layer"].get<int64_t>(), s["head"].get<int64_t>());
    EXPECT_NEAR(s["mean_distance"].get<double>(), w.mean_distance, 1e-6);
    EXPECT_NEAR(s["local_mass"].get<double>(), w.local_mass, 1e-9);
  }
  EXPECT_EQ(j["samples"], 2);
  EXPECT_TRUE(j["summary"].contains("far_heads"));
  EXPECT_NE(read_text(dir / "h.svg").find("mean_distance per head"), std::string::npos);
  const auto bad = test::run_moa(fmt::format("inspect heads -m {} --data {} --stat nope",
                                             (dir / "model").string(), (dir / "p.jsonl").string()));
  EXPECT_EQ(bad.status, 2);
  EXPECT_NE(bad.err.find("--stat"), std::string::npos) << bad.err;
  const auto text = test::run_moa(fmt::format(
      "inspect heads -m {} --data {}", (dir / "model").string(), (dir / "p.jsonl").string()));
  ASSERT_EQ(text.status, 0) << text.err;
  EXPECT_NE(text.out.find("layer head"), std::string::npos);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace moa
