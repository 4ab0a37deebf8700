// Options and steps shared by the commands: model loading, prompts, attention choice, JSON out.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "moa/attention/attention_spec.h"
#include "moa/model/model.h"
#include "moa/compress/optimizer.h"
#include "moa/attention/plan.h"
#include "moa/convert/convert.h"

namespace moa::cli {

struct AttentionOptions {
  std::string plan;        // --plan FILE
  double streaming = -1;   // --streaming D
  double h2o = -1;         // --h2o D
  std::optional<int64_t> sink;  // --sink N; unset = the plan's own sink (64 for --streaming)
  std::string kv_type = "f16";  // --kv-type: the KV cache's storage type (kv_type.h)
  bool dense = false;           // --dense: dense even when the model file embeds a plan
  std::optional<Plan> embedded;  // the model's embedded plan, when it applies (adopt_embedded_plan)
};

void add_attention_options(CLI::App& app, AttentionOptions& o);
// A GGUF model's embedded plan becomes the attention choice when the command line names none
// (no --plan, --streaming, --h2o or --dense). Call once the model is loaded.
void adopt_embedded_plan(AttentionOptions& o, const Model& m);
// What the options choose: "moa" (a plan file or the embedded plan), "streaming", "h2o", "dense".
std::string method_name(const AttentionOptions& o);
void add_threads_option(CLI::App& app, int& threads);
// The optimiser's options for optimize and compress, bound to the fields of `o` (declared once, in
// moa/compress/optimizer.h): --max-rules-per-layer, --grid, --solver mckp|cbc, --node-limit, --cbc-seconds,
// and the solver diagnostics --trace, --cbc-log, --no-count-branching.
void add_optimizer_options(CLI::App& app, OptimizeOptions& o);
// --dtype f32|bf16|f16 for commands that write a checkpoint, and its DType.
void add_dtype_option(CLI::App& app, std::string& dtype);
DType checkpoint_dtype(const std::string& dtype);

// The cache of one sequence of n_ctx positions (prompt + generation budget) under the chosen
// attention. The model enters only as its attention shape.
CacheSpec make_cache_spec(const AttentionShape& shape, int64_t n_ctx, const AttentionOptions& o);

// -p TEXT or -f FILE (exactly one); InputError otherwise.
std::string read_prompt(const std::string& text, const std::string& file);

// Prints one JSON object on stdout (the only thing --json writes there).
void print_json(const nlohmann::json& j);

// Under MPI (more than one rank), one stderr line with the bytes rank 0 exchanged with the other
// ranks so far, in all and per `unit` of the `items` done.
void log_communication(const char* what, int64_t items, const char* unit);

// convert / quantize: "[k/n] tensor TYPE" on stderr, and their result (one JSON object with
// --json: out, type, tensors, bytes, tensor_types, plan, tokenizer).
void print_convert_progress(int64_t done, int64_t total, const std::string& name,
                            const std::string& type);
void print_convert_result(const ConvertResult& r, bool json);

int64_t current_rss_bytes();  // resident now (/proc/self/statm)
int64_t peak_rss_bytes();

}  // namespace moa::cli
