#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <random>

#include "moa/core/error.h"
#include "moa/core/file_io.h"
#include "moa/gguf/gguf.h"
#include "moa/model/model.h"

namespace moa {

namespace {

std::vector<float> load_tensor(const TensorStore& st, const std::string& name,
                               const std::vector<int64_t>& shape) {
  const TensorView& t = st.get(name, shape);
  std::vector<float> out(size_t(t.numel()));
  t.to_f32(out.data());
  return out;
}

Weight load_matrix(const TensorStore& st, const std::string& name, int64_t rows, int64_t cols) {
  return Weight::from_view(st.get(name, {rows, cols}));
}

std::vector<float> load_optional(const TensorStore& st, const std::string& name,
                                 const std::vector<int64_t>& shape, bool expected) {
  if (!expected) {
    if (st.find(name)) {
      // Present but the config says there is no such bias: the config is lying; trust neither.
      input_error("{}: tensor '{}' is present but config.json says the model has no such bias",
                  st.get(name).file, name);
    }
    return {};
  }
  return load_tensor(st, name, shape);
}

}  // namespace

int64_t Model::param_count() const {
  int64_t n = embed.numel() + int64_t(final_norm.size()) + lm_head.numel();
  for (auto& l : layers) {
    for (auto* w : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) n += w->numel();
    for (auto* v : {&l.attn_norm, &l.bq, &l.bk, &l.bv, &l.bo, &l.mlp_norm, &l.b_gate, &l.b_up,
                    &l.b_down}) {
      n += int64_t(v->size());
    }
  }
  return n;
}

Model Model::load(const std::filesystem::path& dir) {
  if (is_gguf_path(dir)) return load_gguf(dir);
  Model m;
  m.cfg = ModelConfig::load(dir / "config.json");
  const ModelConfig& c = m.cfg;
  TensorStore st(dir);
  const int64_t C = c.hidden, F = c.intermediate, V = c.vocab, QD = c.q_dim(), KD = c.kv_dim();
  m.stored_dtype = st.get("model.embed_tokens.weight").dtype;
  m.embed = load_matrix(st, "model.embed_tokens.weight", V, C);
  m.final_norm = load_tensor(st, "model.norm.weight", {C});
  if (!c.tie_embeddings) {
    m.lm_head = load_matrix(st, "lm_head.weight", V, C);
  }
  // The last layer's tensors must be there before the layers are allocated: a config.json that
  // declares more layers than the checkpoint holds must not become one huge allocation.
  if (const std::string last = fmt::format("model.layers.{}.input_layernorm.weight", c.layers - 1);
      !st.find(last)) {
    input_error(
        "{}: num_hidden_layers is {}, but the checkpoint has no tensor '{}' (it holds {} "
        "tensors)",
        (dir / "config.json").string(), c.layers, last, st.names().size());
  }
  m.layers.resize(size_t(c.layers));
  for (int64_t i = 0; i < c.layers; ++i) {
    auto& L = m.layers[size_t(i)];
    const std::string p = fmt::format("model.layers.{}.", i);
    L.attn_norm = load_tensor(st, p + "input_layernorm.weight", {C});
    L.wq = load_matrix(st, p + "self_attn.q_proj.weight", QD, C);
    L.wk = load_matrix(st, p + "self_attn.k_proj.weight", KD, C);
    L.wv = load_matrix(st, p + "self_attn.v_proj.weight", KD, C);
    L.wo = load_matrix(st, p + "self_attn.o_proj.weight", C, QD);
    L.bq = load_optional(st, p + "self_attn.q_proj.bias", {QD}, c.qkv_bias);
    L.bk = load_optional(st, p + "self_attn.k_proj.bias", {KD}, c.qkv_bias);
    L.bv = load_optional(st, p + "self_attn.v_proj.bias", {KD}, c.qkv_bias);
    L.bo = load_optional(st, p + "self_attn.o_proj.bias", {C}, c.attention_out_bias);
    L.mlp_norm = load_tensor(st, p + "post_attention_layernorm.weight", {C});
    L.w_gate = load_matrix(st, p + "mlp.gate_proj.weight", F, C);
    L.w_up = load_matrix(st, p + "mlp.up_proj.weight", F, C);
    L.w_down = load_matrix(st, p + "mlp.down_proj.weight", C, F);
    L.b_gate = load_optional(st, p + "mlp.gate_proj.bias", {F}, c.mlp_bias);
    L.b_up = load_optional(st, p + "mlp.up_proj.bias", {F}, c.mlp_bias);
    L.b_down = load_optional(st, p + "mlp.down_proj.bias", {C}, c.mlp_bias);
  }
  return m;
}

Model Model::random(const ModelConfig& c, uint64_t seed, float std) {
  Model m;
  m.cfg = c;
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.0f, std);
  auto randn = [&](int64_t n) {
    std::vector<float> v(static_cast<size_t>(n));
    for (auto& x : v) x = nd(rng);
    return v;
  };
  auto ones = [](int64_t n) { return std::vector<float>(size_t(n), 1.0f); };
  auto zeros = [](int64_t n, bool on) { return on ? std::vector<float>(size_t(n), 0.0f) : std::vector<float>(); };
  const int64_t C = c.hidden, F = c.intermediate, V = c.vocab, QD = c.q_dim(), KD = c.kv_dim();
  auto mat = [&](int64_t r, int64_t c) { return Weight::from_f32(randn(r * c), r, c); };
  m.embed = mat(V, C);
  m.layers.resize(size_t(c.layers));
  for (auto& L : m.layers) {
    L.attn_norm = ones(C);
    L.wq = mat(QD, C);
    L.wk = mat(KD, C);
    L.wv = mat(KD, C);
    L.wo = mat(C, QD);
    L.bq = zeros(QD, c.qkv_bias);
    L.bk = zeros(KD, c.qkv_bias);
    L.bv = zeros(KD, c.qkv_bias);
    L.bo = zeros(C, c.attention_out_bias);
    L.mlp_norm = ones(C);
    L.w_gate = mat(F, C);
    L.w_up = mat(F, C);
    L.w_down = mat(C, F);
    L.b_gate = zeros(F, c.mlp_bias);
    L.b_up = zeros(F, c.mlp_bias);
    L.b_down = zeros(C, c.mlp_bias);
  }
  m.final_norm = ones(C);
  if (!c.tie_embeddings) m.lm_head = mat(V, C);
  return m;
}

