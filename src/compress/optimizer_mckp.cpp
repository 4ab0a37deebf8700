// Exact branch and bound for "one item per group" (multiple-choice knapsack with a few coupling
// rows). Each node solves the LP relaxation (optimizer_lp.cpp); with m coupling rows at most m
// groups are fractional there. Pruning and reduced-cost fixing use the Lagrangian bound of the
// LP's duals, which is a valid lower bound whatever the LP's tolerances, so nothing better than
// the incumbent by more than the tolerance is ever cut off. Branching: on a fractional group (one
// child per remaining item, the LP's favourite first), or, with max_distinct, on a (cluster,
// label) pair: "label allowed in the cluster" / "label forbidden in the cluster".
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <chrono>
#include <cmath>
#include <limits>
#include <numeric>

#include "moa/core/error.h"
#include "moa/compress/optimizer.h"
#include "optimizer_lp.h"
#include "optimizer_search.h"

namespace moa {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kPruneRel = 1e-9;  // prune nodes that cannot beat the incumbent by this much
constexpr double kAcceptRel = 1e-9;   // an integral LP optimum within this of its bound is final
constexpr double kSupportTol = 1e-9;  // LP values below this count as zero
constexpr double kCountTol = 1e-6;    // label counts closer than this to an integer are integral
constexpr int64_t kSearchEvery = 16;
constexpr int64_t kRootPairBudget = 20'000'000;  // pair moves the root's local search may try

bool distinct_ok(const ChoiceProblem& p, const std::vector<int32_t>& choice) {
  if (p.max_distinct <= 0) return true;
  std::vector<std::vector<int32_t>> used;
  for (int64_t g = 0; g < p.groups(); ++g) {
    size_t c = size_t(p.cluster[size_t(g)]);
    if (used.size() <= c) used.resize(c + 1);
    auto& u = used[c];
    int32_t l = p.label[size_t(choice[size_t(g)])];
    if (std::find(u.begin(), u.end(), l) == u.end()) u.push_back(l);
    if (int64_t(u.size()) > p.max_distinct) return false;
  }
  return true;
}

// A branching row on how many groups choose an item of one label: lo <= count <= hi.
struct CountRow {
  int32_t label;
  double lo, hi;
};

struct Node {
  std::vector<int32_t> start;  // per group, into items
  std::vector<int32_t> items;  // alive global item ids
  // max_distinct: per cluster, labels known to be among its allowed ones.
  std::vector<std::vector<int32_t>> allowed;
  std::vector<CountRow> counts;  // extra LP rows from branching on label counts

  int32_t alive(int32_t g) const { return start[size_t(g + 1)] - start[size_t(g)]; }
};

// Node with, per group, only the items keep(item) accepts.
template <typename Keep>
Node filtered(const Node& n, Keep keep) {
  Node out;
  out.allowed = n.allowed;
  out.counts = n.counts;
  out.start.reserve(n.start.size());
  out.items.reserve(n.items.size());
  out.start.push_back(0);
  for (size_t g = 0; g + 1 < n.start.size(); ++g) {
    for (int32_t j = n.start[g]; j < n.start[g + 1]; ++j)
      if (keep(int32_t(g), n.items[size_t(j)])) out.items.push_back(n.items[size_t(j)]);
    out.start.push_back(int32_t(out.items.size()));
  }
  return out;
}

class BranchAndBound {
 public:
  BranchAndBound(const ChoiceProblem& p, int64_t max_nodes)
      : p_(p), scale_(detail::make_search_scale(p)), max_nodes_(max_nodes) {
    has_labels_ = int64_t(p.label.size()) == p.items();
    if (p.max_distinct > 0) {
      int32_t clusters = 0;
      for (int32_t c : p.cluster) clusters = std::max(clusters, c + 1);
      cluster_groups_.resize(size_t(clusters));
      for (int64_t g = 0; g < p.groups(); ++g) cluster_groups_[size_t(p.cluster[size_t(g)])].push_back(int32_t(g));
    }
  }

