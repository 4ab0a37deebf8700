// Validation (DESIGN.md, "Validation"): each candidate plan's answer-token NLL at a length not
// used in profiling; the lowest wins. The model runs each sample in one prefill with the plan's
// spans at N = that sample's length (as `moa score` does), dense for reference.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "moa/data/calib.h"
#include "moa/attention/kv_cache.h"
#include "moa/model/model.h"
#include "moa/attention/plan.h"

namespace moa {

// The plan files of a `moa optimize` output directory: every *.json but summary.json, sorted by
// name. InputError when the directory is missing or holds none.
std::vector<std::filesystem::path> list_plan_files(const std::filesystem::path& dir);

// Mean over the samples of each sample's mean answer-token NLL (every sample weighs the same,
// as in the profiler's loss), with spec_for(n) the attention at n = the sample's length. Every
// sample must have a scored answer token.
// on_sample (optional) runs after each sample.
double answer_nll(const Model& m, const std::vector<TokenizedSample>& samples,
                  const std::function<AttentionSpec(int64_t n)>& spec_for,
                  const std::function<void()>& on_sample = {});

struct NamedPlan {
  std::string name;  // file name, the key of the result
  Plan plan;
};

struct ValidationResult {
  std::string best;                   // the plan with the lowest NLL (the first one on ties)
  std::map<std::string, double> nll;  // per plan
  double dense_nll = 0;
  int64_t samples = 0;   // used: at most `length` tokens with an answer to score
  int64_t too_long = 0;  // skipped
};

// progress(done, total) after each sample under each attention (dense first, then the plans).
// InputError when no sample fits or a plan does not match the model.
ValidationResult validate_plans(const Model& m, const std::vector<NamedPlan>& plans,
                                const std::vector<TokenizedSample>& samples, int64_t length,
                                const std::function<void(int64_t, int64_t)>& progress = {});

}  // namespace moa
