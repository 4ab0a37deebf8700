// LP relaxation of "one item per group" with a few coupling rows, solved by a primal simplex that
// keeps the group rows implicit (generalised upper bounding, Dantzig & Van Slyke 1967): each group
// has one basic "key" item and the coupling rows a small m x m working basis, so an iteration
// costs one pricing pass over the items plus O(m^3).
#pragma once

#include <cstdint>
#include <vector>

namespace moa::detail {

struct LpProblem {
  int32_t rows = 0;
  std::vector<int32_t> start;  // group g owns items [start[g], start[g+1])
  std::vector<double> cost;    // per item
  std::vector<double> weight;  // [item * rows + k]
  std::vector<double> lo, hi;  // per row, may be infinite

  int32_t groups() const { return int32_t(start.size()) - 1; }
  int32_t items() const { return int32_t(cost.size()); }
};

struct LpResult {
  bool feasible = false;
  std::vector<double> x;   // per item (when feasible)
  std::vector<double> pi;  // per row: duals of the coupling rows, sign-projected (see bound)
  double value = 0;        // c.x of the LP solution
  // Lagrangian bound L(pi) = sum_g min_i (c_i - pi.w_i) + sum_k min(pi_k lo_k, pi_k hi_k): a lower
  // bound on every integer (and fractional) solution whatever the simplex's tolerances did.
  double bound = 0;
  int64_t iterations = 0;
};

// warm_pi (per row, may be empty): the start keys are argmin_i (c_i - warm_pi . w_i).
LpResult solve_lp(const LpProblem& p, const std::vector<double>& warm_pi);

// L(pi) as above, with pi projected onto the signs the bounds allow (pi_k <= 0 where lo_k is
// -inf, >= 0 where hi_k is +inf). reduced (optional): per item, (c_i - pi.w_i) minus its group's
// minimum, so that any solution using item i costs at least L(pi) + reduced[i].
double lagrangian_bound(const LpProblem& p, std::vector<double>& pi, std::vector<double>* reduced);

}  // namespace moa::detail
