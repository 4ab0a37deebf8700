// The Llama-family forward pass: prefill (batched GEMMs) and decode over KV caches built from a
// CacheSpec (dense, MoA plan, StreamingLLM: the window policy; H2O: its own policy).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "moa/attention/kv_cache.h"
#include "moa/model/model.h"

namespace moa {

// RoPE angles for positions [0, n): cos/sin tables (n, D/2), HF rotate-half layout, with the
// config's scaling (linear, llama3). Angles are computed in double.
struct RopeTable {
  int64_t half = 0;
  std::vector<float> cos, sin;
  RopeTable(const ModelConfig& cfg, int64_t n);
  // x: (rows, heads, D) at positions pos0 + row
  void apply(float* x, int64_t rows, int64_t heads, int64_t pos0) const;
};

// Inverse frequencies (D/2) with the config's scaling applied, as transformers computes them.
std::vector<double> rope_inv_freq(const ModelConfig& cfg);

// One or more sequences (a batch of B) decoding together: each has its own KV cache built from
// the same spec; decode steps run the weights once for all of them.
class Session {
 public:
  Session(const Model& model, const CacheSpec& spec, int64_t batch = 1);

  // Runs positions [0, T) of sequence `seq` from an empty cache. hidden_out (optional): (T, C)
  // final-normed hidden states, for logits of every position. Returns the last position's logits (V).
  std::vector<float> prefill(const std::vector<int32_t>& ids, std::vector<float>* hidden_out = nullptr,
                             int64_t seq = 0);
  // Fills positions [0, T) of every sequence's cache with random keys and values (and, for H2O,
  // random attention sums) instead of running the model: a benchmark's way to decode at a long
  // context without paying its prefill. The cache holds exactly what a prefill would leave, in
  // bytes and positions; only the values are meaningless.
  void fill_synthetic(int64_t T, uint32_t seed);
  // One token for sequence 0 at position pos(); returns its logits (V).
  std::vector<float> decode(int32_t id) { return decode_batch({id}); }
  // One token per sequence (ids: (B)), each at its own position; returns logits (B, V).
  std::vector<float> decode_batch(const std::vector<int32_t>& ids);
  // One token for each of the sequences `seqs` (distinct), the others untouched: a server's
  // decode step over its busy slots. Returns logits (seqs.size(), V).
  std::vector<float> decode_seqs(const std::vector<int64_t>& seqs, const std::vector<int32_t>& ids);
  // Appends ids at positions [pos(seq), pos(seq) + T) of a sequence's cache, which may hold
  // earlier positions (a prompt chunk, or a follow-up turn after reused history). The projections
  // and MLP run batched over the T rows as in prefill; attention runs position by position as in
  // decode, so the result is that of decoding the tokens one at a time, for any cache policy.
  // Returns the last position's logits (V).
  std::vector<float> extend(const std::vector<int32_t>& ids, int64_t seq = 0);
  // Empties a sequence's cache (same spec, same size).
  void reset(int64_t seq);
  // A copy of a sequence's cache, and putting one back (a checkpoint taken from this session).
  std::unique_ptr<KvCache> checkpoint(int64_t seq) const { return caches_[size_t(seq)]->clone(); }
  void restore(int64_t seq, const KvCache& checkpoint);

  int64_t batch() const { return int64_t(caches_.size()); }
  int64_t pos(int64_t seq = 0) const { return caches_[size_t(seq)]->length(); }
  const KvCache& cache(int64_t seq = 0) const { return *caches_[size_t(seq)]; }
  int64_t kv_bytes() const;  // all sequences
  const Model& model() const { return model_; }

 private:
  const Model& model_;
  std::vector<std::unique_ptr<KvCache>> caches_;
  RopeTable rope_;
};

// x (T, C) -> y (T, C), RMSNorm with weight w; rstd (optional, T): 1 / rms per row, for backward
void rms_norm(const float* x, const float* w, int64_t T, int64_t C, double eps, float* y,
              float* rstd = nullptr);
// logits (T, V) of final-normed hidden rows (T, C)
void compute_logits(const Model& m, const float* hidden, int64_t T, float* logits);
// Mean NLL helpers: log-softmax of one row at `target`
double token_nll(const float* logits, int64_t V, int32_t target);

void set_threads(int n);  // OpenMP and BLAS threads (0 = all cores)

}  // namespace moa
