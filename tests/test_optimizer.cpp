// The optimiser: candidate grid, exact loss tables against token-by-token counting, the exact
// multiple-choice solver against brute force and CBC, the Pareto sweep, bad inputs, the command.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "moa/core/error.h"
#include "moa/compress/optimizer.h"
#include "moa/attention/plan.h"
#include "moa/compress/profile.h"
#include "test_util.h"

namespace moa {
namespace {

using nlohmann::json;
constexpr double kInf = std::numeric_limits<double>::infinity();

// Influence that decays with the distance between query and key blocks, a strong sink column and
// a few long-range heads; signs mixed (the loss uses |influence|).
Profile random_profile(int64_t layers, int64_t heads, int64_t length, int64_t block, uint32_t seed) {
  Profile p = Profile::zeros(layers, heads, length, block);
  p.samples = 4;
  p.model = "test-model";
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  for (int64_t l = 0; l < layers; ++l) {
    for (int64_t h = 0; h < heads; ++h) {
      double tau = 0.5 + 6.0 * u(rng) * u(rng);  // most heads local, a few far-reaching
      double sink = 2.0 * u(rng);
      for (int64_t qb = 0; qb < p.nb(); ++qb) {
        for (int64_t kb = 0; kb <= qb; ++kb) {
          double v = u(rng) * std::exp(-double(qb - kb) / tau) + (kb == 0 ? sink : 0.0);
          if (u(rng) < 0.1) v = -v;
          p.at(l, h, qb, kb) = float(v * 1e-3);
        }
      }
    }
  }
  return p;
}

TEST(Optimizer, ReferenceGridHas48Rules) {
  auto rules = candidate_rules({2048, 4096, 8192}, {16384});
  ASSERT_EQ(rules.size(), 48u);
  for (const auto& r : rules) {
    EXPECT_EQ(std::fmod(r.alpha, 1024.0), 0.0) << r.alpha;
    EXPECT_GE(r.alpha, -2048);
    EXPECT_LE(r.alpha + r.beta * 8192, 8192);
    EXPECT_LE(r.alpha + r.beta * 16384, 16384);
    EXPECT_GT(r.alpha + r.beta * 2048, 0);
  }
  // Boundary rules the reference keeps: alpha + beta*8192 == 8192.
  auto has = [&](double a, double b) {
    for (const auto& r : rules)
      if (r.alpha == a && r.beta == b) return true;
    return false;
  };
  EXPECT_TRUE(has(8192, 0));
  EXPECT_TRUE(has(0, 1));
  EXPECT_TRUE(has(-1024, 1));
  EXPECT_TRUE(has(0, 0.5));
  EXPECT_FALSE(has(0, 0));        // alpha + beta*2048 must be > 0
  EXPECT_FALSE(has(-2048, 1));    // idem
  EXPECT_FALSE(has(1024, 1));     // over 8192 at 8192
}

TEST(Optimizer, GridScalesWithLengths) {
  auto rules = candidate_rules({512, 1024, 2048}, {4096});
  ASSERT_EQ(rules.size(), 48u);  // the same grid, step 2048 / 8
  double min_a = 1e9, max_a = -1e9;
  for (const auto& r : rules) {
    EXPECT_EQ(std::fmod(r.alpha, 256.0), 0.0) << r.alpha;
    min_a = std::min(min_a, r.alpha);
    max_a = std::max(max_a, r.alpha);
  }
  EXPECT_EQ(min_a, -256);  // -512 needs beta > 1 to stay positive at 512
  EXPECT_EQ(max_a, 2048);
  // One profile length: step = L/8 still.
  for (const auto& r : candidate_rules({1000}, {})) EXPECT_EQ(std::fmod(r.alpha, 125.0), 0.0);
}

TEST(Optimizer, DroppedEntriesMatchCounting) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 3000; ++trial) {
    int64_t q0 = rng() % 40, q1 = q0 + rng() % 30, k0 = rng() % 40, k1 = k0 + rng() % 30;
    int64_t s = rng() % 20, w = rng() % 25;
    int64_t causal = 0, dropped = 0;
    for (int64_t i = q0; i < q1; ++i) {
      for (int64_t j = k0; j < k1; ++j) {
        if (j > i) continue;
        ++causal;
        if (!(j < s || i - j < w)) ++dropped;
      }
    }
    ASSERT_EQ(causal_entries(q0, q1, k0, k1), causal) << q0 << " " << q1 << " " << k0 << " " << k1;
    ASSERT_EQ(dropped_entries(q0, q1, k0, k1, s, w), dropped)
        << "q [" << q0 << "," << q1 << ") k [" << k0 << "," << k1 << ") S " << s << " W " << w;
  }
}

