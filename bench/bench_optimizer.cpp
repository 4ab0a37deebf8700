// `moa optimize` at model scale on synthetic profiles: loss tables, the Pareto sweep with the
// specialised solver, and CBC on one objective for comparison. Validates, then times; prints JSON.
//
//   bench_optimizer [--layers 32] [--heads 32] [--lengths 2048,4096,8192] [--extend 16384]
//                   [--density 0.5] [--grid 5] [--repeat 3] [--threads 2] [--cbc-seconds 600]
//
// Profiles: per head a decay length tau (log-uniform, 0.3 to 30 blocks, jittered per length so
// the per-length objectives disagree) and a sink weight; tile [qb, kb] = u * exp(-(qb-kb)/tau)
// (+ sink on kb = 0), u uniform in [0, 1): non-negative, decaying with distance.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "moa/compress/optimizer.h"

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

std::vector<moa::Profile> synthetic_profiles(int64_t layers, int64_t heads,
                                             const std::vector<int64_t>& lengths, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  std::normal_distribution<double> z(0, 1);
  const int64_t rows = layers * heads;
  std::vector<double> tau(static_cast<size_t>(rows)), sink(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    tau[size_t(r)] = 0.3 * std::pow(100.0, u(rng));
    sink[size_t(r)] = u(rng);
  }
  std::vector<moa::Profile> out;
  for (int64_t n : lengths) {
    moa::Profile p = moa::Profile::zeros(layers, heads, n, 64);
    p.samples = 1;
    p.model = "synthetic";
    const int64_t nb = p.nb();
    for (int64_t r = 0; r < rows; ++r) {
      const double t = tau[size_t(r)] * std::exp(0.5 * z(rng)) * double(n) / double(lengths.back());
      float* tiles = p.influence.data() + size_t(r * nb * nb);  // (nb, nb)
      for (int64_t qb = 0; qb < nb; ++qb)
        for (int64_t kb = 0; kb <= qb; ++kb)
          tiles[qb * nb + kb] = float(u(rng) * std::exp(-double(qb - kb) / std::max(t, 0.05)) +
                                      (kb == 0 ? sink[size_t(r)] : 0.0));
    }
    out.push_back(std::move(p));
  }
  return out;
}

