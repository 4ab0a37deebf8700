// The epsilon-constraint sweep over the per-length losses (DESIGN.md, "Optimizer"), and plans.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>

#include <fmt/format.h>

#include "moa/core/error.h"
#include "moa/compress/optimizer.h"

namespace moa {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// The rules that differ somewhere: two rules with the same kept tokens at every length have the
// same mask (or both keep everything) at every length, so the same loss and density.
std::vector<int32_t> distinct_rules(const RuleTables& t) {
  std::vector<int32_t> out;
  std::map<std::vector<double>, int32_t> seen;
  for (int32_t r = 0; r < int32_t(t.rule_count()); ++r) {
    std::vector<double> sig;
    for (size_t n = 0; n < t.lengths.size(); ++n) sig.push_back(t.density_at(n, r));
    if (seen.emplace(sig, r).second) out.push_back(r);
  }
  return out;
}

struct Sweep {
  const RuleTables& t;
  const OptimizeOptions& o;
  std::vector<int32_t> rules;  // distinct rule indices: the items of every group
  std::vector<double> scale;   // per profile length: loss normaliser for epsilon rows
  std::vector<int64_t> unit;   // per length: gcd of the kept tokens of the rules

  Sweep(const RuleTables& tables, const OptimizeOptions& opt)
      : t(tables), o(opt), rules(distinct_rules(tables)), scale(tables.profile_lengths.size()) {
    // The largest loss any plan can have, so that epsilon rows are O(1) and the solvers'
    // feasibility tolerance is relative to the objective's range.
    for (size_t q = 0; q < scale.size(); ++q) {
      double s = 0;
      for (int64_t h = 0; h < t.rows(); ++h) {
        double m = 0;
        for (int32_t r : rules) m = std::max(m, t.loss_at(q, h, r));
        s += m;
      }
      scale[q] = s > 0 ? s : 1.0;
    }
    unit.assign(t.lengths.size(), 0);
    for (size_t n = 0; n < t.lengths.size(); ++n) {
      for (int32_t r : rules) unit[n] = std::gcd(unit[n], t.kept_at(n, r));
      if (unit[n] <= 0) unit[n] = 1;
    }
  }

  // Bounds on the kept tokens summed over heads, in units: mean density <= D means
  // sum kept <= D*heads*N, and the sum is a multiple of the unit.
  std::pair<double, double> density_bounds(size_t n) const {
    const double total = double(t.rows()) * double(t.lengths[n]);
    const double u = double(unit[n]);
    const double hi_tokens = o.density * total, lo_tokens = o.lower_fraction * o.density * total;
    return {std::ceil(lo_tokens / u - 1e-9 * (1 + lo_tokens / u)),
            std::floor(hi_tokens / u + 1e-9 * (1 + hi_tokens / u))};
  }

  // One solve: minimise loss at profile length `primary`, loss at p <= eps[p] (inf = free).
  ChoiceProblem problem(size_t primary, const std::vector<double>& eps) const {
    ChoiceProblem p;
    const int64_t rows = t.rows(), nr = int64_t(rules.size());
    std::vector<size_t> eps_rows;
    for (size_t q = 0; q < eps.size(); ++q)
      if (q != primary && std::isfinite(eps[q])) eps_rows.push_back(q);
    p.rows = int32_t(t.lengths.size() + eps_rows.size());
    p.group_start.resize(size_t(rows + 1));
    for (int64_t h = 0; h <= rows; ++h) p.group_start[size_t(h)] = int32_t(h * nr);
    p.cost.resize(size_t(rows * nr));
    p.weight.resize(size_t(rows * nr) * size_t(p.rows));
    for (int64_t h = 0; h < rows; ++h) {
      for (int64_t j = 0; j < nr; ++j) {
        const int32_t r = rules[size_t(j)];
        const size_t item = size_t(h * nr + j);
        p.cost[item] = t.loss_at(primary, h, r);
        double* w = p.weight.data() + item * size_t(p.rows);
        for (size_t n = 0; n < t.lengths.size(); ++n) w[n] = double(t.kept_at(n, r) / unit[n]);
        for (size_t e = 0; e < eps_rows.size(); ++e)
          w[t.lengths.size() + e] = t.loss_at(eps_rows[e], h, r) / scale[eps_rows[e]];
      }
    }
    for (size_t n = 0; n < t.lengths.size(); ++n) {
      auto [lo, hi] = density_bounds(n);
      p.lo.push_back(lo);
      p.hi.push_back(hi);
    }
    for (size_t q : eps_rows) {
      p.lo.push_back(-kInf);
      p.hi.push_back(eps[q] / scale[q]);
    }
    // Labels (the rule) also let the exact solver branch on how many heads use a rule.
    p.label.resize(p.cost.size());
    for (size_t i = 0; i < p.label.size(); ++i) p.label[i] = rules[i % size_t(nr)];
    p.cluster.resize(size_t(rows));
    for (int64_t h = 0; h < rows; ++h) p.cluster[size_t(h)] = int32_t(h / t.heads);
    p.max_distinct = o.max_rules_per_layer;
    return p;
  }

