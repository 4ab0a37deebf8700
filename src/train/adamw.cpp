#include "moa/train/adamw.h"

#include <cmath>
#include <string>
#include <vector>

#include "moa/core/error.h"

namespace moa {

std::vector<TrainParam> model_params(Model& m) {
  std::vector<TrainParam> ps;
  auto mat = [&](const std::string& name, Weight& w) {
    if (w.empty()) return;
    MOA_CHECK(w.dtype == DType::kF32, "{} is {}: training needs f32 weights (convert_to_f32)", name,
              dtype_name(w.dtype));
    ps.push_back({name, w.f32.data(), w.numel(), true});
  };
  auto vec = [&](const std::string& name, std::vector<float>& v) {
    if (!v.empty()) ps.push_back({name, v.data(), int64_t(v.size()), false});
  };
  mat("model.embed_tokens.weight", m.embed);
  for (size_t i = 0; i < m.layers.size(); ++i) {
    LayerWeights& L = m.layers[i];
    const std::string p = "model.layers." + std::to_string(i) + ".";
    vec(p + "input_layernorm.weight", L.attn_norm);
    mat(p + "self_attn.q_proj.weight", L.wq);
    mat(p + "self_attn.k_proj.weight", L.wk);
    mat(p + "self_attn.v_proj.weight", L.wv);
    mat(p + "self_attn.o_proj.weight", L.wo);
    vec(p + "self_attn.q_proj.bias", L.bq);
    vec(p + "self_attn.k_proj.bias", L.bk);
    vec(p + "self_attn.v_proj.bias", L.bv);
    vec(p + "self_attn.o_proj.bias", L.bo);
    vec(p + "post_attention_layernorm.weight", L.mlp_norm);
    mat(p + "mlp.gate_proj.weight", L.w_gate);
    mat(p + "mlp.up_proj.weight", L.w_up);
    mat(p + "mlp.down_proj.weight", L.w_down);
    vec(p + "mlp.gate_proj.bias", L.b_gate);
    vec(p + "mlp.up_proj.bias", L.b_up);
    vec(p + "mlp.down_proj.bias", L.b_down);
  }
  vec("model.norm.weight", m.final_norm);
  mat("lm_head.weight", m.lm_head);
  return ps;
}

namespace {

std::vector<float*> grad_ptrs(Grads& g, const std::vector<TrainParam>& ps) {
  std::vector<float*> out;
  g.for_each([&](const std::string& name, std::vector<float>& v) {
    const size_t i = out.size();
    MOA_CHECK(i < ps.size() && ps[i].name == name && ps[i].n == int64_t(v.size()),
              "gradient '{}' does not match the model's parameter {}", name, i);
    out.push_back(v.data());
  });
  MOA_CHECK(out.size() == ps.size(), "{} gradients for {} parameters", out.size(), ps.size());
  return out;
}

}  // namespace

void convert_to_f32(Model& m) {
  auto conv = [](Weight& w) {
    if (!w.empty() && w.dtype != DType::kF32) w = Weight::from_f32(w.to_f32(), w.rows, w.cols);
  };
  conv(m.embed);
  conv(m.lm_head);
  for (auto& L : m.layers) {
    for (Weight* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) conv(*w);
  }
}

AdamW::AdamW(const Model& m, const AdamWOptions& opt)
    : opt_(opt), m_(Grads::zeros_like(m)), v_(Grads::zeros_like(m)) {}

void AdamW::step(Model& model, Grads& g, double lr) {
  if (lr < 0) lr = opt_.lr;
  const std::vector<TrainParam> ps = model_params(model);
  const std::vector<float*> gp = grad_ptrs(g, ps), mp = grad_ptrs(m_, ps), vp = grad_ptrs(v_, ps);
  ++t_;
  const double bc1 = 1.0 - std::pow(opt_.beta1, double(t_));
  const double bc2 = 1.0 - std::pow(opt_.beta2, double(t_));
  const float b1 = float(opt_.beta1), b2 = float(opt_.beta2), eps = float(opt_.eps);
  const float step_size = float(lr / bc1), bc2_sqrt = float(std::sqrt(bc2));
  for (size_t k = 0; k < ps.size(); ++k) {
    const bool decay = ps[k].matrix || opt_.decay_vectors;
    const float keep = decay ? float(1.0 - lr * opt_.weight_decay) : 1.0f;
    float* p = ps[k].data;
    const float* gr = gp[k];
    float* m1 = mp[k];
    float* m2 = vp[k];
#pragma omp parallel for schedule(static) if (ps[k].n > 65536)
    for (int64_t i = 0; i < ps[k].n; ++i) {
      const float gi = gr[i];
      m1[i] = b1 * m1[i] + (1.0f - b1) * gi;
      m2[i] = b2 * m2[i] + (1.0f - b2) * gi * gi;
      p[i] = p[i] * keep - step_size * m1[i] / (std::sqrt(m2[i]) / bc2_sqrt + eps);
    }
  }
}

}  // namespace moa
