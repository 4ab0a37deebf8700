// moa quantize IN.gguf OUT.gguf TYPE: requantises a GGUF file with the mix of `moa convert`
// (moa/convert/convert.h); metadata, tokenizer and moa.* plan keys are copied. Progress goes to
// stderr, one JSON object to stdout with --json.
#include <memory>
#include <string>

#include "command.h"
#include "common.h"
#include "moa/convert/convert.h"

namespace moa::cli {
namespace {

struct QuantizeCli {
  std::string in, out, type;
  bool json = false;
};

void setup(CLI::App& app) {
  auto o = std::make_shared<QuantizeCli>();
  app.add_option("IN", o->in, "input .gguf file")->required();
  app.add_option("OUT", o->out, "output .gguf file")->required();
  app.add_option("TYPE", o->type, "output type: " + output_type_names())->required();
  app.add_flag("--json", o->json, "print one JSON object");
  app.callback([o] {
    print_convert_result(quantize_gguf(o->in, o->out, o->type, print_convert_progress), o->json);
  });
}

MOA_COMMAND("quantize", "requantise a GGUF file", setup);

}  // namespace
}  // namespace moa::cli
