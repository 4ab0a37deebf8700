// Primal heuristic for the branch and bound: greedy repair of a rounded LP solution, then local
// search (single swaps, and pairs of swaps whose weight changes offset each other). Only the
// incumbent's quality depends on it; the solver's exactness does not.
#pragma once

#include <cstdint>
#include <vector>

#include "moa/compress/optimizer.h"

namespace moa::detail {

// Per-row tolerances and scales of a problem, computed once per solve.
struct SearchScale {
  std::vector<double> tol;        // allowed excess over a bound (half the final check's)
  std::vector<double> inv_scale;  // 1 / max |weight| of the row
};
SearchScale make_search_scale(const ChoiceProblem& p);

// `choice` (one item per group, drawn from the allowed items: group g may use
// items[start[g] .. start[g+1])) is repaired towards feasibility and improved in place. Returns
// choice_feasible(p, choice) at the end. pair_budget bounds the pair moves examined (0 = none).
bool local_search(const ChoiceProblem& p, const SearchScale& scale,
                  const std::vector<int32_t>& start, const std::vector<int32_t>& items,
                  std::vector<int32_t>& choice, int64_t pair_budget);

}  // namespace moa::detail
