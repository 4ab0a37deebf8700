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
// /2 holds the weights beside the moments, so the state file alone is the checkpoint's commit
// point; /1 (moments only, weights in model.safetensors) is still read.
constexpr const char* kStateFormat = "moa-train-state/2";
constexpr const char* kStateFormatV1 = "moa-train-state/1";

nlohmann::json options_json(const TrainOptions& o) {
  return {{"steps", o.steps}, {"batch", o.batch}, {"seq", o.seq}, {"lr", o.lr},
          {"min_lr_ratio", o.min_lr_ratio}, {"warmup", o.warmup}, {"weight_decay", o.weight_decay},
          {"beta1", o.beta1}, {"beta2", o.beta2}, {"clip", o.clip}, {"seed", o.seed},
          {"data", o.data}};
}

// One checkpoint. The state file (weights, moments, step) is renamed into place before the
// user-facing copy of the weights, so a kill at any point leaves either the previous state or the
// new one, and --resume continues from whichever it finds. tokenizer.json does not change
// between steps and goes first, so a state file never lacks it.
void save_checkpoint(Model& model, AdamW& adam, const TrainOptions& o, int64_t step,
                     const std::filesystem::path& out, const std::string& tokenizer_json) {
  std::filesystem::create_directories(out);
  write_text_atomic(out / "tokenizer.json", tokenizer_json);
  std::vector<TensorToWrite> ts;
  for (const TrainParam& p : model_params(model)) {
    ts.push_back({"w." + p.name, DType::kF32, {p.n}, p.data});
  }
  std::vector<std::pair<std::string, std::vector<float>*>> ms, vs;
  adam.first_moment().for_each([&](const std::string& n, std::vector<float>& g) { ms.push_back({n, &g}); });
  adam.second_moment().for_each([&](const std::string& n, std::vector<float>& g) { vs.push_back({n, &g}); });
  for (auto& [n, g] : ms) ts.push_back({"m." + n, DType::kF32, {int64_t(g->size())}, g->data()});
  for (auto& [n, g] : vs) ts.push_back({"v." + n, DType::kF32, {int64_t(g->size())}, g->data()});
  write_safetensors(out / kStateFile, ts,
                    {{"format", kStateFormat},
                     {"step", std::to_string(step)},
                     {"adam_t", std::to_string(adam.step_count())},
                     {"options", options_json(o).dump()},
                     {"config", model.cfg.to_json().dump()}});
  model.save(out, DType::kF32);
  // The model's safetensors metadata is the standard {"format": "pt"}; its step goes in a small
  // sidecar written last (scripts read it to see how far a run got).
  write_text_atomic(out / "train_step.txt", std::to_string(step) + "\n");
}

std::string state_format(const SafetensorsFile& st, const std::filesystem::path& path) {
  auto meta = st.metadata();
  const std::string f = meta["format"];
  if (f != kStateFormat && f != kStateFormatV1) {
    input_error("{}: metadata format is '{}', expected '{}' (or the older '{}')", path.string(), f,
                kStateFormat, kStateFormatV1);
  }
  return f;
}

// Copies the tensors named prefix + name into `dst` (name -> buffer), checking each size.
void restore_tensors(const SafetensorsFile& st, const std::filesystem::path& path, const char* prefix,
                     const std::vector<std::pair<std::string, std::pair<float*, int64_t>>>& dst) {
  for (const auto& [n, buf] : dst) {
    auto it = st.tensors().find(prefix + n);
    if (it == st.tensors().end()) input_error("{}: missing tensor '{}{}'", path.string(), prefix, n);
    if (it->second.numel() != buf.second) {
      input_error("{}: tensor '{}{}' has {} values, model needs {}", path.string(), prefix, n,
                  it->second.numel(), buf.second);
    }
    it->second.to_f32(buf.first);
  }
}

nlohmann::json saved_config(const SafetensorsFile& st, const std::filesystem::path& path) {
  auto it = st.metadata().find("config");
  if (it == st.metadata().end()) input_error("{}: metadata has no 'config' field", path.string());
  try {
    return nlohmann::json::parse(it->second);
  } catch (const std::exception& e) {
    input_error("{}: metadata field 'config' is not JSON ({})", path.string(), e.what());
  }
}

void restore_weights(Model& model, const SafetensorsFile& st, const std::filesystem::path& path) {
  std::vector<std::pair<std::string, std::pair<float*, int64_t>>> dst;
  for (const TrainParam& p : model_params(model)) dst.push_back({p.name, {p.data, p.n}});
  restore_tensors(st, path, "w.", dst);
}

int64_t load_checkpoint(Model& model, AdamW& adam, const TrainOptions& o, const std::filesystem::path& out) {
  const auto state_path = out / kStateFile;
  SafetensorsFile st(state_path);
  const std::string format = state_format(st, state_path);
  auto meta = st.metadata();
  const int64_t step = std::stoll(meta["step"]);
  if (format == kStateFormatV1) {
    // Weights come from model.safetensors, written after this file: they must be of its step.
    const std::string side = read_text(out / "train_step.txt");
    if (std::stoll(side) != step) {
      input_error("{}: optimiser state is at step {} but the model at step {} (interrupted while "
                  "saving?); restore a consistent pair or start again",
                  out.string(), step, std::stoll(side));
    }
  }
  auto saved = nlohmann::json::parse(meta["options"]);
  for (const char* k : {"batch", "seq", "seed", "data", "lr", "warmup", "weight_decay", "clip", "beta1", "beta2", "min_lr_ratio"}) {
    if (saved[k] != options_json(o)[k]) {
      input_error("{}: option {} was {} when this run started, now {} (an exact resume needs the "
                  "same data and optimiser options)",
                  state_path.string(), k, saved[k].dump(), options_json(o)[k].dump());
    }
  }
  if (format == kStateFormat) {
    if (saved_config(st, state_path) != model.cfg.to_json()) {
      input_error("{}: saved for a model config other than the one being trained", state_path.string());
    }
    restore_weights(model, st, state_path);
  }
  auto moments = [&](Grads& g) {
    std::vector<std::pair<std::string, std::pair<float*, int64_t>>> dst;
    g.for_each([&](const std::string& n, std::vector<float>& v) { dst.push_back({n, {v.data(), int64_t(v.size())}}); });
    return dst;
  };
  restore_tensors(st, state_path, "m.", moments(adam.first_moment()));
  restore_tensors(st, state_path, "v.", moments(adam.second_moment()));
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
  if (resume) start = load_checkpoint(model, adam, o, out);
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

Model model_from_train_state(const std::filesystem::path& out) {
  const auto state_path = out / kStateFile;
  SafetensorsFile st(state_path);
  if (state_format(st, state_path) == kStateFormatV1) return Model::load(out);
  const nlohmann::json cj = saved_config(st, state_path);
  // Shapes from the config, then every value from the state (the random init is overwritten).
  Model model = Model::random(ModelConfig::from_json(cj, state_path.string() + " (metadata 'config')"), 0);
  convert_to_f32(model);
  restore_weights(model, st, state_path);
  return model;
}

}  // namespace moa