// Loss tables (diagonal sums, sink columns, partial last block) against counting every entry.
TEST(Optimizer, LossTableMatchesTokenCounting) {
  struct Case {
    int64_t block;
    std::vector<int64_t> lengths;
    CacheParams cp;
  };
  std::vector<Case> cases = {
      {64, {512, 1024}, {}},                        // reference parameters
      {16, {200, 333}, {}},                         // sink spans 4 key blocks, partial last block
      {16, {300}, {24, 32, 40}},                    // sink inside a block, odd cache block
      {32, {250, 500}, {8, 16, 16}},                // small caches: bands on many diagonals
  };
  for (const Case& c : cases) {
    std::vector<Profile> profiles;
    for (size_t i = 0; i < c.lengths.size(); ++i)
      profiles.push_back(random_profile(2, 3, c.lengths[i], c.block, uint32_t(11 + i)));
    auto rules = candidate_rules(c.lengths, {c.lengths.back() * 2});
    RuleTables t = build_rule_tables(profiles, {c.lengths.back() * 2}, rules, c.cp);
    ASSERT_EQ(t.profile_lengths, c.lengths);
    ASSERT_EQ(t.lengths.size(), c.lengths.size() + 1);
    for (size_t p = 0; p < c.lengths.size(); ++p) {
      for (int64_t row = 0; row < t.rows(); ++row) {
        for (int64_t r = 0; r < t.rule_count(); ++r) {
          double ref = rule_loss_reference(profiles[p], row / 3, row % 3, rules[size_t(r)], c.cp);
          double got = t.loss_at(p, row, r);
          ASSERT_NEAR(got, ref, 1e-12 * std::max(1.0, std::fabs(ref)))
              << "block " << c.block << " N " << c.lengths[p] << " row " << row << " rule ("
              << rules[size_t(r)].alpha << ", " << rules[size_t(r)].beta << ")";
        }
      }
    }
    for (size_t n = 0; n < t.lengths.size(); ++n) {
      for (int64_t r = 0; r < t.rule_count(); ++r) {
        HeadCache h = head_cache_rule(rules[size_t(r)].alpha, rules[size_t(r)].beta, t.lengths[n],
                                      c.cp.sink, c.cp.block, c.cp.min_cache);
        EXPECT_EQ(t.density_at(n, r), double(std::min(t.lengths[n], h.cache)) / double(t.lengths[n]));
      }
    }
  }
}

// --- the choice solvers ---------------------------------------------------------------------------

struct RandomSpec {
  int groups_lo, groups_hi, items_lo, items_hi, rows;
  bool lower_bounds;
  int max_distinct;  // 0 = off
  double tightness;  // 0 = budget at a random solution, larger = looser
};

