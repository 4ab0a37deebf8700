// The hand-written backward pass of the Llama-family model, llm.c style: the model-level forward
// with saved activations and its backward, built from the op pairs of moa/model/ops.h and the attention
// backward beside its forward (moa/attention/attention.h). f32 compute, OpenBLAS GEMMs, OpenMP threads.
// Its users (trainer, profiler, inspector) are peers above the model module.
//
// Shapes use the project's letters: T tokens, H query heads, G KV heads, D head dim, C hidden,
// F MLP, V vocab. Every `*_backward` ADDS into its gradient outputs (dx += ...), as llm.c does, so
// residual branches and tied weights accumulate naturally; zero the buffers before the first use.
// The exception is RoPE, whose forward and backward act in place.
//
// Attention is flash-attention style: the forward saves one log-sum-exp per (head, query row); the
// backward recomputes the probabilities tile by tile (kAttnTile x kAttnTile per thread) from Q, K,
// V. Nothing N x N is ever stored, for any head.
//
// Peak memory of forward_backward (see forward_backward_bytes(), checked in test_backward_memory):
//   bytes per token = 4 (L * S + R) + 8, plus a constant (per-thread attention tiles, an LM-head
//   chunk of at most 256 rows x V logits and their gradient), where
//     S = 2C + 2HD + 2GD + H + 2F + 2   (saved per layer: layer input, post-RoPE q/k/v, attention
//                                         output, lse, mid residual, MLP gate/up, two rstd)
//     R = 4C + 4F + 2HD + 2GD + H + D + 1   (shared by all layers: residual stream after the last
//                                         layer, transients, attention's row dots, RoPE table)
//   With `recompute_layers` each layer keeps only its input (S = C) and one layer's S is added to
//   R: the layer's forward is rerun during the backward (about +1/3 compute).
//   Example: Llama-3-8B shapes (C 4096, F 14336, HD 4096, GD 1024, H 32, D 128, L 32): S is
//   188.5 KB, 6.37 MB per token in all; with recompute_layers 1.03 MB per token (test_backward
//   prints both). The constant is 34 MB at 2 threads (mostly the 32-row x 128k-vocab LM-head
//   chunk).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "moa/attention/attention.h"
#include "moa/attention/attention_spec.h"
#include "moa/model/model.h"
#include "moa/model/ops.h"

namespace moa {

// ---------------------------------------------------------------------------------------------
// Model level (src/model/backward.cpp)
// ---------------------------------------------------------------------------------------------

// Gradients of every parameter of a Model, in f32, same shapes as the weights (empty where the
// model has no such tensor: absent biases, lm_head when tied; with tied embeddings `embed` holds
// both the embedding and the LM-head contributions).
struct LayerGrads {
  std::vector<float> attn_norm;             // (C)
  std::vector<float> wq, wk, wv, wo;        // (H*D, C) (G*D, C) (G*D, C) (C, H*D)
  std::vector<float> bq, bk, bv, bo;        // (H*D) (G*D) (G*D) (C) or empty
  std::vector<float> mlp_norm;              // (C)
  std::vector<float> w_gate, w_up, w_down;  // (F, C) (F, C) (C, F)
  std::vector<float> b_gate, b_up, b_down;  // (F) (F) (C) or empty
};

struct Grads {
  std::vector<float> embed;  // (V, C)
  std::vector<LayerGrads> layers;
  std::vector<float> final_norm;  // (C)
  std::vector<float> lm_head;     // (V, C); empty when tied

  static Grads zeros_like(const Model& m);
  void zero();
  // Every non-empty tensor with its Hugging Face name (model.layers.3.mlp.up_proj.weight, ...),
  // in a fixed order.
  void for_each(const std::function<void(const std::string& name, std::vector<float>& g)>& fn);
};

// Called once per layer during the backward, layers in descending order, with
//   q: (T, H, D) post-RoPE queries   k, v: (T, G, D) post-RoPE keys and values
//   d_out: (T, H, D) gradient of the loss at the attention output (the input of o_proj)
// The pointers are valid only during the call.
using AttentionHook = std::function<void(int64_t layer, const float* q, const float* k,
                                         const float* v, const float* d_out)>;

// Replaces attention_forward(spec, layer, q, k, v, T, out, lse) in the forward pass, same
// arguments and outputs. For forward-only losses under an edited attention (the profiler's
// ablation and finite-difference checks): the backward differentiates the spec's attention, so
// forward_backward refuses it together with grads or a hook.
using AttentionForwardFn = std::function<void(int64_t layer, const float* q, const float* k,
                                              const float* v, int64_t T, float* out, float* lse)>;

struct BackwardOptions {
  AttentionHook hook;                        // optional
  bool recompute_layers = false;             // activation checkpointing (see the memory note above)
  std::vector<float>* logits_out = nullptr;  // optional: (T, V) logits of every position
  AttentionForwardFn attention_override;     // optional, forward-only (see above)
};

// Forward pass with saved activations, masked mean cross-entropy, backward.
//   ids: (T) tokens, T <= spec.n_ctx
//   loss_mask: (T) weight of predicting ids[t+1] from position t (the last entry is ignored)
//   loss = sum_t mask[t] * nll_t / sum_t mask[t]   (0 when no weight: then no backward at all)
// Adds the gradients into *grads (may be null: only the hook runs); returns the loss. With grads
// null and no hook, it is a forward-only loss. Weights may be any dtype (training keeps f32
// master weights; AdamW requires them).
double forward_backward(const Model& m, const AttentionSpec& spec, const std::vector<int32_t>& ids,
                        const std::vector<float>& loss_mask, Grads* grads,
                        const BackwardOptions& opt = {});

// Bytes forward_backward allocates for T tokens (its arena plus op scratch at `threads` threads).
int64_t forward_backward_bytes(const ModelConfig& cfg, int64_t T, bool recompute_layers,
                               int threads);

}  // namespace moa
