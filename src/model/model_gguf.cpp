// Llama-family models from GGUF files (llama.cpp's convert_hf_to_gguf.py layout): llama.* /
// qwen2.* metadata into ModelConfig, tensors token_embd, blk.N.*, output_norm, output (absent =
// tied) into Model. Block-quantised matrices stay in the file's mapping (zero-copy); F32/F16/BF16
// matrices are copied into the Weight's own vectors, as the safetensors loader does, so the
// existing fast kernels serve them.
//
// RoPE layout: llama.cpp rotates adjacent pairs (x[2i], x[2i+1]) where Hugging Face rotates halves
// (x[i], x[i + D/2]); for the llama architecture its converter therefore permutes the rows of
// attn_q / attn_k within each head (LlamaModel.permute: HF row h*D + s*D/2 + j -> GGUF row
// h*D + 2j + s). We undo that here so our rotate-half forward sees Hugging Face's weights. qwen2
// is converted without the permutation (llama.cpp runs it with its rotate-half "NEOX" RoPE).
#include <fmt/format.h>

#include <cmath>
#include <cstring>

#include "moa/core/error.h"
#include "moa/gguf/gguf.h"
#include "moa/model/model.h"
#include "moa/model/plan_gguf.h"

namespace moa {

namespace {

struct ArchInfo {
  const char* gguf;        // general.architecture
  const char* hf;          // config.json "architectures"
  const char* model_type;  // config.json "model_type"
  bool permuted_qk;        // the converter permuted attn_q / attn_k rows
};

constexpr ArchInfo kArchs[] = {
    {"llama", "LlamaForCausalLM", "llama", true},
    {"qwen2", "Qwen2ForCausalLM", "qwen2", false},
};

const ArchInfo& arch_of(const GgufFile& g) {
  const std::string a = g.get_string("general.architecture");
  for (const auto& k : kArchs) {
    if (a == k.gguf) return k;
  }
  input_error("{}: general.architecture is '{}', expected llama or qwen2", g.file(), a);
}

int64_t positive(const GgufFile& g, const std::string& key) {
  const int64_t v = g.get_int(key);
  if (v <= 0) input_error("{}: metadata key '{}' is {}, expected > 0", g.file(), key, v);
  return v;
}

std::string shape_str(const std::vector<int64_t>& s) {
  return fmt::format("[{}]", fmt::join(s, ", "));
}

// HF row r of a head-permuted matrix with heads of D rows lives at GGUF row perm_row(r).
int64_t perm_row(int64_t r, int64_t D) {
  const int64_t h = r / D, w = r % D, half = D / 2;
  return h * D + 2 * (w % half) + w / half;
}

class Loader {
 public:
  explicit Loader(const GgufFile& g) : g_(g) {}

  const GgufTensor& get(const std::string& name, const std::vector<int64_t>& shape) const {
    const GgufTensor* t = g_.find_tensor(name);
    if (!t) input_error("{}: missing tensor '{}'", g_.file(), name);
    if (t->shape() != shape) {
      input_error("{}: tensor '{}' has shape {}, expected {} (metadata and tensors disagree)",
                  g_.file(), name, shape_str(t->shape()), shape_str(shape));
    }
    if (!ggml_type_traits(t->type_id).computable) {
      input_error(
          "{}: tensor '{}' is {}, a type moa cannot compute with yet (supported: {}); "
          "requantise the model to one of those",
          g_.file(), name, t->type_name(), ggml_computable_types());
    }
    return *t;
  }

  // A 1-D tensor of n values as f32; head_dim > 0: undo the q/k row permutation.
  std::vector<float> vec(const std::string& name, int64_t n, int64_t head_dim = 0) const {
    const GgufTensor& t = get(name, {n});
    std::vector<float> raw(static_cast<size_t>(n));
    dequantize_row_ref(t.type(), t.data, n, raw.data());
    if (head_dim == 0) return raw;
    std::vector<float> out(raw.size());
    for (int64_t r = 0; r < n; ++r) out[size_t(r)] = raw[size_t(perm_row(r, head_dim))];
    return out;
  }