// Knapsack-like instances shaped like the real one: items that are "denser" (larger weights in
// every row, correlated across rows) are cheaper, plus noise.
ChoiceProblem random_problem(std::mt19937& rng, const RandomSpec& s) {
  std::uniform_real_distribution<double> u(0, 1);
  ChoiceProblem p;
  int groups = s.groups_lo + int(rng() % uint32_t(s.groups_hi - s.groups_lo + 1));
  p.rows = s.rows;
  p.group_start.push_back(0);
  std::vector<int32_t> some_choice;
  for (int g = 0; g < groups; ++g) {
    int items = s.items_lo + int(rng() % uint32_t(s.items_hi - s.items_lo + 1));
    double importance = u(rng) * u(rng);
    for (int i = 0; i < items; ++i) {
      double dens = u(rng);
      p.cost.push_back(importance * (1 - dens) * (1 - dens) + 0.05 * u(rng));
      for (int k = 0; k < s.rows; ++k) p.weight.push_back(std::clamp(dens + 0.3 * (u(rng) - 0.5) * k / s.rows, 0.0, 1.0));
      if (s.max_distinct > 0) p.label.push_back(int32_t(rng() % 4));
    }
    some_choice.push_back(p.group_start.back() + int32_t(rng() % uint32_t(items)));
    p.group_start.push_back(int32_t(p.cost.size()));
    if (s.max_distinct > 0) p.cluster.push_back(g / 3);
  }
  if (s.max_distinct > 0) {
    p.max_distinct = s.max_distinct;
    // Labels are per cluster "rules": make the chosen solution respect the K rule.
    for (int g = 0; g < groups; ++g) p.label[size_t(some_choice[size_t(g)])] = g % s.max_distinct;
  }
  for (int k = 0; k < s.rows; ++k) {
    double sum = 0;
    for (int32_t i : some_choice) sum += p.weight[size_t(i * s.rows + k)];
    double hi = sum * (1 + s.tightness * u(rng));
    p.hi.push_back(hi);
    p.lo.push_back(s.lower_bounds ? 0.9 * sum : -kInf);
  }
  return p;
}

::testing::AssertionResult same_optimum(const ChoiceResult& a, const ChoiceResult& b) {
  if (a.feasible != b.feasible)
    return ::testing::AssertionFailure() << "feasible " << a.feasible << " vs " << b.feasible;
  if (!a.feasible) return ::testing::AssertionSuccess();
  double tol = 1e-9 * std::max(std::fabs(a.objective), std::fabs(b.objective)) + 1e-15;
  if (std::fabs(a.objective - b.objective) > tol)
    return ::testing::AssertionFailure() << "objective " << a.objective << " vs " << b.objective
                                         << " (diff " << a.objective - b.objective << ")";
  return ::testing::AssertionSuccess();
}

TEST(Optimizer, MckpMatchesBruteForce) {
  std::mt19937 rng(2024);
  const std::vector<RandomSpec> specs = {
      {4, 6, 3, 5, 2, true, 0, 0.0},   {4, 6, 3, 5, 2, false, 0, 0.1},
      {4, 6, 3, 5, 3, true, 0, 0.05},  {4, 6, 3, 5, 1, false, 0, 0.0},
      {4, 6, 3, 5, 2, true, 2, 0.05},  {4, 6, 3, 5, 2, false, 1, 0.2},
      {5, 6, 3, 5, 2, false, 2, 0.0},
  };
  int feasible = 0, total = 0;
  for (const RandomSpec& s : specs) {
    for (int trial = 0; trial < 25; ++trial) {
      ChoiceProblem p = random_problem(rng, s);
      ChoiceResult bf = solve_choice_brute_force(p);
      ChoiceResult mk = solve_choice_mckp(p);
      ASSERT_TRUE(same_optimum(mk, bf)) << "spec rows " << s.rows << " K " << s.max_distinct
                                        << " trial " << trial;
      if (mk.feasible) {
        ASSERT_TRUE(choice_feasible(p, mk.choice));
        EXPECT_LE(mk.root_bound, mk.objective + 1e-12);
        ++feasible;
      }
      ++total;
    }
  }
  EXPECT_GT(feasible, total / 2);  // the instances are not trivially infeasible
  EXPECT_LT(feasible, total + 1);
}

TEST(Optimizer, CbcMatchesBruteForceWithK) {
  std::mt19937 rng(99);
  for (int trial = 0; trial < 12; ++trial) {
    ChoiceProblem p = random_problem(rng, {4, 6, 3, 5, 2, trial % 2 == 0, 1 + trial % 2, 0.05});
    ASSERT_TRUE(same_optimum(solve_choice_cbc(p), solve_choice_brute_force(p))) << "trial " << trial;
  }
}

