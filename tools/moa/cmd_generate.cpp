// moa generate: prefill the prompt, then sample up to -n tokens, streaming text to stdout.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "command.h"
#include "option_checks.h"
#include "common.h"
#include "moa/core/error.h"
#include "moa/model/forward.h"
#include "moa/model/sampler.h"
#include "moa/attention/spans.h"
#include "moa/tokenizer/tokenizer.h"

namespace moa::cli {
namespace {

struct GenerateOptions {
  std::string dir, prompt, file;
  int64_t n = 128;
  float temp = 0.0f, top_p = 1.0f;
  uint64_t seed = 0;
  int threads = 0;
  bool json = false, ignore_eos = false;
  AttentionOptions attn;
};

void run(GenerateOptions o) {
  set_threads(o.threads);
  std::string text = read_prompt(o.prompt, o.file);
  Model model = Model::load(o.dir);
  adopt_embedded_plan(o.attn, model);
  auto tok = Tokenizer::load(o.dir);
  std::vector<int32_t> ids = tok->encode(text, true);
  if (ids.empty()) input_error("the prompt is empty (give text with -p or -f)");
  const int64_t n_ctx = int64_t(ids.size()) + o.n;
  if (n_ctx > model.cfg.max_position) {
    input_error(
        "{}: prompt of {} tokens + {} to generate exceeds the model's context of {} "
        "(max_position_embeddings); shorten the prompt or lower -n",
        o.dir, ids.size(), o.n, model.cfg.max_position);
  }
  for (int32_t id : ids) {
    if (id >= model.cfg.vocab) {
      input_error("{}: tokenizer gives id {} but the model's vocab_size is {}", o.dir, id,
                  model.cfg.vocab);
    }
  }
  Session session(model, make_cache_spec(model.cfg.attention_shape(), n_ctx, o.attn));
  Sampler sampler(o.temp, o.top_p, o.seed);
  auto eos = tok->eos_ids();
  auto t0 = std::chrono::steady_clock::now();
  std::vector<float> logits = session.prefill(ids);
  auto t1 = std::chrono::steady_clock::now();
  std::vector<int32_t> out;
  std::string out_text;
  int32_t prev = ids.back();
  // Ids past the tokenizer's vocabulary (padding rows of the embedding, or a random model whose
  // vocab_size exceeds its byte-level tokenizer) can never be decoded: never sample them.
  const int64_t tok_vocab = std::min<int64_t>(tok->vocab_size(), model.cfg.vocab);
  for (int64_t i = 0; i < o.n; ++i) {
    std::fill(logits.begin() + tok_vocab, logits.end(), -INFINITY);
    int32_t next = sampler.sample(logits);
    if (!o.ignore_eos && std::find(eos.begin(), eos.end(), next) != eos.end()) break;
    out.push_back(next);
    std::string piece = tok->token_bytes(next, prev);
    prev = next;
    if (!o.json) {
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
    }
    if (i + 1 < o.n) logits = session.decode(next);
  }
  auto t2 = std::chrono::steady_clock::now();
  // What a dense cache of the same N would hold: kv_bytes / this is the stored KV density that
  // `moa plan check` reports (stored_density) for this N.
  const int64_t dense_kv =
      dense_kv_bytes(model.cfg.attention_shape(), n_ctx, session.cache().cache_spec().kv_type);
  const double pre_s = std::chrono::duration<double>(t1 - t0).count();
  const double dec_s = std::chrono::duration<double>(t2 - t1).count();
  std::fprintf(stderr,
               "\ngenerate: prompt %zu tokens in %.3f s (%.1f tok/s), %zu tokens in %.3f s "
               "(%.1f tok/s), KV cache %.2f MiB (%.3f of dense at N = %lld)\n",
               ids.size(), pre_s, double(ids.size()) / pre_s, out.size(), dec_s,
               out.empty() ? 0.0 : double(out.size()) / dec_s,
               double(session.kv_bytes()) / (1 << 20),
               double(session.kv_bytes()) / double(dense_kv), (long long)n_ctx);
  if (o.json) {
    print_json({{"text", tok->decode(out)},
                {"tokens", out.size()},
                {"prompt_tokens", ids.size()},
                {"ids", out},
                {"prefill_s", pre_s},
                {"decode_s", dec_s},
                {"kv_bytes", session.kv_bytes()},
                {"dense_kv_bytes", dense_kv},
                {"kv_type", o.attn.kv_type},
                {"n_ctx", n_ctx}});
  } else {
    std::printf("\n");
  }
}

void setup(CLI::App& app) {
  auto o = std::make_shared<GenerateOptions>();
  app.add_option("-m,--model", o->dir, "checkpoint directory or .gguf file")->required();
  app.add_option("-p,--prompt", o->prompt, "prompt text");
  app.add_option("-f,--file", o->file, "prompt file");
  app.add_option("-n,--n-predict", o->n, "tokens to generate")->check(at_least(0));
  app.add_option("--temp", o->temp, "temperature (0 = greedy)")->check(at_least(0));
  app.add_option("--top-p", o->top_p, "nucleus sampling mass")->check(in_range(0.0, 1.0));
  app.add_option("--seed", o->seed, "sampling seed");
  app.add_flag("--ignore-eos", o->ignore_eos, "keep generating after an end-of-sequence token");
  app.add_flag("--json", o->json, "print one JSON object");
  add_threads_option(app, o->threads);
  add_attention_options(app, o->attn);
  app.callback([o] { run(*o); });
}

MOA_COMMAND("generate", "generate a continuation of a prompt", setup);

}  // namespace
}  // namespace moa::cli