  ChoiceResult run(const std::vector<double>& warm_pi) {
    Node root;
    root.start.push_back(0);
    const int32_t m = p_.rows;
    for (int64_t g = 0; g < p_.groups(); ++g) {
      const int32_t b = p_.group_start[size_t(g)], e = p_.group_start[size_t(g + 1)];
      const size_t first = root.items.size();
      for (int32_t i = b; i < e; ++i) {
        // Items with equal weights: only the cheapest can be optimal (unless labels matter).
        bool dup = false;
        if (p_.max_distinct <= 0) {
          for (size_t j = first; j < root.items.size(); ++j) {
            int32_t o = root.items[j];
            if (std::equal(p_.weight.begin() + i * m, p_.weight.begin() + (i + 1) * m,
                           p_.weight.begin() + o * m)) {
              if (p_.cost[size_t(i)] < p_.cost[size_t(o)]) root.items[j] = i;
              dup = true;
              break;
            }
          }
        }
        if (!dup) root.items.push_back(i);
      }
      root.start.push_back(int32_t(root.items.size()));
    }
    if (p_.max_distinct > 0) root.allowed.resize(cluster_groups_.size());
    for (int32_t k = 0; k < m; ++k)
      if (p_.lo[size_t(k)] > p_.hi[size_t(k)]) return result();
    process(root, warm_pi, true);
    return result();
  }

 private:
  ChoiceResult result() const {
    ChoiceResult r;
    r.feasible = !inc_.empty();
    if (r.feasible) {
      r.choice = inc_;
      r.objective = choice_cost(p_, inc_);
    }
    r.root_bound = root_bound_;
    r.nodes = nodes_;
    r.lp_iterations = iterations_;
    r.proven = !stopped_;
    return r;
  }

  double prune_tol() const { return kPruneRel * std::fabs(inc_obj_); }
  bool can_improve(double bound) const { return inc_.empty() || bound < inc_obj_ - prune_tol(); }

  void offer(const std::vector<int32_t>& choice) {
    if (!choice_feasible(p_, choice)) return;
    double c = choice_cost(p_, choice);
    if (inc_.empty() || c < inc_obj_) {
      inc_obj_ = c;
      inc_ = choice;
    }
  }

  void process(const Node& node, const std::vector<double>& warm_pi, bool is_root) {
    // At the limit every open node is abandoned unexplored: the incumbent stands, unproven.
    if (max_nodes_ > 0 && nodes_ >= max_nodes_) {
      stopped_ = true;
      return;
    }
    ++nodes_;
    const int32_t m = p_.rows;
    const int32_t mc = int32_t(node.counts.size());
    const int32_t mt = m + mc;  // LP rows: the problem's, then the count rows
    const int32_t groups = int32_t(p_.groups());
    auto count_weight = [&](int32_t i, int32_t c) {
      return p_.label[size_t(i)] == node.counts[size_t(c)].label ? 1.0 : 0.0;
    };
    // Groups down to one item are constants; the LP sees the others.
    double fixed_cost = 0;
    std::vector<double> shift(static_cast<size_t>(mt), 0.0);
    std::vector<int32_t> free_groups;
    std::vector<int32_t> choice(static_cast<size_t>(groups), -1);
    for (int32_t g = 0; g < groups; ++g) {
      int32_t a = node.alive(g);
      if (a == 0) return;
      if (a == 1) {
        int32_t i = node.items[size_t(node.start[size_t(g)])];
        choice[size_t(g)] = i;
        fixed_cost += p_.cost[size_t(i)];
        for (int32_t k = 0; k < m; ++k) shift[size_t(k)] += p_.weight[size_t(i * m + k)];
        for (int32_t c = 0; c < mc; ++c) shift[size_t(m + c)] += count_weight(i, c);
      } else {
        free_groups.push_back(g);
      }
    }
    if (free_groups.empty()) {
      offer(choice);
      return;
    }
    detail::LpProblem lp;
    lp.rows = mt;
    lp.start.push_back(0);
    for (int32_t g : free_groups) {
      for (int32_t j = node.start[size_t(g)]; j < node.start[size_t(g + 1)]; ++j) {
        int32_t i = node.items[size_t(j)];
        lp.cost.push_back(p_.cost[size_t(i)]);
        lp.weight.insert(lp.weight.end(), p_.weight.begin() + i * m, p_.weight.begin() + (i + 1) * m);
        for (int32_t c = 0; c < mc; ++c) lp.weight.push_back(count_weight(i, c));
      }
      lp.start.push_back(int32_t(lp.cost.size()));
    }
    lp.lo.resize(size_t(mt));
    lp.hi.resize(size_t(mt));
    for (int32_t k = 0; k < mt; ++k) {
      const double lo = k < m ? p_.lo[size_t(k)] : node.counts[size_t(k - m)].lo;
      const double hi = k < m ? p_.hi[size_t(k)] : node.counts[size_t(k - m)].hi;
      lp.lo[size_t(k)] = lo - shift[size_t(k)];
      lp.hi[size_t(k)] = hi - shift[size_t(k)];
    }
    auto tl = std::chrono::steady_clock::now();
    detail::LpResult r = detail::solve_lp(lp, warm_pi);
    iterations_ += r.iterations;
    if (std::getenv("MOA_OPT_TRACE")) {
      std::vector<double> pi2 = r.pi;
      std::fprintf(stderr, "node %lld free %zu items %zu iters %lld %.3fs feas %d value %.12g bound %.12g inc %.12g\n",
                   (long long)nodes_, free_groups.size(), lp.cost.size(), (long long)r.iterations,
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - tl).count(), r.feasible,
                   fixed_cost + r.value, r.feasible ? fixed_cost + detail::lagrangian_bound(lp, pi2, nullptr) : 0.0, inc_obj_);
    }
    if (!r.feasible) return;
    std::vector<double> reduced;
    const double bound = fixed_cost + detail::lagrangian_bound(lp, r.pi, &reduced);
    if (is_root) root_bound_ = bound;
    if (!can_improve(bound)) return;

