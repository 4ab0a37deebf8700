// AdamW (Loshchilov & Hutter, decoupled weight decay) over a Model's f32 master weights, computed
// as torch.optim.AdamW does (checked against it in test_backward):
//   p -= lr * wd * p                       (decay first, only on 2-D tensors unless decay_vectors)
//   m  = b1 m + (1 - b1) g
//   v  = b2 v + (1 - b2) g^2
//   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "moa/model/backward.h"
#include "moa/model/model.h"

namespace moa {

struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double weight_decay = 0.0;
  bool decay_vectors = false;  // also decay 1-D tensors (norms, biases); off as in llm.c / GPT-2
};

// One trainable tensor of a Model, by its Hugging Face name. `matrix` marks the 2-D tensors
// (weight decay applies to them).
struct TrainParam {
  std::string name;
  float* data;
  int64_t n;
  bool matrix;
};

// Every parameter of the model, named and ordered as Grads::for_each names its gradients. The
// model must hold f32 weights. Used by the optimiser and by the trainer's self-contained
// checkpoint.
std::vector<TrainParam> model_params(Model& m);

// Converts every matrix of the model to f32 in place (training keeps f32 master weights).
void convert_to_f32(Model& m);

class AdamW {
 public:
  // Moments start at zero. The model must hold f32 weights (see convert_to_f32).
  AdamW(const Model& m, const AdamWOptions& opt);

  // One update of every parameter of `m` from `g` (as filled by forward_backward). lr < 0 uses
  // options().lr (pass a scheduled value otherwise). `g` is left as it is.
  void step(Model& m, Grads& g, double lr = -1);

  const AdamWOptions& options() const { return opt_; }
  int64_t step_count() const { return t_; }
  // The moment buffers, shaped and named like the gradients (for checkpoint and resume).
  Grads& first_moment() { return m_; }
  Grads& second_moment() { return v_; }
  void set_step_count(int64_t t) { t_ = t; }

 private:
  AdamWOptions opt_;
  Grads m_, v_;
  int64_t t_ = 0;
};

}  // namespace moa
