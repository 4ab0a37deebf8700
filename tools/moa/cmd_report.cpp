// moa report: one self-contained HTML page from `moa eval --json` results, an optional plan
// (its per-head spans) and `moa bench --json` outputs. Input formats: include/moa/eval/report.h.
#include <cstdio>
#include <set>

#include "command.h"
#include "option_checks.h"
#include "common.h"
#include "moa/model/config.h"
#include "moa/model/model.h"
#include "moa/core/error.h"
#include "moa/core/file_io.h"
#include "moa/eval/report.h"

namespace moa::cli {
namespace {

struct ReportOptions {
  std::vector<std::string> results, bench;
  std::string plan, dir, out, title = "MoA evaluation report";
  int64_t span_length = 0;
  bool table = false, json = false;
};

// The compact table `make demo` prints: one row per retrieval run, accuracy per tested length
// (mean prompt tokens), then the effective context and its ratio to the mean span.
void print_table(const std::vector<RunRecord>& runs) {
  std::set<int64_t> lengths;
  for (const auto& r : runs) {
    if (!r.retrieval()) continue;
    for (const auto& [n, a] : accuracy_by_length(r.result)) lengths.insert(n);
  }
  if (lengths.empty()) return;
  std::printf("%-22s %7s", "method", "density");
  for (int64_t n : lengths) std::printf(" %6lld", (long long)n);
  std::printf("   %8s %9s %6s\n", "accuracy", "eff.ctx", "x span");
  for (const auto& r : runs) {
    if (!r.retrieval()) continue;
    const auto acc = accuracy_by_length(r.result);
    std::printf("%-22s %7s", run_label(r).c_str(), r.density ? fmt::format("{:.2f}", *r.density).c_str() : "1.00");
    for (int64_t n : lengths) {
      auto it = acc.find(n);
      if (it == acc.end()) {
        std::printf(" %6s", "-");
      } else {
        std::printf(" %6.2f", it->second);
      }
    }
    std::printf("   %8.3f", r.result.value("accuracy", 0.0));
    if (r.span) {
      const EffectiveContext e = effective_context(acc, *r.span);
      std::printf(" %9lld %6.2f\n", (long long)e.length, e.ratio);
    } else {
      std::printf(" %9s %6s\n", "-", "-");
    }
  }
  std::printf("(columns: input length in tokens; eff.ctx: longest length with accuracy >= 0.9 at it and every shorter one)\n");
}

void run(const ReportOptions& o) {
  ReportInput in;
  in.title = o.title;
  for (const auto& f : o.results) {
    auto runs = load_results(f);
    in.runs.insert(in.runs.end(), runs.begin(), runs.end());
    in.sources.push_back("results: " + f);
  }
  for (const auto& f : o.bench) {
    auto b = load_bench(f);
    in.bench.insert(in.bench.end(), b.begin(), b.end());
    in.sources.push_back("bench: " + f);
  }
  std::optional<AttentionShape> shape;
  int64_t max_position = 0;
  if (!o.dir.empty()) {
    const ModelConfig c = load_model_config(o.dir);
    shape = AttentionShape{c.layers, c.heads, c.kv_heads};
    max_position = c.max_position;
    in.sources.push_back("model: " + o.dir);
  }
  std::optional<Plan> plan;
  if (!o.plan.empty()) {
    plan = Plan::load(o.plan);
    if (shape) plan->check_shape(*shape);
    in.sources.push_back("plan: " + o.plan);
  }
  attach_spans(in.runs, plan ? &*plan : nullptr, shape);
  if (plan) {
    // The span map's N: --span-length, else the longest tested retrieval length, else the
    // model's context.
    int64_t n = o.span_length;
    for (const auto& r : in.runs) {
      if (o.span_length > 0 || !r.retrieval()) continue;
      bool tokens = false;
      const auto acc = accuracy_by_length(r.result, &tokens);
      if (tokens && !acc.empty()) n = std::max(n, acc.rbegin()->first);
    }
    if (n <= 0) n = max_position > 0 ? max_position : 8192;
    const AttentionShape s = shape.value_or(AttentionShape{plan->layers(), plan->heads(), plan->heads()});
    in.spans = plan_span_map(*plan, s, n,
                             fmt::format("{}: tokens kept per head at N = {}",
                                         std::filesystem::path(o.plan).filename().string(), n));
  }
  write_text_atomic(o.out, render_report_html(in));
  if (o.table) print_table(in.runs);
  std::fprintf(stderr, "report: %zu runs, %zu bench results -> %s\n", in.runs.size(),
               in.bench.size(), o.out.c_str());
  if (o.json) print_json({{"out", o.out}, {"runs", in.runs.size()}, {"bench", in.bench.size()}});
}

void setup(CLI::App& app) {
  auto o = std::make_shared<ReportOptions>();
  app.add_option("--results", o->results,
                 "results JSON: {\"runs\": [...]}, a list of eval --json outputs, or one")
      ->required();
  app.add_option("--bench", o->bench,
                 "`moa bench --json` output(s): one object, a list, or {\"runs\": [...]}");
  app.add_option("--plan", o->plan,
                 "plan whose per-head spans to draw (also the plan of MoA runs without one)");
  auto* table = app.add_flag("--table", o->table, "also print the accuracy table on stdout");
  app.add_flag("--json", o->json, "print one JSON object (out, runs, bench) instead of the table")->excludes(table);
  app.add_option("-m,--model", o->dir,
                 "checkpoint directory (its config gives the heads of the plan)");
  app.add_option("--span-length", o->span_length,
                 "N of the span map (default: longest tested length)")
      ->check(above(0));
  app.add_option("--title", o->title, "page title");
  app.add_option("--out", o->out, "HTML file to write")->required();
  app.callback([o] { run(*o); });
}

MOA_COMMAND("report", "an HTML report from eval and bench results", setup);

}  // namespace
}  // namespace moa::cli