  std::vector<float> optional_vec(const std::string& name, int64_t n, bool present,
                                  int64_t head_dim = 0) const {
    return present ? vec(name, n, head_dim) : std::vector<float>();
  }

  // A (rows, cols) matrix; head_dim > 0: undo the q/k row permutation (which costs a copy of a
  // quantised matrix: its rows are reordered, so it cannot stay in the mapping).
  Weight matrix(const std::string& name, int64_t rows, int64_t cols, int64_t head_dim = 0) const {
    const GgufTensor& t = get(name, {rows, cols});
    const int64_t rb = ggml_row_bytes(t.type(), cols);
    auto src_row = [&](int64_t r) { return t.data + (head_dim ? perm_row(r, head_dim) : r) * rb; };
    Weight w;
    w.rows = rows;
    w.cols = cols;
    switch (t.type()) {
      case GgmlType::kF32:
        w.dtype = DType::kF32;
        w.f32.resize(size_t(rows * cols));
        for (int64_t r = 0; r < rows; ++r)
          std::memcpy(&w.f32[size_t(r * cols)], src_row(r), size_t(rb));
        return w;
      case GgmlType::kF16:
      case GgmlType::kBF16:
        w.dtype = t.type() == GgmlType::kF16 ? DType::kF16 : DType::kBF16;
        if (!head_dim) {  // zero-copy, as for the block types below (GGUF data is 32-aligned)
          w.hmap = std::shared_ptr<const uint16_t>(g_.mapping(),
                                                   reinterpret_cast<const uint16_t*>(t.data));
          return w;
        }
        w.half.resize(size_t(rows * cols));
        for (int64_t r = 0; r < rows; ++r)
          std::memcpy(&w.half[size_t(r * cols)], src_row(r), size_t(rb));
        return w;
      default:
        break;
    }
    if (!head_dim) {
      // Zero-copy: the pointer shares ownership of the mapping.
      return Weight::from_quant(t.type(), std::shared_ptr<const uint8_t>(g_.mapping(), t.data),
                                rows, cols);
    }
    std::shared_ptr<uint8_t[]> buf(new uint8_t[size_t(rows * rb)]);
    for (int64_t r = 0; r < rows; ++r) std::memcpy(buf.get() + r * rb, src_row(r), size_t(rb));
    return Weight::from_quant(t.type(), std::shared_ptr<const uint8_t>(buf, buf.get()), rows, cols);
  }

  bool has(const std::string& name) const { return g_.find_tensor(name) != nullptr; }