TEST(Optimizer, MckpMatchesCbc) {
  std::mt19937 rng(31337);
  int trials = 0;
  for (int trial = 0; trial < 36; ++trial) {
    RandomSpec s{20, 80, 6, 14, 1 + trial % 5, trial % 3 != 0, 0, trial % 4 == 0 ? 0.0 : 0.02};
    ChoiceProblem p = random_problem(rng, s);
    ChoiceResult mk = solve_choice_mckp(p);
    ChoiceResult cbc = solve_choice_cbc(p);
    ASSERT_TRUE(same_optimum(mk, cbc)) << "trial " << trial << " groups " << p.groups() << " rows "
                                       << p.rows << " nodes " << mk.nodes;
    if (mk.feasible) {
      ASSERT_TRUE(choice_feasible(p, mk.choice));
    }
    ++trials;
  }
  EXPECT_EQ(trials, 36);
}

TEST(Optimizer, MckpMatchesCbcWithK) {
  std::mt19937 rng(4242);
  for (int trial = 0; trial < 8; ++trial) {
    ChoiceProblem p = random_problem(rng, {9, 15, 4, 6, 2, trial % 2 == 1, 2, 0.03});
    ChoiceResult mk = solve_choice_mckp(p);
    ChoiceResult cbc = solve_choice_cbc(p);
    ASSERT_TRUE(same_optimum(mk, cbc)) << "trial " << trial;
  }
}

// A node limit stops the search: the incumbent (if any) is feasible and no better than the
// optimum, and the result says it is unproven; CBC's answers without a time limit are proven.
TEST(Optimizer, MckpNodeLimitLeavesResultUnproven) {
  std::mt19937 rng(31337);
  int stopped = 0;
  for (int trial = 0; trial < 12; ++trial) {
    RandomSpec s{20, 80, 6, 14, 1 + trial % 5, trial % 3 != 0, 0, 0.02};
    ChoiceProblem p = random_problem(rng, s);
    ChoiceResult full = solve_choice_mckp(p);
    ASSERT_TRUE(full.proven);
    EXPECT_TRUE(solve_choice_cbc(p).proven) << "trial " << trial;
    ChoiceResult cut = solve_choice_mckp(p, {}, 1);
    EXPECT_LE(cut.nodes, 1);
    if (cut.proven) {
      ASSERT_TRUE(same_optimum(cut, full)) << "trial " << trial;
      continue;
    }
    ++stopped;
    ASSERT_TRUE(full.feasible || !cut.feasible) << "trial " << trial;
    if (cut.feasible) {
      ASSERT_TRUE(choice_feasible(p, cut.choice));
      EXPECT_GE(cut.objective, full.objective - 1e-10 * std::fabs(full.objective));
    }
  }
  EXPECT_GT(stopped, 0);  // the instances need more than a root node
}

// A time limit may stop CBC before it proves anything: whatever it answers is still feasible and
// no better than the optimum, and an answer it calls proven is the optimum.
TEST(Optimizer, CbcTimeLimitKeepsAnswersSound) {
  std::mt19937 rng(4242);
  for (int trial = 0; trial < 6; ++trial) {
    RandomSpec s{20, 60, 6, 12, 2 + trial % 3, true, 0, 0.02};
    ChoiceProblem p = random_problem(rng, s);
    ChoiceResult full = solve_choice_mckp(p);
    ASSERT_TRUE(full.proven);
    ChoiceResult r = solve_choice_cbc(p, 1e-3);
    EXPECT_LT(r.seconds, 30.0) << "trial " << trial;
    if (r.proven) {
      EXPECT_TRUE(same_optimum(r, full)) << "trial " << trial;
    } else if (r.feasible) {
      ASSERT_TRUE(choice_feasible(p, r.choice)) << "trial " << trial;
      EXPECT_GE(r.objective, full.objective - 1e-10 * std::fabs(full.objective)) << "trial " << trial;
    }
  }
}

// --- the sweep ------------------------------------------------------------------------------------

