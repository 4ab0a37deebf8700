// moa bench: prefill and decode speed and memory on random token ids. Each measurement is
// repeated --repeat times and the median is reported (the machines are noisy).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>

#include "command.h"
#include "common.h"
#include "moa/error.h"
#include "moa/forward.h"

namespace moa::cli {
namespace {

struct BenchOptions {
  std::string dir;
  int64_t ctx = 0, gen = 32, batch = 1, prefill = 512, repeat = 3;
  int threads = 0;
  bool json = false;
  AttentionOptions attn;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

void run(const BenchOptions& o) {
  set_threads(o.threads);
  Model model = Model::load(o.dir);
  const ModelConfig& c = model.cfg;
  // Prefill is measured on ctx tokens (or --prefill tokens when ctx is 0).
  const int64_t P = o.ctx > 0 ? o.ctx : o.prefill;
  const int64_t n_ctx = std::max(P, o.ctx + 1) + o.gen;
  if (n_ctx > c.max_position) {
    input_error("{}: --ctx {} + --gen {} exceeds the model's context of {} (max_position_embeddings)",
                o.dir, o.ctx, o.gen, c.max_position);
  }
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int32_t> tok(0, int32_t(c.vocab - 1));
  std::vector<int32_t> ids(static_cast<size_t>(P));
  for (auto& t : ids) t = tok(rng);
  AttentionSpec spec = make_attention_spec(c, n_ctx, o.attn);
  std::vector<double> pre, dec;
  int64_t kv_bytes = 0;
  for (int64_t r = 0; r < o.repeat; ++r) {
    // Prefill is timed on the first sequence; the others are filled the same way, untimed.
    Session s(model, spec, o.batch);
    auto t0 = std::chrono::steady_clock::now();
    auto logits = s.prefill(o.ctx > 0 ? ids : std::vector<int32_t>{ids[0]}, nullptr, 0);
    auto t1 = std::chrono::steady_clock::now();
    if (o.ctx > 0) {
      pre.push_back(double(P) / std::chrono::duration<double>(t1 - t0).count());
    } else {
      Session p(model, spec);
      auto ta = std::chrono::steady_clock::now();
      p.prefill(ids);
      pre.push_back(double(P) / std::chrono::duration<double>(std::chrono::steady_clock::now() - ta).count());
    }
    for (int64_t b = 1; b < o.batch; ++b) s.prefill(o.ctx > 0 ? ids : std::vector<int32_t>{ids[0]}, nullptr, b);
    // Decode: `gen` steps of the whole batch, from context ctx (one token when ctx is 0).
    std::vector<int32_t> step(size_t(o.batch));
    auto t2 = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < o.gen; ++i) {
      for (auto& t : step) t = tok(rng);
      logits = s.decode_batch(step);
    }
    auto t3 = std::chrono::steady_clock::now();
    dec.push_back(double(o.gen * o.batch) / std::chrono::duration<double>(t3 - t2).count());
    kv_bytes = s.kv_bytes();
    std::fprintf(stderr, "bench: run %lld/%lld prefill %.1f tok/s decode %.2f tok/s\n",
                 (long long)r + 1, (long long)o.repeat, pre.back(), dec.back());
  }
  nlohmann::json j = {{"ctx", o.ctx},
                      {"prefill_tokens", P},
                      {"gen", o.gen},
                      {"batch", o.batch},
                      {"threads", o.threads},
                      {"prefill_tok_s", median(pre)},
                      {"decode_tok_s", median(dec)},
                      {"kv_bytes", kv_bytes},
                      {"peak_rss_bytes", peak_rss_bytes()},
                      {"repeat", o.repeat}};
  if (o.json) {
    print_json(j);
  } else {
    std::printf("prefill %lld tok: %.1f tok/s | decode at ctx %lld: %.2f tok/s | KV %.2f MiB | "
                "peak RSS %.1f MiB\n",
                (long long)P, median(pre), (long long)o.ctx, median(dec),
                double(kv_bytes) / (1 << 20), double(peak_rss_bytes()) / (1 << 20));
  }
}

void setup(CLI::App& app) {
  auto o = std::make_shared<BenchOptions>();
  app.add_option("-m,--model", o->dir, "checkpoint directory")->required();
  app.add_option("--ctx", o->ctx, "context length before decoding")->check(CLI::NonNegativeNumber);
  app.add_option("--gen", o->gen, "tokens to decode")->check(CLI::PositiveNumber);
  app.add_option("--batch", o->batch, "sequences decoded together (decode_tok_s counts all)")->check(CLI::PositiveNumber);
  app.add_option("--prefill", o->prefill, "prefill tokens measured when --ctx is 0")->check(CLI::PositiveNumber);
  app.add_option("--repeat", o->repeat, "repetitions; medians are reported")->check(CLI::PositiveNumber);
  app.add_flag("--json", o->json, "print one JSON object");
  add_threads_option(app, o->threads);
  add_attention_options(app, o->attn);
  app.callback([o] { run(*o); });
}

MOA_COMMAND("bench", "prefill and decode speed and memory", setup);

}  // namespace
}  // namespace moa::cli
