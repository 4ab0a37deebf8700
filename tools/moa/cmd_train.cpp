// moa train: trains a model from scratch (or continues DIR with --resume) on generated or text
// data, checkpointing into --out.
#include <cstdio>
#include <filesystem>

#include "command.h"
#include "option_checks.h"
#include "common.h"
#include "moa/core/error.h"
#include "moa/core/file_io.h"
#include "moa/model/forward.h"
#include "moa/tokenizer/tokenizer.h"
#include "moa/train/trainer.h"

namespace moa::cli {
namespace {

struct TrainCliOptions {
  std::string config, out, tokenizer, init;
  bool resume = false, json = false;
  int threads = 0;
  TrainOptions t;
};

void run(TrainCliOptions& o) {
  set_threads(o.threads);
  namespace fs = std::filesystem;
  const fs::path out(o.out);
  Model model;
  std::string tok_json;
  if (o.resume) {
    if (!fs::exists(out / "train_state.safetensors")) {
      input_error("{}: no train_state.safetensors to resume from (run without --resume first)", o.out);
    }
    model = model_from_train_state(out);
    tok_json = read_text(out / "tokenizer.json");
  } else if (!o.init.empty()) {
    // A new run (fresh optimiser and schedule) from trained weights: the next stage of a
    // curriculum, e.g. a longer --seq.
    if (!o.config.empty()) input_error("--init and --config exclude each other (the model's config comes from --init)");
    if (fs::exists(out / "train_state.safetensors")) {
      input_error("{}: already holds a training run; pass --resume to continue it or choose another --out", o.out);
    }
    model = Model::load(o.init);
    tok_json = o.tokenizer.empty() ? read_text(fs::path(o.init) / "tokenizer.json") : read_text(o.tokenizer);
  } else {
    if (o.config.empty()) input_error("--config (or --init) is required unless --resume");
    if (fs::exists(out / "train_state.safetensors")) {
      input_error("{}: already holds a training run; pass --resume to continue it or choose another --out", o.out);
    }
    ModelConfig c = ModelConfig::load(o.config);
    model = Model::random(c, o.t.seed);
    tok_json = o.tokenizer.empty() ? make_byte_level_tokenizer_json() : read_text(o.tokenizer);
  }
  // The tokenizer as it will be saved, so text data is tokenized exactly as users will.
  const fs::path tmp_tok = fs::temp_directory_path() / ("moa-train-tok-" + std::to_string(::getpid()) + ".json");
  write_text_atomic(tmp_tok, tok_json);
  std::unique_ptr<Tokenizer> tok;
  try {
    tok = Tokenizer::load(tmp_tok);
  } catch (...) {
    fs::remove(tmp_tok);
    throw;
  }
  fs::remove(tmp_tok);
  if (tok->vocab_size() > model.cfg.vocab) {
    input_error("tokenizer has {} tokens but the model's vocab_size is {}", tok->vocab_size(), model.cfg.vocab);
  }
  auto data = TrainData::from_spec(o.t.data, *tok, model.cfg.vocab);
  TrainResult r = train(model, *data, o.t, out, tok_json, o.resume);
  if (o.json) {
    print_json({{"steps", r.steps}, {"loss", r.loss}, {"tokens_per_s", r.tokens_per_s},
                {"eval_loss", r.eval_loss},
                {"eval_token_accuracy", r.eval_token_accuracy}, {"out", o.out}});
  } else {
    std::printf("trained %lld steps, loss %.4f, %.0f tokens/s -> %s\n", (long long)r.steps, r.loss,
                r.tokens_per_s, o.out.c_str());
  }
}

void setup(CLI::App& app) {
  auto o = std::make_shared<TrainCliOptions>();
  app.add_option("--config", o->config, "config.json of the model to train from scratch");
  app.add_option("--data", o->t.data, "copy | text:FILE[,FILE...] | retrieval:KEY=VALUE,...")->required();
  app.add_option("--init", o->init, "start from this checkpoint's weights (new optimiser and schedule)");
  app.add_option("--steps", o->t.steps, "total optimiser steps")->required()->check(above(0));
  app.add_option("--out", o->out, "checkpoint directory")->required();
  app.add_option("--seed", o->t.seed, "seed for weights and data");
  app.add_option("--batch", o->t.batch, "sequences per step")->check(above(0));
  app.add_option("--seq", o->t.seq, "tokens per sequence")->check(in_range(int64_t(2), int64_t(1) << 20));
  app.add_option("--lr", o->t.lr, "peak learning rate")->check(above(0));
  app.add_option("--warmup", o->t.warmup, "warm-up steps (default steps/20)");
  app.add_option("--weight-decay", o->t.weight_decay, "AdamW decoupled weight decay on matrices");
  app.add_option("--clip", o->t.clip, "global gradient-norm clip (0 = off)");
  app.add_option("--save-every", o->t.save_every, "checkpoint every K steps (and at the end)");
  app.add_option("--stop-at", o->t.stop_at, "stop after this step with a checkpoint (resume later)");
  app.add_option("--eval-every", o->t.eval_every, "held-out loss every K steps");
  app.add_option("--tokenizer", o->tokenizer, "tokenizer.json to train with (default: byte-level)");
  app.add_flag("--resume", o->resume, "continue the run in --out from its last checkpoint");
  app.add_flag("--json", o->json, "print one JSON object");
  add_threads_option(app, o->threads);
  app.callback([o] { run(*o); });
}

MOA_COMMAND("train", "train a model (or continue one) and checkpoint it", setup);

}  // namespace
}  // namespace moa::cli
