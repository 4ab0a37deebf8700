// moa profile: attention influence of a model on a calibration set at one length (a resumable
// run), or --check-ablations K: how well the influence predicts the loss change of dropping whole
// tiles (Spearman over K ablations).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>

#include "command.h"
#include "option_checks.h"
#include "common.h"
#include "moa/data/calib.h"
#include "moa/core/dist.h"
#include "moa/core/error.h"
#include "moa/model/forward.h"
#include "moa/compress/profiler.h"
#include "moa/tokenizer/tokenizer.h"

namespace moa::cli {
namespace {

struct ProfileCliOptions {
  std::string dir, data, out;
  int64_t length = 0, samples = 0, block = 64, checkpoint_every = 4, stop_after = -1;
  int64_t check_ablations = 0;
  std::string check_tiles = "all";
  std::string influence = "entry";
  uint64_t seed = 0;
  bool fresh = false, recompute = false, json = false;
  int threads = 0;
};

std::string fmt_seconds(double s) {
  if (!(s >= 0) || s > 1e7) return "?";
  const int64_t t = int64_t(s);
  if (t >= 3600) return fmt::format("{}h{:02}m", t / 3600, t % 3600 / 60);
  if (t >= 60) return fmt::format("{}m{:02}s", t / 60, t % 60);
  return fmt::format("{:.1f}s", s);
}

std::string model_name(const std::string& dir) {
  std::error_code ec;
  auto p = std::filesystem::weakly_canonical(std::filesystem::absolute(dir), ec);
  if (ec) p = std::filesystem::path(dir);
  return p.filename().string();
}

void run_check(const ProfileCliOptions& o, const Model& model,
               const std::vector<TokenizedSample>& all) {
  std::vector<TokenizedSample> use;
  const int64_t want = o.samples > 0 ? o.samples : 4;
  for (const TokenizedSample& s : all) {
    if (s.size() <= o.length && s.scored_tokens() > 0 && int64_t(use.size()) < want)
      use.push_back(s);
  }
  if (use.empty()) input_error("{}: no sample fits in --length {}", o.data, o.length);
  const bool tty = isatty(fileno(stderr));
  std::fprintf(stderr, "profile: checking %lld tile ablations on %zu samples\n",
               (long long)o.check_ablations, use.size());
  const auto t0 = std::chrono::steady_clock::now();
  AblationReport rep = check_ablations(
      model, use, o.length, o.block, o.check_ablations, o.seed, [&](int64_t i, int64_t n) {
        const double el =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::fprintf(stderr, "%sprofile: ablation %lld/%lld  %.2f/s  ETA %s%s", tty ? "\r" : "",
                     (long long)i, (long long)n, double(i) / el,
                     fmt_seconds(el / double(i) * double(n - i)).c_str(), tty ? "   " : "\n");
      },
      o.check_tiles == "droppable");
  if (tty) std::fprintf(stderr, "\n");
  if (o.json) {
    nlohmann::json a = nlohmann::json::array();
    for (const TileAblation& t : rep.ablations) {
      a.push_back({{"layer", t.layer},
                   {"head", t.head},
                   {"qb", t.qb},
                   {"kb", t.kb},
                   {"predicted", t.predicted},
                   {"predicted_joint", t.predicted_joint},
                   {"measured", t.measured}});
    }
    print_json({{"spearman", rep.spearman},
                {"spearman_joint", rep.spearman_joint},
                {"tiles", o.check_tiles},
                {"samples", rep.samples},
                {"length", o.length},
                {"block", o.block},
                {"ablations", a}});
    return;
  }
  std::printf("%5s %5s %4s %4s %14s %14s %14s\n", "layer", "head", "qb", "kb", "predicted", "joint",
              "measured");
  for (const TileAblation& t : rep.ablations) {
    std::printf("%5lld %5lld %4lld %4lld %14.6e %14.6e %14.6e\n", (long long)t.layer, (long long)t.head,
                (long long)t.qb, (long long)t.kb, t.predicted, t.predicted_joint, t.measured);
  }
  std::printf("spearman %.4f (tile-joint %.4f) over %zu tile ablations (%s tiles, %lld samples)\n",
              rep.spearman, rep.spearman_joint, rep.ablations.size(), o.check_tiles.c_str(),
              (long long)rep.samples);
}

void run(const ProfileCliOptions& o) {
  set_threads(o.threads);
  if (o.length < 2) input_error("--length {}: expected at least 2 tokens", o.length);
  if (o.check_ablations == 0 && o.out.empty())
    input_error("--out is required (or --check-ablations K)");
  if (o.check_ablations < 0 || o.check_ablations == 1) {
    input_error("--check-ablations {}: expected at least 2 ablations", o.check_ablations);
  }
  Model model = Model::load(o.dir);
  const std::vector<TokenizedSample> all =
      load_tokenized_calib(o.data, *Tokenizer::load(o.dir), model.cfg.vocab);
  if (o.check_ablations > 0) return run_check(o, model, all);

  ProfileOptions po;
  po.length = o.length;
  po.block = o.block;
  po.max_samples = o.samples;
  po.checkpoint_every = o.checkpoint_every;
  po.stop_after = o.stop_after;
  po.fresh = o.fresh;
  po.recompute_layers = o.recompute;
  po.kind = o.influence == "tile" ? InfluenceKind::kTile : InfluenceKind::kEntry;
  po.model_name = model_name(o.dir);
  const bool tty = isatty(fileno(stderr));
  po.progress = [&](const ProfileProgress& p) {
    std::fprintf(stderr, "%sprofile: sample %lld/%lld  loss %.4f  %.3f samples/s  ETA %s%s",
                 tty ? "\r" : "", (long long)p.done, (long long)p.total, p.mean_loss,
                 p.samples_per_s, fmt_seconds(p.eta_s).c_str(), tty ? "   " : "\n");
  };
  int64_t too_long = 0;
  for (const TokenizedSample& s : all) too_long += s.size() > o.length;
  if (too_long > 0) {
    std::fprintf(stderr, "profile: skipping %lld of %zu samples longer than %lld tokens\n",
                 (long long)too_long, all.size(), (long long)o.length);
  }
  ProfileRunResult r = run_profile(model, all, o.data, o.out, po);
  if (tty && r.samples > r.resumed) std::fprintf(stderr, "\n");
  if (r.no_answer > 0) {
    std::fprintf(stderr, "profile: skipped %lld samples without an answer token to score\n",
                 (long long)r.no_answer);
  }
  if (r.resumed > 0) {
    std::fprintf(stderr, "profile: resumed from %lld samples in %s\n", (long long)r.resumed,
                 partial_profile_path(o.out).string().c_str());
  }
  if (!r.complete) {
    std::fprintf(stderr,
                 "profile: stopped after %lld of %lld samples (state in %s); run the same "
                 "command again to resume\n",
                 (long long)r.samples, (long long)r.total,
                 partial_profile_path(o.out).string().c_str());
  }
  const double rate = r.seconds > 0 ? double(r.samples - r.resumed) / r.seconds : 0.0;
  log_communication("profile", r.samples - r.resumed, "sample");
  if (o.json) {
    print_json({{"out", o.out},
                {"complete", r.complete},
                {"samples", r.samples},
                {"total", r.total},
                {"resumed", r.resumed},
                {"skipped_long", r.too_long},
                {"skipped_no_answer", r.no_answer},
                {"length", o.length},
                {"block", o.block},
                {"mean_loss", r.mean_loss},
                {"seconds", r.seconds},
                {"samples_per_s", rate}});
  } else if (r.complete) {
    std::printf(
        "profiled %lld samples at length %lld (mean answer loss %.4f, %.3f samples/s) -> %s\n",
        (long long)r.samples, (long long)o.length, r.mean_loss, rate, o.out.c_str());
  }
}

void setup(CLI::App& app) {
  auto o = std::make_shared<ProfileCliOptions>();
  app.add_option("-m,--model", o->dir, "checkpoint directory or .gguf file")->required();
  app.add_option("--data", o->data,
                 "calibration JSONL ({\"prompt\", \"answer\"} or LongEval records)")
      ->required();
  app.add_option("--length", o->length, "profile length L: samples longer than L are skipped")
      ->required();
  app.add_option("--out", o->out, "profile safetensors to write (moa-profile/1)");
  app.add_option("--samples", o->samples,
                 "use the first K samples that fit (default: all; 4 with --check-ablations)")
      ->check(at_least(0));
  app.add_option("--block", o->block, "tile edge (default 64)")->check(above(0));
  app.add_option("--checkpoint-every", o->checkpoint_every,
                 "samples between checkpoints (default 4)")
      ->check(above(0));
  app.add_option("--stop-after", o->stop_after,
                 "stop after K samples of this run, checkpointed (resume later)")
      ->check(at_least(0));
  app.add_option("--influence", o->influence,
                 "what a tile holds: entry (sum of per-entry E, docs/ARCHITECTURE.md; default) or tile (the "
                 "tile's entries removed together, per row)")
      ->check(one_of({"entry", "tile"}));
  app.add_flag("--fresh", o->fresh, "start over, ignoring the partial checkpoint beside --out");
  app.add_flag("--recompute", o->recompute,
               "recompute activations in the backward (less memory, ~1/3 more time)");
  app.add_option("--check-ablations", o->check_ablations,
                 "instead of profiling: drop K tiles one at a time and report the Spearman "
                 "correlation of predicted and measured loss change");
  app.add_option("--check-tiles", o->check_tiles,
                 "tiles --check-ablations draws from: all causal tiles, or droppable ones (off "
                 "the diagonal: no elastic rule drops a query's own block)")
      ->check(one_of({"all", "droppable"}));
  app.add_option("--seed", o->seed, "seed of the ablation choice (--check-ablations)");
  app.add_flag("--json", o->json, "print one JSON object");
  add_threads_option(app, o->threads);
  app.callback([o] { run(*o); });
}

MOA_COMMAND("profile", "attention influence of a model on calibration data at one length", setup);

}  // namespace
}  // namespace moa::cli
