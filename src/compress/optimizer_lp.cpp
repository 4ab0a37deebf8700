// Primal simplex with generalised upper bounding for the LP relaxation of the multiple-choice
// problem (see optimizer_lp.h). Variables: items x_i >= 0 (sum over each group = 1, implicit),
// one slack s_k in [lo_k, hi_k] per coupling row (row k: sum_i w_ik x_i - s_k = 0), and in phase 1
// one artificial a_k >= 0 per row that starts infeasible. The basis is one key item per group
// plus m "extra" variables; the working basis M holds the extras' columns relative to their
// group's key (item i of group g: w_i - w_key(g); slack: -e_k; artificial: sigma_k e_k).
#include "optimizer_lp.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "moa/core/error.h"

namespace moa::detail {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kDualTol = 1e-11;   // scaled costs are in [-1, 1]
constexpr double kPivotTol = 1e-10;  // scaled weights are in [-1, 1]
constexpr double kFeasTol = 1e-9;    // phase 1 objective (sum of artificials, scaled)

class GubSimplex {
 public:
  GubSimplex(const LpProblem& p, const std::vector<double>& warm_pi) : p_(p) {
    m_ = p.rows;
    g_ = p.groups();
    n_ = p.items();
    MOA_CHECK(g_ >= 1 && m_ >= 0);
    group_of_.resize(size_t(n_));
    for (int32_t g = 0; g < g_; ++g) {
      MOA_CHECK(p.start[size_t(g + 1)] > p.start[size_t(g)], "group {} has no items", g);
      for (int32_t i = p.start[size_t(g)]; i < p.start[size_t(g + 1)]; ++i) group_of_[size_t(i)] = g;
    }
    // Scale costs to max |c| = 1 and each row to max |w| = 1 so that tolerances are absolute.
    cs_ = 0;
    for (double v : p.cost) cs_ = std::max(cs_, std::fabs(v));
    if (cs_ == 0) cs_ = 1;
    rs_.assign(size_t(m_), 0.0);
    for (int32_t i = 0; i < n_; ++i)
      for (int32_t k = 0; k < m_; ++k) rs_[size_t(k)] = std::max(rs_[size_t(k)], std::fabs(p.weight[size_t(i * m_ + k)]));
    for (double& r : rs_)
      if (r == 0) r = 1;
    c_.resize(size_t(n_));
    for (int32_t i = 0; i < n_; ++i) c_[size_t(i)] = p.cost[size_t(i)] / cs_;
    w_.resize(size_t(n_) * size_t(m_));
    for (int32_t i = 0; i < n_; ++i)
      for (int32_t k = 0; k < m_; ++k) w_[size_t(i * m_ + k)] = p.weight[size_t(i * m_ + k)] / rs_[size_t(k)];
    lo_.resize(size_t(m_));
    hi_.resize(size_t(m_));
    for (int32_t k = 0; k < m_; ++k) {
      lo_[size_t(k)] = p.lo[size_t(k)] / rs_[size_t(k)];
      hi_[size_t(k)] = p.hi[size_t(k)] / rs_[size_t(k)];
    }
    std::vector<double> pi0(static_cast<size_t>(m_), 0.0);
    if (warm_pi.size() == size_t(m_)) {
      for (int32_t k = 0; k < m_; ++k) pi0[size_t(k)] = warm_pi[size_t(k)] * rs_[size_t(k)] / cs_;
    } else {
      pi0 = crash();
    }
    key_.resize(size_t(g_));
    for (int32_t g = 0; g < g_; ++g) key_[size_t(g)] = argmin_group(g, pi0);
  }

