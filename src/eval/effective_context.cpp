// Effective context length and the mean span of a method (rules in include/moa/eval/report.h).
#include <algorithm>
#include <cmath>

#include "moa/core/error.h"
#include "moa/eval/report.h"

namespace moa {

int64_t effective_context_length(const std::map<int64_t, double>& acc, double threshold) {
  int64_t best = 0;
  // Ascending lengths: the first failure ends the run of passing lengths.
  for (const auto& [length, a] : acc) {
    if (!(a >= threshold)) break;
    best = length;
  }
  return best;
}

MethodSpan MethodSpan::dense() { return MethodSpan{}; }

MethodSpan MethodSpan::streaming(double d, int64_t sink) {
  Plan p = Plan::uniform(1, 1, 0.0, d);
  if (sink != p.sink()) p.set_sink(sink);
  return of_plan(std::move(p), ModelShape{1, 1, 1});
}

MethodSpan MethodSpan::h2o(double d) {
  MethodSpan s;
  s.kind = Kind::kH2O;
  s.density = d;
  return s;
}

MethodSpan MethodSpan::of_plan(Plan p, const ModelShape& shape) {
  MethodSpan s;
  s.kind = Kind::kPlan;
  s.shape = shape;
  s.plan = std::move(p);
  return s;
}

double MethodSpan::mean_span(int64_t n) const {
  MOA_CHECK(n >= 1, "n {}", n);
  switch (kind) {
    case Kind::kDense:
      return double(n);
    case Kind::kH2O:
      // AttentionSpec::h2o_budget: heavy hitters + recent window per KV head.
      return double(std::clamp<int64_t>(int64_t(std::ceil(density * double(n))), 2, n));
    case Kind::kPlan: {
      const PlanCaches c = plan->caches(shape, n);
      double sum = 0;
      for (const auto& h : c.at) sum += double(h.kept);
      return c.at.empty() ? 0.0 : sum / double(c.at.size());
    }
  }
  return 0;
}

EffectiveContext effective_context(const std::map<int64_t, double>& acc, const MethodSpan& span,
                                   double threshold) {
  EffectiveContext e;
  e.length = effective_context_length(acc, threshold);
  if (e.length > 0) {
    e.mean_span = span.mean_span(e.length);
    e.ratio = e.mean_span > 0 ? double(e.length) / e.mean_span : 0.0;
  }
  return e;
}

}  // namespace moa
