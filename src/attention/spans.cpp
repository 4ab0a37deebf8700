#include "moa/attention/spans.h"

namespace moa {

AttentionSpec spec_from_plan(const Plan& plan, const AttentionShape& shape, int64_t n_ctx) {
  PlanCaches caches = plan.caches(shape, n_ctx);  // checks the shape
  AttentionSpec spec = AttentionSpec::dense(shape, n_ctx);
  for (size_t i = 0; i < caches.at.size(); ++i) spec.spans[i] = caches.at[i].span;
  return spec;
}

int64_t dense_kv_bytes(const AttentionShape& s, int64_t n_ctx, KvType type) {
  return 2 * s.layers * s.kv_heads * n_ctx * kv_row_bytes(type, s.head_dim);
}

}  // namespace moa