  // The MCKP solver first; where it stops at the node limit, CBC from scratch (its incumbent is
  // not proven optimal, and a Pareto point should be; CBC's time limit is the last resort). CBC
  // writes process-wide state: one at a time.
  // `fell_back` says whether CBC answered for the MCKP solver.
  ChoiceResult solve(const ChoiceProblem& p, bool* fell_back) const {
    *fell_back = false;
    if (o.solver == ChoiceSolver::kCbc) {
      ChoiceResult r;
#pragma omp critical(moa_cbc)
      r = solve_choice_cbc(p, o.cbc_seconds);
      return r;
    }
    ChoiceResult r = solve_choice_mckp(p, {}, o.node_limit);
    if (r.proven) return r;
    ChoiceResult c;
#pragma omp critical(moa_cbc)
    c = solve_choice_cbc(p, o.cbc_seconds);
    // CBC's tolerances are its own: where the MCKP incumbent is as good, keep it.
    if (r.feasible && (!c.feasible || r.objective <= c.objective)) {
      c.choice = r.choice;
      c.objective = r.objective;
      c.feasible = true;
    }
    c.nodes += r.nodes;
    c.seconds += r.seconds;
    *fell_back = true;
    return c;
  }

  ParetoPoint point(const ChoiceResult& r, size_t objective, const std::vector<double>& eps) const {
    ParetoPoint pt;
    pt.objective = objective;
    const int64_t rows = t.rows(), nr = int64_t(rules.size());
    pt.rule.resize(size_t(rows));
    for (int64_t h = 0; h < rows; ++h) pt.rule[size_t(h)] = rules[size_t(r.choice[size_t(h)] - h * nr)];
    pt.loss.assign(t.profile_lengths.size(), 0.0);
    for (size_t q = 0; q < t.profile_lengths.size(); ++q)
      for (int64_t h = 0; h < rows; ++h) pt.loss[q] += t.loss_at(q, h, pt.rule[size_t(h)]);
    pt.density.assign(t.lengths.size(), 0.0);
    for (size_t n = 0; n < t.lengths.size(); ++n) {
      for (int64_t h = 0; h < rows; ++h) pt.density[n] += t.density_at(n, pt.rule[size_t(h)]);
      pt.density[n] /= double(rows);
    }
    pt.epsilon = eps;
    return pt;
  }
};

bool dominates(const ParetoPoint& a, const ParetoPoint& b) {
  bool strict = false;
  for (size_t q = 0; q < a.loss.size(); ++q) {
    double tol = 1e-12 * std::max(std::fabs(a.loss[q]), std::fabs(b.loss[q]));
    if (a.loss[q] > b.loss[q] + tol) return false;
    if (a.loss[q] < b.loss[q] - tol) strict = true;
  }
  return strict;
}

bool same_losses(const ParetoPoint& a, const ParetoPoint& b) {
  for (size_t q = 0; q < a.loss.size(); ++q) {
    double tol = 1e-12 * std::max(std::fabs(a.loss[q]), std::fabs(b.loss[q]));
    if (std::fabs(a.loss[q] - b.loss[q]) > tol) return false;
  }
  return true;
}

[[noreturn]] void infeasible_budget(const RuleTables& t, const OptimizeOptions& o,
                                    const std::vector<int32_t>& rules) {
  std::string ranges;
  for (size_t n = 0; n < t.lengths.size(); ++n) {
    double lo = kInf, hi = -kInf;
    for (int32_t r : rules) {
      lo = std::min(lo, t.density_at(n, r));
      hi = std::max(hi, t.density_at(n, r));
    }
    ranges += fmt::format("{}{}: {:.4g}-{:.4g}", n ? ", " : "", t.lengths[n], lo, hi);
  }
  input_error(
      "--density {}: no plan of the {} candidate rules keeps the KV density within [{:.4g}, {}] "
      "at every length (achievable per length: {}); choose another density or extend lengths",
      o.density, t.rule_count(), o.lower_fraction * o.density, o.density, ranges);
}

}  // namespace

