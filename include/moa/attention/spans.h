// From a plan to the spans attention runs with: dense, a MoA plan, or StreamingLLM (a uniform
// plan, run through exactly the same code).
#pragma once

#include <cstdint>

#include "moa/attention/attention_spec.h"
#include "moa/attention/plan.h"

namespace moa {

// Spans of every (layer, query head) at n_ctx positions (prompt + generation budget): the plan's
// cache(N) rule evaluated once, at N = n_ctx, as the reference runtime sizes its caches.
AttentionSpec spec_from_plan(const Plan& plan, const AttentionShape& shape, int64_t n_ctx);

// KV bytes a dense cache would take for this shape at n_ctx (keys and values stored as `type`).
int64_t dense_kv_bytes(const AttentionShape& shape, int64_t n_ctx, KvType type = KvType::kF32);

}  // namespace moa
