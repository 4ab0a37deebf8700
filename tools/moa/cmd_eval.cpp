// moa eval retrieval | passkey: greedy retrieval accuracy under the chosen attention (dense,
// --plan, --streaming, --h2o), from a JSONL file (the reference's LongEval format works
// unchanged) or generated on the fly. --vs-dense also runs dense on the same items and reports
// the relative drop.
// moa eval ppl: perplexity of a text cut into windows, or of a calibration set's answers, under
// the chosen attention; --vs-dense also runs dense and reports the relative change.
#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "command.h"
#include "option_checks.h"
#include "common.h"
#include "moa/data/calib.h"
#include "moa/core/error.h"
#include "moa/eval/eval.h"
#include "moa/core/file_io.h"
#include "moa/model/forward.h"
#include "moa/eval/ppl.h"
#include "moa/data/tasks.h"

namespace moa::cli {
namespace {

struct EvalOptions {
  std::string dir, data, split = "heldout", words;
  std::vector<int64_t> lines, repeats;
  std::vector<double> depths;
  int64_t samples = 20, max_new = 32;
  uint64_t seed = 1;
  int threads = 0;
  bool json = false, vs_dense = false;
  AttentionOptions attn;
};

// Dense attention with the same KV storage type, for --vs-dense.
AttentionOptions dense_like(const AttentionOptions& a) {
  AttentionOptions d;
  d.kv_type = a.kv_type;
  d.dense = true;
  return d;
}

std::vector<RetrievalItem> longeval_items(const EvalOptions& o) {
  if (!o.data.empty()) {
    if (!o.lines.empty()) input_error("give --data or --lines, not both");
    return load_retrieval_jsonl(o.data);
  }
  if (o.lines.empty()) input_error("give --data F.jsonl or --lines N1,N2,.. --samples K");
  WordLists words = WordLists::load(o.words.empty() ? WordLists::default_dir() : std::filesystem::path(o.words));
  return longeval_eval_set(words, o.lines, o.samples, o.seed, parse_key_split(o.split));
}

std::vector<RetrievalItem> passkey_items(const EvalOptions& o) {
  if (!o.data.empty()) return load_retrieval_jsonl(o.data);
  return passkey_eval_set(o.repeats.empty() ? std::vector<int64_t>{20, 40, 70} : o.repeats,
                          o.depths.empty() ? std::vector<double>{0, 0.25, 0.5, 0.75, 1} : o.depths,
                          o.samples, o.seed);
}

void run(EvalOptions o, bool passkey) {
  set_threads(o.threads);
  Model model = Model::load(o.dir);
  adopt_embedded_plan(o.attn, model);
  auto tok = Tokenizer::load(o.dir);
  auto items = passkey ? passkey_items(o) : longeval_items(o);
  const bool tty = isatty(fileno(stderr));
  auto run_one = [&](const AttentionOptions& a, const std::string& label) {
    auto t0 = std::chrono::steady_clock::now();
    auto r = eval_retrieval(model, *tok, items, o.max_new,
                            [&](int64_t n_ctx) { return make_cache_spec(model.cfg.attention_shape(), n_ctx, a); },
                            [&](int64_t done, int64_t total) {
                              const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
                              if (tty || done == total || done % 20 == 0) {
                                std::fprintf(stderr, "%seval %s: %lld/%lld  %.2f items/s  ETA %.0fs%s",
                                             tty ? "\r" : "", label.c_str(), (long long)done, (long long)total,
                                             double(done) / el, el / double(done) * double(total - done),
                                             tty && done < total ? "" : "\n");
                              }
                            });
    return r;
  };
  const std::string method = method_name(o.attn);
  RetrievalResult r = run_one(o.attn, method);
  log_communication("eval", r.n, "item");
  nlohmann::json j = r.to_json();
  j["method"] = method;
  j["task"] = passkey ? "passkey" : "longeval";
  if (o.attn.streaming >= 0) j["density"] = o.attn.streaming;
  if (o.attn.h2o >= 0) j["density"] = o.attn.h2o;
  if (!o.attn.plan.empty()) j["plan"] = o.attn.plan;
  if (o.attn.embedded) j["plan"] = "embedded";
  if (o.vs_dense && method != "dense") {
    RetrievalResult d = run_one(dense_like(o.attn), "dense");
    j["dense"] = d.to_json();
    j["relative_drop"] = d.accuracy() > 0 ? 1.0 - r.accuracy() / d.accuracy() : 0.0;
  }
  if (o.json) {
    print_json(j);
    return;
  }
  std::printf("%s %s: accuracy %.3f (%lld/%lld)\n", j["task"].get<std::string>().c_str(), method.c_str(),
              r.accuracy(), (long long)r.correct, (long long)r.n);
  for (const auto& [k, v] : r.by_lines) {
    std::printf("  %s %5lld: %.3f  (%.0f prompt tokens)\n", passkey ? "repeats" : "lines", (long long)k,
                double(v.first) / double(v.second), r.mean_prompt_tokens.at(k));
  }
  if (j.contains("relative_drop")) {
    std::printf("  dense %.3f, relative drop %.3f\n", j["dense"]["accuracy"].get<double>(),
                j["relative_drop"].get<double>());
  }
}

void add_common(CLI::App* s, EvalOptions& o) {
  s->add_option("-m,--model", o.dir, "checkpoint directory or .gguf file")->required();
  s->add_option("--data", o.data, "JSONL of prompts with expected_number (reference format)");
  s->add_option("--samples", o.samples, "generated items per length")->check(in_range(int64_t(1), int64_t(1000000)));
  s->add_option("--seed", o.seed, "seed of generated items");
  s->add_option("--max-new", o.max_new, "generation budget per answer")->check(in_range(int64_t(1), int64_t(4096)));
  s->add_flag("--vs-dense", o.vs_dense, "also run dense on the same items and report the relative drop");
  s->add_flag("--json", o.json, "print one JSON object");
  add_threads_option(*s, o.threads);
  add_attention_options(*s, o.attn);
}

struct PplOptions {
  std::string dir, file, data;
  int64_t length = 0;
  int threads = 0;
  bool json = false, vs_dense = false;
  AttentionOptions attn;
};

void run_ppl(PplOptions o) {
  set_threads(o.threads);
  if (o.file.empty() == o.data.empty()) {
    input_error("give exactly one of -f TEXT_FILE or --data CALIB.jsonl");
  }
  if (!o.data.empty() && o.length > 0) {
    input_error("--length cuts a text file (-f) into windows; --data samples are scored whole");
  }
  Model model = Model::load(o.dir);
  adopt_embedded_plan(o.attn, model);
  auto tok = Tokenizer::load(o.dir);
  const int64_t length = o.length > 0 ? o.length : model.cfg.max_position;
  if (length > model.cfg.max_position) {
    input_error("--length {} exceeds the model's context of {} (max_position_embeddings)", length,
                model.cfg.max_position);
  }
  std::vector<ScoredSequence> seqs;
  if (!o.file.empty()) {
    seqs = text_windows(tok->encode(read_text(o.file), false), length, tok->bos_id());
  } else {
    seqs = answer_sequences(load_tokenized_calib(o.data, *tok, model.cfg.vocab));
    if (seqs.empty()) input_error("{}: no sample has an answer token to score", o.data);
  }
  const bool tty = isatty(fileno(stderr));
  auto run_one = [&](const AttentionOptions& a, const std::string& label) {
    auto t0 = std::chrono::steady_clock::now();
    int64_t seen = 0;
    return eval_ppl(model, seqs, [&](int64_t n) { return make_cache_spec(model.cfg.attention_shape(), n, a); },
                    [&](int64_t done, int64_t total) {
                      const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
                      if (tty || done == total || ++seen % 20 == 0) {
                        std::fprintf(stderr, "%sppl %s: %lld/%lld tokens  %.0f tok/s  ETA %.0fs%s",
                                     tty ? "\r" : "", label.c_str(), (long long)done, (long long)total,
                                     double(done) / el, el / double(std::max<int64_t>(done, 1)) * double(total - done),
                                     tty && done < total ? "" : "\n");
                      }
                    });
  };
  const std::string method = method_name(o.attn);
  PplResult r = run_one(o.attn, method);
  log_communication("ppl", r.windows, "sequence");
  nlohmann::json j = {{"ppl", r.ppl()},         {"nll", r.nll()},      {"tokens", r.tokens},
                      {"windows", r.windows},   {"method", method},    {"task", "ppl"},
                      {"source", o.file.empty() ? o.data : o.file}};
  if (!o.file.empty()) j["length"] = length;
  if (o.attn.streaming >= 0) j["density"] = o.attn.streaming;
  if (o.attn.h2o >= 0) j["density"] = o.attn.h2o;
  if (!o.attn.plan.empty()) j["plan"] = o.attn.plan;
  if (o.attn.embedded) j["plan"] = "embedded";
  if (o.vs_dense && method != "dense") {
    PplResult d = run_one(dense_like(o.attn), "dense");
    j["dense"] = {{"ppl", d.ppl()}, {"nll", d.nll()}, {"tokens", d.tokens}, {"windows", d.windows}};
    j["relative_change"] = d.ppl() > 0 ? r.ppl() / d.ppl() - 1.0 : 0.0;
  }
  if (o.json) {
    print_json(j);
    return;
  }
  std::printf("ppl %s: %.4f  (nll %.5f over %lld tokens in %lld %s)\n", method.c_str(), r.ppl(), r.nll(),
              (long long)r.tokens, (long long)r.windows, o.file.empty() ? "samples" : "windows");
  if (j.contains("relative_change")) {
    std::printf("  dense %.4f, relative change %+.4f\n", j["dense"]["ppl"].get<double>(),
                j["relative_change"].get<double>());
  }
}

void setup(CLI::App& app) {
  app.require_subcommand(1);
  auto o = std::make_shared<EvalOptions>();
  auto* re = app.add_subcommand("retrieval", "LongEval line retrieval: greedy answer, first integer compared");
  add_common(re, *o);
  re->add_option("--lines", o->lines, "generate records with these line counts")->delimiter(',');
  re->add_option("--split", o->split, "key words of generated records: heldout (default), train, all");
  re->add_option("--words", o->words, "word lists directory (default data/words)");
  re->callback([o] { run(*o, false); });
  auto* pk = app.add_subcommand("passkey", "passkey retrieval: a 5-digit key hidden at a depth in filler text");
  add_common(pk, *o);
  pk->add_option("--repeats", o->repeats, "filler repetitions per prompt (~26 tokens each)")->delimiter(',');
  pk->add_option("--depths", o->depths, "depths of the key, cycled over samples")->delimiter(',');
  pk->callback([o] { run(*o, true); });
  auto p = std::make_shared<PplOptions>();
  auto* pp = app.add_subcommand("ppl", "perplexity of a text (windows of --length tokens) or of calibration answers");
  pp->add_option("-m,--model", p->dir, "checkpoint directory or .gguf file")->required();
  pp->add_option("-f,--file", p->file, "text file, cut into windows of BOS + length-1 tokens");
  pp->add_option("--data", p->data, "calibration JSONL ({prompt, answer}): NLL of the answer tokens");
  pp->add_option("--length", p->length, "window length in tokens (default: max_position_embeddings)")
      ->check(in_range(int64_t(2), int64_t(1) << 30));
  pp->add_flag("--vs-dense", p->vs_dense, "also run dense and report the relative change of perplexity");
  pp->add_flag("--json", p->json, "print one JSON object");
  add_threads_option(*pp, p->threads);
  add_attention_options(*pp, p->attn);
  pp->callback([p] { run_ppl(*p); });
}

MOA_COMMAND("eval", "evaluate retrieval accuracy (retrieval, passkey) and perplexity (ppl)", setup);

}  // namespace
}  // namespace moa::cli
