// The server's engine: `slots` sequences sharing one Session, driven by one scheduler thread.
// Requests join and leave between steps. A step reads about one chunk of prompt tokens, the
// newcomers' in the order they were admitted (so running streams keep flowing while long prompts
// are read, and the first newcomer's first token does not wait for every other prompt), then runs
// one batched decode step for every slot that is generating. Prompts are cut at multiples of the
// chunk whatever else runs, so an answer does not depend on the load.
//
// Prefix reuse: a slot keeps the tokens its cache holds (its history) and one checkpoint, a copy
// of its cache taken at the end of its last prompt (the turn boundary). A request goes to the idle
// slot that lets it skip the most tokens: its history, when the new prompt extends all of it (a
// follow-up that repeats the conversation so far, generated tokens included), else the
// checkpoint, when the prompt extends that (the assistant's reply came back re-tokenised, or a
// different continuation of the same prompt, or the same prompt again: the checkpoint keeps its
// logits). Only the tokens after the reused prefix are run.
// H2O caches are never reused: their eviction depends on the whole prompt being read at once.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "moa/attention/attention_spec.h"
#include "moa/model/model.h"
#include "moa/tokenizer/tokenizer.h"

namespace moa {
class Session;
}

namespace moa::serve {

struct GenParams {
  int64_t max_tokens = 16;
  float temperature = 1.0f;  // 0: greedy
  float top_p = 1.0f;
  uint64_t seed = 0;
  std::vector<std::string> stop;
  bool ignore_eos = false;  // EOS is generated as text (benchmarks that need a fixed length)
};

// What a job reports; a streaming client reads text pieces as they come.
struct JobResult {
  std::string text;
  std::string finish_reason;  // "stop" (EOS or a stop string), "length", or "error"
  std::string error;          // what went wrong, with finish_reason "error"
  int64_t prompt_tokens = 0, completion_tokens = 0, cached_tokens = 0;
};

// One request's life. The scheduler pushes pieces; the HTTP side waits for them. cancel() (a
// client that went away) frees the slot at the next step.
class Job {
 public:
  // Blocks until new text or the end; returns false once everything was taken and the job ended.
  // `piece` gets the new text (maybe empty at the end).
  bool next(std::string* piece);
  // Blocks until the job ends; the whole result.
  JobResult wait();
  void cancel() { cancelled_ = true; }
  bool cancelled() const { return cancelled_; }
  // The result so far (complete once next() returned false or wait() returned).
  JobResult result() const;

 private:
  friend class Engine;
  void emit(const std::string& piece);
  void finish(const std::string& reason);

  std::vector<int32_t> prompt_;
  GenParams params_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::string unread_;
  JobResult result_;
  bool done_ = false;
  std::atomic<bool> cancelled_{false};
};

struct EngineOptions {
  int64_t slots = 1;
  int64_t chunk = 512;        // prompt tokens read per step (and the size prompts are cut to)
  int64_t queue_limit = 64;   // requests waiting for a slot before submit() refuses
  // A slot's checkpoint copies its whole cache: skipped when that is larger than this (a dense
  // cache at a long context), which leaves reuse of the full history only.
  int64_t checkpoint_max_bytes = int64_t(256) << 20;
};

struct EngineMetrics {
  int64_t requests = 0, prompt_tokens = 0, generated_tokens = 0, reused_tokens = 0;
  // Requests whose prompt shared a longer prefix with some idle slot's tokens than could be
  // reused (the prompt diverged inside that slot's history, past its checkpoint), and those tokens.
  // BOS alone counts: a prompt that shares only BOS with a slot re-runs it.
  int64_t reprefills = 0, recomputed_tokens = 0;
  int64_t slots_busy = 0, queued = 0, kv_bytes = 0, slots = 0;
};

class Engine {
 public:
  // spec: every slot's cache (its n_ctx is the context size).
  Engine(const Model& model, const Tokenizer& tok, const CacheSpec& spec, EngineOptions opt);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  int64_t context_size() const { return n_ctx_; }
  // Queues a request; nullptr when the queue is full (the caller answers 503). The prompt must be
  // non-empty and prompt + max_tokens must fit the context (the caller checks, and answers 400).
  std::shared_ptr<Job> submit(std::vector<int32_t> prompt, GenParams params);
  EngineMetrics metrics() const;
  // Refuses new requests, lets the running and queued ones finish, then returns.
  void drain();

 private:
  struct Slot;
  void loop();
  void admit();
  void prefill_step(Slot& s);
  void start_generation(Slot& s, const float* logits);
  void sample_and_emit(Slot& s, const float* logits);
  void release(Slot& s);
  void end_job(Slot& s, const std::string& reason);
  void fail_all(const std::string& what);
  void publish_metrics();

  const Model& model_;
  const Tokenizer& tok_;
  CacheSpec spec_;
  EngineOptions opt_;
  int64_t n_ctx_ = 0, tok_vocab_ = 0;
  std::vector<int32_t> eos_;
  std::unique_ptr<moa::Session> session_;
  std::vector<std::unique_ptr<Slot>> slots_;

  mutable std::mutex mu_;
  std::condition_variable cv_, idle_;
  std::deque<std::shared_ptr<Job>> queue_;
  EngineMetrics m_;
  bool stopping_ = false, draining_ = false;
  uint64_t clock_ = 0;  // for least-recently-used slot choice
  std::thread thread_;
};

}  // namespace moa::serve
