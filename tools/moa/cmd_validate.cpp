// moa validate: answer-token NLL of every plan in a `moa optimize` output directory at a length
// not used in profiling, dense for reference; the lowest wins.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>

#include "command.h"
#include "option_checks.h"
#include "common.h"
#include "moa/data/calib.h"
#include "moa/core/error.h"
#include "moa/model/forward.h"
#include "moa/tokenizer/tokenizer.h"
#include "moa/compress/validate.h"

namespace moa::cli {
namespace {

struct ValidateCliOptions {
  std::string dir, plans, data;
  int64_t length = 0, samples = 0;
  bool json = false;
  int threads = 0;
};

std::string fmt_seconds(double s) {
  if (!(s >= 0) || s > 1e7) return "?";
  const int64_t t = int64_t(s);
  if (t >= 3600) return fmt::format("{}h{:02}m", t / 3600, t % 3600 / 60);
  if (t >= 60) return fmt::format("{}m{:02}s", t / 60, t % 60);
  return fmt::format("{:.1f}s", s);
}

void run(const ValidateCliOptions& o) {
  set_threads(o.threads);
  Model model = Model::load(o.dir);
  auto tok = Tokenizer::load(o.dir);
  const int64_t attentions = int64_t(list_plan_files(o.plans).size()) + 1;  // dense too
  const bool tty = isatty(fileno(stderr));
  const auto t0 = std::chrono::steady_clock::now();
  auto progress = [&](int64_t i, int64_t n) {
    const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    // one line per attention when not on a terminal
    if (!tty && i % (n / attentions) != 0) return;
    std::fprintf(stderr, "%svalidate: %lld/%lld samples x attentions  %.2f/s  ETA %s%s",
                 tty ? "\r" : "", (long long)i, (long long)n, double(i) / el,
                 fmt_seconds(el / double(i) * double(n - i)).c_str(), tty ? "   " : "\n");
  };
  const ValidationResult r =
      validate_plan_dir(model, *tok, o.plans, o.data, o.length, o.samples, progress);
  if (tty) std::fprintf(stderr, "\n");
  if (r.too_long > 0) {
    std::fprintf(stderr, "validate: skipped %lld samples longer than %lld tokens\n",
                 (long long)r.too_long, (long long)o.length);
  }
  if (r.best.empty()) input_error("{}: every plan gave a non-finite NLL", o.plans);
  if (o.json) {
    print_json({{"best", r.best},
                {"best_path", (std::filesystem::path(o.plans) / r.best).string()},
                {"nll", r.nll},
                {"dense_nll", r.dense_nll},
                {"samples", r.samples},
                {"length", o.length}});
    return;
  }
  std::printf("%-32s %10s %10s\n", "plan", "nll", "vs dense");
  std::printf("%-32s %10.5f %10s\n", "(dense)", r.dense_nll, "");
  for (const auto& [name, v] : r.nll) {
    std::printf("%-32s %10.5f %+10.5f%s\n", name.c_str(), v, v - r.dense_nll,
                name == r.best ? "  <- best" : "");
  }
  std::printf("best %s (%lld samples at most %lld tokens)\n", r.best.c_str(), (long long)r.samples,
              (long long)o.length);
}

void setup(CLI::App& app) {
  auto o = std::make_shared<ValidateCliOptions>();
  app.add_option("-m,--model", o->dir, "checkpoint directory or .gguf file")->required();
  app.add_option("--plans", o->plans,
                 "directory of plans (moa optimize --out); summary.json is skipped")
      ->required();
  app.add_option("--length", o->length, "validation length: samples longer than this are skipped")
      ->required();
  app.add_option("--data", o->data, "JSONL ({\"prompt\", \"answer\"} or LongEval records)")
      ->required();
  app.add_option("--samples", o->samples, "use the first K samples that fit (default: all)")
      ->check(at_least(0));
  app.add_flag("--json", o->json, "print one JSON object");
  add_threads_option(app, o->threads);
  app.callback([o] { run(*o); });
}

MOA_COMMAND("validate", "answer NLL of each plan at an unseen length; picks the best", setup);

}  // namespace
}  // namespace moa::cli