OptimizeResult optimize_pareto(const RuleTables& t, const OptimizeOptions& o) {
  if (!(o.density > 0 && o.density <= 1)) {
    input_error("--density {}: expected a KV density in (0, 1]", o.density);
  }
  MOA_CHECK(o.lower_fraction >= 0 && o.lower_fraction <= 1 && o.grid >= 1);
  MOA_CHECK(!t.profile_lengths.empty() && t.rule_count() > 0);
  auto t0 = std::chrono::steady_clock::now();
  const size_t np = t.profile_lengths.size();
  const size_t primary = np - 1;  // the longest profile length
  Sweep s(t, o);
  const int64_t grid_points = [&] {
    int64_t g = 1;
    for (size_t q = 0; q + 1 < np; ++q) g *= o.grid;
    return np > 1 ? g : 0;
  }();
  const int64_t planned = int64_t(np) + grid_points;
  OptimizeResult res;
  auto report = [&](const std::string& what) {
    if (o.progress) o.progress(res.solves, planned, what);
  };

  // 1. Each objective alone: the anchors and the ranges (payoff table).
  const std::vector<double> free_eps(np, kInf);
  auto how = [](const ChoiceResult& r, bool fell_back) {
    return fmt::format("{} nodes{}{}, {:.2f} s", r.nodes, fell_back ? ", node limit: CBC" : "",
                       r.proven ? "" : ", NOT proven optimal", r.seconds);
  };
  // Every solve's counts, anchors and boxes alike.
  auto tally = [&res](const ChoiceResult& r, bool fell_back) {
    res.nodes += r.nodes;
    res.cbc_fallbacks += fell_back;
    res.unproven_solves += !r.proven;
  };
  for (size_t q = 0; q < np; ++q) {
    bool fell_back = false;
    ChoiceResult r = s.solve(s.problem(q, free_eps), &fell_back);
    ++res.solves;
    tally(r, fell_back);
    if (!r.feasible && !r.proven) {
      input_error("optimize: minimising the loss at {} found no plan in {} MCKP nodes and {} s of CBC; raise "
                  "--node-limit or --cbc-seconds", t.profile_lengths[q], o.node_limit, o.cbc_seconds);
    }
    if (!r.feasible) infeasible_budget(t, o, s.rules);
    res.anchors.push_back(s.point(r, q, free_eps));
    report(fmt::format("loss at {} alone: {:.6g} ({})", t.profile_lengths[q], res.anchors.back().loss[q],
                       how(r, fell_back)));
  }
  std::vector<double> lo(np), hi(np);
  for (size_t q = 0; q < np; ++q) {
    lo[q] = res.anchors[q].loss[q];
    hi[q] = lo[q];
    for (const ParetoPoint& a : res.anchors) hi[q] = std::max(hi[q], a.loss[q]);
  }

  // 2. The primary objective under every box of the grid over the others.
  std::vector<std::vector<double>> boxes;
  for (int64_t b = 0; b < grid_points; ++b) {
    std::vector<double> eps(np, kInf);
    int64_t rest = b;
    for (size_t q = 0; q < np; ++q) {
      if (q == primary) continue;
      int64_t k = rest % o.grid;
      rest /= o.grid;
      double frac = o.grid == 1 ? 1.0 : double(k) / double(o.grid - 1);
      // The range's ends are attained values: a hair of slack keeps them feasible.
      eps[q] = (lo[q] + frac * (hi[q] - lo[q])) * (1 + 1e-12);
    }
    boxes.push_back(eps);
  }
  std::vector<ParetoPoint> found = res.anchors;
  std::vector<ChoiceResult> results(boxes.size());
  std::vector<char> fell_back(boxes.size(), 0);
  // CBC solves serialise on their lock; the MCKP ones run side by side.
#pragma omp parallel for schedule(dynamic, 1) if (o.solver == ChoiceSolver::kMckp)
  for (size_t b = 0; b < boxes.size(); ++b) {
    bool fb = false;
    results[b] = s.solve(s.problem(primary, boxes[b]), &fb);
    fell_back[b] = fb;
#pragma omp critical(moa_optimize_progress)
    {
      ++res.solves;
      report(fmt::format("box {}/{}: {} ({})", b + 1, boxes.size(),
                         results[b].feasible ? fmt::format("{:.6g}", results[b].objective) : "infeasible",
                         how(results[b], fb)));
    }
  }
  for (size_t b = 0; b < boxes.size(); ++b) {
    tally(results[b], fell_back[b] != 0);
    if (!results[b].feasible) {
      ++res.infeasible_solves;
      continue;
    }
    found.push_back(s.point(results[b], primary, boxes[b]));
  }

  // 3. The non-dominated set, one plan per distinct loss vector.
  for (size_t i = 0; i < found.size(); ++i) {
    bool keep = true;
    for (size_t j = 0; j < found.size() && keep; ++j) {
      if (j == i) continue;
      if (dominates(found[j], found[i])) keep = false;
    }
    for (const ParetoPoint& k : res.plans)
      if (keep && same_losses(k, found[i])) keep = false;
    if (keep) res.plans.push_back(found[i]);
  }
  std::sort(res.plans.begin(), res.plans.end(), [&](const ParetoPoint& a, const ParetoPoint& b) {
    return a.loss[primary] < b.loss[primary];
  });
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return res;
}