    // LP support per free group; round it into incumbents.
    const int32_t nf = int32_t(free_groups.size());
    std::vector<int32_t> best_item(static_cast<size_t>(nf));
    std::vector<int32_t> fractional;
    for (int32_t f = 0; f < nf; ++f) {
      double bx = -1;
      for (int32_t j = lp.start[size_t(f)]; j < lp.start[size_t(f + 1)]; ++j) {
        if (r.x[size_t(j)] > bx) {
          bx = r.x[size_t(j)];
          best_item[size_t(f)] = j;
        }
      }
      if (bx < 1 - kSupportTol) fractional.push_back(f);
    }
    auto global = [&](int32_t f, int32_t j) {
      int32_t g = free_groups[size_t(f)];
      return node.items[size_t(node.start[size_t(g)] + (j - lp.start[size_t(f)]))];
    };
    for (int32_t f = 0; f < nf; ++f) choice[size_t(free_groups[size_t(f)])] = global(f, best_item[size_t(f)]);
    if (fractional.empty()) {
      // Integral LP optimum: the node's best, unless the exact check disagrees with the LP's
      // tolerances (then branch below) or the K rule is broken (branch on it below).
      std::vector<int32_t> c = choice;
      if (choice_feasible(p_, c) &&
          choice_cost(p_, c) <= bound + kAcceptRel * std::fabs(bound) + 1e-300) {
        offer(c);
        return;
      }
    } else {
      round_support(choice, free_groups, fractional, lp, r, global);
    }
    // Repair and improve the rounded LP solution within the node's items: with pair moves at
    // the root, then on every kSearchEvery-th node (the search costs more than a node's LP).
    if (is_root || nodes_ % kSearchEvery == 0) {
      std::vector<int32_t> c = choice;
      if (detail::local_search(p_, scale_, node.start, node.items, c, is_root ? kRootPairBudget : 0)) offer(c);
    }
    if (!can_improve(bound)) return;

    // Reduced-cost fixing: an item whose Lagrangian bound cannot beat the incumbent goes.
    Node child_base;
    const Node* cur = &node;
    if (!inc_.empty()) {
      std::vector<char> drop(node.items.size(), 0);
      bool any = false;
      for (int32_t f = 0; f < nf; ++f) {
        int32_t g = free_groups[size_t(f)];
        for (int32_t j = lp.start[size_t(f)]; j < lp.start[size_t(f + 1)]; ++j) {
          if (!can_improve(bound + reduced[size_t(j)])) {
            drop[size_t(node.start[size_t(g)] + (j - lp.start[size_t(f)]))] = 1;
            any = true;
          }
        }
      }
      if (any) {
        size_t idx = 0;
        std::vector<char> keep_flag(node.items.size());
        for (size_t j = 0; j < node.items.size(); ++j) keep_flag[j] = !drop[j];
        child_base = filtered(node, [&](int32_t, int32_t) { return keep_flag[idx++] != 0; });
        cur = &child_base;
        // The LP solution may have used a dropped item: solve the smaller node afresh.
        bool support_dropped = false;
        for (int32_t f = 0; f < nf && !support_dropped; ++f) {
          int32_t g = free_groups[size_t(f)];
          for (int32_t j = lp.start[size_t(f)]; j < lp.start[size_t(f + 1)]; ++j) {
            if (r.x[size_t(j)] > kSupportTol && drop[size_t(node.start[size_t(g)] + (j - lp.start[size_t(f)]))]) {
              support_dropped = true;
              break;
            }
          }
        }
        if (support_dropped) {
          process(child_base, r.pi, false);
          return;
        }
      }
    }

