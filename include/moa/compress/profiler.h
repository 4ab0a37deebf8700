// The attention-influence profiler (DESIGN.md, "Influence"): for each calibration sample, one
// forward + backward of the dense model; in the backward, per (layer, query head),
//   A = softmax(q k^T / sqrt(D) + causal),  G = dL/dA = dO V^T,
//   E[i,j] = -A[i,j] (G[i,j] - sum_k A[i,k] G[i,k]) / (1 - A[i,j] + eps)   for i > 0
//   E[0,j] = -A[0,j] G[0,j]
// is the first-order change of the loss (mean answer-token cross-entropy) when entry (i, j) is
// removed and row i renormalised (E < 0: removing it would lower the loss). E is summed into
// block x block tiles, added to a running sum and averaged over the samples: Profile
// (moa/compress/profile.h) holds the signed average; the optimiser takes |P| per tile.
//
// Memory: A and G are recomputed one (head, ~64 query rows) at a time from the hook's Q, K, V,
// dO: two (rows, T) f32 buffers per thread, one layer's (H, nb, nb) tile sums in double, and the
// running sum (two f32 copies of the profile). Nothing T x T is ever held, for any head.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "moa/model/backward.h"
#include "moa/data/calib.h"
#include "moa/attention/kv_cache.h"
#include "moa/model/model.h"
#include "moa/compress/profile.h"