  LpResult run() {
    init_basis();
    LpResult res;
    int64_t stall = 0;
    double last_obj = kInf;
    bool bland = false;
    const int64_t max_iter = 50 * int64_t(g_ + m_) + 10000;
    int restarts = 0;
    for (int64_t it = 0;; ++it) {
      MOA_CHECK(it < max_iter, "LP simplex did not converge in {} iterations", max_iter);
      if (!refresh()) {
        // A numerically singular basis: start again from the keys the last duals price best
        // (a crash basis is always regular).
        MOA_CHECK(++restarts <= 3, "LP basis singular again after {} restarts", restarts - 1);
        std::vector<double> pi = pi_;
        pi.resize(size_t(m_), 0.0);
        for (int32_t g = 0; g < g_; ++g) key_[size_t(g)] = argmin_group(g, pi);
        init_basis();
        last_obj = kInf;
        stall = 0;
        bland = false;
        continue;
      }
      if (phase_ == 1 && phase1_objective() <= kFeasTol) {
        phase_ = 2;
        last_obj = kInf;
        stall = 0;
      }
      duals();
      // Degenerate pivots (no progress on the best objective so far) switch to Bland's rule,
      // which cannot cycle, until the objective really improves.
      double obj = phase_objective();
      if (obj < last_obj - 1e-11 * (1 + std::fabs(obj))) {
        last_obj = obj;
        stall = 0;
        bland = false;
      } else if (++stall > 50) {
        bland = true;
      }
      Entering e = price(bland);
      if (e.var < 0) {
        if (phase_ == 1) {
          if (phase1_objective() > kFeasTol) {
            res.feasible = false;
            res.iterations = it;
            return res;
          }
          phase_ = 2;
          last_obj = kInf;
          stall = 0;
          continue;
        }
        res.iterations = it;
        break;
      }
      pivot(e, bland);  // an artificial that leaves the basis never comes back
    }
    res.feasible = true;
    res.x.assign(size_t(n_), 0.0);
    for (int32_t g = 0; g < g_; ++g) res.x[size_t(key_[size_t(g)])] = std::max(0.0, xkey_[size_t(g)]);
    for (int32_t s = 0; s < m_; ++s) {
      int32_t v = extra_[size_t(s)];
      if (v < n_) res.x[size_t(v)] = std::max(0.0, xe_[size_t(s)]);
    }
    res.value = 0;
    for (int32_t i = 0; i < n_; ++i) res.value += p_.cost[size_t(i)] * res.x[size_t(i)];
    res.pi.resize(size_t(m_));
    for (int32_t k = 0; k < m_; ++k) res.pi[size_t(k)] = pi_[size_t(k)] * cs_ / rs_[size_t(k)];
    res.bound = lagrangian_bound(p_, res.pi, nullptr);
    return res;
  }

 private:
  struct Entering {
    int32_t var = -1;
    int dir = 0;  // +1 increase, -1 decrease
  };

  bool is_item(int32_t v) const { return v < n_; }
  bool is_slack(int32_t v) const { return v >= n_ && v < n_ + m_; }
  bool is_art(int32_t v) const { return v >= n_ + m_; }

  double cost(int32_t v) const {
    if (is_item(v)) return phase_ == 2 ? c_[size_t(v)] : 0.0;
    if (is_art(v)) return phase_ == 1 ? 1.0 : 0.0;
    return 0.0;
  }
  double lower(int32_t v) const { return is_slack(v) ? lo_[size_t(v - n_)] : 0.0; }
  double upper(int32_t v) const {
    if (is_slack(v)) return hi_[size_t(v - n_)];
    if (is_art(v)) return phase_ == 1 ? kInf : 0.0;
    return kInf;
  }
  // Column of v in the working basis' coordinates (relative to its group's key).
  void column(int32_t v, double* col) const {
    std::fill(col, col + m_, 0.0);
    if (is_item(v)) {
      int32_t kv = key_[size_t(group_of_[size_t(v)])];
      for (int32_t k = 0; k < m_; ++k) col[k] = w_[size_t(v * m_ + k)] - w_[size_t(kv * m_ + k)];
    } else if (is_slack(v)) {
      col[v - n_] = -1.0;
    } else {
      int32_t k = v - n_ - m_;
      col[k] = sigma_[size_t(k)];
    }
  }

  int32_t argmin_group(int32_t g, const std::vector<double>& pi) const {
    int32_t best = -1;
    double bv = kInf;
    for (int32_t i = p_.start[size_t(g)]; i < p_.start[size_t(g + 1)]; ++i) {
      double v = c_[size_t(i)];
      for (int32_t k = 0; k < m_; ++k) v -= pi[size_t(k)] * w_[size_t(i * m_ + k)];
      if (v < bv) {
        bv = v;
        best = i;
      }
    }
    return best;
  }

