// The influence profiler (include/moa/compress/profiler.h) on a tiny random GQA model:
//  - the hook-based tiles against a plain double-precision reference (full A, G, E per head);
//  - meaning: E of single entries against central differences of the exact loss when the entry's
//    removal is scaled by t; tile ablations (Spearman of predicted vs measured);
//  - runs: an interrupted-and-resumed profile is bitwise the uninterrupted one (library and CLI),
//    the file is a valid moa-profile/1, bad runs are one clear error.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "moa/model/backward.h"
#include "moa/core/error.h"
#include "moa/core/file_io.h"
#include "moa/compress/profile.h"
#include "moa/compress/profiler.h"
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

// Weights larger than the default 0.02 so that attention is far from uniform and E is well above
// the f32 noise of the loss.
Model tiny_model() { return Model::random(tiny_config(), 7, 0.25f); }

TokenizedSample random_sample(int64_t T, int64_t prompt, uint64_t seed, int64_t vocab) {
  std::mt19937_64 rng(seed);
  TokenizedSample s;
  for (int64_t t = 0; t < T; ++t) s.ids.push_back(int32_t(rng() % uint64_t(vocab)));
  s.prompt_tokens = prompt;
  s.loss_mask.assign(size_t(T), 0.0f);
  for (int64_t t = prompt - 1; t + 1 < T; ++t) s.loss_mask[size_t(t)] = 1.0f;
  return s;
}

// q, k, v, d_out of every layer, as the hook sees them.
struct Captured {
  std::map<int64_t, std::vector<float>> q, k, v, d;
  double loss = 0;
};

Captured capture(const Model& m, const TokenizedSample& s) {
  const ModelConfig& c = m.cfg;
  const int64_t T = s.size();
  Captured cap;
  BackwardOptions opt;
  opt.hook = [&](int64_t l, const float* q, const float* k, const float* v, const float* d) {
    cap.q[l].assign(q, q + T * c.q_dim());
    cap.k[l].assign(k, k + T * c.kv_dim());
    cap.v[l].assign(v, v + T * c.kv_dim());
    cap.d[l].assign(d, d + T * c.q_dim());
  };
  cap.loss = forward_backward(m, AttentionSpec::dense(c.layers, c.heads, c.kv_heads, c.head_dim, T),
                              s.ids, s.loss_mask, nullptr, opt);
  return cap;
}

// The plain reference: full A and G = dO V^T of one head in double, (T, T) each, zero above the
// diagonal.
struct RefAG {
  std::vector<double> A, G;
};
RefAG reference_AG(const Captured& cap, const ModelConfig& c, int64_t l, int64_t h, int64_t T) {
  const int64_t D = c.head_dim, HD = c.q_dim(), GD = c.kv_dim(), g = h / c.group();
  const auto &q = cap.q.at(l), &k = cap.k.at(l), &v = cap.v.at(l), &d = cap.d.at(l);
  RefAG r{std::vector<double>(size_t(T * T), 0.0), std::vector<double>(size_t(T * T), 0.0)};
  auto& A = r.A;
  for (int64_t i = 0; i < T; ++i) {
    double mx = -INFINITY;
    for (int64_t j = 0; j <= i; ++j) {
      double s = 0, gg = 0;
      for (int64_t x = 0; x < D; ++x) {
        s += double(q[size_t(i * HD + h * D + x)]) * k[size_t(j * GD + g * D + x)];
        gg += double(d[size_t(i * HD + h * D + x)]) * v[size_t(j * GD + g * D + x)];
      }
      A[size_t(i * T + j)] = s / std::sqrt(double(D));
      r.G[size_t(i * T + j)] = gg;
      mx = std::max(mx, A[size_t(i * T + j)]);
    }
    double Z = 0;
    for (int64_t j = 0; j <= i; ++j)
      Z += A[size_t(i * T + j)] = std::exp(A[size_t(i * T + j)] - mx);
    for (int64_t j = 0; j <= i; ++j) A[size_t(i * T + j)] /= Z;
  }
  return r;
}

