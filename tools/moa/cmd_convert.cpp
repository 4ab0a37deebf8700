// moa convert -m DIR --out F.gguf --type T [--plan P.json]: a Hugging Face checkpoint directory to
// a GGUF file llama.cpp loads (moa/convert/convert.h), the plan as moa.* keys.
// moa quantize IN.gguf OUT.gguf TYPE: requantises a GGUF file (metadata and plan keys copied).
// Progress goes to stderr, one JSON object to stdout with --json.
#include <cstdio>
#include <memory>
#include <string>

#include "command.h"
#include "common.h"
#include "moa/convert/convert.h"

namespace moa::cli {
namespace {

void progress(int64_t done, int64_t total, const std::string& name, const std::string& type) {
  std::fprintf(stderr, "\r[%lld/%lld] %-40s %-5s", (long long)done, (long long)total, name.c_str(),
               type.c_str());
  if (done == total) std::fprintf(stderr, "\n");
  std::fflush(stderr);
}

void report(const ConvertResult& r, bool json) {
  if (json) {
    print_json({{"out", r.out.string()},
                {"type", r.type},
                {"tensors", r.tensors},
                {"bytes", r.bytes},
                {"tensor_types", r.tensor_types},
                {"plan", r.plan},
                {"tokenizer", r.tokenizer}});
    return;
  }
  std::printf("%s: %s, %lld tensors, %llu bytes%s\n", r.out.string().c_str(), r.type.c_str(),
              (long long)r.tensors, (unsigned long long)r.bytes, r.plan ? ", with plan" : "");
}

struct ConvertCli {
  std::string model, out, type = "f16", plan;
  bool json = false;
};

void setup_convert(CLI::App& app) {
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
    c.progress = progress;
    c.warn = [](const std::string& w) { std::fprintf(stderr, "warning: %s\n", w.c_str()); };
    report(convert_checkpoint(c), o->json);
  });
}

struct QuantizeCli {
  std::string in, out, type;
  bool json = false;
};

void setup_quantize(CLI::App& app) {
  auto o = std::make_shared<QuantizeCli>();
  app.add_option("IN", o->in, "input .gguf file")->required();
  app.add_option("OUT", o->out, "output .gguf file")->required();
  app.add_option("TYPE", o->type, "output type: " + output_type_names())->required();
  app.add_flag("--json", o->json, "print one JSON object");
  app.callback([o] { report(quantize_gguf(o->in, o->out, o->type, progress), o->json); });
}

MOA_COMMAND("convert", "Hugging Face checkpoint -> GGUF for llama.cpp (with an optional plan)",
            setup_convert);
MOA_COMMAND("quantize", "requantise a GGUF file", setup_quantize);

}  // namespace
}  // namespace moa::cli