  // Total bound violation of the keys argmin(c - pi.w).
  double violation(const std::vector<double>& pi, std::vector<double>* sums) const {
    std::vector<double> r(static_cast<size_t>(m_), 0.0);
    for (int32_t g = 0; g < g_; ++g) {
      int32_t i = argmin_group(g, pi);
      for (int32_t k = 0; k < m_; ++k) r[size_t(k)] += w_[size_t(i * m_ + k)];
    }
    double v = 0;
    for (int32_t k = 0; k < m_; ++k) {
      v += std::max(0.0, r[size_t(k)] - hi_[size_t(k)]) + std::max(0.0, lo_[size_t(k)] - r[size_t(k)]);
    }
    if (sums) *sums = r;
    return v;
  }

  // A start close to feasibility: penalise the violated rows by one multiplier lambda, the
  // smallest on a geometric grid that removes the violation (or the least-violating one).
  std::vector<double> crash() const {
    std::vector<double> pi(static_cast<size_t>(m_), 0.0), r;
    double v0 = violation(pi, &r);
    if (v0 == 0 || m_ == 0) return pi;
    std::vector<double> dir(static_cast<size_t>(m_), 0.0);
    for (int32_t k = 0; k < m_; ++k) {
      if (r[size_t(k)] > hi_[size_t(k)]) dir[size_t(k)] = -1;
      if (r[size_t(k)] < lo_[size_t(k)]) dir[size_t(k)] = 1;
    }
    std::vector<double> best = pi;
    double best_v = v0;
    for (int e = -48; e <= 48; ++e) {
      double lambda = std::pow(2.0, e * 0.5);
      for (int32_t k = 0; k < m_; ++k) pi[size_t(k)] = lambda * dir[size_t(k)];
      double v = violation(pi, nullptr);
      if (v < best_v) {
        best_v = v;
        best = pi;
      }
      if (v == 0) break;
    }
    return best;
  }

  void init_basis() {
    pos_.assign(size_t(n_ + 2 * m_), -1);
    for (int32_t g = 0; g < g_; ++g) pos_[size_t(key_[size_t(g)])] = -2;
    std::vector<double> r(static_cast<size_t>(m_), 0.0);
    for (int32_t g = 0; g < g_; ++g)
      for (int32_t k = 0; k < m_; ++k) r[size_t(k)] += w_[size_t(key_[size_t(g)] * m_ + k)];
    extra_.assign(size_t(m_), -1);
    sval_.assign(size_t(m_), 0.0);
    sigma_.assign(size_t(m_), 1.0);
    phase_ = 2;
    for (int32_t k = 0; k < m_; ++k) {
      double rk = r[size_t(k)];
      if (rk >= lo_[size_t(k)] && rk <= hi_[size_t(k)]) {
        extra_[size_t(k)] = n_ + k;  // slack basic
      } else {
        double b = rk > hi_[size_t(k)] ? hi_[size_t(k)] : lo_[size_t(k)];
        sval_[size_t(k)] = b;
        sigma_[size_t(k)] = b > rk ? 1.0 : -1.0;
        extra_[size_t(k)] = n_ + m_ + k;  // artificial basic, a_k = |b - r_k|
        phase_ = 1;
      }
      pos_[size_t(extra_[size_t(k)])] = k;
    }
  }

  // Rebuilds and inverts M, then the basic values from scratch (no drift between iterations).
  // False when M is numerically singular.
  bool refresh() {
    std::vector<double> mat(static_cast<size_t>(m_ * m_)), col(static_cast<size_t>(m_));
    for (int32_t s = 0; s < m_; ++s) {
      column(extra_[size_t(s)], col.data());
      for (int32_t k = 0; k < m_; ++k) mat[size_t(k * m_ + s)] = col[size_t(k)];
    }
    if (!invert(mat)) return false;
    std::vector<double> rhs(static_cast<size_t>(m_), 0.0);
    for (int32_t g = 0; g < g_; ++g)
      for (int32_t k = 0; k < m_; ++k) rhs[size_t(k)] -= w_[size_t(key_[size_t(g)] * m_ + k)];
    for (int32_t k = 0; k < m_; ++k)
      if (pos_[size_t(n_ + k)] == -1) rhs[size_t(k)] += sval_[size_t(k)];
    xe_.assign(size_t(m_), 0.0);
    for (int32_t s = 0; s < m_; ++s)
      for (int32_t k = 0; k < m_; ++k) xe_[size_t(s)] += minv_[size_t(s * m_ + k)] * rhs[size_t(k)];
    xkey_.assign(size_t(g_), 1.0);
    for (int32_t s = 0; s < m_; ++s) {
      int32_t v = extra_[size_t(s)];
      if (is_item(v)) xkey_[size_t(group_of_[size_t(v)])] -= xe_[size_t(s)];
    }
    return true;
  }

