// The optimise stage (optimizer.h, part 4): profiles -> candidate rules -> tables -> Pareto sweep
// -> plan files + one summary.json, for `moa optimize` and `moa compress` alike.
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <regex>

#include "moa/core/error.h"
#include "moa/core/file_io.h"
#include "moa/compress/optimizer.h"

namespace moa {

namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string plan_file_name(size_t i) { return fmt::format("plan_{:03d}.json", i); }

// Plans left from an earlier run with more of them would read as part of this one.
void remove_plans_beyond(const fs::path& dir, size_t count) {
  static const std::regex plan_name(R"(plan_(\d{3,})\.json)");
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    std::smatch mt;
    const std::string fn = entry.path().filename().string();
    if (std::regex_match(fn, mt, plan_name) && std::stoull(mt[1].str()) >= count) {
      fs::remove(entry.path(), ec);
    }
  }
}

// Per length, keyed by the length as a string (CLI.md's convention).
nlohmann::json by_length(const std::vector<int64_t>& lengths, const std::vector<double>& v) {
  nlohmann::json j = nlohmann::json::object();
  for (size_t i = 0; i < lengths.size() && i < v.size(); ++i) j[std::to_string(lengths[i])] = v[i];
  return j;
}

// One plan's summary entry: the KV density the sweep bounded, and the two other densities the
// word can mean, kept apart (the stored one only when the model's KV heads are known).
nlohmann::json plan_entry(const RuleTables& t, const ParetoPoint& pt, const Plan& plan,
                          const std::string& file, int64_t kv_heads) {
  const AttentionShape query_shape{t.layers, t.heads, t.heads};
  std::vector<double> prefill, stored;
  for (int64_t n : t.lengths) {
    prefill.push_back(plan.prefill_density(query_shape, n));
    if (kv_heads > 0) stored.push_back(plan.stored_density({t.layers, t.heads, kv_heads}, n));
  }
  nlohmann::json eps = nlohmann::json::object();
  for (size_t q = 0; q < t.profile_lengths.size(); ++q) {
    if (std::isfinite(pt.epsilon[q])) eps[std::to_string(t.profile_lengths[q])] = pt.epsilon[q];
  }
  const nlohmann::json kv = by_length(t.lengths, pt.kv_density);
  nlohmann::json e = {{"file", file},
                      {"density", kv},
                      {"kv_density", kv},
                      {"prefill_density", by_length(t.lengths, prefill)},
                      {"loss", by_length(t.profile_lengths, pt.loss)},
                      {"epsilon", eps}};
  if (kv_heads > 0) e["stored_density"] = by_length(t.lengths, stored);
  return e;
}

nlohmann::json make_summary(const std::vector<std::string>& names, const std::string& influence,
                            const OptimizeStageResult& r, const OptimizeStageOptions& so) {
  const RuleTables& t = r.tables;
  const OptimizeOptions& o = so.optimize;
  nlohmann::json anchors = nlohmann::json::array();
  for (size_t q = 0; q < r.sweep.anchors.size(); ++q) {
    anchors.push_back({{"minimised", t.profile_lengths[q]},
                       {"loss", by_length(t.profile_lengths, r.sweep.anchors[q].loss)}});
  }
  nlohmann::json cands = nlohmann::json::array();
  for (const ElasticRule& e : t.rules) cands.push_back({{"alpha", e.alpha}, {"beta", e.beta}});
  nlohmann::json s = {
      {"format", kOptimizeSummaryFormat},
      {"profiles", names},
      {"model", t.model},
      {"layers", t.layers},
      {"heads", t.heads},
      {"density", o.density_bound},
      {"density_bound", o.density_bound},
      {"density_lower", o.lower_fraction * o.density_bound},
      {"lengths",
       {{"profile", t.profile_lengths}, {"extend", t.extend_lengths}, {"influence", influence}}},
      {"max_rules_per_layer", o.max_rules_per_layer},
      {"solver", o.solver == ChoiceSolver::kCbc ? "cbc" : "mckp"},
      {"node_limit", o.node_limit},
      {"cbc_seconds", o.cbc_seconds},
      {"grid", o.grid},
      {"candidates", cands},
      {"single_objective", anchors},
      {"solves", r.sweep.solves},
      {"infeasible_boxes", r.sweep.infeasible_solves},
      {"nodes", r.sweep.nodes},
      {"cbc_fallbacks", r.sweep.cbc_fallbacks},
      {"unproven_solves", r.sweep.unproven_solves},
      {"seconds", r.seconds},
      {"plans", nlohmann::json::array()},
  };
  if (so.kv_heads > 0) s["kv_heads"] = so.kv_heads;
  return s;
}

}  // namespace

