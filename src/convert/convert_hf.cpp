// Hugging Face checkpoint directory -> GGUF (see include/moa/convert/convert.h).
#include <fmt/format.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "convert/convert_internal.h"
#include "moa/attention/plan.h"
#include "moa/convert/convert.h"
#include "moa/core/error.h"
#include "moa/gguf/quantize.h"
#include "moa/model/config.h"
#include "moa/model/model.h"
#include "moa/model/plan_gguf.h"
#include "moa/model/safetensors.h"

namespace moa {

namespace {

namespace fs = std::filesystem;
using V = GgufOwnedValue;

struct Arch {
  const char* gguf;
  bool permute_qk;  // llama: rows of attn_q / attn_k permuted per head (LlamaModel.permute)
};

Arch arch_for(const ModelConfig& c, const fs::path& dir) {
  if (c.model_type == "llama" || c.model_type == "mistral") return {"llama", true};
  if (c.model_type == "qwen2") return {"qwen2", false};
  input_error("{}: model_type '{}' cannot be converted (expected llama, mistral or qwen2)",
              (dir / "config.json").string(), c.model_type);
}

// HF row of GGUF row g in a head-permuted matrix with heads of D rows: GGUF row h*D + 2j + s holds
// HF row h*D + s*D/2 + j (the inverse of model_gguf.cpp's perm_row).
int64_t hf_row(int64_t g, int64_t D) {
  if (D == 0) return g;
  const int64_t h = g / D, w = g % D;
  return h * D + (w % 2) * (D / 2) + w / 2;
}

// llama3 RoPE scaling as llama.cpp's converter stores it: one divisor per frequency (D/2 values).
// original_max_position_embeddings is read from the top level of config.json (default 8192), as
// convert_hf_to_gguf.py's LlamaModel does.
std::vector<float> llama3_factors(const ModelConfig& c, const nlohmann::json& raw) {
  const int64_t D = c.head_dim;
  const auto it = raw.find("original_max_position_embeddings");
  const double old = it != raw.end() && it->is_number() ? it->get<double>() : 8192.0;
  const double low_wl = old / c.rope_low_freq_factor, high_wl = old / c.rope_high_freq_factor;
  std::vector<float> out;
  for (int64_t i = 0; i < D; i += 2) {
    const float freq = 1.0f / std::pow(float(c.rope_theta), float(i) / float(D));
    const double wl = 2 * M_PI / double(freq);
    if (wl < high_wl) {
      out.push_back(1.0f);
    } else if (wl > low_wl) {
      out.push_back(float(c.rope_factor));
    } else {
      const double smooth =
          (old / wl - c.rope_low_freq_factor) / (c.rope_high_freq_factor - c.rope_low_freq_factor);
      out.push_back(float(1 / ((1 - smooth) / c.rope_factor + smooth)));
    }
  }
  return out;
}

void add_hparams(GgufWriter& w, const ModelConfig& c, const Arch& a, const std::string& name,
                 uint32_t ftype) {
  const std::string p = std::string(a.gguf) + ".";
  auto u32 = [](int64_t x) { return V::u32(uint32_t(x)); };
  w.set("general.architecture", V::string(a.gguf));
  w.set("general.name", V::string(name));
  w.set("general.file_type", V::u32(ftype));
  w.set(p + "context_length", u32(c.max_position));
  w.set(p + "embedding_length", u32(c.hidden));
  w.set(p + "block_count", u32(c.layers));
  w.set(p + "feed_forward_length", u32(c.intermediate));
  w.set(p + "attention.head_count", u32(c.heads));
  w.set(p + "attention.head_count_kv", u32(c.kv_heads));
  w.set(p + "rope.dimension_count", u32(c.head_dim));
  w.set(p + "attention.key_length", u32(c.head_dim));
  w.set(p + "attention.value_length", u32(c.head_dim));
  w.set(p + "rope.freq_base", V::f32(float(c.rope_theta)));
  w.set(p + "attention.layer_norm_rms_epsilon", V::f32(float(c.rms_eps)));
  w.set(p + "vocab_size", u32(c.vocab));
  if (c.rope_scaling == RopeScaling::kLinear) {
    w.set(p + "rope.scaling.type", V::string("linear"));
    w.set(p + "rope.scaling.factor", V::f32(float(c.rope_factor)));
  }
}

// One output tensor read from the checkpoint.
struct Job {
  std::string gguf, hf;
  std::vector<int64_t> shape;  // HF (row-major) shape
  int64_t head_dim = 0;        // > 0: rows permuted per head
};

std::vector<Job> jobs_for(const ModelConfig& c, const Arch& a) {
  const int64_t C = c.hidden, F = c.intermediate, QD = c.q_dim(), KD = c.kv_dim();
  const int64_t D = a.permute_qk ? c.head_dim : 0;
  std::vector<Job> j = {{"token_embd.weight", "model.embed_tokens.weight", {c.vocab, C}}};
  for (int64_t i = 0; i < c.layers; ++i) {
    const std::string g = fmt::format("blk.{}.", i), h = fmt::format("model.layers.{}.", i);
    j.push_back({g + "attn_norm.weight", h + "input_layernorm.weight", {C}});
    j.push_back({g + "attn_q.weight", h + "self_attn.q_proj.weight", {QD, C}, D});
    j.push_back({g + "attn_k.weight", h + "self_attn.k_proj.weight", {KD, C}, D});
    j.push_back({g + "attn_v.weight", h + "self_attn.v_proj.weight", {KD, C}});
    if (c.qkv_bias) {
      j.push_back({g + "attn_q.bias", h + "self_attn.q_proj.bias", {QD}, D});
      j.push_back({g + "attn_k.bias", h + "self_attn.k_proj.bias", {KD}, D});
      j.push_back({g + "attn_v.bias", h + "self_attn.v_proj.bias", {KD}});
    }
    j.push_back({g + "attn_output.weight", h + "self_attn.o_proj.weight", {C, QD}});
    if (c.attention_out_bias)
      j.push_back({g + "attn_output.bias", h + "self_attn.o_proj.bias", {C}});
    j.push_back({g + "ffn_norm.weight", h + "post_attention_layernorm.weight", {C}});
    j.push_back({g + "ffn_gate.weight", h + "mlp.gate_proj.weight", {F, C}});
    j.push_back({g + "ffn_up.weight", h + "mlp.up_proj.weight", {F, C}});
    j.push_back({g + "ffn_down.weight", h + "mlp.down_proj.weight", {C, F}});
    if (c.mlp_bias) {
      j.push_back({g + "ffn_gate.bias", h + "mlp.gate_proj.bias", {F}});
      j.push_back({g + "ffn_up.bias", h + "mlp.up_proj.bias", {F}});
      j.push_back({g + "ffn_down.bias", h + "mlp.down_proj.bias", {C}});
    }
  }
  j.push_back({"output_norm.weight", "model.norm.weight", {C}});
  if (!c.tie_embeddings) j.push_back({"output.weight", "lm_head.weight", {c.vocab, C}});
  return j;
}

int64_t layer_of(const std::string& name) {
  if (name.rfind("blk.", 0) != 0) return -1;
  return std::stoll(name.substr(4));
}

// Streams one tensor: each GGUF row read from its HF row, converted to f32 and quantised.
std::function<void(GgufSink&)> row_writer(const TensorView* t, GgmlType type, int64_t rows,
                                          int64_t cols, int64_t head_dim) {
  return [=](GgufSink& sink) {
    const size_t es = dtype_size(t->dtype);
    std::vector<float> row(static_cast<size_t>(cols));
    std::vector<uint8_t> out(size_t(ggml_row_bytes(type, cols)));
    for (int64_t g = 0; g < rows; ++g) {
      TensorView r = *t;
      r.data = t->data + size_t(hf_row(g, head_dim) * cols) * es;
      r.shape = {cols};
      r.nbytes = size_t(cols) * es;
      r.to_f32(row.data());
      quantize_row_ref(type, row.data(), cols, out.data());
      sink.write(out.data(), out.size());
    }
  };
}

// A 1-D tensor (norms, biases; head_dim > 0: a permuted bias), always F32.
std::function<void(GgufSink&)> vector_writer(const TensorView* t, int64_t n, int64_t head_dim) {
  return [=](GgufSink& sink) {
    std::vector<float> v(static_cast<size_t>(n)), out(static_cast<size_t>(n));
    t->to_f32(v.data());
    for (int64_t g = 0; g < n; ++g) out[size_t(g)] = v[size_t(hf_row(g, head_dim))];
    sink.write(out.data(), out.size() * 4);
  };
}

// The checkpoint's tensors in GGUF order, each streamed from its safetensors view when written.
void add_tensors(GgufWriter& w, const TensorStore& st, const ModelConfig& c, const Arch& arch,
                 const OutputType& type, const nlohmann::json& raw) {
  for (const Job& j : jobs_for(c, arch)) {
    const TensorView* t = &st.get(j.hf, j.shape);  // InputError: missing or misshapen
    GgufTensorOut out;
    out.name = j.gguf;
    if (j.shape.size() == 1) {
      out.ne = {j.shape[0]};
      out.fill = vector_writer(t, j.shape[0], j.head_dim);
    } else {
      const int64_t rows = j.shape[0], cols = j.shape[1];
      out.type =
          tensor_type_for(type, j.gguf, cols, 2, layer_of(j.gguf), c.layers, c.tie_embeddings);
      out.ne = {cols, rows};
      out.fill = row_writer(t, out.type, rows, cols, j.head_dim);
    }
    w.add_tensor(std::move(out));
  }
  if (c.rope_scaling == RopeScaling::kLlama3) {
    auto f = std::make_shared<std::vector<float>>(llama3_factors(c, raw));
    w.add_tensor({"rope_freqs.weight", GgmlType::kF32, {int64_t(f->size())}, [f](GgufSink& s) {
                    s.write(f->data(), f->size() * 4);
                  }});
  }
}

std::string model_name(const fs::path& dir) {
  const fs::path p = fs::absolute(dir).lexically_normal();
  const std::string name = p.filename().string();
  return name.empty() ? p.parent_path().filename().string() : name;
}

}  // namespace

ConvertResult conv::write_gguf(const GgufWriter& w, const fs::path& out, const std::string& type,
                               const ConvertProgress& progress) {
  ConvertResult res;
  res.out = out;
  res.type = type;
  res.tensors = int64_t(w.tensor_count());
  for (const auto& t : w.tensors()) res.tensor_types[ggml_type_name(t.type)] += 1;
  GgufWriter::Progress p;
  if (progress) {
    p = [&](size_t k, const std::string& n, GgmlType ty) {
      progress(int64_t(k) + 1, res.tensors, n, ggml_type_name(ty));
    };
  }
  w.write(out, p);
  res.bytes = fs::file_size(out);
  return res;
}

ConvertResult convert_checkpoint(const ConvertOptions& o) {
  const OutputType type = parse_output_type(o.type);
  if (is_gguf_path(o.model_dir)) {
    input_error(
        "{}: is a GGUF file; convert reads checkpoint directories (requantise GGUF files "
        "with moa quantize)",
        o.model_dir.string());
  }
  const ModelConfig c = load_model_config(o.model_dir);
  const Arch arch = arch_for(c, o.model_dir);
  const nlohmann::json raw = nlohmann::json::parse(read_text(o.model_dir / "config.json"));
  std::optional<Plan> plan;
  if (o.plan) {
    plan = Plan::load(*o.plan);
    plan->check_shape(c.layers, c.heads, c.kv_heads);  // InputError naming the plan file
  }
  const TensorStore st(o.model_dir);
  GgufWriter w;
  add_hparams(w, c, arch, model_name(o.model_dir), type.ftype);
  const bool tokenizer = conv::add_tokenizer_metadata(o.model_dir, c, w, o.warn);
  if (plan) {
    for (auto& [k, v] : plan_gguf_metadata(*plan)) w.set(k, std::move(v));
  }
  add_tensors(w, st, c, arch, type, raw);
  ConvertResult res = conv::write_gguf(w, o.out, type.name, o.progress);
  res.tokenizer = tokenizer;
  res.plan = plan.has_value();
  return res;
}

}  // namespace moa
