#include <algorithm>
#include "moa/train/trainer.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <numbers>

#include "moa/train/adamw.h"
#include "moa/model/backward.h"
#include "moa/core/error.h"
#include "moa/core/file_io.h"
#include "moa/attention/kv_cache.h"
#include "moa/model/safetensors.h"

namespace moa {

namespace {

constexpr const char* kStateFile = "train_state.safetensors";
constexpr const char* kStateFormat = "moa-train-state/1";

nlohmann::json options_json(const TrainOptions& o) {
  return {{"steps", o.steps}, {"batch", o.batch}, {"seq", o.seq}, {"lr", o.lr},
          {"min_lr_ratio", o.min_lr_ratio}, {"warmup", o.warmup}, {"weight_decay", o.weight_decay},
          {"beta1", o.beta1}, {"beta2", o.beta2}, {"clip", o.clip}, {"seed", o.seed},
          {"data", o.data}};
}

void save_checkpoint(const Model& model, AdamW& adam, const TrainOptions& o, int64_t step,
                     const std::filesystem::path& out, const std::string& tokenizer_json) {
  std::filesystem::create_directories(out);
  // The optimiser state is written first; both files carry the step, and resume refuses a pair
  // whose steps differ (an interruption between the two renames).
  std::vector<TensorToWrite> ts;
  std::vector<std::pair<std::string, std::vector<float>*>> ms, vs;
  adam.first_moment().for_each([&](const std::string& n, std::vector<float>& g) { ms.push_back({n, &g}); });
  adam.second_moment().for_each([&](const std::string& n, std::vector<float>& g) { vs.push_back({n, &g}); });
  for (auto& [n, g] : ms) ts.push_back({"m." + n, DType::kF32, {int64_t(g->size())}, g->data()});
  for (auto& [n, g] : vs) ts.push_back({"v." + n, DType::kF32, {int64_t(g->size())}, g->data()});
  write_safetensors(out / kStateFile, ts,
                    {{"format", kStateFormat},
                     {"step", std::to_string(step)},
                     {"adam_t", std::to_string(adam.step_count())},
                     {"options", options_json(o).dump()}});
  model.save(out, DType::kF32);
  // The model's safetensors metadata is the standard {"format": "pt"}; its step goes in a small
  // sidecar written last.
  write_text_atomic(out / "tokenizer.json", tokenizer_json);
  write_text_atomic(out / "train_step.txt", std::to_string(step) + "\n");
}

int64_t load_checkpoint(AdamW& adam, const TrainOptions& o, const std::filesystem::path& out) {
  const auto state_path = out / kStateFile;
  SafetensorsFile st(state_path);
  auto meta = st.metadata();
  if (meta["format"] != kStateFormat) {
    input_error("{}: metadata format is '{}', expected '{}'", state_path.string(), meta["format"], kStateFormat);
  }
  const int64_t step = std::stoll(meta["step"]);
  const std::string side = read_text(out / "train_step.txt");
  if (std::stoll(side) != step) {
    input_error("{}: optimiser state is at step {} but the model at step {} (interrupted while "
                "saving?); restore a consistent pair or start again",
                out.string(), step, std::stoll(side));
  }
  auto saved = nlohmann::json::parse(meta["options"]);
  for (const char* k : {"batch", "seq", "seed", "data", "lr", "warmup", "weight_decay", "clip", "beta1", "beta2", "min_lr_ratio"}) {
    if (saved[k] != options_json(o)[k]) {
      input_error("{}: option {} was {} when this run started, now {} (an exact resume needs the "
                  "same data and optimiser options)",
                  state_path.string(), k, saved[k].dump(), options_json(o)[k].dump());
    }
  }
  auto restore = [&](const char* prefix, Grads& g) {
    g.for_each([&](const std::string& n, std::vector<float>& v) {
      auto it = st.tensors().find(prefix + n);
      if (it == st.tensors().end()) input_error("{}: missing tensor '{}{}'", state_path.string(), prefix, n);
      if (it->second.numel() != int64_t(v.size())) {
        input_error("{}: tensor '{}{}' has {} values, model needs {}", state_path.string(), prefix, n,
                    it->second.numel(), v.size());
      }
      it->second.to_f32(v.data());
    });
  };
  restore("m.", adam.first_moment());
  restore("v.", adam.second_moment());
  adam.set_step_count(std::stoll(meta["adam_t"]));
  return step;
}

double grad_norm(Grads& g) {
  double s = 0;
  g.for_each([&](const std::string&, std::vector<float>& v) {
    for (float x : v) s += double(x) * x;
  });
  return std::sqrt(s);
}

std::string fmt_duration(double s) {
  if (!(s >= 0) || s > 1e7) return "?";
  const int64_t t = int64_t(s);
  if (t >= 3600) return std::to_string(t / 3600) + "h" + std::to_string(t % 3600 / 60) + "m";
  if (t >= 60) return std::to_string(t / 60) + "m" + std::to_string(t % 60) + "s";
  return std::to_string(t) + "s";
}

struct EvalResult {
  double loss = 0;
  double token_accuracy = 0;  // greedy argmax == target over the fully weighted positions
};

EvalResult evaluate(const Model& m, const TrainData& data, const TrainOptions& o,
                    const AttentionSpec& spec) {
  EvalResult r;
  int64_t right = 0, counted = 0;
  std::vector<float> logits;
  BackwardOptions bo;
  bo.logits_out = &logits;
  const int64_t V = m.cfg.vocab;
  for (int64_t i = 0; i < o.eval_samples; ++i) {
    // A fixed held-out stream: step -1 is never a training step.
    TrainSample s = data.sample(o.seed ^ 0x5eed, -1, i, o.seq);
    r.loss += forward_backward(m, spec, s.ids, s.mask, nullptr, bo);
    // Weight-1 positions are the supervised answers (retrieval data gives filler less weight).
    for (size_t t = 0; t + 1 < s.ids.size(); ++t) {
      if (s.mask[t] < 1.0f) continue;
      const float* row = logits.data() + int64_t(t) * V;
      right += (std::max_element(row, row + V) - row) == s.ids[t + 1];
      ++counted;
    }
  }
  r.loss /= double(o.eval_samples);
  r.token_accuracy = counted > 0 ? double(right) / double(counted) : 0.0;
  return r;
}

}  // namespace

double scheduled_lr(const TrainOptions& o, int64_t step) {
  const int64_t warmup = o.warmup >= 0 ? o.warmup : o.steps / 20;
  if (step < warmup) return o.lr * double(step + 1) / double(warmup);
  const double min_lr = o.lr * o.min_lr_ratio;
  const double span = double(std::max<int64_t>(1, o.steps - warmup));
  const double p = std::min(1.0, double(step - warmup) / span);
  return min_lr + 0.5 * (o.lr - min_lr) * (1 + std::cos(std::numbers::pi * p));
}

TrainResult train(Model& model, const TrainData& data, const TrainOptions& o,
                  const std::filesystem::path& out, const std::string& tokenizer_json, bool resume) {
  convert_to_f32(model);
  const ModelConfig& c = model.cfg;
  if (o.seq > c.max_position) {
    input_error("--seq {} exceeds the model's max_position_embeddings {}", o.seq, c.max_position);
  }
  AdamWOptions ao;
  ao.lr = o.lr;
  ao.beta1 = o.beta1;
  ao.beta2 = o.beta2;
  ao.weight_decay = o.weight_decay;
  AdamW adam(model, ao);
  int64_t start = 0;
  if (resume) start = load_checkpoint(adam, o, out);
  const AttentionSpec spec = AttentionSpec::dense(c.layers, c.heads, c.kv_heads, c.head_dim, o.seq);
  Grads grads = Grads::zeros_like(model);
  TrainResult r;
  r.steps = start;
  const bool tty = isatty(fileno(stderr));
  auto t0 = std::chrono::steady_clock::now();
  std::fprintf(stderr, "train: %s, steps %lld..%lld, batch %lld x %lld tokens\n",
               data.describe().c_str(), (long long)start, (long long)o.steps, (long long)o.batch,
               (long long)o.seq);
  const int64_t end = o.stop_at >= 0 ? std::min(o.stop_at, o.steps) : o.steps;
  for (int64_t step = start; step < end; ++step) {
    grads.zero();
    double loss = 0;
    for (int64_t b = 0; b < o.batch; ++b) {
      TrainSample s = data.sample(o.seed, step, b, o.seq);
      loss += forward_backward(model, spec, s.ids, s.mask, &grads);
    }
    loss /= double(o.batch);
    const float inv = 1.0f / float(o.batch);
    grads.for_each([&](const std::string&, std::vector<float>& v) {
      for (auto& x : v) x *= inv;
    });
    const double norm = grad_norm(grads);
    if (o.clip > 0 && norm > o.clip) {
      const float sc = float(o.clip / norm);
      grads.for_each([&](const std::string&, std::vector<float>& v) {
        for (auto& x : v) x *= sc;
      });
    }
    const double lr = scheduled_lr(o, step);
    adam.step(model, grads, lr);
    r.loss = loss;
    r.steps = step + 1;
    const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double done = double(step + 1 - start);
    r.tokens_per_s = done * double(o.batch * o.seq) / el;
    const double eta = el / done * double(end - step - 1);
    std::fprintf(stderr, "%sstep %lld/%lld  loss %.4f  |g| %.3f  lr %.2e  %.0f tok/s  ETA %s%s",
                 tty ? "\r" : "", (long long)step + 1, (long long)o.steps, loss, norm, lr,
                 r.tokens_per_s, fmt_duration(eta).c_str(), tty ? "   " : "\n");
    if (o.eval_every > 0 && (step + 1) % o.eval_every == 0) {
      EvalResult e = evaluate(model, data, o, spec);
      r.eval_loss = e.loss;
      r.eval_token_accuracy = e.token_accuracy;
      std::fprintf(stderr, "%seval at step %lld: loss %.4f  token accuracy %.4f\n", tty ? "\n" : "",
                   (long long)step + 1, e.loss, e.token_accuracy);
    }
    if ((o.save_every > 0 && (step + 1) % o.save_every == 0) || step + 1 == end) {
      save_checkpoint(model, adam, o, step + 1, out, tokenizer_json);
    }
  }
  if (tty) std::fprintf(stderr, "\n");
  if (start >= end) save_checkpoint(model, adam, o, start, out, tokenizer_json);
  return r;
}

}  // namespace moa