// E (T, T) of one head straight from the formula.
std::vector<double> reference_E(const Captured& cap, const ModelConfig& c, int64_t l, int64_t h,
                                int64_t T) {
  const RefAG r = reference_AG(cap, c, l, h, T);
  std::vector<double> E(size_t(T * T), 0.0);
  for (int64_t i = 0; i < T; ++i) {
    double S = 0;
    for (int64_t j = 0; j <= i; ++j) S += r.A[size_t(i * T + j)] * r.G[size_t(i * T + j)];
    for (int64_t j = 0; j <= i; ++j) {
      const double a = r.A[size_t(i * T + j)], gij = r.G[size_t(i * T + j)];
      E[size_t(i * T + j)] = i == 0 ? -a * gij : -a * (gij - S) / (1 - a + kInfluenceEps);
    }
  }
  return E;
}

// The tile-joint influence (InfluenceKind::kTile) of one head, (nb, nb), by doing the removal:
// per row and key tile, the row with that tile's entries zeroed and renormalised (all zero when
// nothing is left), and sum_j G (A' - A).
std::vector<double> reference_joint(const Captured& cap, const ModelConfig& c, int64_t l, int64_t h,
                                    int64_t T, int64_t block, int64_t nb) {
  const RefAG r = reference_AG(cap, c, l, h, T);
  std::vector<double> t(size_t(nb * nb), 0.0);
  for (int64_t i = 0; i < T; ++i) {
    for (int64_t kb = 0; kb * block <= i; ++kb) {
      double kept = 0;
      for (int64_t j = 0; j <= i; ++j) {
        if (j / block != kb) kept += r.A[size_t(i * T + j)];
      }
      double dl = 0;
      for (int64_t j = 0; j <= i; ++j) {
        const double a = r.A[size_t(i * T + j)];
        const double a2 = j / block == kb || kept == 0 ? 0.0 : a / kept;
        dl += r.G[size_t(i * T + j)] * (a2 - a);
      }
      t[size_t((i / block) * nb + kb)] += dl;
    }
  }
  return t;
}

std::vector<double> tile_sums(const std::vector<double>& E, int64_t T, int64_t block, int64_t nb) {
  std::vector<double> t(size_t(nb * nb), 0.0);
  for (int64_t i = 0; i < T; ++i) {
    for (int64_t j = 0; j <= i; ++j)
      t[size_t((i / block) * nb + j / block)] += E[size_t(i * T + j)];
  }
  return t;
}

