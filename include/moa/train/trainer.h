// The training loop: AdamW with warm-up + cosine schedule, global-norm gradient clipping, a batch
// accumulated one sequence at a time, periodic evaluation, and checkpoints (model + optimiser
// state + step) written atomically every K steps. Resuming from a checkpoint continues bit for bit
// as if the run had never stopped: data is a pure function of (seed, step, index) and every
// reduction has a fixed order.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include "moa/model/model.h"
#include "moa/train/train_data.h"

namespace moa {

struct TrainOptions {
  int64_t steps = 100;
  int64_t batch = 8;   // sequences per step (gradients accumulated one sequence at a time)
  int64_t seq = 256;   // tokens per sequence
  double lr = 1e-3, min_lr_ratio = 0.1;
  int64_t warmup = -1;  // steps of linear warm-up; -1 = steps / 20
  double weight_decay = 0.1, beta1 = 0.9, beta2 = 0.95, clip = 1.0;
  uint64_t seed = 0;
  int64_t save_every = 0;  // 0 = only at the end
  int64_t stop_at = -1;    // stop (with a checkpoint) after this step; the schedule still spans `steps`
  int64_t eval_every = 0;  // 0 = never
  int64_t eval_samples = 8;
  std::string data;        // the data spec, recorded in the checkpoint
};

struct TrainResult {
  int64_t steps = 0;
  double loss = 0;          // mean loss of the last step
  double eval_loss = -1;    // last evaluation, -1 if none
  double eval_token_accuracy = -1;  // greedy accuracy on its weight-1 (answer) tokens
  double tokens_per_s = 0;  // over this run's steps
};

double scheduled_lr(const TrainOptions& o, int64_t step);

// Trains `model` (converted to f32) from `start_step`, writing checkpoints into `out`.
// `tokenizer_json` is copied into every checkpoint so it loads anywhere.
TrainResult train(Model& model, const TrainData& data, const TrainOptions& o,
                  const std::filesystem::path& out, const std::string& tokenizer_json,
                  bool resume);

// The model a checkpoint directory's train_state.safetensors holds, for `moa train --resume`: its
// weights are those of the state's step even if a kill left model.safetensors older.
Model model_from_train_state(const std::filesystem::path& out);

}  // namespace moa