ChoiceProblem make_choice_problem(const RuleTables& t, const OptimizeOptions& o, size_t primary,
                                  const std::vector<double>& epsilon) {
  MOA_CHECK(primary < t.profile_lengths.size() && epsilon.size() == t.profile_lengths.size());
  return Sweep(t, o).problem(primary, epsilon);
}

Plan make_plan(const RuleTables& t, const ParetoPoint& point, const CacheParams& params) {
  MOA_CHECK(int64_t(point.rule.size()) == t.rows());
  PlanRules rs;
  rs.alphas.assign(static_cast<size_t>(t.layers), std::vector<double>(static_cast<size_t>(t.heads)));
  rs.betas = rs.alphas;
  rs.alphas_int.assign(static_cast<size_t>(t.layers), std::vector<bool>(static_cast<size_t>(t.heads)));
  for (int64_t l = 0; l < t.layers; ++l) {
    for (int64_t h = 0; h < t.heads; ++h) {
      const ElasticRule& r = t.rules[size_t(point.rule[size_t(l * t.heads + h)])];
      rs.alphas[size_t(l)][size_t(h)] = r.alpha;
      rs.betas[size_t(l)][size_t(h)] = r.beta;
      rs.alphas_int[size_t(l)][size_t(h)] = r.alpha == std::floor(r.alpha);
    }
  }
  Plan plan = Plan::from_rules({rs});
  if (params.sink != plan.sink() || params.block != plan.block() ||
      params.min_cache != plan.min_cache()) {
    plan.set_params(params.sink, params.block, params.min_cache);
  }
  if (!t.model.empty()) plan.set_model(t.model);
  const ModelShape shape{t.layers, t.heads, t.heads};
  for (size_t n = 0; n < t.lengths.size(); ++n) {
    double d = plan.kv_density(shape, t.lengths[n]);
    // The plan's own cache rule must give what the optimiser bounded.
    MOA_CHECK(point.density.empty() || std::fabs(d - point.density[n]) < 1e-9,
              "density at {}: plan {} vs optimiser {}", t.lengths[n], d, point.density[n]);
    plan.density()[t.lengths[n]] = d;
  }
  nlohmann::json loss = nlohmann::json::object();
  for (size_t q = 0; q < t.profile_lengths.size() && q < point.loss.size(); ++q)
    loss[std::to_string(t.profile_lengths[q])] = point.loss[q];
  plan.set_lengths({{"profile", t.profile_lengths}, {"extend", t.extend_lengths}, {"loss", loss}});
  return plan;
}

}  // namespace moa
