// The Llama-family forward pass: prefill (batched GEMMs) and decode over a KV cache whose
// attention spans come from an AttentionSpec (dense, MoA plan, StreamingLLM).
#pragma once

#include <cstdint>
#include <vector>

#include "moa/kv_cache.h"
#include "moa/model.h"

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

class Session {
 public:
  Session(const Model& model, const AttentionSpec& spec);

  // Runs positions [0, T) from an empty cache. hidden_out (optional): (T, C) final-normed hidden
  // states, for logits of every position. Returns the logits (V) of the last position.
  std::vector<float> prefill(const std::vector<int32_t>& ids, std::vector<float>* hidden_out = nullptr);
  // Runs one token at position pos() and returns its logits (V).
  std::vector<float> decode(int32_t id);

  int64_t pos() const { return cache_.length(); }
  const KvCache& cache() const { return cache_; }
  const Model& model() const { return model_; }

 private:
  const Model& model_;
  KvCache cache_;
  RopeTable rope_;
};

// x (T, C) -> y (T, C), RMSNorm with weight w
void rms_norm(const float* x, const float* w, int64_t T, int64_t C, double eps, float* y);
// logits (T, V) of final-normed hidden rows (T, C)
void compute_logits(const Model& m, const float* hidden, int64_t T, float* logits);
// Mean NLL helpers: log-softmax of one row at `target`
double token_nll(const float* logits, int64_t V, int32_t target);

void set_threads(int n);  // OpenMP and BLAS threads (0 = all cores)

}  // namespace moa
