// moa init --config C.json --out DIR: a random-weight checkpoint of that shape, with a byte-level
// tokenizer.json, loadable by every other command.
#include <filesystem>

#include "command.h"
#include "common.h"
#include "moa/core/error.h"
#include "moa/core/file_io.h"
#include "moa/model/model.h"
#include "moa/tokenizer/tokenizer.h"

namespace moa::cli {
namespace {

struct InitOptions {
  std::string config, out;
  std::string dtype = "f32";
  uint64_t seed = 0;
  bool json = false;
};

void run(const InitOptions& o) {
  ModelConfig c = ModelConfig::load(o.config);
  if (c.vocab < kByteLevelVocabSize) {
    input_error("{}: vocab_size is {}, expected at least {} for the byte-level tokenizer that init "
                "writes", o.config, c.vocab, kByteLevelVocabSize);
  }
  std::string tok = make_byte_level_tokenizer_json();
  Model m = Model::random(c, o.seed);
  std::filesystem::create_directories(o.out);
  m.save(o.out, checkpoint_dtype(o.dtype));
  write_text_atomic(std::filesystem::path(o.out) / "tokenizer.json", tok);
  std::fprintf(stderr, "init: wrote %s (%.2fM params, %s)\n", o.out.c_str(),
               double(m.param_count()) / 1e6, o.dtype.c_str());
  if (o.json) {
    print_json({{"out", o.out}, {"params", m.param_count()}, {"layers", c.layers}, {"dtype", o.dtype}});
  }
}

void setup(CLI::App& app) {
  auto o = std::make_shared<InitOptions>();
  app.add_option("--config", o->config, "config.json giving the shape")->required();
  app.add_option("--out", o->out, "output checkpoint directory")->required();
  app.add_option("--seed", o->seed, "random seed");
  add_dtype_option(app, o->dtype);
  app.add_flag("--json", o->json, "print one JSON object");
  app.callback([o] { run(*o); });
}

MOA_COMMAND("init", "write a random-weight checkpoint of a given shape", setup);

}  // namespace
}  // namespace moa::cli