RuleTables small_tables(uint32_t seed, int64_t layers = 2, int64_t heads = 4) {
  std::vector<Profile> profiles;
  std::vector<int64_t> lengths = {512, 1024, 2048};
  for (size_t i = 0; i < lengths.size(); ++i)
    profiles.push_back(random_profile(layers, heads, lengths[i], 64, seed + uint32_t(i)));
  return build_rule_tables(profiles, {4096}, candidate_rules(lengths, {4096}));
}

TEST(Optimizer, ParetoPlansAreFeasibleAndNonDominated) {
  RuleTables t = small_tables(5);
  OptimizeOptions o;
  o.density = 0.4;
  o.grid = 4;
  OptimizeResult r = optimize_pareto(t, o);
  ASSERT_FALSE(r.plans.empty());
  EXPECT_EQ(r.solves, 3 + 16);
  ASSERT_EQ(r.anchors.size(), 3u);
  for (const ParetoPoint& pt : r.plans) {
    for (size_t n = 0; n < t.lengths.size(); ++n) {
      double d = 0;
      for (int64_t h = 0; h < t.rows(); ++h) d += t.density_at(n, pt.rule[size_t(h)]);
      d /= double(t.rows());
      EXPECT_NEAR(d, pt.density[n], 1e-12);
      EXPECT_LE(d, 0.4 + 1e-9) << "length " << t.lengths[n];
      EXPECT_GE(d, 0.36 - 1e-9) << "length " << t.lengths[n];
    }
    for (size_t q = 0; q < 3; ++q) {
      double l = 0;
      for (int64_t h = 0; h < t.rows(); ++h) l += t.loss_at(q, h, pt.rule[size_t(h)]);
      EXPECT_NEAR(l, pt.loss[q], 1e-12 * l);
      EXPECT_GE(pt.loss[q], r.anchors[q].loss[q] * (1 - 1e-9));  // nothing beats the anchor
    }
  }
  for (const ParetoPoint& a : r.plans) {
    for (const ParetoPoint& b : r.plans) {
      if (&a == &b) continue;
      bool le = true, lt = false;
      for (size_t q = 0; q < 3; ++q) {
        le = le && a.loss[q] <= b.loss[q];
        lt = lt || a.loss[q] < b.loss[q];
      }
      EXPECT_FALSE(le && lt) << "a plan is dominated by another";
    }
  }
  for (size_t i = 1; i < r.plans.size(); ++i) EXPECT_LE(r.plans[i - 1].loss[2], r.plans[i].loss[2]);

  // Each plan is optimal for the problem it was solved under: CBC agrees.
  for (const ParetoPoint& pt : r.plans) {
    ChoiceResult c = solve_choice_cbc(make_choice_problem(t, o, pt.objective, pt.epsilon));
    ASSERT_TRUE(c.feasible);
    EXPECT_NEAR(c.objective, pt.loss[pt.objective], 1e-9 * pt.loss[pt.objective]);
  }

  // The plan file carries what the optimiser bounded.
  Plan plan = make_plan(t, r.plans[0]);
  auto dir = test::temp_dir("optimizer-plan");
  plan.save(dir / "p.json", PlanForm::kExtended);
  Plan back = Plan::load(dir / "p.json");
  EXPECT_EQ(back.model().value_or(""), "test-model");
  ASSERT_EQ(back.density().size(), 4u);
  for (size_t n = 0; n < t.lengths.size(); ++n)
    EXPECT_NEAR(back.density().at(t.lengths[n]), r.plans[0].density[n], 1e-12);
  EXPECT_EQ(back.lengths()["profile"], json({512, 1024, 2048}));
  EXPECT_EQ(back.lengths()["extend"], json({4096}));
  EXPECT_NEAR(back.lengths()["loss"]["2048"].get<double>(), r.plans[0].loss[2], 1e-12 * r.plans[0].loss[2]);
  std::filesystem::remove_all(dir);
}

