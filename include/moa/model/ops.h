// The model's ops as forward/backward pairs (llm.c style), f32 compute. Every `*_backward` ADDS
// into its gradient outputs (dx += ...), so residual branches and tied weights accumulate
// naturally; zero the buffers before the first use. The exception is RoPE, whose forward and
// backward act in place. Shapes: T tokens, C hidden, F MLP, V vocab.
#pragma once

#include <cstdint>

#include "moa/model/forward.h"
#include "moa/model/weight.h"

namespace moa {

// out (T, C) = table[ids[t]]           table: (V, C) any dtype
void embedding_forward(const Weight& table, const int32_t* ids, int64_t T, float* out);
// dtable (V, C) += scatter of dout (T, C) at ids
void embedding_backward(const float* dout, const int32_t* ids, int64_t T, int64_t C, float* dtable);

// y (T, C) = x * rstd * w,  rstd (T) = 1 / sqrt(mean(x^2) + eps)   (same arithmetic as rms_norm)
void rmsnorm_forward(const float* x, const float* w, int64_t T, int64_t C, double eps, float* y,
                     float* rstd);
// dx (T, C) += ..., dw (C) += ... (dw may be null)
void rmsnorm_backward(const float* dy, const float* x, const float* w, const float* rstd, int64_t T,
                      int64_t C, float* dx, float* dw);

// y (T, out) = x (T, in) W^T + b            W: (out, in) any dtype, b: (out) or null
void linear_forward(const float* x, const Weight& W, const float* b, int64_t T, float* y);
// dx (T, in) += dy W;  dW (out, in) += dy^T x;  db (out) += sum_t dy.  Each output may be null.
void linear_backward(const float* dy, const float* x, const Weight& W, int64_t T, float* dx,
                     float* dW, float* db);

// RoPE, HF rotate-half, angles from rope_inv_freq(cfg) via RopeTable; positions 0..T-1.
// x: (T, heads, D), in place. The backward rotates the gradient back (in place).
void rope_forward(const RopeTable& rope, float* x, int64_t T, int64_t heads);
void rope_backward(const RopeTable& rope, float* dx, int64_t T, int64_t heads);

// h (n) = silu(gate) * up  (the MLP's elementwise part; down(h) is a linear)
void swiglu_forward(const float* gate, const float* up, int64_t n, float* h);
// dgate (n) += ..., dup (n) += ...
void swiglu_backward(const float* dh, const float* gate, const float* up, int64_t n, float* dgate,
                     float* dup);

// y (n) += x (n)   (residual add; its backward is dx += dy, the same call)
void residual_add(const float* x, int64_t n, float* y);

// nll (T) = -log softmax(logits (T, V))[targets[t]]
void cross_entropy_forward(const float* logits, const int32_t* targets, int64_t T, int64_t V,
                           float* nll);
// dlogits (T, V) += dnll[t] * (softmax(logits[t]) - onehot(targets[t]))
void cross_entropy_backward(const float* logits, const int32_t* targets, const float* dnll,
                            int64_t T, int64_t V, float* dlogits);

}  // namespace moa
