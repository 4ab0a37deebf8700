#include "moa/model/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace moa {

int32_t argmax(const std::vector<float>& logits) {
  return int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

int32_t Sampler::sample(const std::vector<float>& logits) {
  if (temperature_ <= 0) return argmax(logits);
  const size_t V = logits.size();
  const float mx = *std::max_element(logits.begin(), logits.end());
  std::vector<double> p(V);
  double sum = 0;
  for (size_t i = 0; i < V; ++i) sum += p[i] = std::exp(double(logits[i] - mx) / temperature_);
  for (auto& x : p) x /= sum;
  std::vector<int32_t> order(V);
  std::iota(order.begin(), order.end(), 0);
  size_t keep = V;
  if (top_p_ < 1.0f) {
    // Smallest set of most likely tokens whose mass reaches top_p (ties broken by id).
    std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
      return p[size_t(a)] > p[size_t(b)] || (p[size_t(a)] == p[size_t(b)] && a < b);
    });
    double cum = 0;
    for (keep = 0; keep < V;) {
      cum += p[size_t(order[keep++])];
      if (cum >= top_p_) break;
    }
  }
  double mass = 0;
  for (size_t i = 0; i < keep; ++i) mass += p[size_t(order[i])];
  double u = std::uniform_real_distribution<double>(0.0, mass)(rng_);
  for (size_t i = 0; i < keep; ++i) {
    u -= p[size_t(order[i])];
    if (u <= 0) return order[i];
  }
  return order[keep - 1];
}

}  // namespace moa
