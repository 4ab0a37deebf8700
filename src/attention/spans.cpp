#include "moa/attention/spans.h"

namespace moa {

AttentionSpec spec_from_plan(const Plan& plan, const ModelConfig& c, int64_t n_ctx) {
  ModelShape shape{c.layers, c.heads, c.kv_heads};
  PlanCaches caches = plan.caches(shape, n_ctx);  // checks the shape
  AttentionSpec spec = AttentionSpec::dense(c.layers, c.heads, c.kv_heads, c.head_dim, n_ctx);
  for (int64_t l = 0; l < c.layers; ++l) {
    for (int64_t h = 0; h < c.heads; ++h) {
      const HeadCache& hc = caches(l, h);
      spec.spans[size_t(l * c.heads + h)] = {hc.sink, hc.window};
    }
  }
  return spec;
}

int64_t dense_kv_bytes(const ModelConfig& c, int64_t n_ctx) {
  return 2 * c.layers * c.kv_heads * c.head_dim * n_ctx * int64_t(sizeof(float));
}

}  // namespace moa
