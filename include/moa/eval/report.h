// `moa report`: one self-contained HTML page (inline CSS and SVG, no scripts, no network) from
// evaluation and benchmark outputs, plus the effective context length of each method.
//
// Results files (--results), any of:
//   {"runs": [{"method": "moa", "density": 0.5, "task": "longeval", "label": "MoA 50%",
//              "plan": "p.json", "result": <the output of `moa eval ... --json`>}, ...]}
//   [<eval --json output>, ...]        a list of `moa eval retrieval|passkey|ppl --json` outputs
//   <eval --json output>               one such output
// A run entry's method, density, task, label and plan override those inside "result"; missing
// ones are taken from it (eval writes method, task, density for --streaming/--h2o, plan for
// --plan). method: dense | streaming | h2o | moa (anything else is shown as given). A MoA run
// without a density takes it from its plan (the plan file's own density map, else its KV
// density at the longest tested length).
// Bench files (--bench): one `moa bench --json` output, a list of them, or {"runs": [{"method",
// "density", "label", "result": <bench json>}]}.
//
// Effective context length (the rule of this project): given accuracy per tested input length,
// the largest tested length L with accuracy >= 0.9 such that every shorter tested length also has
// accuracy >= 0.9; 0 when the shortest tested length already fails. Its ratio to the method's
// mean span at L (mean over query heads of the tokens a head keeps at N = L: N for dense, the
// plan's min(N, cache(N)) for MoA and StreamingLLM, the H2O budget) says how far beyond what an
// average head sees the model still retrieves.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "moa/attention/plan.h"

namespace moa {

// ---- effective context ---------------------------------------------------------------------

inline constexpr double kEffectiveContextThreshold = 0.9;

// The rule above; acc: input length (tokens) -> accuracy.
int64_t effective_context_length(const std::map<int64_t, double>& acc,
                                 double threshold = kEffectiveContextThreshold);

// How many tokens the heads of a method keep at length N.
struct MethodSpan {
  enum class Kind { kDense, kPlan, kH2O };
  Kind kind = Kind::kDense;
  std::optional<Plan> plan;  // kPlan (MoA, and StreamingLLM as the uniform plan)
  ModelShape shape;          // kPlan: the model's heads (plan rows when per KV head)
  double density = 1;        // kH2O: the KV budget

  static MethodSpan dense();
  // StreamingLLM at KV density d: the uniform plan alpha 0, beta d (sink 64), as the runtime.
  static MethodSpan streaming(double d, int64_t sink = kPlanSink);
  static MethodSpan h2o(double d);
  static MethodSpan of_plan(Plan p, const ModelShape& shape);
  // Mean over query heads of the tokens kept at N >= 1 (H2O: its budget clamp(ceil(d N), 2, N)).
  double mean_span(int64_t n) const;
};

struct EffectiveContext {
  int64_t length = 0;    // 0: none
  double mean_span = 0;  // at `length` (0 when length is 0)
  double ratio = 0;      // length / mean_span
};
EffectiveContext effective_context(const std::map<int64_t, double>& acc, const MethodSpan& span,
                                   double threshold = kEffectiveContextThreshold);

// ---- inputs --------------------------------------------------------------------------------

struct RunRecord {
  std::string method, task, label, plan, source;
  std::optional<double> density;
  nlohmann::json result;           // the eval --json object
  std::optional<MethodSpan> span;  // set by attach_spans when known
  bool retrieval() const { return result.contains("by_lines"); }
  bool perplexity() const { return result.contains("ppl"); }
};

// Parses one results file's JSON (the forms above); `source` names it in errors and in the page.
std::vector<RunRecord> parse_results(const nlohmann::json& j, const std::string& source);
std::vector<RunRecord> load_results(const std::filesystem::path& path);

// Gives each run its MethodSpan: dense, streaming (uniform plan), h2o, or moa from the run's own
// plan file when it loads, else `fallback` (the --plan of the report). shape: the model's heads
// (nullopt: the plan's own rows). Fills a MoA run's missing density from its plan.
void attach_spans(std::vector<RunRecord>& runs, const Plan* fallback,
                  const std::optional<ModelShape>& shape);

// Accuracy by input length in tokens (by_lines keys mapped through prompt_tokens; without
// prompt_tokens the keys themselves, and *in_tokens is set false).
std::map<int64_t, double> accuracy_by_length(const nlohmann::json& result,
                                             bool* in_tokens = nullptr);

struct BenchRecord {
  std::string label, method, source;
  std::optional<double> density;
  nlohmann::json result;  // the bench --json object
};
std::vector<BenchRecord> parse_bench(const nlohmann::json& j, const std::string& source);
std::vector<BenchRecord> load_bench(const std::filesystem::path& path);

// Tokens kept per (layer, query head) of a plan at length N.
struct SpanMap {
  int64_t layers = 0, heads = 0, length = 0;
  std::vector<int64_t> kept;  // (layers, heads)
  double kv_density = 0;
  std::string title;
};
SpanMap plan_span_map(const Plan& plan, const ModelShape& shape, int64_t n, std::string title);

// ---- the page ------------------------------------------------------------------------------

struct ReportInput {
  std::string title = "MoA evaluation report";
  std::vector<std::string> sources;  // input file names, listed in the header
  std::vector<RunRecord> runs;
  std::vector<BenchRecord> bench;
  std::optional<SpanMap> spans;
};

// Heatmap cells carry class="hm-cell", span map cells class="span-cell" (tests count them).
std::string render_report_html(const ReportInput& in);

// Display name of a method ("MoA", "StreamingLLM", "H2O", "Dense", else as given) and of a run
// ("MoA 50%" unless the run has a label).
std::string method_display(const std::string& method);
std::string run_label(const RunRecord& r);

}  // namespace moa
