// Greedy repair and local search for "one item per group" (see optimizer_search.h).
#include "optimizer_search.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace moa::detail {

namespace {

constexpr double kImprove = 1e-12;  // relative cost decrease that counts as an improvement

class Search {
 public:
  Search(const ChoiceProblem& p, const SearchScale& scale, const std::vector<int32_t>& start,
         const std::vector<int32_t>& items, std::vector<int32_t>& choice)
      : p_(p), start_(start), items_(items), choice_(choice), m_(p.rows), tol_(scale.tol),
        inv_scale_(scale.inv_scale) {
    sum_.assign(size_t(m_), 0.0);
    for (int64_t g = 0; g < p.groups(); ++g)
      for (int32_t k = 0; k < m_; ++k) sum_[size_t(k)] += w(choice[size_t(g)], k);
    cost_ = choice_cost(p, choice);
    if (p.max_distinct > 0) {
      for (int64_t g = 0; g < p.groups(); ++g) {
        size_t c = size_t(p.cluster[size_t(g)]);
        if (labels_.size() <= c) labels_.resize(c + 1);
        add_label(c, p.label[size_t(choice[size_t(g)])], +1);
      }
    }
  }

  // Greedy: the swap with the least cost per unit of violation removed, until feasible.
  bool repair() {
    std::vector<double> dw(static_cast<size_t>(m_));
    for (int64_t step = 0; step < 4 * p_.groups() + 16; ++step) {
      const double v = violation(nullptr);
      if (v == 0) return true;
      int32_t bg = -1, bi = -1;
      double best = std::numeric_limits<double>::infinity();
      for (int32_t g = 0; g < int32_t(p_.groups()); ++g) {
        const int32_t cur = choice_[size_t(g)];
        for (int32_t j = start_[size_t(g)]; j < start_[size_t(g + 1)]; ++j) {
          const int32_t i = items_[size_t(j)];
          if (i == cur || !label_ok(g, i)) continue;
          for (int32_t k = 0; k < m_; ++k) dw[size_t(k)] = w(i, k) - w(cur, k);
          const double dv = violation(dw.data()) - v;
          if (dv >= -1e-15) continue;
          const double score = (p_.cost[size_t(i)] - p_.cost[size_t(cur)]) / -dv;
          if (score < best) {
            best = score;
            bg = g;
            bi = i;
          }
        }
      }
      if (bg < 0) return false;
      apply(bg, bi);
    }
    return violation(nullptr) == 0;
  }

  // Best feasible single swap that lowers the cost, until none.
  void one_opt() {
    std::vector<double> dw(static_cast<size_t>(m_));
    for (int64_t step = 0; step < 8 * p_.groups() + 16; ++step) {
      int32_t bg = -1, bi = -1;
      double best = -kImprove * std::max(1e-300, std::fabs(cost_));
      for (int32_t g = 0; g < int32_t(p_.groups()); ++g) {
        const int32_t cur = choice_[size_t(g)];
        for (int32_t j = start_[size_t(g)]; j < start_[size_t(g + 1)]; ++j) {
          const int32_t i = items_[size_t(j)];
          const double dc = p_.cost[size_t(i)] - p_.cost[size_t(cur)];
          if (i == cur || dc >= best || !label_ok(g, i)) continue;
          for (int32_t k = 0; k < m_; ++k) dw[size_t(k)] = w(i, k) - w(cur, k);
          if (violation(dw.data()) > 0) continue;
          best = dc;
          bg = g;
          bi = i;
        }
      }
      if (bg < 0) return;
      apply(bg, bi);
    }
  }

  // Pairs of swaps in two groups that together lower the cost and stay feasible (e.g. one head
  // takes a denser rule while another gives up as much). First improvement, best partner.
  void two_opt(int64_t budget) {
    struct Move {
      int32_t g, i;
      double dc;
    };
    std::vector<double> dw(static_cast<size_t>(m_));
    while (budget > 0) {
      std::vector<Move> moves;
      for (int32_t g = 0; g < int32_t(p_.groups()); ++g) {
        const int32_t cur = choice_[size_t(g)];
        for (int32_t j = start_[size_t(g)]; j < start_[size_t(g + 1)]; ++j) {
          const int32_t i = items_[size_t(j)];
          if (i != cur && label_ok(g, i)) moves.push_back({g, i, p_.cost[size_t(i)] - p_.cost[size_t(cur)]});
        }
      }
      std::sort(moves.begin(), moves.end(), [](const Move& a, const Move& b) { return a.dc < b.dc; });
      const double need = kImprove * std::max(1e-300, std::fabs(cost_));
      bool improved = false;
      for (size_t a = 0; a < moves.size() && moves[a].dc < 0 && !improved; ++a) {
        const Move& ma = moves[a];
        const int32_t ca = choice_[size_t(ma.g)];
        double best = -need;
        const Move* partner = nullptr;
        for (size_t b = 0; b < moves.size() && budget > 0; ++b) {
          const Move& mb = moves[b];
          if (ma.dc + mb.dc >= best) break;  // sorted: no later partner is better
          if (mb.g == ma.g) continue;
          --budget;
          const int32_t cb = choice_[size_t(mb.g)];
          for (int32_t k = 0; k < m_; ++k)
            dw[size_t(k)] = w(ma.i, k) - w(ca, k) + w(mb.i, k) - w(cb, k);
          if (violation(dw.data()) > 0) continue;
          best = ma.dc + mb.dc;
          partner = &mb;
        }
        if (partner) {
          const Move mb = *partner;
          apply(ma.g, ma.i);
          if (label_ok(mb.g, mb.i)) {
            apply(mb.g, mb.i);
            improved = true;
          } else {
            apply(ma.g, ca);  // the pair breaks the K rule in a shared cluster: undo
          }
        }
        if (budget <= 0) break;
      }
      if (!improved) return;
    }
  }