std::vector<int64_t> parse_list(const char* s) {
  std::vector<int64_t> v;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) v.push_back(std::stoll(item));
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t layers = 32, heads = 32;
  std::vector<int64_t> lengths = {2048, 4096, 8192}, extend = {16384};
  double density = 0.5, cbc_seconds = 600;
  int grid = 5, repeat = 3, threads = 2;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    const char* v = argv[i + 1];
    if (a == "--layers") layers = std::atoll(v);
    else if (a == "--heads") heads = std::atoll(v);
    else if (a == "--lengths") lengths = parse_list(v);
    else if (a == "--extend") extend = parse_list(v);
    else if (a == "--density") density = std::atof(v);
    else if (a == "--grid") grid = std::atoi(v);
    else if (a == "--repeat") repeat = std::atoi(v);
    else if (a == "--threads") threads = std::atoi(v);
    else if (a == "--cbc-seconds") cbc_seconds = std::atof(v);
    else {
      std::fprintf(stderr, "bench_optimizer: unknown option %s\n", a.c_str());
      return 2;
    }
  }
  omp_set_num_threads(threads);
  std::sort(lengths.begin(), lengths.end());
  std::fprintf(stderr, "bench_optimizer: %lld x %lld heads, making profiles...\n", (long long)layers,
               (long long)heads);
  std::vector<moa::Profile> profiles = synthetic_profiles(layers, heads, lengths, 1);
  const auto rules = moa::candidate_rules(lengths, extend);

  std::vector<double> t_tables;
  moa::RuleTables tables;
  for (int r = 0; r < repeat; ++r) {
    auto t0 = Clock::now();
    tables = moa::build_rule_tables(profiles, extend, rules);
    t_tables.push_back(since(t0));
  }
  profiles.clear();

  moa::OptimizeOptions o;
  o.density = density;
  o.grid = grid;
  std::vector<double> t_sweep;
  moa::OptimizeResult res;
  for (int r = 0; r < repeat; ++r) {
    auto t0 = Clock::now();
    res = moa::optimize_pareto(tables, o);
    t_sweep.push_back(since(t0));
    std::fprintf(stderr, "bench_optimizer: sweep %d: %.2f s, %zu plans, %lld nodes\n", r + 1,
                 t_sweep.back(), res.plans.size(), (long long)res.nodes);
  }

  // Validate: every plan within the density band at every length, none dominated.
  int bad = 0;
  for (const auto& pt : res.plans) {
    for (double d : pt.density)
      if (d > density + 1e-9 || d < 0.9 * density - 1e-9) ++bad;
    for (const auto& other : res.plans) {
      bool le = true, lt = false;
      for (size_t q = 0; q < pt.loss.size(); ++q) {
        le = le && other.loss[q] <= pt.loss[q];
        lt = lt || other.loss[q] < pt.loss[q];
      }
      if (&other != &pt && le && lt) ++bad;
    }
  }
  // One objective (the longest profile length) through both solvers.
  const size_t primary = tables.profile_lengths.size() - 1;
  const std::vector<double> free_eps(tables.profile_lengths.size(),
                                     std::numeric_limits<double>::infinity());
  moa::ChoiceProblem one = moa::make_choice_problem(tables, o, primary, free_eps);
  std::vector<double> t_mckp;
  moa::ChoiceResult mk;
  for (int r = 0; r < repeat; ++r) {
    mk = moa::solve_choice_mckp(one);
    t_mckp.push_back(mk.seconds);
  }
  nlohmann::json cbc = nullptr;
  if (cbc_seconds > 0) {
    std::fprintf(stderr, "bench_optimizer: CBC on the loss at %lld alone (limit %.0f s)...\n",
                 (long long)tables.profile_lengths[primary], cbc_seconds);
    moa::ChoiceResult c = moa::solve_choice_cbc(one, cbc_seconds);
    bool agree = c.feasible && std::fabs(c.objective - mk.objective) <= 1e-9 * std::fabs(mk.objective);
    cbc = {{"seconds", c.seconds},   {"objective", c.feasible ? nlohmann::json(c.objective) : nlohmann::json(nullptr)},
           {"nodes", c.nodes},       {"bound", c.root_bound},
           {"agrees", agree},        {"hit_time_limit", c.seconds >= cbc_seconds},
           {"feasible_checked", c.feasible && moa::choice_feasible(one, c.choice)}};
    if (!agree && c.seconds < cbc_seconds) ++bad;
  }
  nlohmann::json out = {
      {"layers", layers},
      {"heads", heads},
      {"rules", rules.size()},
      {"lengths", {{"profile", lengths}, {"extend", extend}}},
      {"density", density},
      {"grid", grid},
      {"threads", threads},
      {"repeat", repeat},
      {"tables_seconds_median", median(t_tables)},
      {"sweep_seconds_median", median(t_sweep)},
      {"sweep_seconds", t_sweep},
      {"solves", res.solves},
      {"infeasible_boxes", res.infeasible_solves},
      {"plans", res.plans.size()},
      {"nodes", res.nodes},
      {"one_objective", {{"mckp_seconds_median", median(t_mckp)}, {"mckp_objective", mk.objective},
                         {"mckp_nodes", mk.nodes},
                         {"mckp_feasible_checked", mk.feasible && moa::choice_feasible(one, mk.choice)},
                         {"cbc", cbc}}},
      {"valid", bad == 0},
  };
  std::printf("%s\n", out.dump(2).c_str());
  return bad == 0 ? 0 : 1;
}