TEST(Optimizer, ParetoWithRulesPerLayer) {
  RuleTables t = small_tables(8, 2, 3);
  OptimizeOptions o;
  o.density = 0.5;
  o.grid = 2;
  o.max_rules_per_layer = 2;
  OptimizeResult r = optimize_pareto(t, o);
  ASSERT_FALSE(r.plans.empty());
  for (const ParetoPoint& pt : r.plans) {
    for (int64_t l = 0; l < t.layers; ++l) {
      std::set<int32_t> used(pt.rule.begin() + l * t.heads, pt.rule.begin() + (l + 1) * t.heads);
      EXPECT_LE(used.size(), 2u);
    }
  }
  for (const ParetoPoint& pt : r.plans) {
    ChoiceResult c = solve_choice_cbc(make_choice_problem(t, o, pt.objective, pt.epsilon));
    ASSERT_TRUE(c.feasible);
    EXPECT_NEAR(c.objective, pt.loss[pt.objective], 1e-9 * pt.loss[pt.objective]);
  }
  // The sweep runs through CBC too.
  o.solver = ChoiceSolver::kCbc;
  OptimizeResult c = optimize_pareto(t, o);
  ASSERT_EQ(c.anchors.size(), r.anchors.size());
  for (size_t q = 0; q < 3; ++q)
    EXPECT_NEAR(c.anchors[q].loss[q], r.anchors[q].loss[q], 1e-9 * r.anchors[q].loss[q]);
}

// Solves the MCKP solver stops at the node limit go to CBC: same optima, every answer proven.
TEST(Optimizer, ParetoNodeLimitFallsBackToCbc) {
  RuleTables t = small_tables(5);
  OptimizeOptions o;
  o.density = 0.4;
  o.grid = 4;
  OptimizeResult exact = optimize_pareto(t, o);
  EXPECT_EQ(exact.cbc_fallbacks, 0);
  EXPECT_EQ(exact.unproven_solves, 0);
  o.node_limit = 1;
  OptimizeResult r = optimize_pareto(t, o);
  EXPECT_GT(r.cbc_fallbacks, 0);
  EXPECT_EQ(r.unproven_solves, 0);
  EXPECT_EQ(r.solves, exact.solves);
  ASSERT_EQ(r.anchors.size(), exact.anchors.size());
  for (size_t q = 0; q < 3; ++q)
    EXPECT_NEAR(r.anchors[q].loss[q], exact.anchors[q].loss[q], 1e-9 * exact.anchors[q].loss[q]);
  ASSERT_FALSE(r.plans.empty());
  for (const ParetoPoint& pt : r.plans) {
    ChoiceResult m = solve_choice_mckp(make_choice_problem(t, o, pt.objective, pt.epsilon));
    ASSERT_TRUE(m.feasible && m.proven);
    EXPECT_NEAR(m.objective, pt.loss[pt.objective], 1e-9 * pt.loss[pt.objective]);
  }
}

template <typename F>
std::string input_error_of(F f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no InputError)";
}

TEST(Optimizer, BadInputs) {
  std::vector<Profile> ps = {random_profile(2, 4, 512, 64, 1), random_profile(2, 3, 1024, 64, 2)};
  std::string e = input_error_of([&] { check_profiles(ps, {"a.safetensors", "b.safetensors"}); });
  EXPECT_NE(e.find("a.safetensors"), std::string::npos) << e;
  EXPECT_NE(e.find("b.safetensors"), std::string::npos) << e;
  ps[1] = random_profile(2, 4, 1024, 32, 2);
  EXPECT_NE(input_error_of([&] { check_profiles(ps, {"a", "b"}); }).find("block"), std::string::npos);
  ps[1] = random_profile(2, 4, 512, 64, 2);
  EXPECT_NE(input_error_of([&] { check_profiles(ps, {"a", "b"}); }).find("length 512"), std::string::npos);

  RuleTables t = small_tables(3, 1, 2);
  OptimizeOptions o;
  for (double d : {0.0, -0.5, 1.5}) {
    o.density = d;
    EXPECT_NE(input_error_of([&] { optimize_pareto(t, o); }).find("expected a KV density"), std::string::npos);
  }
  o.density = 0.01;  // below min_cache 128 / 4096 at every length
  e = input_error_of([&] { optimize_pareto(t, o); });
  EXPECT_NE(e.find("no plan"), std::string::npos) << e;
  EXPECT_NE(e.find("4096"), std::string::npos) << e;
  o.density = 1.0;  // dense is fine
  EXPECT_FALSE(optimize_pareto(t, o).plans.empty());
}

