// Model-level forward with saved activations and the backward pass (llm.c style).
//
// Forward of layer l (shapes per token row):
//   xn    = rmsnorm(x_in; attn_norm)               (T, C)   rstd1 (T)
//   q,k,v = xn Wq^T, xn Wk^T, xn Wv^T (+ biases)   (T, H, D) (T, G, D) (T, G, D)
//   q,k   = rope(q), rope(k)                       saved post-RoPE
//   att   = attention(q, k, v; spans of layer l)   (T, H, D)   lse (H, T)
//   x_mid = x_in + att Wo^T (+ bo)                 (T, C)
//   xn    = rmsnorm(x_mid; mlp_norm)               (T, C)   rstd2 (T)
//   gate, up = xn Wg^T, xn Wu^T                    (T, F)
//   x_out = x_mid + (silu(gate) * up) Wd^T         (T, C)
// then final rmsnorm, LM head, masked cross-entropy. The backward walks the same list in reverse;
// normalised inputs and silu(gate)*up are recomputed (cheap) instead of saved.
#include "moa/model/backward.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "moa/core/error.h"

namespace moa {

namespace {

// Rows of the LM head processed at once: logits and their gradient for these rows only.
int64_t head_chunk(int64_t V) { return std::clamp<int64_t>((int64_t(1) << 22) / V, 1, 256); }

// A bump allocator over one float array, laid out twice: once to count (base null), once to hand
// out pointers. The count is what forward_backward_bytes() reports.
struct Arena {
  float* base = nullptr;
  int64_t used = 0;
  float* take(int64_t n) {
    float* p = base ? base + used : nullptr;
    used += n;
    return p;
  }
};

// What a layer's forward keeps for its backward (besides its input x_in).
struct Acts {
  float* rstd1;  // (T)
  float* q;      // (T, H, D) post-RoPE
  float* k;      // (T, G, D) post-RoPE
  float* v;      // (T, G, D)
  float* att;    // (T, H, D)
  float* lse;    // (H, T)
  float* x_mid;  // (T, C)
  float* rstd2;  // (T)
  float* gate;   // (T, F)
  float* up;     // (T, F)
  void layout(Arena& a, const ModelConfig& c, int64_t T) {
    rstd1 = a.take(T);
    q = a.take(T * c.q_dim());
    k = a.take(T * c.kv_dim());
    v = a.take(T * c.kv_dim());
    att = a.take(T * c.q_dim());
    lse = a.take(c.heads * T);
    x_mid = a.take(T * c.hidden);
    rstd2 = a.take(T);
    gate = a.take(T * c.intermediate);
    up = a.take(T * c.intermediate);
  }
};

// Transients shared by all layers.
struct Scratch {
  float *xn, *dxn, *dx;         // (T, C)
  float *h, *dh, *dgate, *dup;  // (T, F)
  float *dq, *datt;             // (T, H, D)
  float *dk, *dv;               // (T, G, D)
  float* rstd_f;                // (T)
  void layout(Arena& a, const ModelConfig& c, int64_t T) {
    xn = a.take(T * c.hidden);
    dxn = a.take(T * c.hidden);
    dx = a.take(T * c.hidden);
    h = a.take(T * c.intermediate);
    dh = a.take(T * c.intermediate);
    dgate = a.take(T * c.intermediate);
    dup = a.take(T * c.intermediate);
    dq = a.take(T * c.q_dim());
    datt = a.take(T * c.q_dim());
    dk = a.take(T * c.kv_dim());
    dv = a.take(T * c.kv_dim());
    rstd_f = a.take(T);
  }
};

struct Workspace {
  std::vector<float*>
      x_in;                // (L + 1) x (T, C): the residual stream entering each layer, then final
  std::vector<Acts> acts;  // L, or 1 with recompute_layers
  Scratch s;
  void layout(Arena& a, const ModelConfig& c, int64_t T, bool recompute) {
    x_in.resize(size_t(c.layers + 1));
    for (auto& p : x_in) p = a.take(T * c.hidden);
    acts.resize(recompute ? 1 : size_t(c.layers));
    for (auto& ac : acts) ac.layout(a, c, T);
    s.layout(a, c, T);
  }
};

const float* opt_ptr(const std::vector<float>& v) { return v.empty() ? nullptr : v.data(); }
float* opt_ptr(std::vector<float>& v) { return v.empty() ? nullptr : v.data(); }
void zero(float* p, int64_t n) { std::memset(p, 0, size_t(n) * sizeof(float)); }

// y = x * rstd * w with the saved rstd: bit-identical to the forward's normalised rows.
void rmsnorm_apply(const float* x, const float* rstd, const float* w, int64_t T, int64_t C,
                   float* y) {
#pragma omp parallel for schedule(static) if (T > 8)
  for (int64_t t = 0; t < T; ++t) {
    const float r = rstd[t];
    for (int64_t i = 0; i < C; ++i) y[t * C + i] = x[t * C + i] * r * w[i];
  }
}

struct Ctx {
  const Model& m;
  const AttentionSpec& spec;
  const RopeTable& rope;
  int64_t T;
  const AttentionForwardFn* attention_override = nullptr;  // null or empty: attention_forward
};

// x_out (T, C) may be null: then the MLP's down projection is skipped (recompute for the backward
// needs only what is saved in `a`).
void layer_forward(const Ctx& cx, int64_t l, const float* x_in, Acts& a, Scratch& s, float* x_out) {
  const ModelConfig& c = cx.m.cfg;
  const LayerWeights& L = cx.m.layers[size_t(l)];
  const int64_t T = cx.T, C = c.hidden, F = c.intermediate;
  rmsnorm_forward(x_in, L.attn_norm.data(), T, C, c.rms_eps, s.xn, a.rstd1);
  linear_forward(s.xn, L.wq, opt_ptr(L.bq), T, a.q);
  linear_forward(s.xn, L.wk, opt_ptr(L.bk), T, a.k);
  linear_forward(s.xn, L.wv, opt_ptr(L.bv), T, a.v);
  rope_forward(cx.rope, a.q, T, c.heads);
  rope_forward(cx.rope, a.k, T, c.kv_heads);
  if (cx.attention_override && *cx.attention_override) {
    (*cx.attention_override)(l, a.q, a.k, a.v, T, a.att, a.lse);
  } else {
    attention_forward(cx.spec, l, a.q, a.k, a.v, T, a.att, a.lse);
  }
  linear_forward(a.att, L.wo, opt_ptr(L.bo), T, a.x_mid);
  residual_add(x_in, T * C, a.x_mid);
  rmsnorm_forward(a.x_mid, L.mlp_norm.data(), T, C, c.rms_eps, s.xn, a.rstd2);
  linear_forward(s.xn, L.w_gate, opt_ptr(L.b_gate), T, a.gate);
  linear_forward(s.xn, L.w_up, opt_ptr(L.b_up), T, a.up);
  if (!x_out) return;
  swiglu_forward(a.gate, a.up, T * F, s.h);
  linear_forward(s.h, L.w_down, opt_ptr(L.b_down), T, x_out);
  residual_add(a.x_mid, T * C, x_out);
}

// On entry s.dx = dL/dx_out (T, C); on exit s.dx = dL/dx_in. g null: no weight gradients (and
// layer 0 stops after the hook: nothing below it is needed).
void layer_backward(const Ctx& cx, int64_t l, const float* x_in, const Acts& a, Scratch& s,
                    LayerGrads* g, const AttentionHook& hook) {
  const ModelConfig& c = cx.m.cfg;
  const LayerWeights& L = cx.m.layers[size_t(l)];
  const int64_t T = cx.T, C = c.hidden, F = c.intermediate, QD = c.q_dim(), KD = c.kv_dim();
  auto gp = [g](std::vector<float> LayerGrads::*f) { return g ? opt_ptr(g->*f) : nullptr; };
  // MLP block: x_out = x_mid + down(silu(gate) * up)
  swiglu_forward(a.gate, a.up, T * F, s.h);
  zero(s.dh, T * F);
  linear_backward(s.dx, s.h, L.w_down, T, s.dh, gp(&LayerGrads::w_down), gp(&LayerGrads::b_down));
  zero(s.dgate, T * F);
  zero(s.dup, T * F);
  swiglu_backward(s.dh, a.gate, a.up, T * F, s.dgate, s.dup);
  rmsnorm_apply(a.x_mid, a.rstd2, L.mlp_norm.data(), T, C, s.xn);
  zero(s.dxn, T * C);
  linear_backward(s.dgate, s.xn, L.w_gate, T, s.dxn, gp(&LayerGrads::w_gate),
                  gp(&LayerGrads::b_gate));
  linear_backward(s.dup, s.xn, L.w_up, T, s.dxn, gp(&LayerGrads::w_up), gp(&LayerGrads::b_up));
  rmsnorm_backward(s.dxn, a.x_mid, L.mlp_norm.data(), a.rstd2, T, C, s.dx,
                   gp(&LayerGrads::mlp_norm));
  // Attention block: x_mid = x_in + o_proj(att); s.dx now holds dL/dx_mid.
  zero(s.datt, T * QD);
  linear_backward(s.dx, a.att, L.wo, T, s.datt, gp(&LayerGrads::wo), gp(&LayerGrads::bo));
  if (hook) hook(l, a.q, a.k, a.v, s.datt);
  if (!g && l == 0) return;  // only the hook wanted this layer
  zero(s.dq, T * QD);
  zero(s.dk, T * KD);
  zero(s.dv, T * KD);
  attention_backward(cx.spec, l, a.q, a.k, a.v, a.att, a.lse, s.datt, T, s.dq, s.dk, s.dv);
  rope_backward(cx.rope, s.dq, T, c.heads);
  rope_backward(cx.rope, s.dk, T, c.kv_heads);
  rmsnorm_apply(x_in, a.rstd1, L.attn_norm.data(), T, C, s.xn);
  zero(s.dxn, T * C);
  linear_backward(s.dq, s.xn, L.wq, T, s.dxn, gp(&LayerGrads::wq), gp(&LayerGrads::bq));
  linear_backward(s.dk, s.xn, L.wk, T, s.dxn, gp(&LayerGrads::wk), gp(&LayerGrads::bk));
  linear_backward(s.dv, s.xn, L.wv, T, s.dxn, gp(&LayerGrads::wv), gp(&LayerGrads::bv));
  rmsnorm_backward(s.dxn, x_in, L.attn_norm.data(), a.rstd1, T, C, s.dx,
                   gp(&LayerGrads::attn_norm));
}

void check_grads_shape(const Model& m, const Grads& g) {
  auto same = [](const std::vector<float>& gv, size_t n) { return gv.size() == n; };
  bool ok = same(g.embed, size_t(m.embed.numel())) && same(g.final_norm, m.final_norm.size()) &&
            same(g.lm_head, size_t(m.lm_head.numel())) && g.layers.size() == m.layers.size();
  for (size_t i = 0; ok && i < m.layers.size(); ++i) {
    const LayerWeights& L = m.layers[i];
    const LayerGrads& G = g.layers[i];
    ok = same(G.attn_norm, L.attn_norm.size()) && same(G.wq, size_t(L.wq.numel())) &&
         same(G.wk, size_t(L.wk.numel())) && same(G.wv, size_t(L.wv.numel())) &&
         same(G.wo, size_t(L.wo.numel())) && same(G.bq, L.bq.size()) && same(G.bk, L.bk.size()) &&
         same(G.bv, L.bv.size()) && same(G.bo, L.bo.size()) &&
         same(G.mlp_norm, L.mlp_norm.size()) && same(G.w_gate, size_t(L.w_gate.numel())) &&
         same(G.w_up, size_t(L.w_up.numel())) && same(G.w_down, size_t(L.w_down.numel())) &&
         same(G.b_gate, L.b_gate.size()) && same(G.b_up, L.b_up.size()) &&
         same(G.b_down, L.b_down.size());
  }
  MOA_CHECK(ok, "gradient buffers do not match the model (make them with Grads::zeros_like)");
}

}  // namespace

// ---- Grads ----------------------------------------------------------------------------------

Grads Grads::zeros_like(const Model& m) {
  auto z = [](size_t n) { return std::vector<float>(n, 0.0f); };
  Grads g;
  g.embed = z(size_t(m.embed.numel()));
  g.final_norm = z(m.final_norm.size());
  g.lm_head = z(size_t(m.lm_head.numel()));
  g.layers.resize(m.layers.size());
  for (size_t i = 0; i < m.layers.size(); ++i) {
    const LayerWeights& L = m.layers[i];
    LayerGrads& G = g.layers[i];
    G.attn_norm = z(L.attn_norm.size());
    G.wq = z(size_t(L.wq.numel()));
    G.wk = z(size_t(L.wk.numel()));
    G.wv = z(size_t(L.wv.numel()));
    G.wo = z(size_t(L.wo.numel()));
    G.bq = z(L.bq.size());
    G.bk = z(L.bk.size());
    G.bv = z(L.bv.size());
    G.bo = z(L.bo.size());
    G.mlp_norm = z(L.mlp_norm.size());
    G.w_gate = z(size_t(L.w_gate.numel()));
    G.w_up = z(size_t(L.w_up.numel()));
    G.w_down = z(size_t(L.w_down.numel()));
    G.b_gate = z(L.b_gate.size());
    G.b_up = z(L.b_up.size());
    G.b_down = z(L.b_down.size());
  }
  return g;
}

void Grads::zero() {
  for_each([](const std::string&, std::vector<float>& v) { std::fill(v.begin(), v.end(), 0.0f); });
}

void Grads::for_each(const std::function<void(const std::string&, std::vector<float>&)>& fn) {
  auto visit = [&](const std::string& name, std::vector<float>& v) {
    if (!v.empty()) fn(name, v);
  };
  visit("model.embed_tokens.weight", embed);
  for (size_t i = 0; i < layers.size(); ++i) {
    LayerGrads& G = layers[i];
    const std::string p = "model.layers." + std::to_string(i) + ".";
    visit(p + "input_layernorm.weight", G.attn_norm);
    visit(p + "self_attn.q_proj.weight", G.wq);
    visit(p + "self_attn.k_proj.weight", G.wk);
    visit(p + "self_attn.v_proj.weight", G.wv);
    visit(p + "self_attn.o_proj.weight", G.wo);
    visit(p + "self_attn.q_proj.bias", G.bq);
    visit(p + "self_attn.k_proj.bias", G.bk);
    visit(p + "self_attn.v_proj.bias", G.bv);
    visit(p + "self_attn.o_proj.bias", G.bo);
    visit(p + "post_attention_layernorm.weight", G.mlp_norm);
    visit(p + "mlp.gate_proj.weight", G.w_gate);
    visit(p + "mlp.up_proj.weight", G.w_up);
    visit(p + "mlp.down_proj.weight", G.w_down);
    visit(p + "mlp.gate_proj.bias", G.b_gate);
    visit(p + "mlp.up_proj.bias", G.b_up);
    visit(p + "mlp.down_proj.bias", G.b_down);
  }
  visit("model.norm.weight", final_norm);
  visit("lm_head.weight", lm_head);
}

// ---- forward + backward ---------------------------------------------------------------------

int64_t forward_backward_bytes(const ModelConfig& cfg, int64_t T, bool recompute_layers,
                               int threads) {
  Arena a;
  Workspace ws;
  ws.layout(a, cfg, T, recompute_layers);
  const int64_t V = cfg.vocab, C = cfg.hidden, D = cfg.head_dim, n = head_chunk(V);
  const int64_t tile = kAttnTile;
  // LM head chunk: logits + dlogits (n, V), hidden rows + their gradient (n, C), nll + dnll (n)
  int64_t floats = a.used + 2 * n * V + 2 * n * C + 2 * n;
  // attention: backward's row dots (H, T); per thread the larger of the forward's tile scratch
  // (tile^2 + tile*D + 2*tile) and the backward's two tiles (2 tile^2)
  floats += cfg.heads * T + threads * std::max(tile * tile + tile * D + 2 * tile, 2 * tile * tile);
  floats += T * D;  // RoPE cos/sin table (T, D/2) twice
  return floats * int64_t(sizeof(float)) + (T - 1) * int64_t(sizeof(int64_t));  // + masked row list
}

double forward_backward(const Model& m, const AttentionSpec& spec, const std::vector<int32_t>& ids,
                        const std::vector<float>& loss_mask, Grads* grads,
                        const BackwardOptions& opt) {
  const ModelConfig& c = m.cfg;
  const int64_t T = int64_t(ids.size()), C = c.hidden, V = c.vocab, Lc = c.layers;
  MOA_CHECK(T > 0 && T <= spec.n_ctx, "T {} n_ctx {}", T, spec.n_ctx);
  MOA_CHECK(int64_t(loss_mask.size()) == T, "loss mask has {} entries for {} tokens",
            loss_mask.size(), T);
  MOA_CHECK(spec.layers == c.layers && spec.heads == c.heads && spec.kv_heads == c.kv_heads &&
                spec.head_dim == c.head_dim,
            "attention spec does not match the model");
  if (grads) check_grads_shape(m, *grads);
  MOA_CHECK(!opt.attention_override || (!grads && !opt.hook),
            "attention_override is forward-only: pass neither grads nor a hook");
  const bool recompute = opt.recompute_layers;

  Arena count;
  Workspace ws;
  ws.layout(count, c, T, recompute);
  std::vector<float> arena(static_cast<size_t>(count.used));
  Arena give{arena.data(), 0};
  ws.layout(give, c, T, recompute);
  Scratch& s = ws.s;
  const RopeTable rope(c, T);
  const Ctx cx{m, spec, rope, T, &opt.attention_override};

  // ---- forward
  embedding_forward(m.embed, ids.data(), T, ws.x_in[0]);
  for (int64_t l = 0; l < Lc; ++l) {
    Acts& a = ws.acts[recompute ? 0 : size_t(l)];
    layer_forward(cx, l, ws.x_in[size_t(l)], a, s, ws.x_in[size_t(l + 1)]);
  }
  float* hidden = s.xn;  // (T, C) final-normed
  rmsnorm_forward(ws.x_in[size_t(Lc)], m.final_norm.data(), T, C, c.rms_eps, hidden, s.rstd_f);
  const Weight& head = m.head_weights();
  if (opt.logits_out) {
    opt.logits_out->resize(size_t(T * V));
    linear_forward(hidden, head, nullptr, T, opt.logits_out->data());
  }

  // ---- loss over the rows that carry weight, LM head chunk by chunk (logits never all at once)
  std::vector<int64_t> rows;
  double wsum = 0;
  for (int64_t t = 0; t + 1 < T; ++t) {
    if (loss_mask[size_t(t)] != 0.0f) {
      rows.push_back(t);
      wsum += loss_mask[size_t(t)];
    }
  }
  if (wsum == 0) return 0.0;
  const bool backward = grads || opt.hook;
  float* dhidden = s.dxn;  // (T, C)
  if (backward) zero(dhidden, T * C);
  float* dhead =
      grads ? (m.lm_head.empty() ? grads->embed.data() : grads->lm_head.data()) : nullptr;
  const int64_t chunk = head_chunk(V);
  std::vector<float> logits(static_cast<size_t>(chunk * V)),
      dlogits(static_cast<size_t>(chunk * V));
  std::vector<float> hrows(static_cast<size_t>(chunk * C)), dhrows(static_cast<size_t>(chunk * C));
  std::vector<float> nll(static_cast<size_t>(chunk)), dnll(static_cast<size_t>(chunk));
  std::vector<int32_t> targets(static_cast<size_t>(chunk));
  double loss = 0;
  for (size_t r0 = 0; r0 < rows.size(); r0 += size_t(chunk)) {
    const int64_t n = std::min<int64_t>(chunk, int64_t(rows.size() - r0));
    for (int64_t r = 0; r < n; ++r) {
      const int64_t t = rows[r0 + size_t(r)];
      std::memcpy(&hrows[size_t(r * C)], hidden + t * C, size_t(C) * sizeof(float));
      targets[size_t(r)] = ids[size_t(t + 1)];
    }
    linear_forward(hrows.data(), head, nullptr, n, logits.data());
    cross_entropy_forward(logits.data(), targets.data(), n, V, nll.data());
    for (int64_t r = 0; r < n; ++r) {
      const float w = loss_mask[size_t(rows[r0 + size_t(r)])];
      loss += double(w) * nll[size_t(r)];
      dnll[size_t(r)] = float(double(w) / wsum);
    }
    if (!backward) continue;
    zero(dlogits.data(), n * V);
    cross_entropy_backward(logits.data(), targets.data(), dnll.data(), n, V, dlogits.data());
    zero(dhrows.data(), n * C);
    linear_backward(dlogits.data(), hrows.data(), head, n, dhrows.data(), dhead, nullptr);
    for (int64_t r = 0; r < n; ++r) {
      const int64_t t = rows[r0 + size_t(r)];
      std::memcpy(dhidden + t * C, &dhrows[size_t(r * C)], size_t(C) * sizeof(float));
    }
  }
  loss /= wsum;
  if (!backward) return loss;

  // ---- backward
  zero(s.dx, T * C);
  rmsnorm_backward(dhidden, ws.x_in[size_t(Lc)], m.final_norm.data(), s.rstd_f, T, C, s.dx,
                   grads ? grads->final_norm.data() : nullptr);
  for (int64_t l = Lc - 1; l >= 0; --l) {
    Acts& a = ws.acts[recompute ? 0 : size_t(l)];
    if (recompute) layer_forward(cx, l, ws.x_in[size_t(l)], a, s, nullptr);
    layer_backward(cx, l, ws.x_in[size_t(l)], a, s, grads ? &grads->layers[size_t(l)] : nullptr,
                   opt.hook);
  }
  if (grads) embedding_backward(s.dx, ids.data(), T, C, grads->embed.data());
  return loss;
}

}  // namespace moa
