// moa tokenize (-m DIR | --tokenizer FILE) (-p TEXT | -f FILE) [--special] [--json]: the token
// ids of a text, with tokenizer.json or tokenizer.model. Special tokens (BOS) only with --special.
#include <cstdio>
#include <memory>

#include "command.h"
#include "common.h"
#include "moa/core/error.h"
#include "moa/tokenizer/tokenizer.h"

namespace moa::cli {
namespace {

struct TokenizeOptions {
  std::string model_dir;
  std::string tokenizer_file;
  std::string prompt;
  std::string file;
  bool special = false;
  bool json = false;
};

void run(const TokenizeOptions& o, bool have_prompt) {
  if (o.model_dir.empty() == o.tokenizer_file.empty()) {
    input_error("give the tokenizer with -m DIR or --tokenizer FILE (exactly one)");
  }
  if (have_prompt == !o.file.empty())
    input_error("give the text with -p TEXT or -f FILE (exactly one)");
  std::string text = read_prompt(o.prompt, o.file);
  auto tok = Tokenizer::load(o.model_dir.empty() ? o.tokenizer_file : o.model_dir);
  std::vector<int32_t> ids = tok->encode(text, o.special);
  if (o.json) {
    print_json({{"ids", ids}, {"tokens", ids.size()}});
    return;
  }
  std::string line;
  for (size_t i = 0; i < ids.size(); ++i) line += (i ? " " : "") + std::to_string(ids[i]);
  std::printf("%s\n", line.c_str());
}

void setup(CLI::App& app) {
  auto o = std::make_shared<TokenizeOptions>();
  app.add_option("-m,--model", o->model_dir,
                 "checkpoint directory (tokenizer.json or tokenizer.model)");
  app.add_option("--tokenizer", o->tokenizer_file, "a tokenizer.json or tokenizer.model file");
  auto* p = app.add_option("-p,--prompt", o->prompt, "text to tokenize");
  app.add_option("-f,--file", o->file, "file with the text to tokenize");
  app.add_flag("--special", o->special,
               "add the special tokens the tokenizer config asks for (BOS)");
  app.add_flag("--json", o->json, "print one JSON object {\"ids\": [...], \"tokens\": N}");
  app.callback([o, p] { run(*o, p->count() > 0); });
}

MOA_COMMAND("tokenize", "token ids of a text (tokenizer.json or tokenizer.model)", setup);

}  // namespace
}  // namespace moa::cli