    // Branch: the K rule first, then a fractional label count, then a fractional group, else any
    // group with a choice left.
    if (p_.max_distinct > 0 && branch_distinct(*cur, free_groups, lp, r, global)) return;
    if (has_labels_ && !std::getenv("MOA_NO_COUNT") && branch_count(*cur, choice, free_groups, lp, r, global)) return;
    int32_t bf = -1;
    double bf_score = kInf;
    for (int32_t f : fractional) {
      double bx = r.x[size_t(best_item[size_t(f)])];
      if (bx < bf_score) {
        bf_score = bx;
        bf = f;
      }
    }
    int32_t bg = -1;
    if (bf >= 0) {
      bg = free_groups[size_t(bf)];
    } else {
      for (int32_t g : free_groups)
        if (cur->alive(g) > 1) {
          bg = g;
          break;
        }
    }
    if (bg < 0) {  // every group fixed by reduced-cost fixing
      std::vector<int32_t> c(static_cast<size_t>(groups));
      for (int32_t g = 0; g < groups; ++g) c[size_t(g)] = cur->items[size_t(cur->start[size_t(g)])];
      offer(c);
      return;
    }
    // Children in order of LP value, then reduced cost.
    const int32_t f = int32_t(std::find(free_groups.begin(), free_groups.end(), bg) - free_groups.begin());
    struct Option {
      int32_t item;
      double x, red;
    };
    std::vector<Option> opts;
    for (int32_t j = lp.start[size_t(f)]; j < lp.start[size_t(f + 1)]; ++j) {
      int32_t i = global(f, j);
      bool alive = false;
      for (int32_t a = cur->start[size_t(bg)]; a < cur->start[size_t(bg + 1)]; ++a) alive |= cur->items[size_t(a)] == i;
      if (alive) opts.push_back({i, r.x[size_t(j)], reduced[size_t(j)]});
    }
    std::sort(opts.begin(), opts.end(), [](const Option& a, const Option& b) {
      if (a.x != b.x) return a.x > b.x;
      return a.red < b.red;
    });
    for (const Option& o : opts) {
      if (!can_improve(bound + o.red)) continue;
      Node child = filtered(*cur, [&](int32_t g, int32_t i) { return g != bg || i == o.item; });
      process(child, r.pi, false);
    }
  }

  // Enumerates the LP support of the fractional groups (when few combinations) or takes each
  // group's largest value, and offers the best feasible result.
  template <typename Global>
  void round_support(std::vector<int32_t> choice, const std::vector<int32_t>& free_groups,
                     const std::vector<int32_t>& fractional, const detail::LpProblem& lp,
                     const detail::LpResult& r, Global global) {
    std::vector<std::vector<int32_t>> support(fractional.size());
    double combos = 1;
    for (size_t a = 0; a < fractional.size(); ++a) {
      int32_t f = fractional[a];
      for (int32_t j = lp.start[size_t(f)]; j < lp.start[size_t(f + 1)]; ++j)
        if (r.x[size_t(j)] > kSupportTol) support[a].push_back(global(f, j));
      combos *= double(support[a].size());
    }
    if (combos > 16) {
      offer(choice);
      return;
    }
    std::vector<size_t> idx(fractional.size(), 0);
    for (;;) {
      for (size_t a = 0; a < fractional.size(); ++a)
        choice[size_t(free_groups[size_t(fractional[a])])] = support[a][idx[a]];
      offer(choice);
      size_t a = 0;
      while (a < idx.size() && ++idx[a] == support[a].size()) idx[a++] = 0;
      if (a == idx.size()) break;
    }
  }

