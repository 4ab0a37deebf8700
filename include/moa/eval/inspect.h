// Where each attention head looks: per (layer, query head) statistics of the dense attention
// probabilities A = softmax(q k^T / sqrt(D)) (causal; GQA: query head h reads KV head h / (H/G))
// on long prompts.
//
// For query row i of a head (distances d = i - j over keys j <= i):
//   mean_distance = sum_j A[i,j] * (i - j)
//   sink_mass     = sum_{j < 64} A[i,j]            (the sink of every MoA head)
//   local_mass    = sum_{i - j < 64} A[i,j]         (the query's own neighbourhood)
//   far_mass      = sum_{i - j >= 512} A[i,j]
// Each statistic is averaged over the rows of a sample, then over samples (every sample weighs
// the same). The `tail` statistics average only the last 32 rows of each sample, where a
// retrieval prompt's question sits.
//
// A is recomputed head by head from the post-RoPE q and k of the training forward (an attention
// override that also runs the ordinary kernel): memory stays O(T) per thread beyond the forward's
// own activations, never T x T.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "moa/model/model.h"

namespace moa {

inline constexpr int64_t kInspectSink = 64;   // keys j < 64
inline constexpr int64_t kInspectLocal = 64;  // i - j < 64
inline constexpr int64_t kInspectFar = 512;   // i - j >= 512
inline constexpr int64_t kInspectTail = 32;   // last query rows

struct HeadStats {
  double mean_distance = 0, sink_mass = 0, local_mass = 0, far_mass = 0;
};

// The names used in JSON and by --stat: mean_distance, sink_mass, local_mass, far_mass.
const std::vector<std::string>& head_stat_names();
// InputError naming the stat and the valid names when unknown.
double head_stat(const HeadStats& s, const std::string& name);

// One layer: per query head, the row means of the statistics over all T rows (all) and over the
// last min(T, kInspectTail) rows (tail). Computed in double.
// q: (T, H, D)  k: (T, G, D)  all, tail: (H)
void layer_attention_stats(const float* q, const float* k, int64_t T, int64_t H, int64_t G,
                           int64_t D, std::vector<HeadStats>& all, std::vector<HeadStats>& tail);

struct HeadStatsTable {
  int64_t layers = 0, heads = 0, samples = 0;
  double mean_tokens = 0;            // mean sample length (tokens, BOS included)
  std::vector<HeadStats> all, tail;  // (layers * heads), means over samples
  const HeadStats& at(int64_t layer, int64_t head) const {
    return all[size_t(layer * heads + head)];
  }
  const HeadStats& tail_at(int64_t layer, int64_t head) const {
    return tail[size_t(layer * heads + head)];
  }
  // {"layers", "heads", "samples", "mean_tokens", "stats": [{"layer", "head", "mean_distance",
  //  "sink_mass", "local_mass", "far_mass", "last32": {...}}], "summary": {"far_heads",
  //  "local_heads", "sink_heads", "last32": {...}}}: heads counted with that mass > 0.5.
  nlohmann::json to_json() const;
  std::string to_text() const;  // a small table, one line per head
};

// Runs each sample (token ids, BOS included) through the dense training forward and accumulates
// the statistics. progress(done, total) after each sample. InputError when a sample is longer than
// the model's context.
HeadStatsTable inspect_heads(const Model& m, const std::vector<std::vector<int32_t>>& samples,
                             const std::function<void(int64_t, int64_t)>& progress = {});

// A layers x heads grid coloured by one statistic (all rows, or the last rows when `tail`), as a
// standalone SVG document.
std::string head_stats_svg(const HeadStatsTable& t, const std::string& stat, bool tail);

}  // namespace moa
