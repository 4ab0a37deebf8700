// moa expand -m DIR --insert-after I[,J..] --out DIR2: a deeper checkpoint that starts out computing
// exactly what DIR computes (new layers with zero output projections), for growing a trained
// model with `moa train --init DIR2` instead of training the larger shape from scratch.
// --new-layers copy starts each new layer from the one it follows instead of random weights.
#include <filesystem>

#include "command.h"
#include "common.h"
#include "moa/core/error.h"
#include "moa/core/file_io.h"
#include "moa/model/model.h"

namespace moa::cli {
namespace {

namespace fs = std::filesystem;

struct ExpandOptions {
  std::string dir, out;
  std::string dtype = "f32";
  std::vector<int64_t> insert_after;
  std::string new_layers = "random";
  uint64_t seed = 0;
  bool json = false;
};

void run(const ExpandOptions& o) {
  if (fs::exists(o.out) && fs::equivalent(o.out, o.dir)) {
    input_error("expand: --out {} is the input checkpoint; write the expanded model elsewhere", o.out);
  }
  if (o.new_layers != "random" && o.new_layers != "copy") {
    input_error("expand: --new-layers {}: expected random or copy", o.new_layers);
  }
  Model m = Model::load(o.dir);
  Model e = expand_depth(m, o.insert_after, o.seed, o.new_layers == "copy" ? ExpandInit::kCopy : ExpandInit::kRandom);
  const std::string tok = read_text(fs::path(o.dir) / "tokenizer.json");
  fs::create_directories(o.out);
  e.save(o.out, checkpoint_dtype(o.dtype));
  write_text_atomic(fs::path(o.out) / "tokenizer.json", tok);
  std::fprintf(stderr, "expand: wrote %s (%lld -> %lld layers, %.2fM -> %.2fM params)\n", o.out.c_str(),
               static_cast<long long>(m.cfg.layers), static_cast<long long>(e.cfg.layers),
               double(m.param_count()) / 1e6, double(e.param_count()) / 1e6);
  if (o.json) {
    print_json({{"out", o.out}, {"layers_before", m.cfg.layers}, {"layers", e.cfg.layers},
                {"params", e.param_count()}, {"dtype", o.dtype}});
  }
}

void setup(CLI::App& app) {
  auto o = std::make_shared<ExpandOptions>();
  app.add_option("-m,--model", o->dir, "checkpoint directory to grow")->required();
  app.add_option("--insert-after", o->insert_after, "0-based layers each followed by a new layer (repeat to insert several)")
      ->required()
      ->delimiter(',');
  app.add_option("--out", o->out, "output checkpoint directory")->required();
  app.add_option("--new-layers", o->new_layers,
                 "random: the new layers' queries, keys, values and MLP are drawn at random (--seed); copy: "
                 "copied from the layer each follows. Output projections start at zero either way");
  app.add_option("--seed", o->seed, "seed of the new layers' random weights");
  add_dtype_option(app, o->dtype);
  app.add_flag("--json", o->json, "print one JSON object");
  app.callback([o] { run(*o); });
}

MOA_COMMAND("expand", "insert identity-initialised layers into a checkpoint (grow it for further training)", setup);

}  // namespace
}  // namespace moa::cli
