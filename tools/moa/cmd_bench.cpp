// moa bench: prefill and decode speed and memory on random token ids. Each measurement is
// repeated --repeat times and the median is reported (the machines are noisy).
//
// --fill synthetic skips the prefill and fills the caches with random K/V: decode at 32k on a
// 1B-shaped model then costs seconds instead of an hour of prefill on 2 cores, and the bytes a
// decode step reads are the same. --fit-gib picks the largest batch whose caches fit a memory
// budget next to the loaded weights.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>

#include "command.h"
#include "option_checks.h"
#include "common.h"
#include "moa/core/error.h"
#include "moa/model/forward.h"

namespace moa::cli {
namespace {

struct BenchOptions {
  std::string dir;
  int64_t ctx = 0, gen = 32, batch = 1, prefill = 512, repeat = 3;
  int threads = 0;
  bool json = false;
  std::string fill = "prefill";
  double fit_gib = 0;
  AttentionOptions attn;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

// The largest batch whose caches and per-sequence decode buffers fit `gib` GiB next to what is
// resident now (the weights), keeping a fixed reserve for the prefill/fill working set.
int64_t fit_batch(const ModelConfig& c, const CacheSpec& spec, double gib, const std::string& dir) {
  const int64_t budget = int64_t(gib * double(1LL << 30));
  const int64_t reserve = int64_t(512) << 20;
  const int64_t per_seq = cache_bytes(spec) +
                          4 * (c.vocab + 4 * c.hidden + 3 * c.intermediate + c.q_dim() + 2 * c.kv_dim());
  const int64_t free = budget - current_rss_bytes() - reserve;
  if (free < per_seq) {
    input_error("{}: --fit-gib {}: not even one sequence's cache ({:.1f} MiB) fits next to the weights",
                dir, gib, double(per_seq) / (1 << 20));
  }
  return free / per_seq;
}

void run(const BenchOptions& in) {
  BenchOptions o = in;
  const bool synthetic = o.fill == "synthetic";
  if (synthetic && o.ctx == 0) input_error("bench: --fill synthetic needs --ctx > 0 (it replaces the prefill)");
  set_threads(o.threads);
  Model model = Model::load(o.dir);
  adopt_embedded_plan(o.attn, model);
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
  // What each sequence is prefilled with: the ctx tokens, or one token when only prefill speed
  // (of --prefill tokens, in a separate session) and decode from the start are measured.
  const std::vector<int32_t> context = o.ctx > 0 ? ids : std::vector<int32_t>{ids[0]};
  CacheSpec spec = make_cache_spec(c.attention_shape(), n_ctx, o.attn);
  if (o.fit_gib > 0) o.batch = fit_batch(c, spec, o.fit_gib, o.dir);
  std::vector<double> pre, dec;
  int64_t kv_bytes = 0;
  for (int64_t r = 0; r < o.repeat; ++r) {
    // Prefill is timed on the first sequence; the others are filled the same way, untimed.
    Session s(model, spec, o.batch);
    if (synthetic) {
      s.fill_synthetic(o.ctx, uint32_t(1234 + r));
    } else {
      auto t0 = std::chrono::steady_clock::now();
      s.prefill(context, nullptr, 0);
      auto t1 = std::chrono::steady_clock::now();
      if (o.ctx > 0) {
        pre.push_back(double(P) / std::chrono::duration<double>(t1 - t0).count());
      } else {
        Session p(model, spec);
        auto ta = std::chrono::steady_clock::now();
        p.prefill(ids);
        pre.push_back(double(P) / std::chrono::duration<double>(std::chrono::steady_clock::now() - ta).count());
      }
      for (int64_t b = 1; b < o.batch; ++b) s.prefill(context, nullptr, b);
    }
    // Decode: `gen` steps of the whole batch, from context ctx (one token when ctx is 0).
    std::vector<int32_t> step(size_t(o.batch));
    auto t2 = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < o.gen; ++i) {
      for (auto& t : step) t = tok(rng);
      s.decode_batch(step);
    }
    auto t3 = std::chrono::steady_clock::now();
    dec.push_back(double(o.gen * o.batch) / std::chrono::duration<double>(t3 - t2).count());
    kv_bytes = s.kv_bytes();
    std::fprintf(stderr, "bench: run %lld/%lld prefill %.1f tok/s decode %.2f tok/s (batch %lld)\n",
                 (long long)r + 1, (long long)o.repeat, synthetic ? 0.0 : pre.back(), dec.back(),
                 (long long)o.batch);
  }
  nlohmann::json j = {{"ctx", o.ctx},
                      {"prefill_tokens", P},
                      {"gen", o.gen},
                      {"batch", o.batch},
                      {"threads", o.threads},
                      {"fill", o.fill},
                      {"prefill_tok_s", synthetic ? nlohmann::json(nullptr) : nlohmann::json(median(pre))},
                      {"decode_tok_s", median(dec)},
                      {"kv_bytes", kv_bytes},
                      {"kv_type", o.attn.kv_type},
                      {"peak_rss_bytes", peak_rss_bytes()},
                      {"repeat", o.repeat}};
  if (o.fit_gib > 0) j["fit_gib"] = o.fit_gib;
  if (o.json) {
    print_json(j);
  } else {
    const std::string pre_text = synthetic ? std::string("prefill not run (--fill synthetic)")
                                           : fmt::format("prefill {} tok: {:.1f} tok/s", P, median(pre));
    std::printf("%s | decode at ctx %lld, batch %lld: %.2f tok/s | KV %.2f MiB | peak RSS %.1f MiB\n",
                pre_text.c_str(), (long long)o.ctx, (long long)o.batch, median(dec),
                double(kv_bytes) / (1 << 20), double(peak_rss_bytes()) / (1 << 20));
  }
}

void setup(CLI::App& app) {
  auto o = std::make_shared<BenchOptions>();
  app.add_option("-m,--model", o->dir, "checkpoint directory or .gguf file")->required();
  app.add_option("--ctx", o->ctx, "context length before decoding")->check(at_least(0));
  app.add_option("--gen", o->gen, "tokens to decode")->check(above(0));
  app.add_option("--batch", o->batch, "sequences decoded together (decode_tok_s counts all)")->check(above(0));
  app.add_option("--prefill", o->prefill, "prefill tokens measured when --ctx is 0")->check(above(0));
  app.add_option("--repeat", o->repeat, "repetitions; medians are reported")->check(above(0));
  app.add_option("--fill", o->fill, "how the context is filled before decoding: prefill (timed) or "
                 "synthetic (random K/V, no prefill; decode only)")
      ->check(one_of({"prefill", "synthetic"}));
  app.add_option("--fit-gib", o->fit_gib, "use the largest batch whose KV caches fit in this many GiB "
                 "with the weights (overrides --batch)")
      ->check(above(0));
  app.add_flag("--json", o->json, "print one JSON object");
  add_threads_option(app, o->threads);
  add_attention_options(app, o->attn);
  app.callback([o] { run(*o); });
}

MOA_COMMAND("bench", "prefill and decode speed and memory", setup);

}  // namespace
}  // namespace moa::cli