namespace moa {

// eps of E's denominator. E is computed in double from the f32 scores and G (GEMM outputs), so
// that 1 - A keeps its precision when one entry holds almost all of a row (attention sinks).
inline constexpr double kInfluenceEps = 1e-10;


// ---------------------------------------------------------------------------------------------
// Kernel and one sample (src/compress/profiler.cpp)
// ---------------------------------------------------------------------------------------------

// One layer, one sample: tiles (H, nb, nb) += sum of E over query block qb and key block kb.
// q: (T, H, D) post-RoPE  k, v: (T, G, D)  d_out: (T, H, D) = dL/d(attention output)
// GQA: query head h reads KV head h / (H / G). T <= nb * block. OpenMP over (head, query rows);
// each unit owns its tile rows, so the result does not depend on the thread count.
void influence_tiles(const float* q, const float* k, const float* v, const float* d_out, int64_t T,
                     int64_t H, int64_t G, int64_t D, int64_t block, int64_t nb, double* tiles,
                     InfluenceKind kind = InfluenceKind::kEntry);

// One sample through forward_backward (dense attention, n_ctx = the sample's length) with the
// hook: sink(layer, tiles) receives that layer's (H, nb, nb) tile sums, layers in descending
// order, nb = ceil(length / block). Returns the sample's loss. Needs size() <= length and at
// least one scored answer token.
using InfluenceSink = std::function<void(int64_t layer, const double* tiles)>;
double sample_influence(const Model& m, const TokenizedSample& s, int64_t length, int64_t block,
                        const InfluenceSink& sink, bool recompute_layers = false,
                        InfluenceKind kind = InfluenceKind::kEntry);

// ---------------------------------------------------------------------------------------------
// A resumable profiling run (src/compress/profiler_run.cpp)
// ---------------------------------------------------------------------------------------------

struct ProfileProgress {
  int64_t done = 0, total = 0;  // samples, resumed ones included
  int64_t resumed = 0;          // done by earlier runs
  double seconds = 0;           // this run
  double samples_per_s = 0;     // this run
  double eta_s = 0;
  double mean_loss = 0;  // mean answer loss of the samples done
};

struct ProfileOptions {
  int64_t length = 0;             // L: samples longer than this are skipped
  int64_t block = 64;             // tile edge
  int64_t max_samples = 0;        // 0: every sample that fits; else the first K that fit
  int64_t checkpoint_every = 4;   // samples between checkpoints
  int64_t stop_after = -1;        // stop (checkpointed) after this many samples of this run
  bool fresh = false;             // ignore (overwrite) an existing partial checkpoint
  bool recompute_layers = false;  // forward_backward's activation recompute (less memory)
  InfluenceKind kind = InfluenceKind::kEntry;  // what a tile holds (stored in the profile)
  std::string model_name;         // stored in the profile
  std::function<void(const ProfileProgress&)> progress;  // after every sample
};

struct ProfileRunResult {
  bool complete = false;  // the profile was written (else only the partial checkpoint)
  int64_t samples = 0;    // done, resumed ones included
  int64_t resumed = 0;
  int64_t total = 0;      // samples this profile averages when complete
  int64_t too_long = 0;   // skipped: more than length tokens
  int64_t no_answer = 0;  // skipped: no scored answer token
  double mean_loss = 0;
  double seconds = 0;
};

// The checkpoint beside `out`: P.safetensors -> P.partial.safetensors.
std::filesystem::path partial_profile_path(const std::filesystem::path& out);

// Profiles the samples that fit (in order) and writes `out` (moa-profile/1). Every
// checkpoint_every samples the running sum and the count are written atomically to
// partial_profile_path(out) with the data file's path and size; a later run with the same data,
// length, block and model resumes from it and gives a bitwise identical profile (the sum is kept
// in f32 with a compensation term, both checkpointed). The partial is removed once `out` is
// written. InputError when no sample fits or the partial belongs to another run.
ProfileRunResult run_profile(const Model& m, const std::vector<TokenizedSample>& samples,
                             const std::filesystem::path& data_file,
                             const std::filesystem::path& out, const ProfileOptions& o);

// ---------------------------------------------------------------------------------------------
// Checks of the meaning of E (src/compress/profiler_check.cpp)
// ---------------------------------------------------------------------------------------------

// Multiplies the probabilities of head `head` of `layer` at rows [i0, i1) x keys [j0, j1) by
// `weight` and renormalises each row (weight 0 drops the entries; a row left with nothing
// outputs zeros, which is what E[0, 0] assumes).
struct AttentionEdit {
  int64_t layer = 0, head = 0;
  int64_t i0 = 0, i1 = 0, j0 = 0, j1 = 0;
  double weight = 0;
};

// forward_backward's attention_override for `spec` with the edit: the standard kernel, then the
// edited head's rows [i0, i1) recomputed in double.
AttentionForwardFn edited_attention(const AttentionSpec& spec, const AttentionEdit& e);

// Forward-only loss of a sample (dense attention) under the edit. Compare edits with each other
// (weight 1 is the unedited loss through the same arithmetic), not with forward_backward's loss.
double edited_loss(const Model& m, const TokenizedSample& s, const AttentionEdit& e);

// Spearman rank correlation (ties get their average rank); 0 when either side is constant.
double spearman(const std::vector<double>& a, const std::vector<double>& b);

struct TileAblation {
  int64_t layer = 0, head = 0, qb = 0, kb = 0;
  double predicted = 0;  // sum of E over the tile, averaged over the samples
  double predicted_joint = 0;  // the InfluenceKind::kTile value of the same tile
  double measured = 0;   // loss(tile dropped) - loss(unedited), averaged over the samples
};

struct AblationReport {
  std::vector<TileAblation> ablations;
  double spearman = 0;        // of predicted (the tiles are drawn by it) and measured
  double spearman_joint = 0;  // of predicted_joint and measured, same tiles
  int64_t samples = 0;
};

// Drops `count` whole (layer, head, tile) blocks one at a time and compares the measured loss
// change with the profile's prediction. The tiles are drawn (deterministically from seed) one
// from each of `count` equal strata of the predicted values, so that the check covers the whole
// range of influence rather than mostly the many near-zero tiles; tiles whose E is exactly zero
// (rows that cannot reach the loss) are not drawn. Every sample must fit in
// `length` and have a scored answer token. progress(i, count) after each ablation (optional).
// droppable_only: draw only off-diagonal tiles. A head's window is its cache minus the sink, at
// least min_cache - sink = 64 keys with the plan defaults (sink 64, min cache 128, block 64), so
// no plan drops a query's own block: the diagonal tiles never enter the optimiser's choice. They
// are also where a saturated softmax row (a previous-token head) makes removal far from first
// order.
AblationReport check_ablations(const Model& m, const std::vector<TokenizedSample>& samples,
                               int64_t length, int64_t block, int64_t count, uint64_t seed,
                               const std::function<void(int64_t, int64_t)>& progress = {},
                               bool droppable_only = false);

}  // namespace moa