::testing::AssertionResult close_rel_max(const double* got, const std::vector<double>& want,
                                         double rel) {
  double mx = 0, worst = 0;
  size_t bad = want.size();
  for (double w : want) mx = std::max(mx, std::fabs(w));
  for (size_t i = 0; i < want.size(); ++i) {
    const double e = std::fabs(got[i] - want[i]);
    if (!(e <= rel * mx) && bad == want.size()) bad = i;
    if (!(e <= worst)) worst = e;
  }
  if (bad == want.size()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "first bad index " << bad << ": " << got[bad] << " vs " << want[bad]
         << ", max abs error " << worst << " (allowed " << rel * mx << ")";
}

TEST(Profiler, HookTilesMatchDoubleReference) {
  const Model m = tiny_model();
  const ModelConfig& c = m.cfg;
  const int64_t T = 150, L = 192;  // ragged: T is not a multiple of the block
  const TokenizedSample s = random_sample(T, 100, 1, c.vocab);
  const Captured cap = capture(m, s);
  for (int64_t block : {64, 16, 1}) {
    const int64_t nb = (L + block - 1) / block;
    double worst = 0;
    // Through the whole sample (hook wiring, GQA head mapping, layer order).
    std::map<int64_t, std::vector<double>> got;
    std::vector<int64_t> order;
    const double loss = sample_influence(m, s, L, block, [&](int64_t l, const double* t) {
      got[l].assign(t, t + c.heads * nb * nb);
      order.push_back(l);
    });
    EXPECT_EQ(loss, cap.loss);
    EXPECT_EQ(order, (std::vector<int64_t>{1, 0}));
    for (int64_t l = 0; l < c.layers; ++l) {
      for (int64_t h = 0; h < c.heads; ++h) {
        const auto want = tile_sums(reference_E(cap, c, l, h, T), T, block, nb);
        EXPECT_TRUE(close_rel_max(&got[l][size_t(h * nb * nb)], want, 2e-5))
            << "block " << block << " layer " << l << " head " << h;
        double mx = 0, err = 0;
        for (size_t i = 0; i < want.size(); ++i) {
          mx = std::max(mx, std::fabs(want[i]));
          err = std::max(err, std::fabs(got[l][size_t(h * nb * nb) + i] - want[i]));
        }
        worst = std::max(worst, err / mx);
      }
    }
    std::printf("block %lld: max |tile - reference| / max |reference| = %.2e\n", (long long)block,
                worst);
  }
}

// The tile-joint kind against the removal done in double, with GQA, ragged T and the block-0
// tiles that empty a row; with block 1 it is the entry kind (a tile is one entry).
TEST(Profiler, TileJointMatchesDoubleReference) {
  const Model m = tiny_model();
  const ModelConfig& c = m.cfg;
  const int64_t T = 150;
  const Captured cap = capture(m, random_sample(T, 100, 4, c.vocab));
  for (int64_t block : {64, 16, 1}) {
    const int64_t nb = (T + block - 1) / block;
    for (int64_t l = 0; l < c.layers; ++l) {
      std::vector<double> got(size_t(c.heads * nb * nb), 0.0);
      influence_tiles(cap.q.at(l).data(), cap.k.at(l).data(), cap.v.at(l).data(), cap.d.at(l).data(), T,
                      c.heads, c.kv_heads, c.head_dim, block, nb, got.data(), InfluenceKind::kTile);
      for (int64_t h = 0; h < c.heads; ++h) {
        const auto want = reference_joint(cap, c, l, h, T, block, nb);
        EXPECT_TRUE(close_rel_max(&got[size_t(h * nb * nb)], want, 2e-5))
            << "block " << block << " layer " << l << " head " << h;
        if (block == 1) {
          EXPECT_TRUE(close_rel_max(&got[size_t(h * nb * nb)], tile_sums(reference_E(cap, c, l, h, T), T, 1, nb), 2e-5))
              << "layer " << l << " head " << h;
        }
      }
    }
  }
}

TEST(Profiler, KernelDoesNotDependOnThreads) {
  const Model m = tiny_model();
  const ModelConfig& c = m.cfg;
  const int64_t T = 200, block = 16, nb = 13;
  const Captured cap = capture(m, random_sample(T, 150, 2, c.vocab));
  std::vector<double> one(size_t(c.heads * nb * nb), 0.0), two(one);
  const int before = omp_get_max_threads();
  omp_set_num_threads(1);
  influence_tiles(cap.q.at(1).data(), cap.k.at(1).data(), cap.v.at(1).data(), cap.d.at(1).data(), T,
                  c.heads, c.kv_heads, c.head_dim, block, nb, one.data());
  omp_set_num_threads(3);
  influence_tiles(cap.q.at(1).data(), cap.k.at(1).data(), cap.v.at(1).data(), cap.d.at(1).data(), T,
                  c.heads, c.kv_heads, c.head_dim, block, nb, two.data());
  omp_set_num_threads(before);
  EXPECT_EQ(one, two);
  // above the diagonal nothing, and the rows past T nothing
  for (int64_t h = 0; h < c.heads; ++h) {
    for (int64_t qb = 0; qb < nb; ++qb) {
      for (int64_t kb = 0; kb < nb; ++kb) {
        if (kb > qb || qb * block >= T) {
          EXPECT_EQ(one[size_t((h * nb + qb) * nb + kb)], 0.0);
        }
      }
    }
  }
}

// A dominant entry (an attention sink): 1 - A[2,2] = 1.2e-5, which 1 - float(A) would give to
// only ~0.5%.
TEST(Profiler, DominantEntryKeepsPrecision) {
  const int64_t T = 3, D = 1;
  // row 2 scores: 0, 0, 12
  const std::vector<float> q = {1, 1, 1}, k = {0, 0, 12}, v = {1, 2, 3}, d = {0.5f, -1, 2};
  std::vector<double> E(9, 0.0);
  influence_tiles(q.data(), k.data(), v.data(), d.data(), T, 1, 1, D, 1, T, E.data());
  // exact, in double, with the algebra done by hand: row 2 has G = d_2 v = (2, 4, 6),
  // A = (a0, a0, a2), G[2] - S = 6 - (6 a0 + 6 a2) = 6 a0, 1 - a2 = 2 a0
  const double e12 = std::exp(-12.0), Z = 2 * e12 + 1, a0 = e12 / Z, a2 = 1 / Z;
  const double want22 = -a2 * 6 * a0 / (2 * a0 + kInfluenceEps);
  const double want20 = -a0 * (2 - (6 * a0 + 6 * a2)) / (1 - a0 + kInfluenceEps);
  EXPECT_NEAR(E[8], want22, 1e-6 * std::fabs(want22)) << E[8] << " vs " << want22;
  EXPECT_NEAR(E[6], want20, 1e-6 * std::fabs(want20)) << E[6] << " vs " << want20;
  EXPECT_EQ(E[0], -0.5);  // E[0,0] = -A G = -(1 * 0.5 * 1)
}

// dL/dt of the edit "row i's probabilities become (1 - t) A + t A_removed(j)" is E[i, j]: that
// edit is entry j scaled by w = 1 - u with renormalisation, u = t / (1 - a + t a).
TEST(Profiler, EntryInfluenceIsTheLossDerivative) {
  const Model m = tiny_model();
  const ModelConfig& c = m.cfg;
  const int64_t T = 40;
  const TokenizedSample s = random_sample(T, 25, 3, c.vocab);
  const Captured cap = capture(m, s);
  int checked = 0;
  double worst = 0;
  for (int64_t l = 0; l < c.layers; ++l) {
    std::vector<double> E(size_t(c.heads * T * T), 0.0);  // block 1: tiles are entries
    influence_tiles(cap.q.at(l).data(), cap.k.at(l).data(), cap.v.at(l).data(), cap.d.at(l).data(),
                    T, c.heads, c.kv_heads, c.head_dim, 1, T, E.data());
    for (int64_t h : {0, 1, 3}) {
      // the two largest |E| of this head (rows i > 0)
      std::vector<std::pair<double, int64_t>> by;
      for (int64_t i = 1; i < T; ++i) {
        for (int64_t j = 0; j <= i; ++j)
          by.push_back({-std::fabs(E[size_t((h * T + i) * T + j)]), i * T + j});
      }
      std::sort(by.begin(), by.end());
      // the plain reference's A for u(t)
      std::vector<double> Aref;
      {
        // softmax of row i in double, recomputed here (independent of the kernel)
        const int64_t D = c.head_dim, HD = c.q_dim(), GD = c.kv_dim(), g = h / c.group();
        Aref.assign(size_t(T * T), 0.0);
        for (int64_t i = 0; i < T; ++i) {
          double mx = -INFINITY, Z = 0;
          for (int64_t j = 0; j <= i; ++j) {
            double sc = 0;
            for (int64_t x = 0; x < D; ++x) {
              sc += double(cap.q.at(l)[size_t(i * HD + h * D + x)]) *
                    cap.k.at(l)[size_t(j * GD + g * D + x)];
            }
            Aref[size_t(i * T + j)] = sc / std::sqrt(double(D));
            mx = std::max(mx, Aref[size_t(i * T + j)]);
          }
          for (int64_t j = 0; j <= i; ++j)
            Z += Aref[size_t(i * T + j)] = std::exp(Aref[size_t(i * T + j)] - mx);
          for (int64_t j = 0; j <= i; ++j) Aref[size_t(i * T + j)] /= Z;
        }
      }
      for (int r = 0; r < 2; ++r) {
        const int64_t i = by[size_t(r)].second / T, j = by[size_t(r)].second % T;
        const double e = E[size_t((h * T + i) * T + j)], a = Aref[size_t(i * T + j)];
        const double t = 0.05;
        auto loss_at = [&](double tt) {
          const double u = tt / (1 - a + tt * a);
          return edited_loss(m, s, {l, h, i, i + 1, j, j + 1, 1 - u});
        };
        const double fd = (loss_at(t) - loss_at(-t)) / (2 * t);
        const double rel = std::fabs(fd - e) / std::fabs(e);
        worst = std::max(worst, rel);
        std::printf("layer %lld head %lld (%lld,%lld): A %.4f  E %+.6e  dL/dt %+.6e  rel %.2e\n",
                    (long long)l, (long long)h, (long long)i, (long long)j, a, e, fd, rel);
        EXPECT_GT(std::fabs(e), 1e-4) << "entry too small to test against f32 noise";
        EXPECT_LT(rel, 0.03) << "layer " << l << " head " << h << " (" << i << "," << j << ")";
        ++checked;
      }
    }
  }
  std::printf("finite differences: %d entries, worst relative error %.3e\n", checked, worst);
}

TEST(Profiler, EditWithWeightOneIsTheModel) {
  const Model m = tiny_model();
  const TokenizedSample s = random_sample(70, 50, 4, m.cfg.vocab);
  const double base = capture(m, s).loss;
  const double same = edited_loss(m, s, {1, 2, 0, 70, 0, 70, 1.0});
  EXPECT_NEAR(same, base, 1e-6 * base);
  // scaling whole rows is undone by the renormalisation; scaling part of them is not
  EXPECT_NEAR(edited_loss(m, s, {1, 2, 10, 70, 0, 70, 0.5}), same, 1e-6 * base);
  EXPECT_GT(std::fabs(edited_loss(m, s, {1, 2, 10, 70, 0, 5, 0.5}) - same), 1e-5);
}

// With the FD test's peaky model (std 0.25) whole-tile removals are far from first order
// (Spearman about 0.4..0.9 over seeds and blocks); this model (std 0.1) gives about 0.97. A loose
// bound only: the real check is `moa profile --check-ablations K` on a trained model.
TEST(Profiler, TileAblationsFollowTheProfile) {
  const Model m = Model::random(tiny_config(), 7, 0.1f);
  std::vector<TokenizedSample> samples = {random_sample(120, 80, 5, m.cfg.vocab),
                                          random_sample(128, 90, 6, m.cfg.vocab)};
  AblationReport r = check_ablations(m, samples, 128, 16, 30, 1);
  ASSERT_EQ(r.ablations.size(), 30u);
  for (const TileAblation& t : r.ablations) {
    std::printf("ablation layer %lld head %lld tile (%lld,%lld): predicted %+.4e measured %+.4e\n",
                (long long)t.layer, (long long)t.head, (long long)t.qb, (long long)t.kb,
                t.predicted, t.measured);
  }
  std::printf("tile ablations: Spearman %.4f (tile-joint %.4f) over %zu (2 samples, block 16)\n",
              r.spearman, r.spearman_joint, r.ablations.size());
  EXPECT_GE(r.spearman, 0.5);
  EXPECT_GE(r.spearman_joint, 0.5);
}

// --check-tiles droppable: only tiles some plan can drop (below the diagonal) are drawn.
TEST(Profiler, DroppableAblationsStayOffTheDiagonal) {
  const Model m = Model::random(tiny_config(), 7, 0.1f);
  std::vector<TokenizedSample> samples = {random_sample(120, 80, 5, m.cfg.vocab)};
  AblationReport r = check_ablations(m, samples, 128, 16, 20, 3, {}, true);
  ASSERT_EQ(r.ablations.size(), 20u);
  for (const TileAblation& t : r.ablations) EXPECT_LT(t.kb, t.qb) << t.layer << " " << t.head;
  AblationReport all = check_ablations(m, samples, 128, 16, 20, 3, {}, false);
  int64_t diagonal = 0;
  for (const TileAblation& t : all.ablations) diagonal += t.kb == t.qb;
  EXPECT_GT(diagonal, 0);  // the default draw does include them
  EXPECT_GE(r.spearman, 0.5);
}

TEST(Profiler, SpearmanRanks) {
  EXPECT_DOUBLE_EQ(spearman({1, 2, 3, 4}, {10, 20, 30, 40}), 1.0);
  EXPECT_DOUBLE_EQ(spearman({1, 2, 3, 4}, {4, 3, 2, 1}), -1.0);
  EXPECT_DOUBLE_EQ(spearman({1, 2, 3}, {5, 5, 5}), 0.0);
  EXPECT_NEAR(spearman({1, 2, 2, 3}, {1, 2, 3, 4}), 0.9486832980505138, 1e-12);  // ties averaged
}

// ---- runs -----------------------------------------------------------------------------------

fs::path write_data(const fs::path& dir, int n) {
  std::string text;
  std::mt19937_64 rng(9);
  for (int i = 0; i < n; ++i) {
    std::string prompt;
    const int len = 40 + int(rng() % 60);
    for (int t = 0; t < len; ++t) prompt.push_back(char('a' + rng() % 26));
    text +=
        nlohmann::json({{"prompt", prompt}, {"answer", std::to_string(rng() % 100000)}}).dump() +
        "\n";
  }
  text += nlohmann::json({{"prompt", std::string(300, 'x')}, {"answer", "1"}}).dump() +
          "\n";  // too long
  write_text_atomic(dir / "calib.jsonl", text);
  return dir / "calib.jsonl";
}

std::vector<TokenizedSample> tokenize_file(const fs::path& f) {
  auto dir = f.parent_path();
  write_text_atomic(dir / "tokenizer.json", make_byte_level_tokenizer_json());
  auto tok = Tokenizer::load(dir / "tokenizer.json");
  std::vector<TokenizedSample> out;
  for (const CalibSample& s : load_calib(f)) out.push_back(tokenize_sample(*tok, s));
  return out;
}

TEST(ProfileRun, ResumedRunIsBitwiseTheUninterruptedOne) {
  const Model m = tiny_model();
  auto dir = test::temp_dir("profile_run");
  const fs::path data = write_data(dir, 5);
  const auto samples = tokenize_file(data);
  ProfileOptions o;
  o.length = 128;
  o.block = 16;
  o.checkpoint_every = 2;
  o.model_name = "tiny";
  auto full = run_profile(m, samples, data, dir / "full.safetensors", o);
  EXPECT_TRUE(full.complete);
  EXPECT_EQ(full.samples, 5);
  EXPECT_EQ(full.too_long, 1);
  EXPECT_FALSE(fs::exists(dir / "full.partial.safetensors"));

  const fs::path out = dir / "resumed.safetensors", partial = dir / "resumed.partial.safetensors";
  o.stop_after = 1;  // not on a checkpoint boundary: the stop itself checkpoints
  auto a = run_profile(m, samples, data, out, o);
  EXPECT_FALSE(a.complete);
  EXPECT_EQ(a.samples, 1);
  EXPECT_TRUE(fs::exists(partial));
  EXPECT_FALSE(fs::exists(out));
  o.stop_after = 2;
  auto b = run_profile(m, samples, data, out, o);
  EXPECT_EQ(b.resumed, 1);
  EXPECT_EQ(b.samples, 3);
  o.stop_after = -1;
  auto cc = run_profile(m, samples, data, out, o);
  EXPECT_TRUE(cc.complete);
  EXPECT_EQ(cc.resumed, 3);
  EXPECT_FALSE(fs::exists(partial));
  EXPECT_EQ(read_text(out), read_text(dir / "full.safetensors"));

  Profile p = Profile::load(out);
  EXPECT_EQ(p.length, 128);
  EXPECT_EQ(p.block, 16);
  EXPECT_EQ(p.samples, 5);
  EXPECT_EQ(p.model, "tiny");
  EXPECT_EQ(p.layers, 2);
  EXPECT_EQ(p.heads, 4);
  // the average of the per-sample tiles
  std::vector<double> want(p.influence.size(), 0.0);
  const int64_t per_layer = 4 * 8 * 8;
  for (const TokenizedSample& s : samples) {
    if (s.size() > 128) continue;
    sample_influence(m, s, 128, 16, [&](int64_t l, const double* t) {
      for (int64_t i = 0; i < per_layer; ++i) want[size_t(l * per_layer + i)] += t[i] / 5;
    });
  }
  std::vector<float> wantf(want.begin(), want.end());
  EXPECT_TRUE(test::all_close(p.influence, wantf, 1e-5, 1e-9));
  for (int64_t qb = 0; qb < 8; ++qb) {
    for (int64_t kb = qb + 1; kb < 8; ++kb) EXPECT_EQ(p.at(1, 3, qb, kb), 0.0f);
  }
  fs::remove_all(dir);
}

TEST(ProfileRun, ClearErrors) {
  const Model m = tiny_model();
  auto dir = test::temp_dir("profile_err");
  const fs::path data = write_data(dir, 3);
  const auto samples = tokenize_file(data);
  ProfileOptions o;
  o.length = 20;  // nothing fits
  try {
    run_profile(m, samples, data, dir / "p.safetensors", o);
    ADD_FAILURE() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("none of its 4 samples fits in --length 20"),
              std::string::npos)
        << e.what();
  }
  // a partial from another data file is refused, --fresh starts over
  o.length = 128;
  o.stop_after = 1;
  run_profile(m, samples, data, dir / "p.safetensors", o);
  write_text_atomic(dir / "other.jsonl", read_text(data) + "\n");
  o.stop_after = -1;
  try {
    run_profile(m, samples, dir / "other.jsonl", dir / "p.safetensors", o);
    ADD_FAILURE() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("p.partial.safetensors: this checkpoint has data"),
              std::string::npos)
        << e.what();
  }
  o.fresh = true;
  EXPECT_TRUE(run_profile(m, samples, dir / "other.jsonl", dir / "p.safetensors", o).complete);
  EXPECT_EQ(Profile::load(dir / "p.safetensors").influence_kind, "entry");
  // a partial of the other influence kind is refused too; a finished run records its kind
  o.fresh = false;
  o.stop_after = 1;
  run_profile(m, samples, data, dir / "k.safetensors", o);
  o.stop_after = -1;
  o.kind = InfluenceKind::kTile;
  try {
    run_profile(m, samples, data, dir / "k.safetensors", o);
    ADD_FAILURE() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("this checkpoint has influence 'entry', this run 'tile'"), std::string::npos)
        << e.what();
  }
  o.fresh = true;
  EXPECT_TRUE(run_profile(m, samples, data, dir / "k.safetensors", o).complete);
  Profile k = Profile::load(dir / "k.safetensors");
  EXPECT_EQ(k.influence_kind, "tile");
  // a profile whose influence field is neither kind is refused with the field named
  k.influence_kind = "sideways";
  k.save(dir / "bad.safetensors");
  try {
    Profile::load(dir / "bad.safetensors");
    ADD_FAILURE() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("__metadata__.influence is 'sideways'"), std::string::npos) << e.what();
  }
  // a length or block no profile has is refused: nb() = ceil(length / block) overflowed int64
  for (const char* key : {"length", "block"}) {
    const std::vector<float> one(1, 0.0f);
    std::map<std::string, std::string> meta = {
        {"format", kProfileFormat}, {"length", "64"}, {"block", "64"}, {"samples", "1"}};
    meta[key] = "9223372036854775807";
    write_safetensors(dir / "huge.safetensors",
                      {{"influence", DType::kF32, {1, 1, 1, 1}, one.data()}}, meta);
    test::expect_input_error(dir / "huge.safetensors",
                             [&] { Profile::load(dir / "huge.safetensors"); },
                             {fmt::format("__metadata__.{} is '9223372036854775807', expected an "
                                          "integer in 1..1099511627776",
                                          key)});
  }
  fs::remove_all(dir);
}

