#include "moa/serve/engine.h"

#include <omp.h>

#include <algorithm>

#include "moa/attention/kv_cache.h"
#include "moa/core/error.h"
#include "moa/model/forward.h"
#include "moa/model/sampler.h"
#include "moa/serve/text_stream.h"

namespace moa::serve {

// ---- Job ----

void Job::emit(const std::string& piece) {
  if (piece.empty()) return;
  {
    std::lock_guard<std::mutex> lk(mu_);
    unread_ += piece;
    result_.text += piece;
  }
  cv_.notify_all();
}

void Job::finish(const std::string& reason) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    result_.finish_reason = reason;
    done_ = true;
  }
  cv_.notify_all();
}

bool Job::next(std::string* piece) {
  std::unique_lock<std::mutex> lk(mu_);
  cv_.wait(lk, [&] { return done_ || !unread_.empty(); });
  piece->swap(unread_);
  unread_.clear();
  return !(done_ && piece->empty());
}

JobResult Job::wait() {
  std::unique_lock<std::mutex> lk(mu_);
  cv_.wait(lk, [&] { return done_; });
  unread_.clear();
  return result_;
}

JobResult Job::result() const {
  std::lock_guard<std::mutex> lk(mu_);
  return result_;
}

// ---- Engine ----

struct Engine::Slot {
  int64_t index = 0;
  std::shared_ptr<Job> job;
  std::vector<int32_t> history;  // the tokens the cache holds, in order
  std::vector<int32_t> pending;  // prompt tokens not run yet
  std::vector<int32_t> cp_tokens;
  std::unique_ptr<KvCache> cp;   // the cache after cp_tokens (the last prompt's end)
  std::vector<float> cp_logits;  // the logits there: the same prompt again needs no run at all
  std::optional<Sampler> sampler;
  std::optional<TextStream> text;
  int32_t next = -1;  // sampled, to be run at the next decode step
  int32_t prev = -1;  // the token before the next one to detokenise
  bool resume_from_cp = false;  // admitted with nothing to run: start from cp_logits
  uint64_t last_used = 0;
  uint64_t admitted = 0;  // admission order, for the prefill queue
};

namespace {

bool extends(const std::vector<int32_t>& prefix, const std::vector<int32_t>& p) {
  return prefix.size() < p.size() && std::equal(prefix.begin(), prefix.end(), p.begin());
}

size_t common_prefix(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  return size_t(std::mismatch(a.begin(), a.begin() + std::min(a.size(), b.size()), b.begin()).first -
                a.begin());
}

}  // namespace

Engine::Engine(const Model& model, const Tokenizer& tok, const CacheSpec& spec, EngineOptions opt)
    : model_(model), tok_(tok), spec_(spec), opt_(opt) {
  MOA_CHECK(opt_.slots >= 1 && opt_.chunk >= 1);
  n_ctx_ = spec.n_ctx();
  tok_vocab_ = std::min<int64_t>(tok.vocab_size(), model.cfg.vocab);
  eos_ = tok.eos_ids();
  session_ = std::make_unique<Session>(model, spec, opt_.slots);
  for (int64_t i = 0; i < opt_.slots; ++i) {
    slots_.push_back(std::make_unique<Slot>());
    slots_.back()->index = i;
  }
  m_.slots = opt_.slots;
  m_.kv_bytes = session_->kv_bytes();
  // OpenMP's thread count is per thread: the scheduler thread takes the creator's (--threads).
  const int threads = omp_get_max_threads();
  thread_ = std::thread([this, threads] {
    set_threads(threads);
    loop();
  });
}

Engine::~Engine() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
  // Whatever had not finished (a shutdown without drain) ends now, so no client waits forever.
  for (auto& s : slots_) {
    if (s->job) s->job->finish("error");
  }
  for (auto& j : queue_) j->finish("error");
}

std::shared_ptr<Job> Engine::submit(std::vector<int32_t> prompt, GenParams params) {
  MOA_CHECK(!prompt.empty() && int64_t(prompt.size()) + params.max_tokens <= n_ctx_);
  auto job = std::make_shared<Job>();
  job->prompt_ = std::move(prompt);
  job->params_ = std::move(params);
  job->result_.prompt_tokens = int64_t(job->prompt_.size());
  {
    std::lock_guard<std::mutex> lk(mu_);
    // queue_limit counts requests that must wait: those an idle slot takes at once do not.
    const int64_t idle = opt_.slots - m_.slots_busy;
    if (draining_ || stopping_ || int64_t(queue_.size()) >= opt_.queue_limit + idle) return nullptr;
    queue_.push_back(job);
    ++m_.requests;
    m_.prompt_tokens += int64_t(job->prompt_.size());
    m_.queued = int64_t(queue_.size());
  }
  cv_.notify_all();
  return job;
}