  // Branching on counts: in any integer solution, the number of groups choosing label l is an
  // integer, so "count <= floor(v)" / "count >= ceil(v)" splits the space at a fractional LP count
  // v. Rules are shared by all heads, so this moves the bound where branching head by head would
  // wander among near-equal heads. Returns false when every count is integral.
  template <typename Global>
  bool branch_count(const Node& node, const std::vector<int32_t>& fixed_choice,
                    const std::vector<int32_t>& free_groups, const detail::LpProblem& lp,
                    const detail::LpResult& r, Global global) {
    std::vector<double> count;
    auto add = [&](int32_t label, double x) {
      if (count.size() <= size_t(label)) count.resize(size_t(label) + 1, 0.0);
      count[size_t(label)] += x;
    };
    std::vector<char> is_free(static_cast<size_t>(p_.groups()), 0);
    for (int32_t g : free_groups) is_free[size_t(g)] = 1;
    for (int64_t g = 0; g < p_.groups(); ++g)
      if (!is_free[size_t(g)]) add(p_.label[size_t(fixed_choice[size_t(g)])], 1.0);
    for (int32_t f = 0; f < int32_t(free_groups.size()); ++f)
      for (int32_t j = lp.start[size_t(f)]; j < lp.start[size_t(f + 1)]; ++j)
        if (r.x[size_t(j)] > kSupportTol) add(p_.label[size_t(global(f, j))], r.x[size_t(j)]);
    int32_t best = -1;
    double best_frac = kCountTol;
    for (size_t l = 0; l < count.size(); ++l) {
      double frac = std::fabs(count[l] - std::round(count[l]));
      if (frac > best_frac) {
        best_frac = frac;
        best = int32_t(l);
      }
    }
    if (best < 0) return false;
    const double v = count[size_t(best)];
    const double down = std::floor(v), up = std::ceil(v);
    auto child = [&](double lo, double hi) {
      Node c = node;
      std::vector<double> pi = r.pi;
      bool found = false;
      for (CountRow& row : c.counts) {
        if (row.label == best) {
          row.lo = std::max(row.lo, lo);
          row.hi = std::min(row.hi, hi);
          if (row.lo > row.hi) return;
          found = true;
        }
      }
      if (!found) {
        c.counts.push_back({best, lo, hi});
        pi.push_back(0.0);
      }
      process(c, pi, false);
    };
    const double inf = std::numeric_limits<double>::infinity();
    if (v - down < up - v) {
      child(-inf, down);
      child(up, inf);
    } else {
      child(up, inf);
      child(-inf, down);
    }
    return true;
  }

  // Branches on a cluster whose LP support uses more than max_distinct labels (counting those
  // already allowed). Returns false when no cluster does.
  template <typename Global>
  bool branch_distinct(const Node& node, const std::vector<int32_t>& free_groups,
                       const detail::LpProblem& lp, const detail::LpResult& r, Global global) {
    const int32_t nf = int32_t(free_groups.size());
    std::vector<int32_t> pos_of(static_cast<size_t>(p_.groups()), -1);
    for (int32_t f = 0; f < nf; ++f) pos_of[size_t(free_groups[size_t(f)])] = f;
    for (size_t c = 0; c < cluster_groups_.size(); ++c) {
      const auto& allowed = node.allowed[c];
      std::vector<std::pair<int32_t, double>> extra;  // labels used, not yet allowed: total x
      auto use = [&](int32_t label, double x) {
        if (std::find(allowed.begin(), allowed.end(), label) != allowed.end()) return;
        for (auto& [l, v] : extra)
          if (l == label) {
            v += x;
            return;
          }
        extra.push_back({label, x});
      };
      for (int32_t g : cluster_groups_[c]) {
        int32_t f = pos_of[size_t(g)];
        if (f < 0) {
          use(p_.label[size_t(node.items[size_t(node.start[size_t(g)])])], 1.0);
          continue;
        }
        for (int32_t j = lp.start[size_t(f)]; j < lp.start[size_t(f + 1)]; ++j)
          if (r.x[size_t(j)] > kSupportTol) use(p_.label[size_t(global(f, j))], r.x[size_t(j)]);
      }
      if (int64_t(allowed.size() + extra.size()) <= p_.max_distinct) continue;
      auto it = std::max_element(extra.begin(), extra.end(),
                                 [](const auto& a, const auto& b) { return a.second < b.second; });
      const int32_t label = it->first;
      const auto& members = cluster_groups_[c];
      std::vector<char> in_cluster(static_cast<size_t>(p_.groups()), 0);
      for (int32_t g : members) in_cluster[size_t(g)] = 1;
      // Child 1: the label is one of the cluster's; at max_distinct the others go.
      {
        Node child = node;
        child.allowed[c].push_back(label);
        if (int64_t(child.allowed[c].size()) == p_.max_distinct) {
          const auto al = child.allowed[c];
          child = filtered(child, [&](int32_t g, int32_t i) {
            return !in_cluster[size_t(g)] ||
                   std::find(al.begin(), al.end(), p_.label[size_t(i)]) != al.end();
          });
        }
        process(child, r.pi, false);
      }
      // Child 2: the label is not used in the cluster.
      {
        Node child = filtered(node, [&](int32_t g, int32_t i) {
          return !in_cluster[size_t(g)] || p_.label[size_t(i)] != label;
        });
        process(child, r.pi, false);
      }
      return true;
    }
    return false;
  }