OptimizeStageResult optimize_to_dir(std::vector<Profile> profiles,
                                    const std::vector<std::string>& names, const fs::path& dir,
                                    const OptimizeStageOptions& so) {
  const auto t0 = Clock::now();
  auto log = [&](const std::string& s) {
    if (so.log) so.log(s);
  };
  MOA_CHECK(!profiles.empty() && profiles.size() == names.size());
  for (int64_t e : so.extend_lengths) {
    if (e < 1) input_error("--extend-length {}: expected a positive input length", e);
  }
  check_profiles(profiles, names);
  const std::string influence = profiles[0].influence_kind;
  std::vector<int64_t> plengths;
  for (const Profile& p : profiles) plengths.push_back(p.length);

  OptimizeStageResult r;
  const std::vector<ElasticRule> rules = candidate_rules(plengths, so.extend_lengths);
  const auto t_tables = Clock::now();
  r.tables = build_rule_tables(profiles, so.extend_lengths, rules);
  profiles.clear();  // the tables are all the sweep needs; real profiles are large
  profiles.shrink_to_fit();
  log(fmt::format("{} candidate rules, loss tables for {} heads in {:.2f} s", rules.size(),
                  r.tables.rows(), since(t_tables)));

  OptimizeOptions o = so.optimize;
  const auto t_solve = Clock::now();
  if (!o.progress) {
    o.progress = [&](int64_t done, int64_t total, const std::string& what) {
      const double el = since(t_solve);
      const double rate = done > 0 ? double(done) / el : 0;
      const double eta = rate > 0 ? double(total - done) / rate : 0;
      log(fmt::format("solve {}/{} {} [{:.1f} s, {:.2f} solves/s, ETA {:.0f} s]", done, total, what,
                      el, rate, eta));
    };
  }
  r.sweep = optimize_pareto(r.tables, o);

  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) input_error("{}: cannot create the plans directory ({})", dir.string(), ec.message());
  nlohmann::json entries = nlohmann::json::array();
  for (size_t i = 0; i < r.sweep.plans.size(); ++i) {
    const std::string name = plan_file_name(i);
    const Plan plan = make_plan(r.tables, r.sweep.plans[i]);
    plan.save(dir / name, PlanForm::kExtended);
    r.plan_files.push_back(dir / name);
    entries.push_back(plan_entry(r.tables, r.sweep.plans[i], plan, name, so.kv_heads));
  }
  remove_plans_beyond(dir, r.sweep.plans.size());
  r.seconds = since(t0);
  r.summary = make_summary(names, influence, r, so);
  r.summary["plans"] = std::move(entries);
  write_text_atomic(dir / "summary.json", r.summary.dump(2) + "\n");
  log(fmt::format(
      "{} Pareto plans from {} solves ({} boxes infeasible, {} handed to CBC at the node limit) "
      "in {:.2f} s -> {}",
      r.sweep.plans.size(), r.sweep.solves, r.sweep.infeasible_solves, r.sweep.cbc_fallbacks,
      r.seconds, dir.string()));
  if (r.sweep.unproven_solves > 0) {
    log(fmt::format("warning: {} solves are not proven optimal; their plans may be dominated",
                    r.sweep.unproven_solves));
  }
  return r;
}

}  // namespace moa