void Model::save(const std::filesystem::path& dir, DType dtype) const {
  if (!cfg.rope_freq_factors.empty()) {
    input_error("{}: this model's RoPE frequency factors (a GGUF file's rope_freqs) cannot be "
                "written as a Hugging Face config.json; save from the original checkpoint instead",
                dir.string());
  }
  std::filesystem::create_directories(dir);
  const ModelConfig& c = cfg;
  const int64_t C = c.hidden, F = c.intermediate, V = c.vocab, QD = c.q_dim(), KD = c.kv_dim();
  std::vector<TensorToWrite> ts;
  std::vector<std::vector<float>> converted;  // f32 copies of half-width matrices, kept alive
  converted.reserve(size_t(7 * c.layers + 2));
  auto add = [&](std::string name, const std::vector<float>& v, std::vector<int64_t> shape) {
    if (!v.empty()) ts.push_back({std::move(name), dtype, std::move(shape), v.data()});
  };
  auto addw = [&](std::string name, const Weight& w) {
    if (w.empty()) return;
    const float* p = w.f32.data();
    if (w.dtype != DType::kF32) p = converted.emplace_back(w.to_f32()).data();
    ts.push_back({std::move(name), dtype, {w.rows, w.cols}, p});
  };
  addw("model.embed_tokens.weight", embed);
  for (int64_t i = 0; i < c.layers; ++i) {
    const auto& L = layers[size_t(i)];
    const std::string p = fmt::format("model.layers.{}.", i);
    add(p + "input_layernorm.weight", L.attn_norm, {C});
    addw(p + "self_attn.q_proj.weight", L.wq);
    addw(p + "self_attn.k_proj.weight", L.wk);
    addw(p + "self_attn.v_proj.weight", L.wv);
    addw(p + "self_attn.o_proj.weight", L.wo);
    add(p + "self_attn.q_proj.bias", L.bq, {QD});
    add(p + "self_attn.k_proj.bias", L.bk, {KD});
    add(p + "self_attn.v_proj.bias", L.bv, {KD});
    add(p + "self_attn.o_proj.bias", L.bo, {C});
    add(p + "post_attention_layernorm.weight", L.mlp_norm, {C});
    addw(p + "mlp.gate_proj.weight", L.w_gate);
    addw(p + "mlp.up_proj.weight", L.w_up);
    addw(p + "mlp.down_proj.weight", L.w_down);
    add(p + "mlp.gate_proj.bias", L.b_gate, {F});
    add(p + "mlp.up_proj.bias", L.b_up, {F});
    add(p + "mlp.down_proj.bias", L.b_down, {C});
  }
  add("model.norm.weight", final_norm, {C});
  addw("lm_head.weight", lm_head);
  ModelConfig out = cfg;
  out.torch_dtype = dtype == DType::kF32 ? "float32" : dtype == DType::kBF16 ? "bfloat16" : "float16";
  write_safetensors(dir / "model.safetensors", ts, {{"format", "pt"}});
  write_text_atomic(dir / "config.json", out.to_json().dump(2) + "\n");
}

}  // namespace moa
