// The same "one item per group" model through CBC (coinor-libcbc, C interface): the cross-check
// for the specialised solver, and the solver for anything it cannot do.
#include <Cbc_C_Interface.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <limits>
#include <map>

#include "moa/core/error.h"
#include "moa/compress/optimizer.h"

namespace moa {

namespace {

constexpr double kCbcInf = std::numeric_limits<double>::max();

double finite_or(double v) {
  if (v == std::numeric_limits<double>::infinity()) return kCbcInf;
  if (v == -std::numeric_limits<double>::infinity()) return -kCbcInf;
  return v;
}

// CBC's driver prints to stdout even when quiet; `--json` owns stdout, so CBC's output goes to
// stderr for the duration of the solve.
class StdoutToStderr {
 public:
  StdoutToStderr() {
    std::fflush(stdout);
    saved_ = dup(STDOUT_FILENO);
    if (saved_ >= 0) dup2(STDERR_FILENO, STDOUT_FILENO);
  }
  ~StdoutToStderr() {
    std::fflush(stdout);
    if (saved_ >= 0) {
      dup2(saved_, STDOUT_FILENO);
      close(saved_);
    }
  }
  StdoutToStderr(const StdoutToStderr&) = delete;
  StdoutToStderr& operator=(const StdoutToStderr&) = delete;

