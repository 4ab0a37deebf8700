// moa data longeval | passkey: long-dependency prompt sets as JSONL (docs/ARCHITECTURE.md, "Formats").
#include <chrono>
#include <cstdio>
#include <random>
#include <sstream>

#include "command.h"
#include "option_checks.h"
#include "common.h"
#include "moa/core/error.h"
#include "moa/core/file_io.h"
#include "moa/compress/calib_set.h"
#include "moa/model/forward.h"
#include "moa/data/tasks.h"

namespace moa::cli {
namespace {

struct DataOptions {
  std::string model;
  std::vector<int64_t> lengths;
  double passkey_fraction = 0.25;
  int threads = 0;
  int64_t lines = 70, samples = 20, repeats = 100;
  uint64_t seed = 0;
  std::string split = "heldout", words, out;
  std::vector<double> depths;
  bool json = false;
};

void report_written(const DataOptions& o, int64_t records, nlohmann::json extra = nlohmann::json::object()) {
  std::fprintf(stderr, "wrote %lld records to %s\n", static_cast<long long>(records), o.out.c_str());
  if (!o.json) return;
  extra["out"] = o.out;
  extra["records"] = records;
  print_json(extra);
}

void write_jsonl(const DataOptions& o, const std::vector<nlohmann::json>& rows) {
  write_text_atomic(o.out, to_jsonl(rows));
  report_written(o, int64_t(rows.size()));
}

void run_longeval(const DataOptions& o) {
  WordLists words = WordLists::load(o.words.empty() ? WordLists::default_dir() : std::filesystem::path(o.words));
  const KeySplit split = parse_key_split(o.split);
  std::mt19937_64 rng(o.seed);
  std::vector<nlohmann::json> rows;
  for (int64_t i = 0; i < o.samples; ++i) {
    // Answer positions spread evenly over the record, as the reference's sets are.
    const int64_t ask = o.samples > 1 ? (i * o.lines) / o.samples : -1;
    auto j = make_longeval(rng, words, o.lines, split, ask).to_json();
    j["split"] = o.split;
    rows.push_back(std::move(j));
  }
  write_jsonl(o, rows);
}

void run_passkey(const DataOptions& o) {
  std::mt19937_64 rng(o.seed);
  std::vector<double> depths = o.depths;
  if (depths.empty()) depths = {0.0, 0.25, 0.5, 0.75, 1.0};
  for (double d : depths) {
    if (d < 0 || d > 1) input_error("--depths: {} is not in [0, 1]", d);
  }
  std::vector<nlohmann::json> rows;
  for (int64_t i = 0; i < o.samples; ++i) {
    rows.push_back(make_passkey(rng, o.repeats, depths[size_t(i) % depths.size()]).to_json());
  }
  write_jsonl(o, rows);
}

void run_calib(const DataOptions& o) {
  set_threads(o.threads);
  Model m = Model::load(o.model);
  auto tok = Tokenizer::load(o.model);
  WordLists words = WordLists::load(o.words.empty() ? WordLists::default_dir() : std::filesystem::path(o.words));
  CalibOptions c;
  c.lengths = o.lengths;
  if (c.lengths.empty()) {
    // Half, quarter and full trained context: the profile lengths `moa compress` uses.
    const int64_t n = m.cfg.max_position;
    c.lengths = {n / 4, n / 2, n};
  }
  c.samples_per_length = o.samples;
  c.passkey_fraction = o.passkey_fraction;
  c.seed = o.seed;
  auto t0 = std::chrono::steady_clock::now();
  const CalibrationReport r = calibrate(m, *tok, words, c, o.out, [&](int64_t done, int64_t total) {
    const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, "\rcalib: %lld/%lld  %.2f samples/s  ETA %.0fs   ", (long long)done, (long long)total,
                 double(done) / el, el / double(done) * double(total - done));
  });
  std::fprintf(stderr, "\n");
  std::fprintf(stderr, "calib: the model's own answers are right on %lld of %lld prompts\n",
               (long long)r.model_correct, (long long)r.samples);
  report_written(o, r.samples, {{"model_correct", r.model_correct}});
}

void setup(CLI::App& app) {
  app.require_subcommand(1);
  auto o = std::make_shared<DataOptions>();
  auto* le = app.add_subcommand("longeval", "LongEval line-retrieval prompts in the reference format");
  le->add_option("--lines", o->lines, "lines per record")->check(in_range(int64_t(1), int64_t(100000)));
  le->add_option("--samples", o->samples, "records")->check(in_range(int64_t(1), int64_t(10000000)));
  le->add_option("--seed", o->seed, "random seed");
  le->add_option("--split", o->split, "key words: heldout (never trained on; default), train or all");
  le->add_option("--words", o->words, "directory with adjectives.txt and nouns.txt (default data/words)");
  le->add_option("--out", o->out, "output JSONL")->required();
  le->add_flag("--json", o->json, "print one JSON object (out, records)");
  le->callback([o] { run_longeval(*o); });

  auto* pk = app.add_subcommand("passkey", "passkey retrieval prompts (a 5-digit key hidden in filler)");
  pk->add_option("--repeats", o->repeats, "filler repetitions (~26 tokens each)")->check(in_range(int64_t(0), int64_t(1000000)));
  pk->add_option("--samples", o->samples, "records")->check(in_range(int64_t(1), int64_t(10000000)));
  pk->add_option("--depths", o->depths, "relative depths of the key, cycled (default 0,0.25,0.5,0.75,1)")->delimiter(',');
  pk->add_option("--seed", o->seed, "random seed");
  pk->add_option("--out", o->out, "output JSONL")->required();
  pk->add_flag("--json", o->json, "print one JSON object (out, records)");
  pk->callback([o] { run_passkey(*o); });

  auto* ca = app.add_subcommand("calib", "calibration set: long-dependency prompts answered by the dense model itself");
  ca->add_option("-m,--model", o->model, "checkpoint directory whose answers are recorded")->required();
  ca->add_option("--lengths", o->lengths, "target total lengths in tokens (default: max/4, max/2, max)")->delimiter(',');
  ca->add_option("--samples", o->samples, "prompts per length")->check(in_range(int64_t(1), int64_t(100000)));
  ca->add_option("--passkey", o->passkey_fraction, "fraction of passkey prompts (the rest LongEval)")->check(in_range(0.0, 1.0));
  ca->add_option("--seed", o->seed, "random seed");
  ca->add_option("--words", o->words, "word lists directory (default data/words)");
  ca->add_option("--out", o->out, "output JSONL")->required();
  add_threads_option(*ca, o->threads);
  ca->add_flag("--json", o->json, "print one JSON object (out, records, model_correct)");
  ca->callback([o] { run_calib(*o); });
}

MOA_COMMAND("data", "generate long-dependency datasets (longeval, passkey, calib)", setup);

}  // namespace
}  // namespace moa::cli
