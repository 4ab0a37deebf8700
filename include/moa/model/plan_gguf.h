// A MoA plan inside a GGUF file, as namespaced metadata keys (llama.cpp ignores keys it does not
// know, so the file still loads there):
//   moa.format                          STRING  "moa-plan/1"
//   moa.sink, moa.block, moa.min_cache  UINT32
//   moa.rule_count                      UINT32  (>= 1)
//   moa.rules.<i>.max_length            UINT64  (omitted for an unbounded rule set: max_length
//   null) moa.rules.<i>.alphas, .betas        ARRAY of FLOAT32, layers x rows values, layer-major
//                                       (value l * rows + h); rows = the model's query heads, or
//                                       its KV heads for a per-KV-head plan
//   moa.model                           STRING  (optional: the plan's model field)
// Alphas and betas are stored as FLOAT32 (the plans' values are far inside float's precision
// needs; a value that is not a float comes back rounded to the nearest one). The plan's density
// map, lengths and unknown fields are not stored.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "moa/attention/plan.h"
#include "moa/gguf/gguf.h"
#include "moa/gguf/gguf_writer.h"

namespace moa {

// The moa.* entries for a plan (already checked against the model it goes with).
std::vector<std::pair<std::string, GgufOwnedValue>> plan_gguf_metadata(const Plan& plan);

// True for the keys plan_gguf_metadata writes (those `moa quantize` copies along).
bool is_plan_gguf_key(const std::string& key);

// The plan stored in the file's moa.* keys, checked against the file's own layers x heads;
// nullopt when the file has no moa.format key. Malformed keys are one InputError naming the file,
// the key and what was expected.
std::optional<Plan> embedded_plan(const GgufFile& g);

}  // namespace moa