EngineMetrics Engine::metrics() const {
  std::lock_guard<std::mutex> lk(mu_);
  return m_;
}

void Engine::drain() {
  std::unique_lock<std::mutex> lk(mu_);
  draining_ = true;
  idle_.wait(lk, [&] { return queue_.empty() && m_.slots_busy == 0; });
}

// Under mu_: hands queued requests to idle slots, FIFO, each to the slot that reuses most.
void Engine::admit() {
  while (!queue_.empty()) {
    const std::vector<int32_t>& p = queue_.front()->prompt_;
    Slot* best = nullptr;
    int64_t best_reuse = -1;
    bool best_cp = false;
    size_t shared = 0;  // the longest prefix some idle slot holds
    for (auto& sp : slots_) {
      Slot& s = *sp;
      if (s.job) continue;
      int64_t reuse = 0;
      bool from_cp = false;
      if (!spec_.is_h2o()) {
        if (extends(s.history, p)) {
          reuse = int64_t(s.history.size());
        }
        if (s.cp && s.cp_tokens.size() <= p.size() && int64_t(s.cp_tokens.size()) > reuse &&
            std::equal(s.cp_tokens.begin(), s.cp_tokens.end(), p.begin())) {
          reuse = int64_t(s.cp_tokens.size());
          from_cp = true;
        }
      }
      shared = std::max({shared, common_prefix(s.history, p), common_prefix(s.cp_tokens, p)});
      if (reuse > best_reuse || (reuse == best_reuse && s.last_used < best->last_used)) {
        best = &s;
        best_reuse = reuse;
        best_cp = from_cp;
      }
    }
    if (!best) return;  // every slot busy
    Slot& s = *best;
    s.job = queue_.front();
    queue_.pop_front();
    s.admitted = ++clock_;
    const GenParams& g = s.job->params_;
    if (int64_t(shared) > best_reuse) {
      ++m_.reprefills;
      m_.recomputed_tokens += int64_t(shared) - best_reuse;
    }
    if (best_reuse == 0) {
      if (!s.history.empty()) session_->reset(s.index);
      s.history.clear();
    } else if (best_cp) {
      session_->restore(s.index, *s.cp);
      s.history = s.cp_tokens;
    }
    s.pending.assign(p.begin() + best_reuse, p.end());
    s.job->result_.cached_tokens = best_reuse;
    m_.reused_tokens += best_reuse;
    s.sampler.emplace(g.temperature, g.top_p, g.seed);
    s.text.emplace(g.stop);
    s.next = -1;
    s.prev = p.back();
    // The whole prompt was the checkpoint's: sample from its saved logits.
    s.resume_from_cp = s.pending.empty();
    ++m_.slots_busy;
  }
  m_.queued = int64_t(queue_.size());
}

// The slot is free before the client hears the end, so whoever got an answer sees it free.
void Engine::end_job(Slot& s, const std::string& reason) {
  std::shared_ptr<Job> job = s.job;
  release(s);
  job->finish(reason);
}

void Engine::release(Slot& s) {
  s.job.reset();
  s.sampler.reset();
  s.text.reset();
  s.pending.clear();
  s.next = -1;
  s.last_used = ++clock_;
  std::lock_guard<std::mutex> lk(mu_);
  --m_.slots_busy;
}

// The chunks do not depend on what else runs (a prompt alone is cut as under load), so greedy
// answers do not either: a prefill and extends differ from one prefill in the last bits.
void Engine::prefill_step(Slot& s) {
  const int64_t n = std::min<int64_t>(opt_.chunk, int64_t(s.pending.size()));
  const std::vector<int32_t> chunk(s.pending.begin(), s.pending.begin() + n);
  std::vector<float> logits = s.history.empty() ? session_->prefill(chunk, nullptr, s.index)
                                                 : session_->extend(chunk, s.index);
  s.history.insert(s.history.end(), chunk.begin(), chunk.end());
  s.pending.erase(s.pending.begin(), s.pending.begin() + n);
  if (!s.pending.empty()) return;
  // The turn boundary: the checkpoint a re-tokenised follow-up can restart from.
  if (session_->cache(s.index).bytes() <= opt_.checkpoint_max_bytes) {
    s.cp = session_->checkpoint(s.index);
    s.cp_tokens = s.history;
    s.cp_logits = logits;
  }
  start_generation(s, logits.data());
}