  const ChoiceProblem& p_;
  const detail::SearchScale scale_;
  bool has_labels_ = false;
  std::vector<std::vector<int32_t>> cluster_groups_;
  std::vector<int32_t> inc_;
  double inc_obj_ = kInf;
  double root_bound_ = -kInf;
  int64_t nodes_ = 0, iterations_ = 0;
  const int64_t max_nodes_;
  bool stopped_ = false;
};

void check_problem(const ChoiceProblem& p) {
  MOA_CHECK(p.groups() >= 1 && p.group_start[0] == 0 && p.group_start.back() == p.items());
  for (int64_t g = 0; g < p.groups(); ++g)
    MOA_CHECK(p.group_start[size_t(g + 1)] > p.group_start[size_t(g)], "group {} is empty", g);
  MOA_CHECK(int64_t(p.weight.size()) == p.items() * p.rows);
  MOA_CHECK(int64_t(p.lo.size()) == p.rows && int64_t(p.hi.size()) == p.rows);
  if (p.max_distinct > 0) {
    MOA_CHECK(int64_t(p.label.size()) == p.items() && int64_t(p.cluster.size()) == p.groups());
  }
}

}  // namespace

bool choice_feasible(const ChoiceProblem& p, const std::vector<int32_t>& choice) {
  if (int64_t(choice.size()) != p.groups()) return false;
  std::vector<double> sum(static_cast<size_t>(p.rows), 0.0);
  for (int64_t g = 0; g < p.groups(); ++g) {
    int32_t i = choice[size_t(g)];
    if (i < p.group_start[size_t(g)] || i >= p.group_start[size_t(g + 1)]) return false;
    for (int32_t k = 0; k < p.rows; ++k) sum[size_t(k)] += p.weight[size_t(i) * size_t(p.rows) + size_t(k)];
  }
  for (int32_t k = 0; k < p.rows; ++k) {
    double lo = p.lo[size_t(k)], hi = p.hi[size_t(k)];
    if (sum[size_t(k)] > hi + kChoiceFeasTol * std::max(1.0, std::fabs(hi))) return false;
    if (sum[size_t(k)] < lo - kChoiceFeasTol * std::max(1.0, std::fabs(lo))) return false;
  }
  return distinct_ok(p, choice);
}

double choice_cost(const ChoiceProblem& p, const std::vector<int32_t>& choice) {
  double c = 0;
  for (int32_t i : choice) c += p.cost[size_t(i)];
  return c;
}

ChoiceResult solve_choice_mckp(const ChoiceProblem& p, const std::vector<double>& warm_duals, int64_t max_nodes) {
  check_problem(p);
  auto t0 = std::chrono::steady_clock::now();
  BranchAndBound bb(p, max_nodes);
  ChoiceResult r = bb.run(warm_duals);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

ChoiceResult solve_choice_brute_force(const ChoiceProblem& p) {
  check_problem(p);
  auto t0 = std::chrono::steady_clock::now();
  ChoiceResult best;
  std::vector<int32_t> choice(static_cast<size_t>(p.groups()));
  for (int64_t g = 0; g < p.groups(); ++g) choice[size_t(g)] = p.group_start[size_t(g)];
  for (;;) {
    ++best.nodes;
    if (choice_feasible(p, choice)) {
      double c = choice_cost(p, choice);
      if (!best.feasible || c < best.objective) {
        best.feasible = true;
        best.objective = c;
        best.choice = choice;
      }
    }
    int64_t g = 0;
    while (g < p.groups() && ++choice[size_t(g)] == p.group_start[size_t(g + 1)]) {
      choice[size_t(g)] = p.group_start[size_t(g)];
      ++g;
    }
    if (g == p.groups()) break;
  }
  best.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return best;
}

}  // namespace moa
