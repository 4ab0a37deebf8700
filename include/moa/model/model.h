// A Llama-family model's weights: matrices in their checkpoint dtype, norms and biases in f32.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

#include <optional>

#include "moa/attention/plan.h"
#include "moa/model/config.h"
#include "moa/model/safetensors.h"
#include "moa/model/weight.h"

namespace moa {

class GgufFile;

struct LayerWeights {
  std::vector<float> attn_norm;       // (C)
  Weight wq, wk, wv, wo;              // (H*D, C) (G*D, C) (G*D, C) (C, H*D)
  std::vector<float> bq, bk, bv, bo;  // (H*D) (G*D) (G*D) (C), empty when absent
  std::vector<float> mlp_norm;        // (C)
  Weight w_gate, w_up;                // (F, C)
  Weight w_down;                      // (C, F)
  std::vector<float> b_gate, b_up, b_down;  // empty unless mlp_bias
};

struct Model {
  ModelConfig cfg;
  Weight embed;                   // (V, C)
  std::vector<LayerWeights> layers;
  std::vector<float> final_norm;  // (C)
  Weight lm_head;                 // (V, C); empty when tied to embed
  DType stored_dtype = DType::kF32;  // dtype of the checkpoint's weights (informational)
  // The plan a GGUF file carries in its moa.* keys (plan_gguf.h), checked against the file's own
  // shape; commands run with it unless given another attention choice or --dense.
  std::optional<Plan> embedded_plan;

  const Weight& head_weights() const { return lm_head.empty() ? embed : lm_head; }
  int64_t param_count() const;

  // Loads config.json + safetensors from a checkpoint directory, or a .gguf file (load_gguf).
  // Every missing tensor or wrong shape is an InputError naming the file and tensor.
  static Model load(const std::filesystem::path& dir);
  // A llama / qwen2 GGUF file (src/model/model_gguf.cpp): block-quantised matrices stay in the
  // file's mapping (zero-copy, except attn_q/attn_k of llama, whose rows are re-permuted into
  // Hugging Face's RoPE order); tensors of a type moa cannot compute with are an InputError.
  static Model load_gguf(const std::filesystem::path& file);
  // Random f32 weights ~ N(0, std) (norms = 1, biases = 0), deterministic in seed.
  static Model random(const ModelConfig& cfg, uint64_t seed, float std = 0.02f);
  // Writes config.json and model.safetensors (atomically) in the given dtype.
  void save(const std::filesystem::path& dir, DType dtype) const;
};

// ModelConfig from a GGUF file's llama.* / qwen2.* metadata (and which optional tensors exist).
ModelConfig config_from_gguf(const GgufFile& g);
// The config of a checkpoint directory (its config.json) or of a .gguf file (its metadata).
ModelConfig load_model_config(const std::filesystem::path& dir_or_gguf);

// How a new layer's non-zero weights start: kRandom draws them as Model::random does for the new
// shape and seed; kCopy takes them from the layer it follows (the depth up-scaling of SOLAR), so
// its heads start with that layer's attention patterns instead of near-uniform ones.
enum class ExpandInit { kRandom, kCopy };

// A deeper copy of m: one new layer after each listed layer index (a repeated index inserts
// several). New layers have zero attention-output and MLP-down projections (and their biases), so
// the result computes exactly m's logits.
Model expand_depth(const Model& m, const std::vector<int64_t>& insert_after, uint64_t seed,
                   ExpandInit init = ExpandInit::kRandom);

}  // namespace moa
