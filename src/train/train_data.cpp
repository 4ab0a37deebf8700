#include "moa/train/train_data.h"

#include <random>
#include <sstream>

#include "moa/core/error.h"
#include "moa/core/file_io.h"
#include "train/train_tasks.h"

namespace moa {

uint64_t sample_seed(uint64_t seed, int64_t step, int64_t index) {
  // splitmix64 over the three values: cheap, and neighbouring steps get unrelated streams.
  auto mix = [](uint64_t z) {
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  };
  return mix(mix(mix(seed) ^ uint64_t(step)) ^ uint64_t(index));
}

namespace {

class TextData : public TrainData {
 public:
  TextData(std::vector<std::string> files, const Tokenizer& tok) : files_(std::move(files)) {
    for (auto& f : files_) {
      auto ids = tok.encode(read_text(f), false);
      tokens_.insert(tokens_.end(), ids.begin(), ids.end());
    }
  }
  TrainSample sample(uint64_t seed, int64_t step, int64_t index, int64_t T) const override {
    if (int64_t(tokens_.size()) < T + 1) {
      input_error("text data: {} tokens in {} file(s), need at least --seq + 1 = {}", tokens_.size(),
                  files_.size(), T + 1);
    }
    std::mt19937_64 rng(sample_seed(seed, step, index));
    const int64_t start = int64_t(rng() % uint64_t(tokens_.size() - size_t(T) + 1));
    TrainSample s;
    s.ids.assign(tokens_.begin() + start, tokens_.begin() + start + T);
    s.mask.assign(size_t(T), 1.0f);
    s.mask.back() = 0.0f;
    return s;
  }
  std::string describe() const override {
    return "text (" + std::to_string(tokens_.size()) + " tokens from " + std::to_string(files_.size()) + " files)";
  }

 private:
  std::vector<std::string> files_;
  std::vector<int32_t> tokens_;
};

// Induction: [random segment of length L][the same segment], loss on predicting the repetition.
class CopyData : public TrainData {
 public:
  explicit CopyData(int64_t vocab) : vocab_(vocab) {}
  TrainSample sample(uint64_t seed, int64_t step, int64_t index, int64_t T) const override {
    std::mt19937_64 rng(sample_seed(seed, step, index));
    const int64_t L = T / 2;
    TrainSample s;
    s.ids.resize(size_t(T));
    for (int64_t t = 0; t < L; ++t) s.ids[size_t(t)] = int32_t(rng() % uint64_t(vocab_));
    for (int64_t t = L; t < T; ++t) s.ids[size_t(t)] = s.ids[size_t(t - L)];
    s.mask.assign(size_t(T), 0.0f);
    for (int64_t t = L - 1; t < T - 1; ++t) s.mask[size_t(t)] = 1.0f;
    return s;
  }
  std::string describe() const override { return "copy (induction over " + std::to_string(vocab_) + " ids)"; }

 private:
  int64_t vocab_;
};

}  // namespace

std::unique_ptr<TrainData> TrainData::from_spec(const std::string& spec, const Tokenizer& tok,
                                                int64_t vocab) {
  if (spec == "copy") return std::make_unique<CopyData>(std::min<int64_t>(vocab, tok.vocab_size()));
  if (spec.rfind("text:", 0) == 0) {
    std::vector<std::string> files;
    std::stringstream ss(spec.substr(5));
    std::string f;
    while (std::getline(ss, f, ',')) {
      if (!f.empty()) files.push_back(f);
    }
    if (files.empty()) input_error("--data {}: expected text:FILE[,FILE...]", spec);
    return std::make_unique<TextData>(files, tok);
  }
  if (spec.rfind("retrieval:", 0) == 0) return make_retrieval_data(spec.substr(10), tok);
  input_error("--data {}: expected 'copy', 'text:FILE[,FILE...]' or 'retrieval:KEY=VALUE,...'", spec);
}

}  // namespace moa