TEST(Optimizer, Command) {
  auto dir = test::temp_dir("optimize-cli");
  std::string args;
  for (int64_t n : {512, 1024}) {
    random_profile(2, 2, n, 64, uint32_t(n)).save(dir / ("p" + std::to_string(n) + ".safetensors"));
    args += " --profile " + (dir / ("p" + std::to_string(n) + ".safetensors")).string();
  }
  auto r = test::run_moa("optimize" + args + " --density 0.5 --extend-length 2048 --grid 3 --out " +
                         (dir / "out").string() + " --json");
  ASSERT_EQ(r.status, 0) << r.err;
  json j = json::parse(r.out);
  ASSERT_TRUE(j["plans"].is_array() && !j["plans"].empty()) << r.out;
  EXPECT_EQ(j["solver"], "mckp");
  EXPECT_TRUE(j["seconds"].is_number());
  for (const auto& p : j["plans"]) {
    Plan plan = Plan::load(p["file"].get<std::string>());
    EXPECT_EQ(plan.layers(), 2);
    for (const char* n : {"512", "1024", "2048"}) {
      double d = p["density"][n].get<double>();
      EXPECT_LE(d, 0.5 + 1e-9);
      EXPECT_GE(d, 0.45 - 1e-9);
    }
    EXPECT_TRUE(p["loss"]["1024"].is_number());
    EXPECT_TRUE(p["loss"]["512"].is_number());
  }
  json summary = json::parse(std::ifstream(dir / "out" / "summary.json"));
  EXPECT_EQ(summary["plans"].size(), j["plans"].size());
  EXPECT_EQ(summary["candidates"].size(), candidate_rules({512, 1024}, {2048}).size());

  // Profiles of two shapes: one line naming both files, exit 2.
  random_profile(2, 3, 2048, 64, 9).save(dir / "other.safetensors");
  r = test::run_moa("optimize" + args + " --profile " + (dir / "other.safetensors").string() +
                    " --density 0.5 --out " + (dir / "out2").string());
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("other.safetensors"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("p512.safetensors"), std::string::npos) << r.err;
  r = test::run_moa("optimize" + args + " --density 0.02 --out " + (dir / "out3").string());
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("no plan"), std::string::npos) << r.err;

  // The node limit and the solver choice reach the sweep; a solver it does not know is refused.
  // (On an instance whose solves branch: small_tables' shape, where ParetoNodeLimitFallsBackToCbc
  // sees fallbacks.)
  std::string args4;
  for (int64_t n : {512, 1024, 2048}) {
    const auto f = dir / ("q" + std::to_string(n) + ".safetensors");
    random_profile(2, 4, n, 64, 5 + uint32_t(n / 1024)).save(f);
    args4 += " --profile " + f.string();
  }
  r = test::run_moa("optimize" + args4 + " --density 0.4 --extend-length 4096 --grid 4 --node-limit 1 --out " +
                    (dir / "out4").string() + " --json");
  ASSERT_EQ(r.status, 0) << r.err;
  j = json::parse(r.out);
  EXPECT_GT(j["cbc_fallbacks"].get<int64_t>(), 0) << r.out;
  EXPECT_EQ(j["unproven_solves"].get<int64_t>(), 0) << r.out;
  summary = json::parse(std::ifstream(dir / "out4" / "summary.json"));
  EXPECT_EQ(summary["node_limit"], 1);
  r = test::run_moa("optimize" + args + " --density 0.5 --solver glpk --out " + (dir / "out5").string());
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("glpk"), std::string::npos) << r.err;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace moa