  bool invert(std::vector<double> a) {
    const int32_t m = m_;
    minv_.assign(size_t(m * m), 0.0);
    for (int32_t i = 0; i < m; ++i) minv_[size_t(i * m + i)] = 1.0;
    for (int32_t c = 0; c < m; ++c) {
      int32_t piv = c;
      for (int32_t r = c + 1; r < m; ++r)
        if (std::fabs(a[size_t(r * m + c)]) > std::fabs(a[size_t(piv * m + c)])) piv = r;
      if (!(std::fabs(a[size_t(piv * m + c)]) > 1e-11)) return false;
      if (piv != c) {
        for (int32_t j = 0; j < m; ++j) {
          std::swap(a[size_t(c * m + j)], a[size_t(piv * m + j)]);
          std::swap(minv_[size_t(c * m + j)], minv_[size_t(piv * m + j)]);
        }
      }
      double d = a[size_t(c * m + c)];
      for (int32_t j = 0; j < m; ++j) {
        a[size_t(c * m + j)] /= d;
        minv_[size_t(c * m + j)] /= d;
      }
      for (int32_t r = 0; r < m; ++r) {
        if (r == c) continue;
        double f = a[size_t(r * m + c)];
        if (f == 0) continue;
        for (int32_t j = 0; j < m; ++j) {
          a[size_t(r * m + j)] -= f * a[size_t(c * m + j)];
          minv_[size_t(r * m + j)] -= f * minv_[size_t(c * m + j)];
        }
      }
    }
    return true;
  }

  void duals() {
    std::vector<double> ce(static_cast<size_t>(m_));
    for (int32_t s = 0; s < m_; ++s) {
      int32_t v = extra_[size_t(s)];
      ce[size_t(s)] = cost(v) - (is_item(v) ? cost(key_[size_t(group_of_[size_t(v)])]) : 0.0);
    }
    pi_.assign(size_t(m_), 0.0);
    for (int32_t k = 0; k < m_; ++k)
      for (int32_t s = 0; s < m_; ++s) pi_[size_t(k)] += minv_[size_t(s * m_ + k)] * ce[size_t(s)];
  }

  double phase1_objective() const {
    double v = 0;
    for (int32_t s = 0; s < m_; ++s)
      if (is_art(extra_[size_t(s)])) v += std::max(0.0, xe_[size_t(s)]);
    return v;
  }
  double phase_objective() const {
    if (phase_ == 1) return phase1_objective();
    double v = 0;
    for (int32_t g = 0; g < g_; ++g) v += c_[size_t(key_[size_t(g)])] * xkey_[size_t(g)];
    for (int32_t s = 0; s < m_; ++s)
      if (is_item(extra_[size_t(s)])) v += c_[size_t(extra_[size_t(s)])] * xe_[size_t(s)];
    return v;
  }

  Entering price(bool bland) const {
    Entering best;
    // Reduced costs carry rounding of the order of |pi| * eps: a tolerance relative to |pi| keeps
    // noise from looking like an improving direction.
    double pi_max = 0;
    for (double v : pi_) pi_max = std::max(pi_max, std::fabs(v));
    const double tol = kDualTol * (1 + pi_max);
    double best_score = -tol;
    auto consider = [&](int32_t v, double score, int dir) {
      if (score >= -tol) return;
      if (bland) {
        if (best.var < 0 || v < best.var) best = {v, dir};
      } else if (score < best_score) {
        best_score = score;
        best = {v, dir};
      }
    };
    // Partial pricing: groups are scanned from where the last scan stopped, a chunk at a time,
    // until a chunk holds an improving item (a full cycle without one proves optimality).
    // Bland's rule needs the smallest index, so it scans everything.
    const int32_t chunk = bland ? g_ : std::max<int32_t>(64, g_ / 16);
    for (int32_t scanned = 0; scanned < g_;) {
      const int32_t end = std::min(g_, scanned + chunk);
      for (; scanned < end; ++scanned) {
        const int32_t g = bland ? scanned : (cursor_ + scanned) % g_;
        const int32_t kv = key_[size_t(g)];
        double base = cost(kv);
        for (int32_t k = 0; k < m_; ++k) base -= pi_[size_t(k)] * w_[size_t(kv * m_ + k)];
        for (int32_t i = p_.start[size_t(g)]; i < p_.start[size_t(g + 1)]; ++i) {
          if (pos_[size_t(i)] != -1) continue;
          double d = cost(i) - base;
          for (int32_t k = 0; k < m_; ++k) d -= pi_[size_t(k)] * w_[size_t(i * m_ + k)];
          consider(i, d, +1);
        }
      }
      if (best.var >= 0 && !bland) {
        cursor_ = (cursor_ + scanned) % g_;
        break;
      }
    }
    for (int32_t k = 0; k < m_; ++k) {
      int32_t v = n_ + k;
      if (pos_[size_t(v)] != -1 || lo_[size_t(k)] == hi_[size_t(k)]) continue;
      double d = pi_[size_t(k)];
      bool at_hi = sval_[size_t(k)] == hi_[size_t(k)];
      if (at_hi) {
        consider(v, -d, -1);
      } else {
        consider(v, d, +1);
      }
    }
    return best;
  }

