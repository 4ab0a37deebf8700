// `moa optimize`: Pareto plans from attention-influence profiles under a KV-density budget.
#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "command.h"
#include "option_checks.h"
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
  std::string out;
  OptimizeStageOptions stage;
  bool json = false;
  int threads = 0;
};

// The plan table: loss at each profile length, KV density at each length.
void print_table(const OptimizeStageResult& r) {
  const RuleTables& t = r.tables;
  std::string text = fmt::format("{:<14}", "plan");
  for (int64_t n : t.profile_lengths) text += fmt::format("  {:>12}", fmt::format("loss@{}", n));
  for (int64_t n : t.lengths) text += fmt::format("  {:>10}", fmt::format("kv@{}", n));
  text += "\n";
  for (size_t i = 0; i < r.sweep.plans.size(); ++i) {
    text += fmt::format("{:<14}", r.plan_files[i].filename().string());
    for (double l : r.sweep.plans[i].loss) text += fmt::format("  {:>12.6g}", l);
    for (double d : r.sweep.plans[i].kv_density) text += fmt::format("  {:>10.4f}", d);
    text += "\n";
  }
  std::fputs(text.c_str(), stdout);
}

void run_optimize(OptimizeCliOptions& o) {
  set_threads(o.threads);
  const double d = o.stage.optimize.density_bound;
  if (!(d > 0 && d <= 1)) input_error("--density {}: expected a KV density in (0, 1]", d);
  std::vector<Profile> profiles;
  for (const std::string& f : o.profiles) {
    const Profile& p = profiles.emplace_back(Profile::load(f));
    std::fprintf(stderr,
                 "optimize: %s: %lld layers x %lld heads, length %lld, block %lld, %lld samples\n",
                 f.c_str(), (long long)p.layers, (long long)p.heads, (long long)p.length,
                 (long long)p.block, (long long)p.samples);
  }
  o.stage.log = [](const std::string& s) { std::fprintf(stderr, "optimize: %s\n", s.c_str()); };
  const OptimizeStageResult r = optimize_to_dir(std::move(profiles), o.profiles, o.out, o.stage);
  if (!o.json) {
    print_table(r);
    return;
  }
  nlohmann::json plans = nlohmann::json::array();
  for (size_t i = 0; i < r.plan_files.size(); ++i) {
    nlohmann::json p = r.summary["plans"][i];
    p["file"] = r.plan_files[i].string();
    p.erase("epsilon");
    plans.push_back(std::move(p));
  }
  print_json({{"plans", plans},
              {"density_bound", d},
              {"solver", r.summary["solver"]},
              {"cbc_fallbacks", r.sweep.cbc_fallbacks},
              {"unproven_solves", r.sweep.unproven_solves},
              {"seconds", r.seconds}});
}

void setup_optimize(CLI::App& app) {
  auto o = std::make_shared<OptimizeCliOptions>();
  o->stage.optimize.density_bound = -1;  // required below
  app.add_option("--profile", o->profiles,
                 "profile (moa-profile/1 safetensors); one per length, repeatable")
      ->required();
  app.add_option("--density", o->stage.optimize.density_bound,
                 "bound on the KV density (mean over query heads of kept / N) at every profile and "
                 "extend length, in (0, 1]")
      ->required();
  app.add_option("--extend-length", o->stage.extend_lengths,
                 "also keep the density within the bound at this unprofiled length (repeatable)");
  app.add_option("--kv-heads", o->stage.kv_heads,
                 "the model's KV heads: summary.json then reports each plan's stored density "
                 "(default: not reported)")
      ->check(at_least(0));
  add_optimizer_options(app, o->stage.optimize);
  app.add_option("--out", o->out, "directory for plan_NNN.json and summary.json")->required();
  app.add_flag("--json", o->json, "print one JSON object on stdout");
  add_threads_option(app, o->threads);
  app.callback([o]() { run_optimize(*o); });
}

}  // namespace

MOA_COMMAND("optimize", "Pareto plans from profiles under a KV-density budget (MoA's MILP)",
            setup_optimize);

}  // namespace moa::cli
