// `moa compress`: the whole MoA search on one model, as resumable stages in a work directory
//   calib_<L>.jsonl          prompts at each length, answered by the dense model (moa data calib)
//   profile_<L>.safetensors  influence at each profile length (moa profile; resumes mid-stage)
//   plans-d<D>/plan_*.json   Pareto plans at density D (moa optimize)
//   validate-d<D>.json       answer NLL of each plan at the validation lengths (moa validate)
// A stage whose output exists is reused, so a second density costs only its optimise and
// validate stages. Defaults follow the reference's proportions scaled to the trained context C
// (max_position_embeddings): profile lengths C/4, C/2, C (at least 256 each); extend length 2C (density bound only,
// as the reference bounds 16k beyond its 8k profile); validation at 3C/4, a length not profiled,
// and at C/8 (at least 256), also not profiled: the plans are bounded and profiled only from C/4
// up, and a plan can score the best NLL at 3C/4 yet lose retrieval on short prompts (moa-tiny
// b1 at 0.5: the winner at 1536 alone answered 7 of 10 at 189 tokens, four other Pareto plans
// 10 of 10). The plan with the lowest mean of NLL / dense NLL over the validation lengths wins.
// At a density where the 128-token minimum cache takes more than half of a profile length's
// budget, that length is left out of the optimisation (it would force every head to the minimum);
// plans record the lengths they were made under and are remade when those change.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "moa/model/model.h"
#include "moa/compress/optimizer.h"
#include "moa/attention/plan.h"
#include "moa/compress/profile.h"
#include "moa/tokenizer/tokenizer.h"

namespace moa {

struct CompressOptions {
  double density = 0.5;
  std::filesystem::path out;   // the chosen plan
  std::filesystem::path work;  // stage outputs (default: next to out, "moa-work-<model dir name>")
  std::vector<int64_t> profile_lengths;  // default C/4, C/2, C
  std::vector<int64_t> extend_lengths;   // default 2C
  int64_t validation_length = 0;         // default 3C/4 (the reported validation NLL is at this one)
  int64_t short_validation_length = 0;   // default max(256, C/8); -1: validate at validation_length only
  int64_t samples = 64;                  // calibration prompts per length (16 missed early keys at 0.25)
  int64_t max_rules_per_layer = 0;
  int32_t grid = 5;
  ChoiceSolver solver = ChoiceSolver::kMckp;
  int64_t node_limit = OptimizeOptions{}.node_limit;
  double cbc_seconds = OptimizeOptions{}.cbc_seconds;
  InfluenceKind influence = InfluenceKind::kEntry;  // what the profiles' tiles hold
  uint64_t seed = 0;
  std::filesystem::path words;           // word lists (default data/words)
  // Identity of the checkpoint (model_fingerprint); stamped in the work directory so that stages
  // computed for another model are never reused. Empty: no check.
  std::string model_id;
  std::function<void(const std::string&)> log;  // stage lines (progress of long stages included)
};

// A cheap identity of a checkpoint directory: FNV-1a over config.json and, per *.safetensors file,
// its size, header and the first and last MiB of its data (whole-file hashing of a 14 GB
// checkpoint would take longer than the stages it protects).
std::string model_fingerprint(const std::filesystem::path& dir);

struct CompressResult {
  std::filesystem::path plan;
  double density = 0;            // bound asked
  std::map<int64_t, double> kv_density;  // of the chosen plan, per constrained length
  double validation_nll = 0, dense_validation_nll = 0;
  int64_t pareto_plans = 0;
  std::string best;  // file name of the chosen Pareto plan
  double seconds = 0;
  std::vector<std::string> reused;  // stages taken from the work directory
};

CompressResult run_compress(const Model& m, const Tokenizer& tok, const std::string& model_name,
                            const CompressOptions& o);

}  // namespace moa
