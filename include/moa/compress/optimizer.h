// MoA's optimiser (DESIGN.md, "Loss of a rule", "Candidate rules", "Optimizer"): one elastic rule
// per (layer, query head), chosen from a candidate grid to minimise the profiled loss at every
// profile length under a KV-density budget at every profile and extend length.
//
// Three layers, usable on their own:
//  1. candidates and exact tables: candidate_rules() and build_rule_tables() turn profiles into
//     loss[length][head][rule] and density[length][rule], modelling the runtime mask token-exactly;
//  2. a generic "choose one item per group" MILP (ChoiceProblem) with an exact specialised solver
//     (solve_choice_mckp: LP relaxation on the multiple-choice structure, Lagrangian bounds, branch
//     and bound) and CBC as a cross-check (solve_choice_cbc);
//  3. the epsilon-constraint sweep over the per-length objectives (optimize_pareto) and plans.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "moa/attention/plan.h"
#include "moa/compress/profile.h"

namespace moa {

// Cache-rule parameters the optimiser models (the runtime's, DESIGN.md "Words").
struct CacheParams {
  int64_t sink = kPlanSink;
  int64_t block = kPlanBlock;
  int64_t min_cache = kPlanMinCache;
};

struct ElasticRule {
  double alpha = 0, beta = 0;
};

// --- 1. candidates and tables ------------------------------------------------------------------

// The candidate grid, scaled to the lengths. With Lmax / Lmin the longest / shortest profile
// length and E the extend lengths:
//   alpha = k * Lmax / 8 for k in {-2, ..., 8}      (step Lmax/8: 1024 for an 8k profile, 256 for 2k)
//   beta  = j / 8        for j in {0, ..., 8}
// keeping  alpha + beta*Lmax <= Lmax,  alpha + beta*E <= E for every E,  alpha + beta*Lmin > 0.
// The tests are evaluated exactly in integers (multiplied by 8). For the reference setting
// (profiles 2k/4k/8k, extend 16k) this is the reference's grid: 48 rules. Order: beta, then alpha.
std::vector<ElasticRule> candidate_rules(const std::vector<int64_t>& profile_lengths,
                                         const std::vector<int64_t>& extend_lengths);

// Causal entries (j <= i) among queries [q0, q1) and keys [k0, k1).
int64_t causal_entries(int64_t q0, int64_t q1, int64_t k0, int64_t k1);
// Causal entries of that rectangle the mask with this sink S and window W drops: j <= i, j >= S
// and i - j >= W (the complement of DESIGN.md's "j < S or i - j < W"). Closed form, O(1).
int64_t dropped_entries(int64_t q0, int64_t q1, int64_t k0, int64_t k1, int64_t sink,
                        int64_t window);

// Exact tables for the optimiser. Rows ("heads") are (layer, query head) of the profiles,
// row = layer * heads + head.
struct RuleTables {
  int64_t layers = 0, heads = 0;
  std::string model;                     // from the profiles (first non-empty)
  std::vector<ElasticRule> rules;        // candidates
  std::vector<int64_t> profile_lengths;  // ascending; one objective each
  std::vector<int64_t> extend_lengths;   // ascending, none equal to a profile length
  std::vector<int64_t> lengths;          // profile and extend lengths, ascending: the constraints
  // loss[p][row][r] = sum over tiles |P_row,N[qb, kb]| * dropped / causal entries of the tile
  // under rule r at N = profile_lengths[p].
  std::vector<double> loss;
  // kept[n][r] = min(N, cache_r(N)) tokens at N = lengths[n]; density = kept / N (KV density;
  // head-independent).
  std::vector<int64_t> kept;
  std::vector<double> density;

