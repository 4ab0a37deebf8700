// moa inspect heads: where each attention head looks on long retrieval prompts (mean attention
// distance, mass on the sink, near the query and far from it), per layer and query head, from the
// dense attention of the model (include/moa/eval/inspect.h). Prompts are generated LongEval records
// with held-out keys by default, or the "prompt" fields of a JSONL file; tokens = BOS + prompt.
#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "command.h"
#include "option_checks.h"
#include "common.h"
#include "moa/core/error.h"
#include "moa/eval/eval.h"
#include "moa/core/file_io.h"
#include "moa/model/forward.h"
#include "moa/eval/inspect.h"
#include "moa/core/jsonl.h"
#include "moa/data/tasks.h"
#include "moa/tokenizer/tokenizer.h"

namespace moa::cli {
namespace {

struct InspectOptions {
  std::string dir, data, split = "heldout", words, heatmap, stat = "far_mass";
  int64_t lines = 100, samples = 4;
  uint64_t seed = 1;
  int threads = 0;
  bool json = false, last_rows = false;
};

// The prompts of `moa eval retrieval --lines N` with the same seed and split.
std::vector<std::string> generated_prompts(const InspectOptions& o) {
  if (o.lines < 1) input_error("--lines {}: expected a positive line count", o.lines);
  WordLists words =
      WordLists::load(o.words.empty() ? WordLists::default_dir() : std::filesystem::path(o.words));
  std::vector<std::string> out;
  for (RetrievalItem& it :
       longeval_eval_set(words, {o.lines}, o.samples, o.seed, parse_key_split(o.split))) {
    out.push_back(std::move(it.prompt));
  }
  return out;
}

void run(const InspectOptions& o) {
  set_threads(o.threads);
  head_stat(HeadStats{}, o.stat);  // reject a bad --stat before the work
  Model model = Model::load(o.dir);
  auto tok = Tokenizer::load(o.dir);
  const auto prompts = o.data.empty() ? generated_prompts(o) : load_prompts_jsonl(o.data);
  std::vector<std::vector<int32_t>> samples;
  for (const auto& p : prompts) samples.push_back(tok->encode(p, true));
  const bool tty = isatty(fileno(stderr));
  const auto t0 = std::chrono::steady_clock::now();
  HeadStatsTable t = inspect_heads(model, samples, [&](int64_t done, int64_t total) {
    const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, "%sinspect: %lld/%lld samples  %.2f samples/s  ETA %.0fs%s",
                 tty ? "\r" : "", (long long)done, (long long)total, double(done) / el,
                 el / double(done) * double(total - done), tty && done < total ? "" : "\n");
  });
  if (!o.heatmap.empty()) {
    write_text_atomic(o.heatmap, head_stats_svg(t, o.stat, o.last_rows));
    std::fprintf(stderr, "inspect: wrote %s (%s)\n", o.heatmap.c_str(), o.stat.c_str());
  }
  if (o.json) {
    nlohmann::json j = t.to_json();
    j["source"] =
        o.data.empty() ? fmt::format("longeval lines={} split={}", o.lines, o.split) : o.data;
    print_json(j);
  } else {
    std::fputs(t.to_text().c_str(), stdout);
  }
}

void setup(CLI::App& app) {
  app.require_subcommand(1);
  auto o = std::make_shared<InspectOptions>();
  auto* h = app.add_subcommand("heads", "per-head attention distance and sink / local / far mass");
  h->add_option("-m,--model", o->dir, "checkpoint directory or .gguf file")->required();
  h->add_option("--data", o->data,
                "JSONL with a \"prompt\" per line (instead of generated LongEval)");
  h->add_option("--lines", o->lines, "lines of each generated LongEval record (default 100)");
  h->add_option("--samples", o->samples, "generated records (default 4)")
      ->check(in_range(int64_t(1), int64_t(100000)));
  h->add_option("--seed", o->seed, "seed of generated records");
  h->add_option("--split", o->split,
                "key words of generated records: heldout (default), train, all");
  h->add_option("--words", o->words, "word lists directory (default data/words)");
  h->add_option("--heatmap", o->heatmap, "write an SVG: layers x heads coloured by --stat");
  h->add_option(
      "--stat", o->stat,
      "statistic of the heatmap: far_mass (default), local_mass, sink_mass, mean_distance");
  h->add_flag("--last-rows", o->last_rows, "heatmap of the last 32 query rows instead of all rows");
  h->add_flag("--json", o->json, "print one JSON object");
  add_threads_option(*h, o->threads);
  h->callback([o] { run(*o); });
}

MOA_COMMAND("inspect", "inspect a model's attention heads (heads)", setup);

}  // namespace
}  // namespace moa::cli