  void pivot(const Entering& e, bool bland) {
    const int32_t q = e.var;
    const double dir = e.dir;
    std::vector<double> a(static_cast<size_t>(m_)), y(static_cast<size_t>(m_), 0.0);
    column(q, a.data());
    for (int32_t s = 0; s < m_; ++s)
      for (int32_t k = 0; k < m_; ++k) y[size_t(s)] += minv_[size_t(s * m_ + k)] * a[size_t(k)];
    // Rates per unit step t: extras dx_s/dt = -dir*y_s; keys dkey_h/dt = kappa_h.
    std::vector<std::pair<int32_t, double>> kappa;  // (group, rate), few entries
    auto add_kappa = [&](int32_t g, double v) {
      for (auto& [h, r] : kappa)
        if (h == g) {
          r += v;
          return;
        }
      kappa.push_back({g, v});
    };
    for (int32_t s = 0; s < m_; ++s) {
      int32_t v = extra_[size_t(s)];
      if (is_item(v)) add_kappa(group_of_[size_t(v)], dir * y[size_t(s)]);
    }
    if (is_item(q)) add_kappa(group_of_[size_t(q)], -dir);

    enum Kind { kNone, kFlip, kExtra, kKey };
    struct Candidate {
      double exact, relaxed, piv;
      int32_t var;
      Kind kind;
      int32_t which;
    };
    std::vector<Candidate> cands;
    // relaxed: the step with the bound moved out by the feasibility tolerance (Harris).
    auto add = [&](double gap, double rate, int32_t var, Kind k, int32_t w) {
      const double r = std::fabs(rate);
      cands.push_back({std::max(gap, 0.0) / r, (std::max(gap, 0.0) + kFeasTol) / r, rate, var, k, w});
    };
    if (is_slack(q)) {
      int32_t k = q - n_;
      double span = hi_[size_t(k)] - lo_[size_t(k)];
      if (std::isfinite(span)) add(span, 1.0, q, kFlip, -1);
    }
    for (int32_t s = 0; s < m_; ++s) {
      double rate = -dir * y[size_t(s)];
      if (std::fabs(rate) <= kPivotTol) continue;
      int32_t v = extra_[size_t(s)];
      double x = xe_[size_t(s)];
      if (rate < 0) {
        double lb = lower(v);
        if (std::isfinite(lb)) add(x - lb, rate, v, kExtra, s);
      } else {
        double ub = upper(v);
        if (std::isfinite(ub)) add(ub - x, rate, v, kExtra, s);
      }
    }
    for (auto& [h, rate] : kappa) {
      if (rate < -kPivotTol) add(xkey_[size_t(h)], rate, key_[size_t(h)], kKey, h);
    }
    MOA_CHECK(!cands.empty(), "LP relaxation unbounded (entering variable {})", q);
    const Candidate* pick = nullptr;
    if (bland) {
      // Textbook ratio test, ties to the smallest index (with Bland's entering rule: no cycling).
      for (const Candidate& c : cands) {
        if (!pick || c.exact < pick->exact - 1e-12 ||
            (c.exact <= pick->exact + 1e-12 && c.var < pick->var)) {
          pick = &c;
        }
      }
    } else {
      // Harris: the largest pivot among the steps within the relaxed bound, so that tiny
      // pivots (ill-conditioned bases) are avoided where a tolerance allows.
      double t_max = kInf;
      for (const Candidate& c : cands) t_max = std::min(t_max, c.relaxed);
      for (const Candidate& c : cands) {
        if (c.exact <= t_max && (!pick || std::fabs(c.piv) > std::fabs(pick->piv))) pick = &c;
      }
    }
    const Kind kind = pick->kind;
    const int32_t which = pick->which;
    const double t = pick->exact;

    if (kind == kFlip) {
      int32_t k = q - n_;
      sval_[size_t(k)] = dir > 0 ? hi_[size_t(k)] : lo_[size_t(k)];
      return;
    }
    if (kind == kExtra) {
      const int32_t s = which, v = extra_[size_t(s)];
      if (is_slack(v)) {
        int32_t k = v - n_;
        sval_[size_t(k)] = (-dir * y[size_t(s)]) < 0 ? lo_[size_t(k)] : hi_[size_t(k)];
      }
      pos_[size_t(v)] = -1;
      extra_[size_t(s)] = q;
      pos_[size_t(q)] = s;
      return;
    }
    // A key leaves: the group's basic item with the largest value after the step takes its place.
    const int32_t h = which, old_key = key_[size_t(h)];
    int32_t new_key = -1, new_slot = -1;
    double best_val = -kInf;
    if (is_item(q) && group_of_[size_t(q)] == h) {
      new_key = q;
      best_val = t;
    }
    for (int32_t s = 0; s < m_; ++s) {
      int32_t v = extra_[size_t(s)];
      if (!is_item(v) || group_of_[size_t(v)] != h) continue;
      double val = xe_[size_t(s)] - dir * y[size_t(s)] * t;
      if (val > best_val) {
        best_val = val;
        new_key = v;
        new_slot = s;
      }
    }
    MOA_CHECK(new_key >= 0, "no item left to key group {}", h);
    pos_[size_t(old_key)] = -1;
    key_[size_t(h)] = new_key;
    pos_[size_t(new_key)] = -2;
    if (new_slot >= 0) {
      extra_[size_t(new_slot)] = q;
      pos_[size_t(q)] = new_slot;
    }
  }

