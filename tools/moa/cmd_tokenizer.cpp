// moa tokenizer train: a small byte-level BPE tokenizer.json for the shipped model, trained on
// English text plus generated LongEval and passkey prompts (so key words and the template become
// single tokens where the vocabulary allows).
#include <chrono>
#include <cstdio>
#include <random>

#include "command.h"
#include "option_checks.h"
#include "common.h"
#include "moa/core/error.h"
#include "moa/core/file_io.h"
#include "moa/data/tasks.h"
#include "moa/tokenizer/tokenizer.h"
#include "moa/tokenizer/tokenizer_train.h"

namespace moa::cli {
namespace {

struct TokTrainOptions {
  std::vector<std::string> text;
  std::string words, out;
  int64_t longeval = 2000, passkey = 200;
  uint64_t seed = 0;
  BpeTrainOptions bpe;
  bool json = false;
};

void run_train(const TokTrainOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::string> texts;
  int64_t bytes = 0;
  for (const auto& f : o.text) {
    texts.push_back(read_text(f));
    bytes += int64_t(texts.back().size());
  }
  std::mt19937_64 rng(o.seed);
  if (o.longeval > 0) {
    // Training-split words only: held-out keys stay unseen by the tokenizer's merges too.
    WordLists words = WordLists::load(o.words.empty() ? WordLists::default_dir() : std::filesystem::path(o.words));
    for (int64_t i = 0; i < o.longeval; ++i) {
      auto r = make_longeval(rng, words, 1 + int64_t(rng() % 8), KeySplit::kTrain);
      texts.push_back(r.prompt);
      texts.push_back(r.answer());
      bytes += int64_t(r.prompt.size() + r.answer().size());
    }
  }
  for (int64_t i = 0; i < o.passkey; ++i) {
    auto p = make_passkey(rng, 2, 0.5);
    texts.push_back(p.prompt + p.answer());
    bytes += int64_t(texts.back().size());
  }
  if (texts.empty()) input_error("tokenizer train: no corpus (give --text FILE or --longeval K > 0)");
  std::fprintf(stderr, "training BPE on %.1f MB of text to %d tokens\n", double(bytes) / 1e6, o.bpe.vocab_size);
  std::string j = train_bpe_tokenizer(texts, o.bpe, [](int64_t done, int64_t total) {
    std::fprintf(stderr, "\rmerges %lld / %lld", (long long)done, (long long)total);
  });
  std::fprintf(stderr, "\n");
  write_text_atomic(o.out, j);
  auto tok = Tokenizer::load(o.out);  // proves the file loads, and measures it
  std::mt19937_64 r2(o.seed + 1);
  int64_t line_tokens = 0;
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (o.longeval > 0) {
    WordLists words = WordLists::load(o.words.empty() ? WordLists::default_dir() : std::filesystem::path(o.words));
    for (int i = 0; i < 200; ++i) {
      line_tokens += int64_t(tok->encode(longeval_line(random_key(r2, words, KeySplit::kHeldOut), 12345), false).size());
    }
  }
  if (o.json) {
    print_json({{"out", o.out}, {"vocab", tok->vocab_size()}, {"corpus_bytes", bytes},
                {"tokens_per_heldout_line", double(line_tokens) / 200.0}, {"seconds", secs}});
  } else {
    std::printf("%s: %d tokens; a LongEval line with held-out keys costs %.1f tokens\n", o.out.c_str(),
                tok->vocab_size(), double(line_tokens) / 200.0);
  }
}

void setup(CLI::App& app) {
  app.require_subcommand(1);
  auto o = std::make_shared<TokTrainOptions>();
  auto* tr = app.add_subcommand("train", "train a byte-level BPE tokenizer.json");
  tr->add_option("--text", o->text, "text files of the corpus")->delimiter(',');
  tr->add_option("--longeval", o->longeval, "generated LongEval records added to the corpus");
  tr->add_option("--passkey", o->passkey, "generated passkey prompts added to the corpus");
  tr->add_option("--words", o->words, "word lists directory (default data/words)");
  tr->add_option("--vocab", o->bpe.vocab_size, "vocabulary size (bytes and specials included)")
      ->check(in_range(int32_t(258), int32_t(1 << 20)));
  tr->add_option("--min-frequency", o->bpe.min_frequency, "least count of a merged pair");
  tr->add_option("--seed", o->seed, "seed of the generated part of the corpus");
  tr->add_option("--out", o->out, "tokenizer.json to write")->required();
  tr->add_flag("--json", o->json, "print one JSON object");
  tr->callback([o] { run_train(*o); });
}

MOA_COMMAND("tokenizer", "tokenizer tools (train)", setup);

}  // namespace
}  // namespace moa::cli
