// moa info -m DIR: architecture, sizes and dtypes, read from config.json and the safetensors
// headers (no weights are converted).
#include <cstdio>
#include <map>

#include "command.h"
#include "common.h"
#include "moa/model/config.h"
#include "moa/model/safetensors.h"

namespace moa::cli {
namespace {

struct InfoOptions {
  std::string dir;
  bool json = false;
};

void run(const InfoOptions& o) {
  ModelConfig c = ModelConfig::load(std::filesystem::path(o.dir) / "config.json");
  TensorStore st(o.dir);
  int64_t params = 0;
  std::map<std::string, int64_t> dtypes;
  for (auto& name : st.names()) {
    const TensorView& t = st.get(name);
    params += t.numel();
    dtypes[dtype_name(t.dtype)] += t.numel();
  }
  nlohmann::json j = {{"architecture", c.architecture}, {"layers", c.layers},
                      {"heads", c.heads},               {"kv_heads", c.kv_heads},
                      {"head_dim", c.head_dim},         {"hidden", c.hidden},
                      {"intermediate", c.intermediate}, {"vocab", c.vocab},
                      {"params", params},               {"max_position", c.max_position},
                      {"rope_theta", c.rope_theta},     {"tied_embeddings", c.tie_embeddings},
                      {"qkv_bias", c.qkv_bias},         {"dtypes", dtypes}};
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
  for (auto& [k, v] : dtypes) std::printf("  %s: %lld values\n", k.c_str(), (long long)v);
}

void setup(CLI::App& app) {
  auto o = std::make_shared<InfoOptions>();
  app.add_option("-m,--model", o->dir, "checkpoint directory")->required();
  app.add_flag("--json", o->json, "print one JSON object");
  app.callback([o] { run(*o); });
}

MOA_COMMAND("info", "architecture, sizes and dtypes of a checkpoint", setup);

}  // namespace
}  // namespace moa::cli