  int64_t rows() const { return layers * heads; }
  int64_t rule_count() const { return int64_t(rules.size()); }
  double loss_at(size_t p, int64_t row, int64_t r) const {
    return loss[(p * size_t(rows()) + size_t(row)) * rules.size() + size_t(r)];
  }
  double density_at(size_t n, int64_t r) const { return density[n * rules.size() + size_t(r)]; }
  int64_t kept_at(size_t n, int64_t r) const { return kept[n * rules.size() + size_t(r)]; }
};

// InputError unless the profiles agree on layers, heads and block (naming both files) and have
// distinct lengths. `names` are the files, for messages.
void check_profiles(const std::vector<Profile>& profiles, const std::vector<std::string>& names);

// Loss and density tables. Extend lengths equal to a profile length are dropped. Per profile
// length: one pass over each head's tiles (diagonal sums), then per (head, rule) a few diagonals
// around the window edge plus the sink columns and a partial last block, so 1024 heads x 48 rules
// at nb = 128 take milliseconds.
RuleTables build_rule_tables(const std::vector<Profile>& profiles,
                             const std::vector<int64_t>& extend_lengths,
                             const std::vector<ElasticRule>& rules, const CacheParams& params = {});

// Plain reference: the loss of one head and rule by visiting every tile and counting its entries
// one by one. For tests.
double rule_loss_reference(const Profile& p, int64_t layer, int64_t head, const ElasticRule& r,
                           const CacheParams& params = {});

// --- 2. choose one item per group ---------------------------------------------------------------

// minimise sum of cost[chosen item] over groups, one item per group, subject to
//   lo[k] <= sum over groups of weight[chosen item][k] <= hi[k]     for each row k
// and, when max_distinct > 0, at most max_distinct distinct labels among the chosen items of the
// groups of each cluster (MoA's "at most K rules per layer": cluster = layer, label = rule).
struct ChoiceProblem {
  std::vector<int32_t> group_start;  // size groups + 1; group g owns items [start[g], start[g+1])
  std::vector<double> cost;          // per item
  int32_t rows = 0;
  std::vector<double> weight;  // [item * rows + k]
  std::vector<double> lo, hi;  // per row; -inf / +inf allowed
  int32_t max_distinct = 0;    // 0 = no limit
  // per item (required when max_distinct > 0; optional otherwise): items of different groups
  // with one label are "the same choice" (the same rule), which the exact solver branches on.
  std::vector<int32_t> label;
  std::vector<int32_t> cluster;  // per group (used when max_distinct > 0)

