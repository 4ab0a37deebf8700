// `moa optimize`: Pareto plans from attention-influence profiles under a KV-density budget.
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <vector>

#include "command.h"
#include "common.h"
#include "moa/core/error.h"
#include "moa/core/file_io.h"
#include "moa/model/forward.h"
#include "moa/compress/optimizer.h"
#include "moa/compress/profile.h"

namespace moa::cli {
namespace {

struct OptimizeCliOptions {
  std::vector<std::string> profiles;
  double density = -1;
  std::vector<int64_t> extend;
  int32_t max_rules = 0;
  ChoiceSolver solver = ChoiceSolver::kMckp;
  int64_t node_limit = OptimizeOptions{}.node_limit;
  double cbc_seconds = OptimizeOptions{}.cbc_seconds;
  int32_t grid = 5;
  std::string out;
  bool json = false;
  int threads = 0;
};

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

void run_optimize(const OptimizeCliOptions& o) {
  const auto t0 = Clock::now();
  set_threads(o.threads);
  if (!(o.density > 0 && o.density <= 1)) {
    input_error("--density {}: expected a KV density in (0, 1]", o.density);
  }
  if (o.grid < 1) input_error("--grid {}: expected at least 1 point per objective", o.grid);
  if (o.max_rules < 0) input_error("--max-rules-per-layer {}: expected >= 0 (0 = no limit)", o.max_rules);
  for (int64_t e : o.extend) {
    if (e < 1) input_error("--extend-length {}: expected a positive input length", e);
  }
  const std::string solver = o.solver == ChoiceSolver::kCbc ? "cbc" : "mckp";

  std::vector<Profile> profiles;
  for (const std::string& f : o.profiles) {
    profiles.push_back(Profile::load(f));
    std::fprintf(stderr, "optimize: %s: %lld layers x %lld heads, length %lld, block %lld, %lld samples\n",
                 f.c_str(), (long long)profiles.back().layers, (long long)profiles.back().heads,
                 (long long)profiles.back().length, (long long)profiles.back().block,
                 (long long)profiles.back().samples);
  }
  check_profiles(profiles, o.profiles);
  std::vector<int64_t> plengths;
  for (const Profile& p : profiles) plengths.push_back(p.length);
  std::vector<ElasticRule> rules = candidate_rules(plengths, o.extend);
  const auto t_tables = Clock::now();
  RuleTables tables = build_rule_tables(profiles, o.extend, rules);
  profiles.clear();
  profiles.shrink_to_fit();
  std::fprintf(stderr, "optimize: %zu candidate rules, loss tables for %lld heads in %.2f s\n",
               rules.size(), (long long)tables.rows(), since(t_tables));

  OptimizeOptions opt;
  opt.density = o.density;
  opt.max_rules_per_layer = o.max_rules;
  opt.solver = o.solver;
  opt.node_limit = o.node_limit;
  opt.cbc_seconds = o.cbc_seconds;
  opt.grid = o.grid;
  const auto t_solve = Clock::now();
  opt.progress = [&](int64_t done, int64_t total, const std::string& what) {
    double el = since(t_solve);
    double rate = done > 0 ? double(done) / el : 0;
    double eta = rate > 0 ? double(total - done) / rate : 0;
    std::fprintf(stderr, "optimize: solve %lld/%lld %s [%.1f s, %.2f solves/s, ETA %.0f s]\n",
                 (long long)done, (long long)total, what.c_str(), el, rate, eta);
  };
  OptimizeResult res = optimize_pareto(tables, opt);

  std::filesystem::path dir(o.out);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) input_error("--out {}: cannot create the directory ({})", o.out, ec.message());
  nlohmann::json plans = nlohmann::json::array(), summary_plans = nlohmann::json::array();
  for (size_t i = 0; i < res.plans.size(); ++i) {
    const ParetoPoint& pt = res.plans[i];
    std::string name = fmt::format("plan_{:03d}.json", i);
    make_plan(tables, pt).save(dir / name, PlanForm::kExtended);
    nlohmann::json density = nlohmann::json::object(), loss = nlohmann::json::object(),
                   eps = nlohmann::json::object();
    for (size_t n = 0; n < tables.lengths.size(); ++n) density[std::to_string(tables.lengths[n])] = pt.density[n];
    for (size_t q = 0; q < tables.profile_lengths.size(); ++q) {
      loss[std::to_string(tables.profile_lengths[q])] = pt.loss[q];
      if (std::isfinite(pt.epsilon[q])) eps[std::to_string(tables.profile_lengths[q])] = pt.epsilon[q];
    }
    std::string file = (dir / name).string();
    plans.push_back({{"file", file}, {"density", density}, {"loss", loss}});
    summary_plans.push_back({{"file", name}, {"density", density}, {"loss", loss}, {"epsilon", eps}});
  }
  // Plans left from an earlier run with more of them would read as part of this one.
  static const std::regex plan_name(R"(plan_(\d{3,})\.json)");
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    std::smatch mt;
    std::string fn = entry.path().filename().string();
    if (std::regex_match(fn, mt, plan_name) && std::stoull(mt[1].str()) >= res.plans.size()) {
      std::filesystem::remove(entry.path(), ec);
    }
  }
  nlohmann::json anchors = nlohmann::json::array();
  for (size_t q = 0; q < res.anchors.size(); ++q) {
    nlohmann::json loss = nlohmann::json::object();
    for (size_t j = 0; j < tables.profile_lengths.size(); ++j)
      loss[std::to_string(tables.profile_lengths[j])] = res.anchors[q].loss[j];
    anchors.push_back({{"minimised", tables.profile_lengths[q]}, {"loss", loss}});
  }
  nlohmann::json cands = nlohmann::json::array();
  for (const ElasticRule& r : rules) cands.push_back({{"alpha", r.alpha}, {"beta", r.beta}});
  const double seconds = since(t0);
  nlohmann::json summary = {
      {"format", "moa-optimize/1"},
      {"profiles", o.profiles},
      {"model", tables.model},
      {"layers", tables.layers},
      {"heads", tables.heads},
      {"density_bound", o.density},
      {"density_lower", opt.lower_fraction * o.density},
      {"lengths", {{"profile", tables.profile_lengths}, {"extend", tables.extend_lengths}}},
      {"max_rules_per_layer", o.max_rules},
      {"solver", solver},
      {"node_limit", o.node_limit},
      {"cbc_seconds", o.cbc_seconds},
      {"grid", o.grid},
      {"candidates", cands},
      {"single_objective", anchors},
      {"solves", res.solves},
      {"infeasible_boxes", res.infeasible_solves},
      {"nodes", res.nodes},
      {"cbc_fallbacks", res.cbc_fallbacks},
      {"unproven_solves", res.unproven_solves},
      {"seconds", seconds},
      {"plans", summary_plans},
  };
  write_text_atomic(dir / "summary.json", summary.dump(2) + "\n");
  std::fprintf(stderr,
               "optimize: %zu Pareto plans from %lld solves (%lld boxes infeasible, %lld handed to CBC at the node "
               "limit) in %.2f s -> %s\n",
               res.plans.size(), (long long)res.solves, (long long)res.infeasible_solves,
               (long long)res.cbc_fallbacks, seconds, o.out.c_str());
  if (res.unproven_solves > 0) {
    std::fprintf(stderr, "optimize: warning: %lld solves are not proven optimal; their plans may be dominated\n",
                 (long long)res.unproven_solves);
  }
  if (o.json) {
    print_json({{"plans", plans}, {"solver", solver}, {"cbc_fallbacks", res.cbc_fallbacks},
                {"unproven_solves", res.unproven_solves}, {"seconds", seconds}});
    return;
  }
  std::string text = fmt::format("{:<14}", "plan");
  for (int64_t n : tables.profile_lengths) text += fmt::format("  {:>12}", fmt::format("loss@{}", n));
  for (int64_t n : tables.lengths) text += fmt::format("  {:>10}", fmt::format("kv@{}", n));
  text += "\n";
  for (size_t i = 0; i < res.plans.size(); ++i) {
    text += fmt::format("{:<14}", fmt::format("plan_{:03d}.json", i));
    for (double l : res.plans[i].loss) text += fmt::format("  {:>12.6g}", l);
    for (double d : res.plans[i].density) text += fmt::format("  {:>10.4f}", d);
    text += "\n";
  }
  std::fputs(text.c_str(), stdout);
}

void setup_optimize(CLI::App& app) {
  auto o = std::make_shared<OptimizeCliOptions>();
  app.add_option("--profile", o->profiles, "profile (moa-profile/1 safetensors); one per length, repeatable")
      ->required();
  app.add_option("--density", o->density, "KV density bound at every profile and extend length, in (0, 1]")
      ->required();
  app.add_option("--extend-length", o->extend,
                 "also keep the density within the bound at this unprofiled length (repeatable)");
  app.add_option("--max-rules-per-layer", o->max_rules,
                 "at most K distinct rules in each layer (default 0: no limit)");
  add_solver_options(app, o->solver, o->node_limit, o->cbc_seconds);
  app.add_option("--grid", o->grid,
                 "epsilon-constraint points per non-primary objective (default 5)");
  app.add_option("--out", o->out, "directory for plan_NNN.json and summary.json")->required();
  app.add_flag("--json", o->json, "print one JSON object on stdout");
  add_threads_option(app, o->threads);
  app.callback([o]() { run_optimize(*o); });
}

}  // namespace

MOA_COMMAND("optimize", "Pareto plans from profiles under a KV-density budget (MoA's MILP)",
            setup_optimize);

}  // namespace moa::cli
