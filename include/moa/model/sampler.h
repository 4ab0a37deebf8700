// Next-token choice: greedy (temperature 0), or temperature + top-p (nucleus) with a seed.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace moa {

class Sampler {
 public:
  Sampler(float temperature, float top_p, uint64_t seed)
      : temperature_(temperature), top_p_(top_p), rng_(seed) {}
  int32_t sample(const std::vector<float>& logits);

 private:
  float temperature_, top_p_;
  std::mt19937_64 rng_;
};

int32_t argmax(const std::vector<float>& logits);

}  // namespace moa