// ---- the command ----------------------------------------------------------------------------

TEST(ProfileCli, StopAndResumeGiveTheSameFile) {
  auto dir = test::temp_dir("profile_cli");
  const fs::path model_dir = dir / "tiny";
  tiny_model().save(model_dir, DType::kF32);
  write_text_atomic(model_dir / "tokenizer.json", make_byte_level_tokenizer_json());
  const fs::path data = write_data(dir, 5);
  const std::string base = "profile -m " + model_dir.string() + " --data " + data.string() +
                           " --length 128 --block 32 --checkpoint-every 2 ";
  auto full =
      test::run_moa(base + "--out " + (dir / "full.safetensors").string() + " --threads 1 --json");
  ASSERT_EQ(full.status, 0) << full.err;
  auto j = nlohmann::json::parse(full.out);
  EXPECT_EQ(j["samples"], 5);
  EXPECT_EQ(j["complete"], true);
  EXPECT_EQ(j["skipped_long"], 1);
  EXPECT_NE(full.err.find("skipping 1 of 6 samples longer than 128 tokens"), std::string::npos)
      << full.err;
  EXPECT_NE(full.err.find("samples/s"), std::string::npos) << full.err;
  EXPECT_NE(full.err.find("ETA"), std::string::npos) << full.err;

  const std::string out = (dir / "r.safetensors").string();
  auto a = test::run_moa(base + "--out " + out + " --stop-after 3 --threads 1");
  ASSERT_EQ(a.status, 0) << a.err;
  EXPECT_NE(a.err.find("stopped after 3 of 5 samples"), std::string::npos) << a.err;
  EXPECT_TRUE(fs::exists(dir / "r.partial.safetensors"));
  auto b = test::run_moa(base + "--out " + out + " --threads 1");
  ASSERT_EQ(b.status, 0) << b.err;
  EXPECT_NE(b.err.find("resumed from 3 samples"), std::string::npos) << b.err;
  EXPECT_EQ(read_text(out), read_text(dir / "full.safetensors"));
  EXPECT_FALSE(fs::exists(dir / "r.partial.safetensors"));

  auto chk = test::run_moa("profile -m " + model_dir.string() + " --data " + data.string() +
                           " --length 128 --block 32 --check-ablations 6 --samples 1 --json");
  ASSERT_EQ(chk.status, 0) << chk.err;
  auto cj = nlohmann::json::parse(chk.out);
  EXPECT_EQ(cj["ablations"].size(), 6u);
  EXPECT_TRUE(cj["spearman"].is_number());
  EXPECT_TRUE(cj["spearman_joint"].is_number());
  EXPECT_TRUE(cj["ablations"][0]["predicted_joint"].is_number());
  EXPECT_EQ(cj["tiles"], "all");
  auto off = test::run_moa("profile -m " + model_dir.string() + " --data " + data.string() +
                           " --length 128 --block 32 --check-ablations 4 --check-tiles droppable"
                           " --samples 1 --json");
  ASSERT_EQ(off.status, 0) << off.err;
  auto oj = nlohmann::json::parse(off.out);
  EXPECT_EQ(oj["tiles"], "droppable");
  for (const auto& t : oj["ablations"]) EXPECT_LT(t["kb"].get<int>(), t["qb"].get<int>());
  auto badt = test::run_moa("profile -m " + model_dir.string() + " --data " + data.string() +
                            " --length 128 --check-ablations 4 --check-tiles diagonal");
  EXPECT_NE(badt.status, 0);

  auto bad = test::run_moa("profile -m " + model_dir.string() + " --data " + data.string() +
                           " --length 10 --out " + (dir / "x.safetensors").string());
  EXPECT_EQ(bad.status, 2);
  EXPECT_NE(bad.err.find("none of its 6 samples fits in --length 10"), std::string::npos)
      << bad.err;
  fs::remove_all(dir);
}

}  // namespace
}  // namespace moa