 private:
  int saved_ = -1;
};

}  // namespace

ChoiceResult solve_choice_cbc(const ChoiceProblem& p, double max_seconds) {
  auto t0 = std::chrono::steady_clock::now();
  const int32_t m = p.rows;
  const int64_t groups = p.groups(), items = p.items();
  // Rows: [0, groups) one item per group; then the m coupling rows; with max_distinct, one link
  // row x_i - y[cluster, label] <= 0 per item and one row sum_label y <= K per cluster.
  const bool k_rule = p.max_distinct > 0;
  std::map<std::pair<int32_t, int32_t>, int32_t> y_index;  // (cluster, label) -> y column
  int32_t clusters = 0;
  if (k_rule) {
    for (int64_t g = 0; g < groups; ++g) {
      clusters = std::max(clusters, p.cluster[size_t(g)] + 1);
      for (int32_t i = p.group_start[size_t(g)]; i < p.group_start[size_t(g + 1)]; ++i) {
        auto key = std::make_pair(p.cluster[size_t(g)], p.label[size_t(i)]);
        if (!y_index.count(key)) {
          int32_t idx = int32_t(items + int64_t(y_index.size()));
          y_index[key] = idx;
        }
      }
    }
  }
  const int32_t link0 = int32_t(groups) + m;
  const int32_t cluster0 = link0 + (k_rule ? int32_t(items) : 0);
  const int32_t nrows = cluster0 + (k_rule ? clusters : 0);
  const int32_t ncols = int32_t(items + int64_t(y_index.size()));

  // CBC's dual and cutoff tolerances are absolute (~1e-7): with reduced costs that small it
  // declares the LP optimal early. Scaling to max |c| = 1 was not enough at model scale (1024
  // groups; a near-zero rule's loss dwarfs the rest): CBC then returned a plan 4.5% worse than
  // a feasible one the exact solver found, and called it optimal. So each group's costs are
  // shifted by the group's minimum (one item per group: the objective moves by a constant) and
  // scaled by the mean positive shifted cost, which puts the differences that decide the
  // optimum near 1 (the mean positive shifted cost: the median, tried too, made CBC 5x slower on
  // the small test instances).
  std::vector<double> shifted(p.cost.size());
  double offset = 0;
  for (int64_t g = 0; g < groups; ++g) {
    double lo = std::numeric_limits<double>::infinity();
    for (int32_t i = p.group_start[size_t(g)]; i < p.group_start[size_t(g + 1)]; ++i) lo = std::min(lo, p.cost[size_t(i)]);
    offset += lo;
    for (int32_t i = p.group_start[size_t(g)]; i < p.group_start[size_t(g + 1)]; ++i) shifted[size_t(i)] = p.cost[size_t(i)] - lo;
  }
  double cost_scale = 0;
  int64_t positive = 0;
  for (double c : shifted) {
    if (c > 0) {
      cost_scale += c;
      ++positive;
    }
  }
  cost_scale = positive > 0 ? cost_scale / double(positive) : 1.0;
  std::vector<CoinBigIndex> start;
  std::vector<int> index;
  std::vector<double> value;
  std::vector<double> collb(static_cast<size_t>(ncols), 0.0), colub(static_cast<size_t>(ncols), 1.0), obj(static_cast<size_t>(ncols), 0.0);
  for (int64_t g = 0; g < groups; ++g) {
    for (int32_t i = p.group_start[size_t(g)]; i < p.group_start[size_t(g + 1)]; ++i) {
      start.push_back(CoinBigIndex(index.size()));
      obj[size_t(i)] = shifted[size_t(i)] / cost_scale;
      index.push_back(int(g));
      value.push_back(1.0);
      for (int32_t k = 0; k < m; ++k) {
        double w = p.weight[size_t(i) * size_t(m) + size_t(k)];
        if (w != 0) {
          index.push_back(int(groups) + k);
          value.push_back(w);
        }
      }
      if (k_rule) {
        index.push_back(link0 + i);
        value.push_back(1.0);
      }
    }
  }
  if (k_rule) {
    // y columns in index order, each in its items' link rows (-1) and its cluster row (+1).
    std::vector<std::vector<int32_t>> links(y_index.size());
    for (int64_t g = 0; g < groups; ++g)
      for (int32_t i = p.group_start[size_t(g)]; i < p.group_start[size_t(g + 1)]; ++i)
        links[size_t(y_index[{p.cluster[size_t(g)], p.label[size_t(i)]}] - items)].push_back(i);
    std::vector<int32_t> cluster_of(y_index.size());
    for (auto& [key, idx] : y_index) cluster_of[size_t(idx - items)] = key.first;
    for (size_t y = 0; y < links.size(); ++y) {
      start.push_back(CoinBigIndex(index.size()));
      for (int32_t i : links[y]) {
        index.push_back(link0 + i);
        value.push_back(-1.0);
      }
      index.push_back(cluster0 + cluster_of[y]);
      value.push_back(1.0);
    }
  }
  start.push_back(CoinBigIndex(index.size()));
  std::vector<double> rowlb(static_cast<size_t>(nrows)), rowub(static_cast<size_t>(nrows));
  for (int64_t g = 0; g < groups; ++g) rowlb[size_t(g)] = rowub[size_t(g)] = 1.0;
  for (int32_t k = 0; k < m; ++k) {
    rowlb[size_t(groups + k)] = finite_or(p.lo[size_t(k)]);
    rowub[size_t(groups + k)] = finite_or(p.hi[size_t(k)]);
  }
  for (int32_t r = link0; r < cluster0; ++r) {
    rowlb[size_t(r)] = -kCbcInf;
    rowub[size_t(r)] = 0.0;
  }
  for (int32_t r = cluster0; r < nrows; ++r) {
    rowlb[size_t(r)] = -kCbcInf;
    rowub[size_t(r)] = double(p.max_distinct);
  }

  Cbc_Model* model = Cbc_newModel();
  Cbc_loadProblem(model, ncols, nrows, start.data(), index.data(), value.data(), collb.data(),
                  colub.data(), obj.data(), rowlb.data(), rowub.data());
  for (int32_t c = 0; c < ncols; ++c) Cbc_setInteger(model, c);
  Cbc_setLogLevel(model, std::getenv("MOA_CBC_LOG") ? 1 : 0);
  Cbc_setAllowableGap(model, 0.0);
  Cbc_setAllowableFractionGap(model, 1e-12);
  Cbc_setParameter(model, "integerT", "1e-9");
  Cbc_setParameter(model, "primalT", "1e-9");
  // CBC demands each new solution improve on the last by 1e-5 (absolute) by default.
  Cbc_setParameter(model, "increment", "1e-12");
  if (max_seconds > 0) Cbc_setMaximumSeconds(model, max_seconds);
  {
    StdoutToStderr quiet;
    Cbc_solve(model);
  }
  ChoiceResult res;
  res.nodes = Cbc_getNodeCount(model);
  res.lp_iterations = Cbc_getIterationCount(model);
  res.root_bound = Cbc_getBestPossibleObjValue(model) * cost_scale + offset;
  // A time limit (max_seconds) leaves CBC's answer unproven either way. Stopped by it, CBC can
  // report a finished search and "proven infeasible" without having found or excluded anything
  // (seen in CbcTimeLimitKeepsAnswersSound), so an answer counts as proven only if the search
  // completed (secondary status 0: with a solution, 1: relaxation infeasible, 2: gap reached, which
  // is zero here) and the time limit had not run out by our own clock.
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const int secondary = Cbc_secondaryStatus(model);
  const bool completed = Cbc_status(model) == 0 && Cbc_isSecondsLimitReached(model) == 0 &&
                         secondary >= 0 && secondary <= 2 && !(max_seconds > 0 && res.seconds >= max_seconds);
  res.proven = completed && (Cbc_isProvenOptimal(model) != 0 || Cbc_isProvenInfeasible(model) != 0);
  const double* x = Cbc_getColSolution(model);
  if ((!res.proven || !Cbc_isProvenInfeasible(model)) && x != nullptr && Cbc_bestSolution(model) != nullptr) {
    x = Cbc_bestSolution(model);
    res.choice.resize(size_t(groups));
    for (int64_t g = 0; g < groups; ++g) {
      int32_t best = p.group_start[size_t(g)];
      for (int32_t i = p.group_start[size_t(g)]; i < p.group_start[size_t(g + 1)]; ++i)
        if (x[i] > x[best]) best = i;
      res.choice[size_t(g)] = best;
    }
    // CBC's tolerances are its own: its answer counts only if it passes the common check.
    res.feasible = choice_feasible(p, res.choice);
    res.objective = choice_cost(p, res.choice);
    if (!res.feasible) {
      std::fprintf(stderr, "solve_choice_cbc: CBC's solution fails the feasibility check\n");
    }
  }
  Cbc_deleteModel(model);
  return res;
}

}  // namespace moa
