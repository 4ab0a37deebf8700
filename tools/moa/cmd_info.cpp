// moa info -m DIR|FILE.gguf: architecture, sizes and dtypes, read from config.json and the
// safetensors headers, or from a GGUF file's metadata and tensor infos (no weights are converted).
#include <cstdio>
#include <map>

#include "command.h"
#include "common.h"
#include "moa/model/config.h"
#include "moa/gguf/gguf.h"
#include "moa/model/model.h"
#include "moa/model/safetensors.h"

namespace moa::cli {
namespace {

struct InfoOptions {
  std::string dir;
  bool json = false;
};

void run(const InfoOptions& o) {
  ModelConfig c;
  int64_t params = 0;
  std::map<std::string, int64_t> dtypes, bytes;  // values and stored bytes per type
  std::string format;
  if (is_gguf_path(o.dir)) {
    format = "gguf";
    GgufFile g(o.dir);
    c = config_from_gguf(g);
    for (const GgufTensor& t : g.tensors()) {
      params += t.numel();
      dtypes[t.type_name()] += t.numel();
      bytes[t.type_name()] += int64_t(t.nbytes);
    }
  } else {
    format = "safetensors";
    c = load_model_config(o.dir);
    TensorStore st(o.dir);
    for (auto& name : st.names()) {
      const TensorView& t = st.get(name);
      params += t.numel();
      dtypes[dtype_name(t.dtype)] += t.numel();
      bytes[dtype_name(t.dtype)] += int64_t(t.nbytes);
    }
  }
  nlohmann::json j = {{"architecture", c.architecture}, {"layers", c.layers},
                      {"heads", c.heads},               {"kv_heads", c.kv_heads},
                      {"head_dim", c.head_dim},         {"hidden", c.hidden},
                      {"intermediate", c.intermediate}, {"vocab", c.vocab},
                      {"params", params},               {"max_position", c.max_position},
                      {"rope_theta", c.rope_theta},     {"tied_embeddings", c.tie_embeddings},
                      {"qkv_bias", c.qkv_bias},         {"dtypes", dtypes},
                      {"tensor_bytes", bytes},          {"format", format}};
  if (o.json) {
    print_json(j);
    return;
  }
  std::printf("%s: %lld layers, %lld heads (%lld KV), head_dim %lld, hidden %lld, ffn %lld, "
              "vocab %lld, %.3fM params, context %lld\n",
              c.architecture.c_str(), (long long)c.layers, (long long)c.heads,
              (long long)c.kv_heads, (long long)c.head_dim, (long long)c.hidden,
              (long long)c.intermediate, (long long)c.vocab, double(params) / 1e6,
              (long long)c.max_position);
  for (auto& [k, v] : dtypes) {
    std::printf("  %s: %lld values, %lld bytes\n", k.c_str(), (long long)v, (long long)bytes[k]);
  }
}

void setup(CLI::App& app) {
  auto o = std::make_shared<InfoOptions>();
  app.add_option("-m,--model", o->dir, "checkpoint directory or .gguf file")->required();
  app.add_flag("--json", o->json, "print one JSON object");
  app.callback([o] { run(*o); });
}

MOA_COMMAND("info", "architecture, sizes and dtypes of a checkpoint", setup);

}  // namespace
}  // namespace moa::cli