  int64_t groups() const { return int64_t(group_start.size()) - 1; }
  int64_t items() const { return int64_t(cost.size()); }
};

struct ChoiceResult {
  bool feasible = false;
  double objective = 0;         // sum of the chosen costs, recomputed from `choice`
  std::vector<int32_t> choice;  // chosen item (global index) per group
  double root_bound = 0;        // LP (Lagrangian) bound at the root
  int64_t nodes = 0;            // branch-and-bound nodes
  int64_t lp_iterations = 0;
  double seconds = 0;
  // False when a limit (nodes, seconds) stopped the search first: `choice` is then the best plan
  // found, if any, and neither its optimality nor the problem's infeasibility is proven.
  bool proven = true;
};

// Relative feasibility tolerance used by every solver and check: a row may exceed its bound by
// kChoiceFeasTol * max(1, |bound|). choice_feasible also checks max_distinct.
inline constexpr double kChoiceFeasTol = 1e-9;
bool choice_feasible(const ChoiceProblem& p, const std::vector<int32_t>& choice);
double choice_cost(const ChoiceProblem& p, const std::vector<int32_t>& choice);

// Exact: the returned objective is optimal to 1e-10 relative (pruning uses rigorous Lagrangian
// bounds, so the LP's own tolerances cannot cut off the optimum). Handles max_distinct by
// branching on (cluster, label) decisions. `warm_duals` (per row, may be empty) seeds the start.
// max_nodes > 0 stops the branch and bound after that many nodes (ChoiceResult::proven false):
// the search is exponential in the worst case, and some real profiles come close to it.
ChoiceResult solve_choice_mckp(const ChoiceProblem& p, const std::vector<double>& warm_duals = {},
                               int64_t max_nodes = 0);
// CBC (coinor-libcbc) on the same model with binary x[item] (and y[cluster, label] for
// max_distinct), gaps set to ~0. The choice is read back rounded and the objective recomputed.
// Not thread-safe (CBC's driver writes to process-wide state): call from one thread.
ChoiceResult solve_choice_cbc(const ChoiceProblem& p, double max_seconds = 0);
// Every combination; only for tiny problems (tests).
ChoiceResult solve_choice_brute_force(const ChoiceProblem& p);

// --- 3. epsilon-constraint sweep ----------------------------------------------------------------

enum class ChoiceSolver { kMckp, kCbc };

struct OptimizeOptions {
  double density = 0.5;            // KV density bound at every length, in (0, 1]
  double lower_fraction = 0.9;     // and mean density >= lower_fraction * density
  int32_t max_rules_per_layer = 0;  // K; 0 = no limit
  ChoiceSolver solver = ChoiceSolver::kMckp;
  // MCKP branch-and-bound nodes per solve before that solve is handed to CBC (0 = no limit). The
  // exact solver is ~100x faster than CBC on typical instances, but its tree can explode where
  // many heads' rules are near-ties (a3's profiles: 85k-165k nodes, 14-24 s a solve, where CBC
  // takes ~1.6 s); at ~6k nodes/s on 24 heads the default caps a solve at a few seconds.
  int64_t node_limit = 20000;
  // Seconds one CBC solve may take (0 = no limit). CBC is asked for a proven optimum with no gap,
  // and on near-tied profiles it can search for hours (seen: a 36-head, 0.25-density instance still
  // unproven after 15 minutes); past the limit its best answer, or the MCKP incumbent where that is
  // as good, is used and counted in unproven_solves.
  double cbc_seconds = 120;
  int32_t grid = 5;  // epsilon grid points per non-primary objective
  // Called after each solve: (solves done, solves planned, one line about it).
  std::function<void(int64_t, int64_t, const std::string&)> progress;
};

struct ParetoPoint {
  size_t objective = 0;           // the profile length (index) whose loss was minimised
  std::vector<int32_t> rule;      // per row: index into RuleTables::rules
  std::vector<double> loss;       // per profile length
  std::vector<double> density;    // per length (RuleTables::lengths)
  std::vector<double> epsilon;    // per profile length: the bound it was solved under (inf = none)
};

struct OptimizeResult {
  std::vector<ParetoPoint> plans;   // non-dominated, ascending loss at the longest profile length
  std::vector<ParetoPoint> anchors;  // each objective minimised alone (profile-length order)
  int64_t solves = 0;
  int64_t infeasible_solves = 0;  // epsilon boxes with no plan
  int64_t nodes = 0;
  int64_t cbc_fallbacks = 0;  // MCKP solves stopped at node_limit and solved again by CBC
  int64_t unproven_solves = 0;  // solves whose answer no solver proved optimal (or infeasible)
  double seconds = 0;
};

// InputError when the density bound is outside (0, 1] or no plan of the candidates meets it at
// every length (the message gives the achievable range per length).
OptimizeResult optimize_pareto(const RuleTables& t, const OptimizeOptions& o);

// The problem one solve of the sweep poses: minimise the loss at profile_lengths[primary] with the
// loss at each other profile length q <= epsilon[q] (inf = unbounded) and the density rows, which
// count kept tokens in units of their gcd g at each length N (weight kept/g, bounds
// floor(D*heads*N / g) and ceil(0.9*D*heads*N / g): the same integer solutions as the mean-density
// bounds, and a tighter LP relaxation because the bounds are whole). Items
// of group h (= row) are the distinct candidate rules (rules with the same kept tokens at every
// length appear once), in rule order; ParetoPoint::epsilon is what each plan was solved under.
ChoiceProblem make_choice_problem(const RuleTables& t, const OptimizeOptions& o, size_t primary,
                                  const std::vector<double>& epsilon);

// The plan of one point: extended form with model, density {N: d} at every length, and
// "lengths": {"profile": [...], "extend": [...], "loss": {"N": l}}.
Plan make_plan(const RuleTables& t, const ParetoPoint& point, const CacheParams& params = {});

}  // namespace moa
