// moa score: teacher-forced negative log-likelihood of a text (or of raw token ids) in one pass,
// with the chosen attention at N = text length.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "command.h"
#include "common.h"
#include "moa/core/error.h"
#include "moa/core/file_io.h"
#include "moa/model/forward.h"
#include "moa/eval/ppl.h"
#include "moa/tokenizer/tokenizer.h"

namespace moa::cli {
namespace {

struct ScoreOptions {
  std::string dir, file, ids_file;
  int64_t from = 1;
  int threads = 0;
  bool json = false;
  AttentionOptions attn;
};

std::vector<int32_t> read_ids(const std::string& path, int64_t vocab) {
  std::string text = read_text(path);
  std::istringstream in(text);
  std::vector<int32_t> ids;
  std::string w;
  while (in >> w) {
    char* end = nullptr;
    long long v = std::strtoll(w.c_str(), &end, 10);
    if (*end != '\0' || v < 0 || v >= vocab) {
      input_error("{}: token {} is '{}', expected an integer id in [0, {})", path, ids.size(), w, vocab);
    }
    ids.push_back(int32_t(v));
  }
  return ids;
}

void run(ScoreOptions o) {
  set_threads(o.threads);
  if (o.file.empty() == o.ids_file.empty()) input_error("give exactly one of -f FILE or --ids FILE");
  Model model = Model::load(o.dir);
  adopt_embedded_plan(o.attn, model);
  std::vector<int32_t> ids;
  if (!o.ids_file.empty()) {
    ids = read_ids(o.ids_file, model.cfg.vocab);
  } else {
    ids = Tokenizer::load(o.dir)->encode(read_text(o.file), true);
  }
  const int64_t T = int64_t(ids.size());
  if (o.from < 1 || o.from >= T) {
    input_error("--from {} must be in [1, {}) for a text of {} tokens", o.from, T, T);
  }
  if (T > model.cfg.max_position) {
    input_error("{}: text of {} tokens exceeds the model's context of {} (max_position_embeddings)",
                o.file.empty() ? o.ids_file : o.file, T, model.cfg.max_position);
  }
  std::vector<double> nll;
  sequence_nll(model, make_cache_spec(model.cfg.attention_shape(), T, o.attn), {ids, o.from}, nll);
  double mean = 0;
  for (double x : nll) mean += x;
  mean /= double(nll.size());
  if (o.json) {
    print_json({{"tokens", nll.size()}, {"nll", mean}, {"ppl", std::exp(mean)}, {"nll_per_token", nll}});
  } else {
    std::printf("tokens %zu  nll %.6f  ppl %.4f\n", nll.size(), mean, std::exp(mean));
  }
}

void setup(CLI::App& app) {
  auto o = std::make_shared<ScoreOptions>();
  app.add_option("-m,--model", o->dir, "checkpoint directory or .gguf file")->required();
  app.add_option("-f,--file", o->file, "text file (tokenized with BOS)");
  app.add_option("--ids", o->ids_file, "whitespace-separated token ids (no tokenizer involved)");
  app.add_option("--from", o->from, "score tokens from this index (default 1)");
  app.add_flag("--json", o->json, "print one JSON object");
  add_threads_option(app, o->threads);
  add_attention_options(app, o->attn);
  app.callback([o] { run(*o); });
}

MOA_COMMAND("score", "negative log-likelihood of a text, teacher-forced", setup);

}  // namespace
}  // namespace moa::cli
