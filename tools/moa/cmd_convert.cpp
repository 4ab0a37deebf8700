// moa convert -m DIR --out F.gguf --type T [--plan P.json]: a Hugging Face checkpoint directory to
// a GGUF file llama.cpp loads (moa/convert/convert.h), the plan as moa.* keys. Progress goes to
// stderr, one JSON object to stdout with --json.
#include <cstdio>
#include <memory>
#include <string>

#include "command.h"
#include "common.h"
#include "moa/convert/convert.h"

namespace moa::cli {
namespace {

struct ConvertCli {
  std::string model, out, type = "f16", plan;
  bool json = false;
};

void setup(CLI::App& app) {
  auto o = std::make_shared<ConvertCli>();
  app.add_option("-m,--model", o->model, "checkpoint directory (config.json + safetensors)")
      ->required();
  app.add_option("--out", o->out, "output .gguf file")->required();
  app.add_option("--type", o->type, "output type: " + output_type_names())->capture_default_str();
  app.add_option("--plan", o->plan, "plan JSON to embed as moa.* keys (checked against the model)");
  app.add_flag("--json", o->json, "print one JSON object");
  app.callback([o] {
    ConvertOptions c;
    c.model_dir = o->model;
    c.out = o->out;
    c.type = o->type;
    if (!o->plan.empty()) c.plan = o->plan;
    c.progress = print_convert_progress;
    c.warn = [](const std::string& w) { std::fprintf(stderr, "warning: %s\n", w.c_str()); };
    print_convert_result(convert_checkpoint(c), o->json);
  });
}

MOA_COMMAND("convert", "Hugging Face checkpoint -> GGUF for llama.cpp (with an optional plan)",
            setup);

}  // namespace
}  // namespace moa::cli