 private:
  double w(int32_t i, int32_t k) const { return p_.weight[size_t(i) * size_t(m_) + size_t(k)]; }

  // Scaled total violation of sum (+ dw).
  double violation(const double* dw) const {
    double v = 0;
    for (int32_t k = 0; k < m_; ++k) {
      double s = sum_[size_t(k)] + (dw ? dw[k] : 0.0);
      double over = s - p_.hi[size_t(k)] - tol_[size_t(k)];
      double under = p_.lo[size_t(k)] - tol_[size_t(k)] - s;
      if (over > 0) v += over * inv_scale_[size_t(k)];
      if (under > 0) v += under * inv_scale_[size_t(k)];
    }
    return v;
  }

  void apply(int32_t g, int32_t i) {
    const int32_t cur = choice_[size_t(g)];
    for (int32_t k = 0; k < m_; ++k) sum_[size_t(k)] += w(i, k) - w(cur, k);
    cost_ += p_.cost[size_t(i)] - p_.cost[size_t(cur)];
    if (p_.max_distinct > 0) {
      size_t c = size_t(p_.cluster[size_t(g)]);
      add_label(c, p_.label[size_t(cur)], -1);
      add_label(c, p_.label[size_t(i)], +1);
    }
    choice_[size_t(g)] = i;
  }

  // With max_distinct, a swap may only move to a label its cluster already uses (or add one
  // while the cluster is under the limit).
  bool label_ok(int32_t g, int32_t i) const {
    if (p_.max_distinct <= 0) return true;
    const auto& ls = labels_[size_t(p_.cluster[size_t(g)])];
    const int32_t l = p_.label[size_t(i)];
    for (const auto& [label, count] : ls)
      if (label == l) return true;
    int64_t distinct = int64_t(ls.size());
    const int32_t cur_label = p_.label[size_t(choice_[size_t(g)])];
    for (const auto& [label, count] : ls)
      if (label == cur_label && count == 1) --distinct;
    return distinct + 1 <= p_.max_distinct;
  }

  void add_label(size_t c, int32_t l, int d) {
    auto& ls = labels_[c];
    for (size_t j = 0; j < ls.size(); ++j) {
      if (ls[j].first == l) {
        ls[j].second += d;
        if (ls[j].second == 0) ls.erase(ls.begin() + std::ptrdiff_t(j));
        return;
      }
    }
    if (d > 0) ls.push_back({l, d});
  }

  const ChoiceProblem& p_;
  const std::vector<int32_t>& start_;
  const std::vector<int32_t>& items_;
  std::vector<int32_t>& choice_;
  const int32_t m_;
  const std::vector<double>& tol_;
  const std::vector<double>& inv_scale_;
  std::vector<double> sum_;
  double cost_ = 0;
  std::vector<std::vector<std::pair<int32_t, int32_t>>> labels_;  // per cluster: (label, uses)
};

}  // namespace

SearchScale make_search_scale(const ChoiceProblem& p) {
  const int32_t m = p.rows;
  SearchScale sc;
  sc.tol.resize(size_t(m));
  sc.inv_scale.assign(size_t(m), 0.0);
  for (int32_t k = 0; k < m; ++k) {
    double b = std::max(std::isfinite(p.lo[size_t(k)]) ? std::fabs(p.lo[size_t(k)]) : 0.0,
                        std::isfinite(p.hi[size_t(k)]) ? std::fabs(p.hi[size_t(k)]) : 0.0);
    // Half the final check's tolerance, so that what passes here passes there.
    sc.tol[size_t(k)] = 0.5 * kChoiceFeasTol * std::max(1.0, b);
  }
  for (int64_t i = 0; i < p.items(); ++i)
    for (int32_t k = 0; k < m; ++k)
      sc.inv_scale[size_t(k)] = std::max(sc.inv_scale[size_t(k)], std::fabs(p.weight[size_t(i) * size_t(m) + size_t(k)]));
  for (double& s : sc.inv_scale) s = s > 0 ? 1.0 / s : 1.0;
  return sc;
}

bool local_search(const ChoiceProblem& p, const SearchScale& scale,
                  const std::vector<int32_t>& start, const std::vector<int32_t>& items,
                  std::vector<int32_t>& choice, int64_t pair_budget,
                  const std::function<void(const std::string&)>& trace) {
  Search s(p, scale, start, items, choice);
  auto say = [&](const char* stage) {
    if (trace && pair_budget > 0)
      trace(fmt::format("search: {} {:.10g}", stage, choice_cost(p, choice)));
  };
  say("start cost");
  if (!s.repair()) return false;
  say("repaired");
  s.one_opt();
  say("1-opt");
  if (pair_budget > 0) {
    s.two_opt(pair_budget);
    say("2-opt");
    s.one_opt();
  }
  return choice_feasible(p, choice);
}

}  // namespace moa::detail
