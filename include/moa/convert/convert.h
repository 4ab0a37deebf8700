// Model files out: a Hugging Face checkpoint directory (config.json + safetensors + tokenizer)
// to a GGUF file that llama.cpp loads unchanged, and GGUF to GGUF requantisation.
//
// convert_checkpoint writes what llama.cpp's convert_hf_to_gguf.py writes for Llama / Mistral
// (general.architecture "llama": attn_q / attn_k rows permuted per head for llama.cpp's
// adjacent-pairs RoPE, the inverse of what model_gguf.cpp undoes) and Qwen2 ("qwen2", unpermuted,
// with q/k/v biases): the <arch>.* hyperparameters, tensors token_embd, blk.N.attn_norm / attn_q /
// attn_k / attn_v / attn_output / ffn_norm / ffn_gate / ffn_up / ffn_down (+ biases),
// output_norm and output (absent when the embeddings are tied), rope_freqs for llama3 scaling;
// 1-D tensors F32; general.file_type as llama.cpp's llama_ftype number; the tokenizer as
// tokenizer.ggml.* keys (src/convert/tokenizer_meta.cpp); optionally a plan as moa.* keys
// (model/plan_gguf.h).
//
// Output types (--type) and the llama_ftype written:
//   f32 (0), f16 (1), bf16 (32), q8_0 (7), q4_0 (2): every 2-D weight in that type.
//   q4_k (14, LLAMA_FTYPE_MOSTLY_Q4_K_S, the nearest llama_ftype), q6_k (18): every 2-D weight.
//   q4_k_m (15): llama.cpp's llama_tensor_get_type for LLAMA_FTYPE_MOSTLY_Q4_K_M: Q4_K, except
//     output.weight (token_embd.weight when tied) Q6_K (Q8_0 when its rows are not a multiple
//     of 256), attn_v and ffn_down Q6_K on the use_more_bits layers
//     (i < n/8 || i >= 7n/8 || (i - n/8) % 3 == 2, for layer i of n). Not applied: llama.cpp's
//     model-size rule for 70B Llamas (attn_v Q5_K on the other layers) and its mixture-of-experts
//     rules (we convert no MoE models). q4_k is uniform Q4_K, not llama.cpp's Q4_K_S mix.
//   Rows that are not a whole number of blocks fall back as llama.cpp does: Q4_K -> Q5_0,
//   Q5_K -> Q5_1, Q6_K -> Q8_0, and F16 when the row is still not a multiple of 32.
// Weights are quantised with the reference quantisers (gguf/quantize.h).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "moa/gguf/quant.h"

namespace moa {

struct OutputType {
  std::string name;    // "q4_k_m"
  uint32_t ftype = 0;  // llama_ftype
  GgmlType base = GgmlType::kF32;
  bool q4_k_m = false;
};

// The names accepted: "f32, f16, bf16, q8_0, q4_0, q4_k, q6_k, q4_k_m".
std::string output_type_names();
// InputError "--type 'x' is not an output type (expected ...)" for an unknown name.
OutputType parse_output_type(const std::string& name);

// The type a tensor is written in (the mix above). ne0: values per row; layer: N of blk.N (-1
// for others); layers: the model's block count; tied: the file has no output.weight.
GgmlType tensor_type_for(const OutputType& t, const std::string& name, int64_t ne0, int64_t ne_dims,
                         int64_t layer, int64_t layers, bool tied);

using ConvertProgress = std::function<void(int64_t done, int64_t total, const std::string& name,
                                           const std::string& type)>;

struct ConvertOptions {
  std::filesystem::path model_dir;
  std::filesystem::path out;
  std::string type = "f16";
  std::optional<std::filesystem::path> plan;     // written as moa.* keys after its shape is checked
  ConvertProgress progress;                      // called before each tensor (may be empty)
  std::function<void(const std::string&)> warn;  // warnings (e.g. no tokenizer); may be empty
};

struct ConvertResult {
  std::filesystem::path out;
  std::string type;
  int64_t tensors = 0;
  uint64_t bytes = 0;                           // the file's size
  std::map<std::string, int64_t> tensor_types;  // ggml type name -> tensor count
  bool plan = false;                            // moa.* plan keys written
  bool tokenizer = false;                       // tokenizer.ggml.* keys written
};

// Writes the GGUF atomically. Bad input (config, tensors, tokenizer, plan) is one InputError
// naming the file and field.
ConvertResult convert_checkpoint(const ConvertOptions& o);

// Reads `in`, dequantises each 2-D weight with dequantize_row_ref and quantises it to the type the
// mix gives (a tensor already in that type is copied), copies every other tensor and all
// metadata (moa.* plan keys included; general.file_type updated) and writes `out` atomically.
ConvertResult quantize_gguf(const std::filesystem::path& in, const std::filesystem::path& out,
                            const std::string& type, const ConvertProgress& progress = {});

}  // namespace moa
