// moa compress: calibration set, profiles, Pareto plans, validation — one command, each stage
// saved in the work directory and reused when re-run (see include/moa/compress/pipeline.h).
#include <cstdio>

#include "command.h"
#include "option_checks.h"
#include "common.h"
#include "moa/core/error.h"
#include "moa/model/forward.h"
#include "moa/compress/pipeline.h"

namespace moa::cli {
namespace {

struct CompressCli {
  std::string dir, out, work, words;
  CompressOptions c;
  int threads = 0;
  bool json = false;
};

void run(CompressCli& o) {
  set_threads(o.threads);
  Model m = Model::load(o.dir);
  auto tok = Tokenizer::load(o.dir);
  o.c.out = o.out;
  o.c.work = o.work;
  o.c.words = o.words;
  o.c.model_id = model_fingerprint(o.dir);
  o.c.log = [](const std::string& s) { std::fprintf(stderr, "compress: %s\n", s.c_str()); };
  std::string name = std::filesystem::path(o.dir).filename().string();
  if (name.empty()) name = std::filesystem::path(o.dir).parent_path().filename().string();
  CompressResult r = run_compress(m, *tok, name, o.c);
  auto by_length = [](const std::map<int64_t, double>& m) {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& [n, d] : m) j[std::to_string(n)] = d;
    return j;
  };
  if (o.json) {
    print_json({{"plan", r.plan.string()},
                {"density", r.density_bound},
                {"density_bound", r.density_bound},
                {"kv_density", by_length(r.kv_density)},
                {"stored_density", by_length(r.stored_density)},
                {"prefill_density", by_length(r.prefill_density)},
                {"seconds", r.seconds},
                {"best", r.best},
                {"pareto_plans", r.pareto_plans},
                {"validation_nll", r.validation_nll},
                {"dense_validation_nll", r.dense_validation_nll},
                {"reused", r.reused},
                {"influence", influence_name(o.c.influence)}});
  } else {
    std::printf("%s: best of %lld Pareto plans (%s), validation NLL %.4f (dense %.4f), %.0f s\n",
                r.plan.c_str(), (long long)r.pareto_plans, r.best.c_str(), r.validation_nll,
                r.dense_validation_nll, r.seconds);
  }
}

void setup(CLI::App& app) {
  auto o = std::make_shared<CompressCli>();
  app.add_option("-m,--model", o->dir, "checkpoint directory or .gguf file")->required();
  app.add_option("--density", o->c.optimize.density_bound,
                 "KV density budget in (0, 1]: bounds the mean over query heads of kept / N")
      ->required();
  app.add_option("--out", o->out, "plan JSON to write")->required();
  app.add_option("--work", o->work, "stage directory (default: next to --out, moa-work-<model>)");
  app.add_option("--profile-lengths", o->c.profile_lengths, "profile lengths (default C/4,C/2,C)")->delimiter(',');
  app.add_option("--extend-lengths", o->c.extend_lengths, "density-only lengths (default 2C)")->delimiter(',');
  app.add_option("--validation-length", o->c.validation_length, "validation length (default 3C/4)");
  app.add_option("--short-validation-length", o->c.short_validation_length,
                 "second, short validation length (default max(256, C/8); -1: none)");
  app.add_option("--samples", o->c.samples, "calibration prompts per length (default 64)")->check(in_range(int64_t(1), int64_t(100000)));
  add_optimizer_options(app, o->c.optimize);
  app.add_option("--influence", o->c.influence,
                 "profile tiles: entry (sum of per-entry E, docs/ARCHITECTURE.md; default) or tile (each tile's "
                 "entries removed together)")
      ->transform(CLI::CheckedTransformer(std::map<std::string, InfluenceKind>{
          {"entry", InfluenceKind::kEntry}, {"tile", InfluenceKind::kTile}}));
  app.add_option("--seed", o->c.seed, "calibration seed");
  app.add_option("--words", o->words, "word lists directory (default data/words)");
  app.add_flag("--json", o->json, "print one JSON object");
  add_threads_option(app, o->threads);
  app.callback([o] { run(*o); });
}

MOA_COMMAND("compress", "the whole MoA pipeline: calibrate, profile, optimise, validate -> plan", setup);

}  // namespace
}  // namespace moa::cli
