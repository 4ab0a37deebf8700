// From an attention choice to per-head spans: dense, a MoA plan, or StreamingLLM (a uniform plan,
// run through exactly the same code).
#pragma once

#include <cstdint>

#include "moa/model/config.h"
#include "moa/attention/kv_cache.h"
#include "moa/attention/plan.h"

namespace moa {

// Spans of every (layer, query head) at n_ctx positions (prompt + generation budget): the plan's
// cache(N) rule evaluated once, at N = n_ctx, as the reference runtime sizes its caches.
AttentionSpec spec_from_plan(const Plan& plan, const ModelConfig& cfg, int64_t n_ctx);

// KV bytes a dense cache would take for this model at n_ctx (f32 keys and values).
int64_t dense_kv_bytes(const ModelConfig& cfg, int64_t n_ctx);

}  // namespace moa
