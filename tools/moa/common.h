// Options and steps shared by the commands: model loading, prompts, attention choice, JSON out.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "moa/attention/kv_cache.h"
#include "moa/model/model.h"
#include "moa/compress/optimizer.h"
#include "moa/attention/plan.h"

namespace moa::cli {

struct AttentionOptions {
  std::string plan;        // --plan FILE
  double streaming = -1;   // --streaming D
  double h2o = -1;         // --h2o D
  int64_t sink = kPlanSink;  // --sink N
};

void add_attention_options(CLI::App& app, AttentionOptions& o);
void add_threads_option(CLI::App& app, int& threads);
// --solver mckp|cbc, --node-limit N and --cbc-seconds S (the optimiser's, for optimize and compress).
void add_solver_options(CLI::App& app, ChoiceSolver& solver, int64_t& node_limit, double& cbc_seconds);
// --dtype f32|bf16|f16 for commands that write a checkpoint, and its DType.
void add_dtype_option(CLI::App& app, std::string& dtype);
DType checkpoint_dtype(const std::string& dtype);

// The spec for a model at n_ctx positions (prompt + generation budget) under the chosen attention.
AttentionSpec make_attention_spec(const ModelConfig& cfg, int64_t n_ctx, const AttentionOptions& o);

// -p TEXT or -f FILE (exactly one); InputError otherwise.
std::string read_prompt(const std::string& text, const std::string& file);

// Prints one JSON object on stdout (the only thing --json writes there).
void print_json(const nlohmann::json& j);

int64_t current_rss_bytes();  // resident now (/proc/self/statm)
int64_t peak_rss_bytes();

}  // namespace moa::cli
