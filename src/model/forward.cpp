#include "moa/model/forward.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numbers>
#include <random>

#include "moa/attention/attention.h"
#include "moa/core/error.h"

extern "C" void openblas_set_num_threads(int);

namespace moa {

void set_threads(int n) {
  if (n <= 0) n = omp_get_num_procs();
  omp_set_num_threads(n);
  openblas_set_num_threads(n);
}

std::vector<double> rope_inv_freq(const ModelConfig& c) {
  const int64_t half = c.head_dim / 2;
  std::vector<double> inv(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) {
    inv[size_t(i)] = 1.0 / std::pow(c.rope_theta, double(2 * i) / double(c.head_dim));
  }
  if (c.rope_scaling == RopeScaling::kLinear) {
    for (auto& f : inv) f /= c.rope_factor;
  } else if (c.rope_scaling == RopeScaling::kLlama3) {
    const double old_ctx = double(c.rope_original_max_position);
    const double low_wl = old_ctx / c.rope_low_freq_factor, high_wl = old_ctx / c.rope_high_freq_factor;
    for (auto& f : inv) {
      const double wl = 2 * std::numbers::pi / f;
      double g = wl > low_wl ? f / c.rope_factor : f;
      if (!(wl < high_wl) && !(wl > low_wl)) {
        const double s = (old_ctx / wl - c.rope_low_freq_factor) /
                         (c.rope_high_freq_factor - c.rope_low_freq_factor);
        g = (1 - s) * g / c.rope_factor + s * g;
      }
      f = g;
    }
  }
  if (!c.rope_freq_factors.empty()) {
    MOA_CHECK(int64_t(c.rope_freq_factors.size()) == half, "{} RoPE factors for {} frequencies",
              c.rope_freq_factors.size(), half);
    for (int64_t i = 0; i < half; ++i) inv[size_t(i)] /= c.rope_freq_factors[size_t(i)];
  }
  return inv;
}

RopeTable::RopeTable(const ModelConfig& c, int64_t n) : half(c.head_dim / 2) {
  auto inv = rope_inv_freq(c);
  cos.resize(size_t(n * half));
  sin.resize(size_t(n * half));
  for (int64_t p = 0; p < n; ++p) {
    for (int64_t i = 0; i < half; ++i) {
      const double a = double(p) * inv[size_t(i)];
      cos[size_t(p * half + i)] = float(std::cos(a));
      sin[size_t(p * half + i)] = float(std::sin(a));
    }
  }
}

void RopeTable::apply(float* x, int64_t rows, int64_t heads, int64_t pos0) const {
  const int64_t D = 2 * half;
#pragma omp parallel for schedule(static) if (rows > 1)
  for (int64_t r = 0; r < rows; ++r) {
    const float* c = &cos[size_t((pos0 + r) * half)];
    const float* s = &sin[size_t((pos0 + r) * half)];
    for (int64_t h = 0; h < heads; ++h) {
      float* v = x + (r * heads + h) * D;
      for (int64_t i = 0; i < half; ++i) {
        const float x1 = v[i], x2 = v[i + half];
        v[i] = x1 * c[i] - x2 * s[i];
        v[i + half] = x2 * c[i] + x1 * s[i];
      }
    }
  }
}

void rms_norm(const float* x, const float* w, int64_t T, int64_t C, double eps, float* y,
              float* rstd) {
#pragma omp parallel for schedule(static) if (T > 8)
  for (int64_t t = 0; t < T; ++t) {
    const float* xr = x + t * C;
    double ss = 0;
    for (int64_t i = 0; i < C; ++i) ss += double(xr[i]) * xr[i];
    const float r = float(1.0 / std::sqrt(ss / double(C) + eps));
    if (rstd) rstd[t] = r;
    for (int64_t i = 0; i < C; ++i) y[t * C + i] = xr[i] * r * w[i];
  }
}

void compute_logits(const Model& m, const float* hidden, int64_t T, float* logits) {
  matmul(hidden, m.head_weights(), nullptr, T, logits);
}

double token_nll(const float* logits, int64_t V, int32_t target) {
  float mx = -INFINITY;
  for (int64_t i = 0; i < V; ++i) mx = std::max(mx, logits[i]);
  double sum = 0;
  for (int64_t i = 0; i < V; ++i) sum += std::exp(double(logits[i] - mx));
  return std::log(sum) + double(mx) - double(logits[target]);
}

namespace {

// MLP rows are processed in chunks so that (rows, F) activations stay small at long contexts.
constexpr int64_t kRowChunk = 512;

void silu_mul(float* gate, const float* up, int64_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    gate[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

// The residual stream of a run: one embedding row per id, (T, C).
std::vector<float> embed_rows(const Model& m, const std::vector<int32_t>& ids) {
  const int64_t C = m.cfg.hidden;
  std::vector<float> x(ids.size() * size_t(C));
  for (size_t t = 0; t < ids.size(); ++t) {
    MOA_CHECK(ids[t] >= 0 && ids[t] < m.cfg.vocab, "token id {}", ids[t]);
    m.embed.row_f32(ids[t], &x[t * size_t(C)]);
  }
  return x;
}

// A layer's attention input for T rows: xn = norm(x), then q, k, v (before RoPE).
void project_qkv(const ModelConfig& c, const LayerWeights& L, const float* x, int64_t T, float* xn,
                 float* q, float* k, float* v) {
  rms_norm(x, L.attn_norm.data(), T, c.hidden, c.rms_eps, xn);
  matmul(xn, L.wq, L.bq.empty() ? nullptr : L.bq.data(), T, q);
  matmul(xn, L.wk, L.bk.empty() ? nullptr : L.bk.data(), T, k);
  matmul(xn, L.wv, L.bv.empty() ? nullptr : L.bv.data(), T, v);
}

// The rest of a layer after attention, for T rows: x += att Wo; x += MLP(norm(x)). Rows go in
// chunks of kRowChunk; tmp and up hold min(T, kRowChunk) * max(C, F) and * F floats.
void out_proj_and_mlp(const ModelConfig& c, const LayerWeights& L, const float* att, int64_t T,
                      float* x, float* xn, float* tmp, float* up) {
  const int64_t C = c.hidden, F = c.intermediate, QD = c.q_dim();
  for (int64_t r0 = 0; r0 < T; r0 += kRowChunk) {
    const int64_t n = std::min(kRowChunk, T - r0);
    float* xr = x + r0 * C;
    float* xnr = xn + r0 * C;
    matmul(att + r0 * QD, L.wo, L.bo.empty() ? nullptr : L.bo.data(), n, tmp);
    for (int64_t i = 0; i < n * C; ++i) xr[i] += tmp[i];
    rms_norm(xr, L.mlp_norm.data(), n, C, c.rms_eps, xnr);
    matmul(xnr, L.w_gate, L.b_gate.empty() ? nullptr : L.b_gate.data(), n, tmp);
    matmul(xnr, L.w_up, L.b_up.empty() ? nullptr : L.b_up.data(), n, up);
    silu_mul(tmp, up, n * F);
    matmul(tmp, L.w_down, L.b_down.empty() ? nullptr : L.b_down.data(), n, up);
    for (int64_t i = 0; i < n * C; ++i) xr[i] += up[i];
  }
}

}  // namespace

Session::Session(const Model& model, const CacheSpec& spec, int64_t batch)
    : model_(model), rope_(model.cfg, spec.n_ctx()) {
  MOA_CHECK(batch >= 1);
  const ModelConfig& c = model.cfg;
  const AttentionSpec& a = spec.attn;
  MOA_CHECK(a.layers == c.layers && a.heads == c.heads && a.kv_heads == c.kv_heads &&
            a.head_dim == c.head_dim);
  caches_.reserve(size_t(batch));
  for (int64_t b = 0; b < batch; ++b) caches_.push_back(make_cache(spec));
}

int64_t Session::kv_bytes() const {
  int64_t n = 0;
  for (auto& c : caches_) n += c->bytes();
  return n;
}

std::vector<float> Session::prefill(const std::vector<int32_t>& ids, std::vector<float>* hidden_out,
                                    int64_t seq) {
  KvCache& kc = *caches_[size_t(seq)];
  const ModelConfig& c = model_.cfg;
  const int64_t T = int64_t(ids.size()), C = c.hidden, F = c.intermediate, H = c.heads,
                G = c.kv_heads, QD = c.q_dim(), KD = c.kv_dim();
  MOA_CHECK(kc.length() == 0, "prefill into a used cache");
  MOA_CHECK(T > 0 && T <= kc.spec().n_ctx, "T {} n_ctx {}", T, kc.spec().n_ctx);
  std::vector<float> x = embed_rows(model_, ids), xn(size_t(T * C));
  std::vector<float> q(size_t(T * QD)), k(size_t(T * KD)), v(size_t(T * KD)), att(size_t(T * QD));
  std::vector<float> tmp(size_t(std::min(T, kRowChunk) * std::max(C, F)));
  std::vector<float> up(size_t(std::min(T, kRowChunk) * F));
  std::vector<float> col_sums(kc.wants_col_sums() ? static_cast<size_t>(H * T) : 0);  // (H, T)
  for (int64_t l = 0; l < c.layers; ++l) {
    const LayerWeights& L = model_.layers[size_t(l)];
    project_qkv(c, L, x.data(), T, xn.data(), q.data(), k.data(), v.data());
    rope_.apply(q.data(), T, H, 0);
    rope_.apply(k.data(), T, G, 0);
    // The prompt attends over the values the cache will hold, as a decoded token will.
    kv_round_rows(kc.cache_spec().kv_type, k.data(), T * G, c.head_dim);
    kv_round_rows(kc.cache_spec().kv_type, v.data(), T * G, c.head_dim);
    attention_prefill(kc.spec(), l, q.data(), k.data(), v.data(), T, att.data(),
                      col_sums.empty() ? nullptr : col_sums.data());
    kc.store_prefill(l, T, k.data(), v.data(), col_sums.empty() ? nullptr : col_sums.data());
    out_proj_and_mlp(c, L, att.data(), T, x.data(), xn.data(), tmp.data(), up.data());
  }
  kc.set_length(T);
  std::vector<float> logits(size_t(c.vocab));
  if (hidden_out) {
    hidden_out->resize(size_t(T * C));
    rms_norm(x.data(), model_.final_norm.data(), T, C, c.rms_eps, hidden_out->data());
    compute_logits(model_, hidden_out->data() + (T - 1) * C, 1, logits.data());
  } else {
    rms_norm(x.data() + (T - 1) * C, model_.final_norm.data(), 1, C, c.rms_eps, xn.data());
    compute_logits(model_, xn.data(), 1, logits.data());
  }
  return logits;
}

void Session::fill_synthetic(int64_t T, uint32_t seed) {
  const ModelConfig& c = model_.cfg;
  const int64_t KD = c.kv_dim(), H = c.heads;
  MOA_CHECK(T > 0 && T <= caches_[0]->spec().n_ctx, "T {} n_ctx {}", T, caches_[0]->spec().n_ctx);
  // One buffer of unit-normal K/V (RoPE'd keys have that scale after the projections) and one of
  // H2O column sums, shared by every layer and sequence: generating them is the slow part.
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.f, 1.f);
  std::vector<float> k(size_t(T * KD)), v(size_t(T * KD));
  for (auto& f : k) f = normal(rng);
  for (auto& f : v) f = normal(rng);
  std::vector<float> col_sums;
  if (caches_[0]->wants_col_sums()) {
    std::uniform_real_distribution<float> mass(0.f, 1.f);
    col_sums.resize(size_t(H * T));
    for (auto& f : col_sums) f = mass(rng);
  }
  for (auto& cache : caches_) {
    KvCache& kc = *cache;
    MOA_CHECK(kc.length() == 0, "fill into a used cache");
    for (int64_t l = 0; l < c.layers; ++l) {
      kc.store_prefill(l, T, k.data(), v.data(), col_sums.empty() ? nullptr : col_sums.data());
    }
    kc.set_length(T);
  }
}

std::vector<float> Session::decode_batch(const std::vector<int32_t>& ids) {
  MOA_CHECK(int64_t(ids.size()) == batch(), "{} ids for a batch of {}", ids.size(), batch());
  std::vector<int64_t> seqs(ids.size());
  for (size_t b = 0; b < seqs.size(); ++b) seqs[b] = int64_t(b);
  return decode_seqs(seqs, ids);
}

std::vector<float> Session::decode_seqs(const std::vector<int64_t>& seqs,
                                        const std::vector<int32_t>& ids) {
  const ModelConfig& c = model_.cfg;
  const int64_t B = int64_t(ids.size()), C = c.hidden, F = c.intermediate, H = c.heads,
                G = c.kv_heads, QD = c.q_dim(), KD = c.kv_dim();
  MOA_CHECK(B == int64_t(seqs.size()) && B > 0, "{} ids for {} sequences", B, seqs.size());
  std::vector<KvCache*> kcs(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) {
    MOA_CHECK(seqs[size_t(b)] >= 0 && seqs[size_t(b)] < batch(), "sequence {}", seqs[size_t(b)]);
    kcs[size_t(b)] = caches_[size_t(seqs[size_t(b)])].get();
    for (int64_t a = 0; a < b; ++a) MOA_CHECK(kcs[size_t(a)] != kcs[size_t(b)], "repeated sequence");
    const KvCache& kc = *kcs[size_t(b)];
    MOA_CHECK(kc.length() < kc.spec().n_ctx, "decode at {} beyond the cache's {} positions",
              kc.length(), kc.spec().n_ctx);
  }
  std::vector<float> x = embed_rows(model_, ids);  // (B, C), one row per sequence
  std::vector<float> xn(static_cast<size_t>(B * C)), q(static_cast<size_t>(B * QD)),
      k(static_cast<size_t>(B * KD)), v(static_cast<size_t>(B * KD)), att(static_cast<size_t>(B * QD));
  std::vector<float> gate(static_cast<size_t>(B * F)), up(static_cast<size_t>(B * F)),
      tmp(static_cast<size_t>(B * C));
  for (int64_t l = 0; l < c.layers; ++l) {
    const LayerWeights& L = model_.layers[size_t(l)];
    project_qkv(c, L, x.data(), B, xn.data(), q.data(), k.data(), v.data());
    for (int64_t b = 0; b < B; ++b) {
      KvCache& kc = *kcs[size_t(b)];
      const int64_t p = kc.length();
      rope_.apply(&q[size_t(b * QD)], 1, H, p);
      rope_.apply(&k[size_t(b * KD)], 1, G, p);
      kc.store(l, p, &k[size_t(b * KD)], &v[size_t(b * KD)]);
      kc.attend(l, &q[size_t(b * QD)], p, &att[size_t(b * QD)]);
    }
    matmul(att.data(), L.wo, L.bo.empty() ? nullptr : L.bo.data(), B, tmp.data());
    for (int64_t i = 0; i < B * C; ++i) x[size_t(i)] += tmp[size_t(i)];
    rms_norm(x.data(), L.mlp_norm.data(), B, C, c.rms_eps, xn.data());
    matmul(xn.data(), L.w_gate, L.b_gate.empty() ? nullptr : L.b_gate.data(), B, gate.data());
    matmul(xn.data(), L.w_up, L.b_up.empty() ? nullptr : L.b_up.data(), B, up.data());
    silu_mul(gate.data(), up.data(), B * F);
    matmul(gate.data(), L.w_down, L.b_down.empty() ? nullptr : L.b_down.data(), B, tmp.data());
    for (int64_t i = 0; i < B * C; ++i) x[size_t(i)] += tmp[size_t(i)];
  }
  for (KvCache* kc : kcs) kc->set_length(kc->length() + 1);
  rms_norm(x.data(), model_.final_norm.data(), B, C, c.rms_eps, xn.data());
  std::vector<float> logits(static_cast<size_t>(B * c.vocab));
  compute_logits(model_, xn.data(), B, logits.data());
  return logits;
}

std::vector<float> Session::extend(const std::vector<int32_t>& ids, int64_t seq) {
  MOA_CHECK(seq >= 0 && seq < batch(), "sequence {}", seq);
  KvCache& kc = *caches_[size_t(seq)];
  const ModelConfig& c = model_.cfg;
  const int64_t T = int64_t(ids.size()), C = c.hidden, F = c.intermediate, H = c.heads,
                G = c.kv_heads, QD = c.q_dim(), KD = c.kv_dim(), p0 = kc.length();
  MOA_CHECK(T > 0 && p0 + T <= kc.spec().n_ctx, "extend {} + {} beyond n_ctx {}", p0, T,
            kc.spec().n_ctx);
  std::vector<float> x = embed_rows(model_, ids), xn(size_t(T * C));
  std::vector<float> q(size_t(T * QD)), k(size_t(T * KD)), v(size_t(T * KD)), att(size_t(T * QD));
  std::vector<float> tmp(size_t(std::min(T, kRowChunk) * std::max(C, F)));
  std::vector<float> up(size_t(std::min(T, kRowChunk) * F));
  for (int64_t l = 0; l < c.layers; ++l) {
    const LayerWeights& L = model_.layers[size_t(l)];
    project_qkv(c, L, x.data(), T, xn.data(), q.data(), k.data(), v.data());
    rope_.apply(q.data(), T, H, p0);
    rope_.apply(k.data(), T, G, p0);
    // Store-then-attend per position: a ring slot overwritten by position p held p - window,
    // which no query at p or later sees, so earlier rows need no copy of the old entries.
    for (int64_t t = 0; t < T; ++t) {
      kc.store(l, p0 + t, &k[size_t(t * KD)], &v[size_t(t * KD)]);
      kc.attend(l, &q[size_t(t * QD)], p0 + t, &att[size_t(t * QD)]);
    }
    out_proj_and_mlp(c, L, att.data(), T, x.data(), xn.data(), tmp.data(), up.data());
  }
  kc.set_length(p0 + T);
  std::vector<float> logits(size_t(c.vocab));
  rms_norm(x.data() + (T - 1) * C, model_.final_norm.data(), 1, C, c.rms_eps, xn.data());
  compute_logits(model_, xn.data(), 1, logits.data());
  return logits;
}

void Session::reset(int64_t seq) {
  MOA_CHECK(seq >= 0 && seq < batch(), "sequence {}", seq);
  caches_[size_t(seq)] = make_cache(caches_[size_t(seq)]->cache_spec());
}

void Session::restore(int64_t seq, const KvCache& checkpoint) {
  MOA_CHECK(seq >= 0 && seq < batch(), "sequence {}", seq);
  caches_[size_t(seq)] = checkpoint.clone();
}

}  // namespace moa
