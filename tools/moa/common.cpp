#include "common.h"

#include "moa/core/dist.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <map>

#include <fmt/format.h>

#include "moa/core/error.h"
#include "option_checks.h"
#include "moa/core/file_io.h"
#include "moa/model/forward.h"
#include "moa/attention/plan.h"
#include "moa/attention/spans.h"

namespace moa::cli {

void add_attention_options(CLI::App& app, AttentionOptions& o) {
  app.add_option("--plan", o.plan, "MoA plan JSON (reference or moa-plan/1 form)");
  app.add_option("--streaming", o.streaming, "StreamingLLM: uniform span giving this KV density");
  app.add_option("--h2o", o.h2o, "H2O: heavy hitters + recent window at this KV budget");
  app.add_option("--sink", o.sink, "sink tokens per head (default: the plan's own; 64 for --streaming)");
  app.add_flag("--dense", o.dense, "dense attention, even when the model file embeds a plan");
  app.add_option("--kv-type", o.kv_type, "KV cache storage type: f32, f16 (default), bf16 or q8_0")
      ->check(one_of({"f32", "f16", "bf16", "q8_0"}));
}

void adopt_embedded_plan(AttentionOptions& o, const Model& m) {
  const bool chosen = !o.plan.empty() || o.streaming >= 0 || o.h2o >= 0;
  if (o.dense && chosen) input_error("--dense and --plan/--streaming/--h2o are exclusive; choose one");
  if (!o.dense && !chosen && m.embedded_plan) o.embedded = m.embedded_plan;
}

std::string method_name(const AttentionOptions& o) {
  if (!o.plan.empty() || o.embedded) return "moa";
  if (o.streaming >= 0) return "streaming";
  if (o.h2o >= 0) return "h2o";
  return "dense";
}

void add_threads_option(CLI::App& app, int& threads) {
  app.add_option("--threads,-t", threads, "threads (default: all cores)")->check(at_least(0));
}

void add_dtype_option(CLI::App& app, std::string& dtype) {
  app.add_option("--dtype", dtype, "weight dtype: f32 (default), bf16 or f16")->check(one_of({"f32", "bf16", "f16"}));
}

DType checkpoint_dtype(const std::string& dtype) {
  return dtype == "bf16" ? DType::kBF16 : dtype == "f16" ? DType::kF16 : DType::kF32;
}

void add_optimizer_options(CLI::App& app, OptimizeOptions& o) {
  const OptimizeOptions d;
  app.add_option("--max-rules-per-layer", o.max_rules_per_layer,
                 "at most K distinct rules in each layer (default 0: no limit)")
      ->check(at_least(0));
  app.add_option(
         "--grid", o.grid,
         fmt::format("epsilon-constraint points per non-primary objective (default {})", d.grid))
      ->check(above(0));
  app.add_option("--solver", o.solver, "mckp (exact, specialised; default) or cbc (CBC MILP)")
      ->transform(CLI::CheckedTransformer(std::map<std::string, ChoiceSolver>{
          {"mckp", ChoiceSolver::kMckp}, {"cbc", ChoiceSolver::kCbc}}));
  app.add_option(
         "--node-limit", o.node_limit,
         fmt::format(
             "MCKP nodes per solve before CBC takes that solve over (0 = no limit; default {})",
             d.node_limit))
      ->check(at_least(0));
  app.add_option("--cbc-seconds", o.cbc_seconds,
                 fmt::format("seconds one CBC solve may take before its best answer is used, "
                             "unproven (0 = no limit; default {})",
                             d.cbc_seconds))
      ->check(at_least(0));
  app.add_flag_callback(
      "--trace",
      [&o] {
        // One fprintf per line: solves on several threads may trace at once.
        o.debug.trace = [](const std::string& line) {
          std::fprintf(stderr, "trace: %s\n", line.c_str());
        };
      },
      "print the exact solver's search on stderr (each node's LP and the root's local search)");
  app.add_flag("--cbc-log", o.debug.cbc_log, "show CBC's own log on stderr");
  app.add_flag(
      "!--no-count-branching", o.debug.branch_on_counts,
      "MCKP: branch on single heads only, never on how many heads take a rule (same answers, "
      "larger trees; for measuring that rule)");
}

namespace {

KvType chosen_kv_type(const AttentionShape& shape, const AttentionOptions& o) {
  const std::optional<KvType> t = parse_kv_type(o.kv_type);
  if (!t) input_error("--kv-type {}: expected f32, f16, bf16 or q8_0", o.kv_type);
  if (!kv_type_fits(*t, shape.head_dim)) {
    input_error("--kv-type {}: the model's head_dim {} is not a multiple of 32 (q8_0 blocks)",
                o.kv_type, shape.head_dim);
  }
  return *t;
}

CacheSpec chosen_policy(const AttentionShape& shape, int64_t n_ctx, const AttentionOptions& o) {
  int chosen = int(!o.plan.empty()) + int(o.streaming >= 0) + int(o.h2o >= 0);
  if (chosen > 1) input_error("--plan, --streaming and --h2o are exclusive; choose one");
  if (o.dense && chosen) input_error("--dense and --plan/--streaming/--h2o are exclusive; choose one");
  if (chosen == 0 && !o.embedded) return AttentionSpec::dense(shape, n_ctx);
  if (o.h2o >= 0) {
    if (!(o.h2o > 0 && o.h2o <= 1)) input_error("--h2o {}: expected a KV density in (0, 1]", o.h2o);
    return CacheSpec::h2o_at_density(shape, n_ctx, o.h2o);
  }
  Plan plan;
  if (!o.plan.empty()) {
    plan = Plan::load(o.plan);
  } else if (o.embedded) {
    plan = *o.embedded;
  } else {
    if (!(o.streaming > 0 && o.streaming <= 1)) {
      input_error("--streaming {}: expected a KV density in (0, 1]", o.streaming);
    }
    plan = Plan::uniform(shape.layers, shape.heads, 0.0, o.streaming);
  }
  // A plan file states its own sink; --sink overrides it only when given.
  if (o.sink && *o.sink != plan.sink()) plan.set_sink(*o.sink);
  return spec_from_plan(plan, shape, n_ctx);
}

}  // namespace

CacheSpec make_cache_spec(const AttentionShape& shape, int64_t n_ctx, const AttentionOptions& o) {
  CacheSpec spec = chosen_policy(shape, n_ctx, o);
  spec.kv_type = chosen_kv_type(shape, o);
  return spec;
}

std::string read_prompt(const std::string& text, const std::string& file) {
  if (!text.empty() && !file.empty()) input_error("give the prompt with -p or -f, not both");
  if (!file.empty()) return read_text(file);
  return text;
}

void print_json(const nlohmann::json& j) {
  std::string s = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::fwrite(s.data(), 1, s.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

int64_t current_rss_bytes() {
  long pages = 0, resident = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return int64_t(resident) * sysconf(_SC_PAGESIZE);
}

int64_t peak_rss_bytes() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return int64_t(ru.ru_maxrss) * 1024;
}

void print_convert_progress(int64_t done, int64_t total, const std::string& name,
                            const std::string& type) {
  std::fprintf(stderr, "\r[%lld/%lld] %-40s %-5s", (long long)done, (long long)total, name.c_str(),
               type.c_str());
  if (done == total) std::fprintf(stderr, "\n");
  std::fflush(stderr);
}

void print_convert_result(const ConvertResult& r, bool json) {
  if (json) {
    print_json({{"out", r.out.string()},
                {"type", r.type},
                {"tensors", r.tensors},
                {"bytes", r.bytes},
                {"tensor_types", r.tensor_types},
                {"plan", r.plan},
                {"tokenizer", r.tokenizer}});
    return;
  }
  std::printf("%s: %s, %lld tensors, %llu bytes%s\n", r.out.string().c_str(), r.type.c_str(),
              (long long)r.tensors, (unsigned long long)r.bytes, r.plan ? ", with plan" : "");
}

void log_communication(const char* what, int64_t items, const char* unit) {
  if (dist::size() <= 1 || items <= 0) return;
  const int64_t b = dist::bytes_communicated();
  std::fprintf(stderr, "%s: %d ranks, rank 0 exchanged %lld bytes with the others (%lld per %s)\n", what,
               dist::size(), (long long)b, (long long)(b / items), unit);
}

}  // namespace moa::cli
