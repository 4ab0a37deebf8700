// `moa plan check`: validates a plan against a model shape and reports its densities.
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "command.h"
#include "moa/model/config.h"
#include "moa/gguf/gguf.h"
#include "moa/model/model.h"
#include "moa/core/error.h"
#include "moa/attention/plan.h"
#include "moa/model/plan_gguf.h"

namespace moa::cli {
namespace {

struct PlanCheckOptions {
  std::string plan;
  std::string model_dir;
  std::string config;
  bool json = false;
  int64_t sink = -1;
  std::vector<int64_t> lengths;
};

// --plan, or without it the plan embedded in -m F.gguf (moa.* keys).
Plan load_plan(const PlanCheckOptions& o) {
  if (!o.plan.empty()) return Plan::load(o.plan);
  if (o.model_dir.empty() || !is_gguf_path(o.model_dir)) {
    input_error("plan check: give --plan P.json (only a -m F.gguf file can carry its own plan)");
  }
  std::optional<Plan> p = embedded_plan(GgufFile(o.model_dir));
  if (!p) {
    input_error("{}: has no embedded plan (no moa.format key); give --plan P.json", o.model_dir);
  }
  return *p;
}

void run_plan_check(const PlanCheckOptions& o) {
  // The model's config: --config, or -m's config.json, or -m's GGUF metadata.
  std::filesystem::path config_path = o.config;
  if (o.config.empty()) {
    config_path = is_gguf_path(o.model_dir) ? std::filesystem::path(o.model_dir)
                                            : std::filesystem::path(o.model_dir) / "config.json";
  }
  ModelConfig cfg = o.config.empty() ? load_model_config(o.model_dir) : ModelConfig::load(config_path);
  AttentionShape shape{cfg.layers, cfg.heads, cfg.kv_heads};
  Plan plan = load_plan(o);
  if (o.sink >= 0) {
    if (o.sink >= plan.min_cache()) {
      input_error("--sink: {} is not below the plan's min_cache {} (every head needs a window)",
                  o.sink, plan.min_cache());
    }
    plan.set_sink(o.sink);
  }
  bool per_kv = plan.check_shape(shape);

  std::vector<int64_t> lengths = {2048, 4096, 8192, 16384, 32768};
  if (cfg.max_position > 0) lengths.push_back(cfg.max_position);
  for (int64_t n : o.lengths) {
    if (n < 1) input_error("--length: {} is not a positive input length", n);
    lengths.push_back(n);
  }
  std::sort(lengths.begin(), lengths.end());
  lengths.erase(std::unique(lengths.begin(), lengths.end()), lengths.end());

  nlohmann::json density = nlohmann::json::object(), prefill = nlohmann::json::object(),
                 stored = nlohmann::json::object();
  struct Row {
    int64_t n;
    double kv, prefill, stored;
    int64_t min_kept, max_kept;
  };
  std::vector<Row> rows;
  for (int64_t n : lengths) {
    PlanCaches c = plan.caches(shape, n);
    Row r{n,
          plan.kv_density(shape, n),
          plan.prefill_density(shape, n),
          plan.stored_density(shape, n),
          n,
          0};
    for (const auto& h : c.at) {
      r.min_kept = std::min(r.min_kept, h.kept);
      r.max_kept = std::max(r.max_kept, h.kept);
    }
    density[std::to_string(n)] = r.kv;
    prefill[std::to_string(n)] = r.prefill;
    stored[std::to_string(n)] = r.stored;
    rows.push_back(r);
  }
  auto uniform = plan.uniform_rule();

  if (o.json) {
    nlohmann::json j = {
        {"plan", o.plan},
        {"config", config_path.string()},
        {"form", plan.form() == PlanForm::kReference ? "reference" : "extended"},
        {"model", plan.model() ? nlohmann::json(*plan.model()) : nlohmann::json(nullptr)},
        {"layers", plan.layers()},
        {"heads", plan.heads()},
        {"query_heads", shape.heads},
        {"kv_heads", shape.kv_heads},
        {"per_kv_head", per_kv},
        {"sink", plan.sink()},
        {"block", plan.block()},
        {"min_cache", plan.min_cache()},
        {"rule_sets", plan.rule_set_count()},
        {"uniform", uniform ? nlohmann::json{{"alpha", uniform->first}, {"beta", uniform->second}}
                            : nlohmann::json(nullptr)},
        {"density", density},
        {"prefill_density", prefill},
        {"stored_density", stored},
    };
    std::printf("%s\n", j.dump().c_str());
    return;
  }
  std::string text;
  text += fmt::format("plan    {} ({} form, {} rule set{}{})\n", o.plan,
                      plan.form() == PlanForm::kReference ? "reference" : "extended",
                      plan.rule_set_count(), plan.rule_set_count() == 1 ? "" : "s",
                      plan.model() ? ", for " + *plan.model() : "");
  text += fmt::format("model   {}: {} layers, {} query heads, {} KV heads\n", config_path.string(),
                      shape.layers, shape.heads, shape.kv_heads);
  text += fmt::format(
      "rules   {} layers x {} heads (one per {} head); sink {}, block {}, "
      "min cache {}{}\n",
      plan.layers(), plan.heads(), per_kv ? "KV" : "query", plan.sink(), plan.block(),
      plan.min_cache(),
      uniform ? fmt::format("; uniform alpha {} beta {}", uniform->first, uniform->second) : "");
  text += fmt::format("{:>9}  {:>10}  {:>14}  {:>15}  {:>19}\n", "N", "KV density",
                      "stored density", "prefill density", "kept tokens min-max");
  for (const Row& r : rows) {
    text += fmt::format("{:>9}  {:>10.4f}  {:>14.4f}  {:>15.4f}  {:>19}\n", r.n, r.kv, r.stored,
                        r.prefill, fmt::format("{}-{}", r.min_kept, r.max_kept));
  }
  if (!per_kv && shape.heads != shape.kv_heads) {
    text +=
        "(stored density: the fraction of dense KV memory; a KV head stores the largest cache "
        "of its query group)\n";
  }
  std::fputs(text.c_str(), stdout);
}

void setup_plan_check(CLI::App& app) {
  auto o = std::make_shared<PlanCheckOptions>();
  app.add_option("--plan", o->plan,
                 "plan JSON (reference {alphas, betas} or moa-plan/1 form); default with -m "
                 "F.gguf: the plan embedded in the file");
  auto* m = app.add_option("-m,--model", o->model_dir,
                           "model directory (its config.json) or .gguf file");
  auto* c = app.add_option("--config", o->config, "model config.json");
  m->excludes(c);
  c->excludes(m);
  app.add_flag("--json", o->json, "print one JSON object on stdout");
  app.add_option("--sink", o->sink, "override the plan's sink (default: the plan's, 64)");
  app.add_option("--length", o->lengths,
                 "also report density at this input length (repeatable; always reported: "
                 "2048 4096 8192 16384 32768 and the model's max_position_embeddings)");
  app.callback([o, m, c]() {
    if (m->count() == 0 && c->count() == 0) {
      input_error("plan check: give the model shape with -m DIR or --config C.json");
    }
    run_plan_check(*o);
  });
}

}  // namespace

MOA_COMMAND("plan check", "validate a plan against a model shape and report its density",
            setup_plan_check);

}  // namespace moa::cli