void Engine::start_generation(Slot& s, const float* logits) {
  if (s.job->params_.max_tokens == 0) {
    end_job(s, "length");
    return;
  }
  sample_and_emit(s, logits);
}

void Engine::sample_and_emit(Slot& s, const float* logits) {
  Job& job = *s.job;
  const int32_t t = s.sampler->sample(std::vector<float>(logits, logits + tok_vocab_));
  ++job.result_.completion_tokens;  // only this thread writes it while the job runs
  {
    std::lock_guard<std::mutex> lk(mu_);
    ++m_.generated_tokens;
  }
  std::string reason;
  if (!job.params_.ignore_eos && std::find(eos_.begin(), eos_.end(), t) != eos_.end()) {
    job.emit(s.text->finish());
    reason = "stop";
  } else {
    job.emit(s.text->push(tok_.token_bytes(t, s.prev)));
    s.prev = t;
    if (s.text->stopped()) {
      reason = "stop";
    } else if (job.result_.completion_tokens >= job.params_.max_tokens ||
               int64_t(s.history.size()) + 1 >= n_ctx_) {
      job.emit(s.text->finish());
      reason = "length";
    }
  }
  if (reason.empty()) {
    s.next = t;
    return;
  }
  end_job(s, reason);
}

void Engine::fail_all(const std::string& what) {
  for (auto& sp : slots_) {
    Slot& s = *sp;
    if (!s.job) continue;
    {
      std::lock_guard<std::mutex> lk(s.job->mu_);
      s.job->result_.error = what;
    }
    end_job(s, "error");
    // The cache may be half-written: start this slot from nothing next time.
    session_->reset(s.index);
    s.history.clear();
    s.cp.reset();
    s.cp_tokens.clear();
    s.cp_logits.clear();
  }
}

void Engine::publish_metrics() {
  int64_t bytes = session_->kv_bytes();
  for (auto& s : slots_) {
    if (s->cp) bytes += s->cp->bytes();
  }
  {
    std::lock_guard<std::mutex> lk(mu_);
    m_.kv_bytes = bytes;
    if (queue_.empty() && m_.slots_busy == 0) idle_.notify_all();
  }
}

void Engine::loop() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [&] { return stopping_ || !queue_.empty() || m_.slots_busy > 0; });
      if (stopping_) return;
      admit();
    }
    try {
      for (auto& sp : slots_) {
        if (sp->job && sp->job->cancelled()) end_job(*sp, "stop");
      }
      for (auto& sp : slots_) {
        if (sp->job && sp->resume_from_cp) {
          sp->resume_from_cp = false;
          start_generation(*sp, sp->cp_logits.data());
        }
      }
      // Prompt chunks in admission order, about one chunk's worth of tokens per step (at least
      // one chunk): the first newcomer gets its first token before the next one's prompt is
      // read, and the streams already running get a decode step between chunks.
      std::vector<Slot*> newcomers;
      for (auto& sp : slots_) {
        if (sp->job && !sp->pending.empty()) newcomers.push_back(sp.get());
      }
      std::sort(newcomers.begin(), newcomers.end(),
                [](const Slot* a, const Slot* b) { return a->admitted < b->admitted; });
      int64_t budget = opt_.chunk;
      for (Slot* s : newcomers) {
        if (budget <= 0) break;
        budget -= std::min<int64_t>(opt_.chunk, int64_t(s->pending.size()));
        prefill_step(*s);
      }
      std::vector<int64_t> seqs;
      std::vector<int32_t> ids;
      std::vector<Slot*> who;
      for (auto& sp : slots_) {
        if (sp->job && sp->next >= 0) {
          seqs.push_back(sp->index);
          ids.push_back(sp->next);
          who.push_back(sp.get());
        }
      }
      if (!seqs.empty()) {
        const std::vector<float> logits = session_->decode_seqs(seqs, ids);
        const int64_t V = model_.cfg.vocab;
        for (size_t b = 0; b < who.size(); ++b) {
          Slot& s = *who[b];
          s.history.push_back(s.next);
          s.next = -1;
          sample_and_emit(s, logits.data() + int64_t(b) * V);
        }
      }
    } catch (const std::exception& e) {
      // A step that failed (it never should) ends the requests it was serving, not the server.
      fail_all(e.what());
    }
    publish_metrics();
  }
}

}  // namespace moa::serve