 private:
  const GgufFile& g_;
};

void check_rope(const GgufFile& g, const std::string& p, ModelConfig& c) {
  c.rope_theta = g.get_float(p + "rope.freq_base", 10000.0);
  const int64_t rot = g.get_int(p + "rope.dimension_count", c.head_dim);
  if (rot != c.head_dim) {
    input_error(
        "{}: metadata key '{}rope.dimension_count' is {}, expected the head dimension {} "
        "(partial rotary embeddings are not supported)",
        g.file(), p, rot, c.head_dim);
  }
  const std::string type = g.get_string(p + "rope.scaling.type", "none");
  double factor = g.get_float(p + "rope.scaling.factor", 0.0);
  if (factor == 0.0) factor = g.get_float(p + "rope.scale_linear", 1.0);  // older converters
  if (type == "none" && factor == 1.0) {
    c.rope_scaling = RopeScaling::kNone;
  } else if (type == "linear" || type == "none") {
    if (!(factor > 0)) {
      input_error("{}: metadata key '{}rope.scaling.factor' is {}, expected > 0", g.file(), p,
                  factor);
    }
    c.rope_scaling = RopeScaling::kLinear;
    c.rope_factor = factor;
  } else {
    input_error("{}: metadata key '{}rope.scaling.type' is '{}', expected none or linear", g.file(),
                p, type);
  }
  c.rope_original_max_position =
      g.get_int(p + "rope.scaling.original_context_length", c.rope_original_max_position);
  // llama3 scaling: llama.cpp's converter stores the per-frequency factors as a tensor.
  if (const GgufTensor* t = g.find_tensor("rope_freqs.weight")) {
    const int64_t half = c.head_dim / 2;
    if (t->shape() != std::vector<int64_t>{half} || !ggml_type_traits(t->type_id).computable) {
      input_error(
          "{}: tensor 'rope_freqs.weight' is {} {}, expected {} values of a computable "
          "type",
          g.file(), t->type_name(), shape_str(t->shape()), half);
    }
    std::vector<float> f(static_cast<size_t>(half));
    dequantize_row_ref(t->type(), t->data, half, f.data());
    for (int64_t i = 0; i < half; ++i) {
      if (!(f[size_t(i)] > 0) || !std::isfinite(f[size_t(i)])) {
        input_error("{}: tensor 'rope_freqs.weight' value {} is {}, expected a finite factor > 0",
                    g.file(), i, f[size_t(i)]);
      }
    }
    c.rope_freq_factors.assign(f.begin(), f.end());
  }
}

}  // namespace

ModelConfig config_from_gguf(const GgufFile& g) {
  const ArchInfo& arch = arch_of(g);
  const std::string p = std::string(arch.gguf) + ".";
  ModelConfig c;
  c.architecture = arch.hf;
  c.model_type = arch.model_type;
  if (g.get_int(p + "expert_count", 0) > 0) {
    input_error("{}: metadata key '{}expert_count' is {}: mixture-of-experts models are not "
                "supported",
                g.file(), p, g.get_int(p + "expert_count"));
  }
  c.hidden = positive(g, p + "embedding_length");
  c.intermediate = positive(g, p + "feed_forward_length");
  c.layers = positive(g, p + "block_count");
  c.heads = positive(g, p + "attention.head_count");
  c.kv_heads = g.get_int(p + "attention.head_count_kv", c.heads);
  if (c.kv_heads <= 0 || c.heads % c.kv_heads != 0) {
    input_error(
        "{}: metadata key '{}attention.head_count_kv' is {}, expected a divisor of the {} "
        "query heads",
        g.file(), p, c.kv_heads, c.heads);
  }
  if (!g.find(p + "attention.key_length") && c.hidden % c.heads != 0) {
    input_error(
        "{}: metadata key '{}attention.key_length' is missing and {} hidden is not a "
        "multiple of {} heads",
        g.file(), p, c.hidden, c.heads);
  }
  c.head_dim = g.get_int(p + "attention.key_length", c.hidden / c.heads);
  if (c.head_dim <= 0 || c.head_dim % 2 != 0) {
    input_error("{}: head dimension {} must be even and > 0", g.file(), c.head_dim);
  }
  const int64_t vlen = g.get_int(p + "attention.value_length", c.head_dim);
  if (vlen != c.head_dim) {
    input_error("{}: metadata key '{}attention.value_length' is {}, expected the key length {}",
                g.file(), p, vlen, c.head_dim);
  }
  c.max_position = positive(g, p + "context_length");
  c.rms_eps = g.get_float(p + "attention.layer_norm_rms_epsilon");
  check_rope(g, p, c);
  const GgufTensor* embd = g.find_tensor("token_embd.weight");
  if (!embd || embd->ne.size() != 2) {
    input_error("{}: missing tensor 'token_embd.weight' (expected [vocab, {}])", g.file(),
                c.hidden);
  }
  c.vocab = g.get_int(p + "vocab_size", embd->ne[1]);
  c.tie_embeddings = g.find_tensor("output.weight") == nullptr;
  c.qkv_bias = g.find_tensor("blk.0.attn_q.bias") != nullptr;
  c.attention_out_bias = g.find_tensor("blk.0.attn_output.bias") != nullptr;
  c.mlp_bias = g.find_tensor("blk.0.ffn_gate.bias") != nullptr;
  c.bos_id = g.get_int("tokenizer.ggml.bos_token_id", -1);
  c.eos_id = g.get_int("tokenizer.ggml.eos_token_id", -1);
  return c;
}

ModelConfig load_model_config(const std::filesystem::path& dir_or_gguf) {
  if (is_gguf_path(dir_or_gguf)) return config_from_gguf(GgufFile(dir_or_gguf));
  return ModelConfig::load(dir_or_gguf / "config.json");
}

Model Model::load_gguf(const std::filesystem::path& file) {
  GgufFile g(file);
  const ArchInfo& arch = arch_of(g);
  Model m;
  m.cfg = config_from_gguf(g);
  m.embedded_plan = moa::embedded_plan(g);
  const ModelConfig& c = m.cfg;
  const int64_t C = c.hidden, F = c.intermediate, V = c.vocab, QD = c.q_dim(), KD = c.kv_dim();
  const int64_t D = arch.permuted_qk ? c.head_dim : 0;  // 0: rows are in HF order already
  Loader ld(g);
  m.embed = ld.matrix("token_embd.weight", V, C);
  m.stored_dtype = m.embed.dtype;
  m.final_norm = ld.vec("output_norm.weight", C);
  if (!c.tie_embeddings) m.lm_head = ld.matrix("output.weight", V, C);
  // A block has at least 9 tensors: refuse a block count the tensor table cannot hold before
  // allocating the layers (a lying header must not become a huge allocation).
  constexpr int64_t kTensorsPerBlock = 9;
  if (c.layers > int64_t(g.tensors().size()) / kTensorsPerBlock) {
    input_error(
        "{}: metadata key '{}.block_count' is {}, but the file holds {} tensors (each block needs "
        "{})",
        g.file(), arch.gguf, c.layers, g.tensors().size(), kTensorsPerBlock);
  }
  m.layers.resize(size_t(c.layers));
  for (int64_t i = 0; i < c.layers; ++i) {
    auto& L = m.layers[size_t(i)];
    const std::string p = fmt::format("blk.{}.", i);
    L.attn_norm = ld.vec(p + "attn_norm.weight", C);
    L.wq = ld.matrix(p + "attn_q.weight", QD, C, D);
    L.wk = ld.matrix(p + "attn_k.weight", KD, C, D);
    L.wv = ld.matrix(p + "attn_v.weight", KD, C);
    L.wo = ld.matrix(p + "attn_output.weight", C, QD);
    L.bq = ld.optional_vec(p + "attn_q.bias", QD, c.qkv_bias, D);
    L.bk = ld.optional_vec(p + "attn_k.bias", KD, c.qkv_bias, D);
    L.bv = ld.optional_vec(p + "attn_v.bias", KD, c.qkv_bias);
    L.bo = ld.optional_vec(p + "attn_output.bias", C, c.attention_out_bias);
    L.mlp_norm = ld.vec(p + "ffn_norm.weight", C);
    L.w_gate = ld.matrix(p + "ffn_gate.weight", F, C);
    L.w_up = ld.matrix(p + "ffn_up.weight", F, C);
    L.w_down = ld.matrix(p + "ffn_down.weight", C, F);
    L.b_gate = ld.optional_vec(p + "ffn_gate.bias", F, c.mlp_bias);
    L.b_up = ld.optional_vec(p + "ffn_up.bias", F, c.mlp_bias);
    L.b_down = ld.optional_vec(p + "ffn_down.bias", C, c.mlp_bias);
  }
  if (m.embed.dtype == DType::kQuant || m.layers[0].wq.dtype == DType::kQuant) {
    m.stored_dtype = DType::kQuant;
  }
  return m;
}

}  // namespace moa