  const LpProblem& p_;
  int32_t m_ = 0, g_ = 0, n_ = 0;
  std::vector<int32_t> group_of_;
  double cs_ = 1;
  std::vector<double> rs_, c_, w_, lo_, hi_;
  std::vector<int32_t> key_, extra_, pos_;
  std::vector<double> sval_, sigma_, minv_, xe_, xkey_, pi_;
  int phase_ = 2;
  mutable int32_t cursor_ = 0;  // partial pricing: next group to scan
};

}  // namespace

double lagrangian_bound(const LpProblem& p, std::vector<double>& pi, std::vector<double>* reduced) {
  const int32_t m = p.rows;
  for (int32_t k = 0; k < m; ++k) {
    if (p.lo[size_t(k)] == -kInf) pi[size_t(k)] = std::min(pi[size_t(k)], 0.0);
    if (p.hi[size_t(k)] == kInf) pi[size_t(k)] = std::max(pi[size_t(k)], 0.0);
  }
  double bound = 0;
  if (reduced) reduced->assign(p.cost.size(), 0.0);
  for (int32_t g = 0; g < p.groups(); ++g) {
    double best = kInf;
    for (int32_t i = p.start[size_t(g)]; i < p.start[size_t(g + 1)]; ++i) {
      double v = p.cost[size_t(i)];
      for (int32_t k = 0; k < m; ++k) v -= pi[size_t(k)] * p.weight[size_t(i * m + k)];
      if (reduced) (*reduced)[size_t(i)] = v;
      best = std::min(best, v);
    }
    bound += best;
    if (reduced)
      for (int32_t i = p.start[size_t(g)]; i < p.start[size_t(g + 1)]; ++i) (*reduced)[size_t(i)] -= best;
  }
  // sum_k pi_k s_k over s in [lo, hi]; both bounds infinite leaves pi_k = 0.
  for (int32_t k = 0; k < m; ++k) {
    double v = pi[size_t(k)];
    if (v > 0) bound += v * p.lo[size_t(k)];
    if (v < 0) bound += v * p.hi[size_t(k)];
  }
  return bound;
}

LpResult solve_lp(const LpProblem& p, const std::vector<double>& warm_pi) {
  GubSimplex s(p, warm_pi);
  return s.run();
}

}  // namespace moa::detail
