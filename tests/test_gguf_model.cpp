// Llama models from GGUF files converted the way llama.cpp's convert_hf_to_gguf.py converts them
// (tests/data/make_gguf_fixtures.py): the F32 file gives the Hugging Face checkpoint's weights
// (q/k row permutation undone) and logits; the mixed-quantisation file computes, prefill and
// decode, what its own weights dequantised to f32 compute; bad model files are one InputError.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>

#include "gguf_layout.h"
#include "moa/core/error.h"
#include "moa/core/file_io.h"
#include "moa/model/forward.h"
#include "moa/gguf/gguf.h"
#include "moa/kernels/quant_matvec.h"
#include "moa/model/model.h"
#include "test_util.h"

namespace moa {
namespace {

namespace fs = std::filesystem;

const fs::path kLlama = fs::path(MOA_TEST_DATA) / "gguf" / "llama";

std::vector<int32_t> test_ids(int64_t vocab, int n) {
  std::vector<int32_t> ids;
  for (int k = 0; k < n; ++k) ids.push_back(int32_t((k * 37 + 11) % vocab));
  return ids;
}

std::vector<float> all_logits(const Model& m, const std::vector<int32_t>& ids) {
  return test::prefill_logits(m, ids);
}

// Logits of each position by decoding one token at a time (the T = 1 matmul path).
std::vector<float> decode_logits(const Model& m, const std::vector<int32_t>& ids) {
  auto spec = AttentionSpec::dense(m.cfg.layers, m.cfg.heads, m.cfg.kv_heads, m.cfg.head_dim,
                                   int64_t(ids.size()));
  Session s(m, spec);
  std::vector<float> out = s.prefill({ids[0]});
  for (size_t k = 1; k < ids.size(); ++k) {
    auto l = s.decode(ids[k]);
    out.insert(out.end(), l.begin(), l.end());
  }
  return out;
}

std::vector<const Weight*> matrices(const Model& m) {
  std::vector<const Weight*> w = {&m.embed};
  if (!m.lm_head.empty()) w.push_back(&m.lm_head);
  for (auto& L : m.layers) {
    for (auto* x : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) w.push_back(x);
  }
  return w;
}

// Each variant's F32 GGUF is its safetensors checkpoint: llama (GQA, permuted q/k), llama3 (MQA,
// tied embeddings, rope_freqs), qwen2 (q/k/v biases, unpermuted).
class GgufF32 : public ::testing::TestWithParam<const char*> {};

TEST_P(GgufF32, IsTheSafetensorsModel) {
  const fs::path dir = kLlama.parent_path() / GetParam();
  Model st = Model::load(dir);
  Model g = Model::load(dir / "model-f32.gguf");
  EXPECT_EQ(g.cfg.architecture, st.cfg.architecture);
  EXPECT_EQ(g.cfg.hidden, st.cfg.hidden);
  EXPECT_EQ(g.cfg.intermediate, st.cfg.intermediate);
  EXPECT_EQ(g.cfg.layers, st.cfg.layers);
  EXPECT_EQ(g.cfg.heads, st.cfg.heads);
  EXPECT_EQ(g.cfg.kv_heads, st.cfg.kv_heads);
  EXPECT_EQ(g.cfg.head_dim, st.cfg.head_dim);
  EXPECT_EQ(g.cfg.vocab, st.cfg.vocab);
  EXPECT_EQ(g.cfg.max_position, st.cfg.max_position);
  EXPECT_EQ(g.cfg.rope_theta, st.cfg.rope_theta);
  EXPECT_EQ(g.cfg.rms_eps, double(float(st.cfg.rms_eps)));  // GGUF stores it as FLOAT32
  EXPECT_EQ(g.cfg.tie_embeddings, st.cfg.tie_embeddings);
  EXPECT_EQ(g.cfg.qkv_bias, st.cfg.qkv_bias);
  if (st.cfg.rope_scaling == RopeScaling::kLlama3) {
    EXPECT_EQ(g.cfg.rope_freq_factors.size(), size_t(g.cfg.head_dim / 2));
    // Same inverse frequencies as transformers' llama3 formula, up to the factors' f32 rounding.
    auto a = rope_inv_freq(g.cfg), b = rope_inv_freq(st.cfg);
    for (size_t k = 0; k < a.size(); ++k) EXPECT_NEAR(a[k] / b[k], 1.0, 1e-6) << k;
  } else {
    EXPECT_TRUE(g.cfg.rope_freq_factors.empty());
  }
  // Every matrix and bias bit for bit: the q/k permutation is undone exactly.
  auto a = matrices(st), b = matrices(g);
  ASSERT_EQ(a.size(), b.size());
  for (size_t k = 0; k < a.size(); ++k) {
    EXPECT_EQ(b[k]->dtype, DType::kF32);
    EXPECT_TRUE(test::all_close(b[k]->to_f32(), a[k]->to_f32(), 0, 0)) << "matrix " << k;
  }
  for (size_t i = 0; i < st.layers.size(); ++i) {
    const auto &x = g.layers[i], &y = st.layers[i];
    EXPECT_TRUE(test::all_close(x.mlp_norm, y.mlp_norm, 0, 0));
    EXPECT_EQ(x.bq.size(), y.bq.size());
    EXPECT_TRUE(test::all_close(x.bq, y.bq, 0, 0));
    EXPECT_TRUE(test::all_close(x.bk, y.bk, 0, 0));
    EXPECT_TRUE(test::all_close(x.bv, y.bv, 0, 0));
  }
  const auto ids = test_ids(g.cfg.vocab, 20);
  EXPECT_TRUE(test::all_close(all_logits(g, ids), all_logits(st, ids), 1e-4, 1e-4));
}

INSTANTIATE_TEST_SUITE_P(Variants, GgufF32, ::testing::Values("llama", "llama3", "qwen2"));

TEST(GgufModel, MixedQuantComputesItsDequantisedWeights) {
  Model st = Model::load(kLlama);
  Model q = Model::load(kLlama / "model-mixed.gguf");
  const auto& L = q.layers[0];
  EXPECT_EQ(q.embed.dtype, DType::kF16);
  EXPECT_EQ(q.stored_dtype, DType::kQuant);
  EXPECT_EQ(L.wq.dtype, DType::kQuant);
  EXPECT_EQ(L.wq.qtype, GgmlType::kQ8_0);
  EXPECT_EQ(L.w_gate.qtype, GgmlType::kQ4_1);
  EXPECT_EQ(L.w_down.qtype, GgmlType::kQ5_0);
  EXPECT_EQ(q.lm_head.qtype, GgmlType::kQ8_0);
  EXPECT_EQ(L.wv.bytes(), 16 * 34);  // 16 rows of one 34-byte Q8_0 block
  // Zero-copy: unpermuted matrices share one owner (the mapping); q/k own permuted copies.
  auto same_owner = [](const Weight& x, const Weight& y) {
    return !x.qdata.owner_before(y.qdata) && !y.qdata.owner_before(x.qdata);
  };
  EXPECT_TRUE(same_owner(L.wv, q.layers[1].w_down));
  EXPECT_TRUE(same_owner(L.wv, q.lm_head));
  EXPECT_FALSE(same_owner(L.wq, L.wv));
  // Every matrix is the checkpoint's up to its type's rounding (half a quantisation step; a
  // wrong row order, e.g. a q/k permutation not undone, errs by ~0.4): F16 embeddings, Q8_0
  // (step max|w| / 127 per block of 32), Q4_1 and Q5_0 (steps ~ range / 15 and max|w| / 16).
  auto close = [](const Weight& a, const Weight& b, double atol) {
    return test::all_close(a.to_f32(), b.to_f32(), 0, atol);
  };
  EXPECT_TRUE(close(q.embed, st.embed, 1e-3));
  EXPECT_TRUE(close(q.lm_head, st.lm_head, 6e-3));
  for (size_t i = 0; i < q.layers.size(); ++i) {
    const auto &a = q.layers[i], &b = st.layers[i];
    for (auto [x, y] : {std::pair{&a.wq, &b.wq}, {&a.wk, &b.wk}, {&a.wv, &b.wv}, {&a.wo, &b.wo}}) {
      EXPECT_TRUE(close(*x, *y, 6e-3)) << "layer " << i;
    }
    EXPECT_TRUE(close(a.w_gate, b.w_gate, 0.1)) << "layer " << i;
    EXPECT_TRUE(close(a.w_up, b.w_up, 0.1)) << "layer " << i;
    EXPECT_TRUE(close(a.w_down, b.w_down, 0.1)) << "layer " << i;
  }
  // The reference: the same model with every matrix dequantised to f32.
  Model ref = q;
  for (Weight* w : {&ref.embed, &ref.lm_head}) *w = Weight::from_f32(w->to_f32(), w->rows, w->cols);
  for (auto& R : ref.layers) {
    for (Weight* w : {&R.wq, &R.wk, &R.wv, &R.wo, &R.w_gate, &R.w_up, &R.w_down}) {
      *w = Weight::from_f32(w->to_f32(), w->rows, w->cols);
    }
  }
  const auto ids = test_ids(q.cfg.vocab, 20);
  const auto want = all_logits(ref, ids);
  EXPECT_TRUE(test::all_close(all_logits(q, ids), want, 1e-3, 1e-3));
  // Decode runs the quantised matrices with 8-bit activations (moa/kernels/quant_matvec.h): each
  // matvec errs by ~0.5% rms of its output, and the errors compound over the layers, so the check
  // is the relative L2 error of the logits: 0.032 measured on this random 2-layer model (the
  // inputs are fixed, so it does not vary between runs); a wrong block layout errs by tens of
  // percent.
  const auto dec = decode_logits(q, ids);
  double dn = 0, dd = 0;
  for (size_t k = 0; k < want.size(); ++k) {
    dn += (dec[k] - want[k]) * (dec[k] - want[k]);
    dd += want[k] * want[k];
  }
  std::printf("decode logits (8-bit activations): relative L2 error %.4f\n", std::sqrt(dn / dd));
  EXPECT_LT(std::sqrt(dn / dd), 0.05);
  // And it is still the f32 checkpoint's model, up to quantisation error: with 4-bit MLP weights
  // (step ~ block range / 15) this random model's logits move by 21% of their norm (measured).
  const auto exact = all_logits(st, ids);
  double num = 0, den = 0;
  for (size_t k = 0; k < exact.size(); ++k) {
    num += (want[k] - exact[k]) * (want[k] - exact[k]);
    den += exact[k] * exact[k];
  }
  std::printf("mixed-quant logits: relative L2 error %.4f against the f32 checkpoint\n",
              std::sqrt(num / den));
  EXPECT_LT(std::sqrt(num / den), 0.35);
}

// Matmul over every computable block type against matmul_ref, T = 1 and 3 (decode kernels, 8-bit
// activations) and T > 8 (dequantised panels through sgemm).
TEST(GgufModel, QuantWeightMatmulMatchesReference) {
  GgufFile types(fs::path(MOA_TEST_DATA) / "gguf" / "types.gguf");
  const uint64_t seed = std::random_device{}();
  std::printf("QuantWeightMatmulMatchesReference: seed %llu\n", (unsigned long long)seed);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0, 1);
  for (const GgufTensor& t : types.tensors()) {
    if (t.type() == GgmlType::kF32 || t.type() == GgmlType::kF16 || t.type() == GgmlType::kBF16) {
      continue;
    }
    SCOPED_TRACE(t.name);
    Weight w = Weight::from_quant(t.type(), std::shared_ptr<const uint8_t>(types.mapping(), t.data),
                                  t.rows(), t.cols());
    for (int64_t T : {1, 3, 17}) {
      std::vector<float> x(size_t(T * w.cols)), bias(static_cast<size_t>(w.rows));
      for (auto& v : x) v = nd(rng);
      for (auto& v : bias) v = nd(rng);
      std::vector<float> y(size_t(T * w.rows)), want(y.size());
      matmul(x.data(), w, bias.data(), T, y.data());
      matmul_ref(x.data(), t.type(), t.data, w.rows, w.cols, bias.data(), T, want.data());
      if (T > 8) {
        EXPECT_TRUE(test::all_close(y, want, 1e-4, 1e-4)) << "T=" << T;
        continue;
      }
      // Decode runs the kernels with 8-bit activations: within their stated bound (plus the
      // rounding of the bias addition).
      for (int64_t i = 0; i < T; ++i) {
        const auto bound = quant_matvec_error_bound(t.type(), t.data, w.rows, w.cols,
                                                    x.data() + i * w.cols);
        for (int64_t r = 0; r < w.rows; ++r) {
          const size_t k = size_t(i * w.rows + r);
          ASSERT_LE(std::fabs(double(y[k]) - want[k]), bound[size_t(r)] + 1e-6 * std::fabs(want[k]))
              << "T=" << T << " input " << i << " row " << r;
        }
      }
    }
  }
}

void expect_load_error(const std::string& bytes, const std::vector<std::string>& needles) {
  static int n = 0;
  const fs::path p = test::temp_dir("gguf_model") / ("bad" + std::to_string(n++) + ".gguf");
  write_text_atomic(p, bytes);
  test::expect_input_error(p, [&] { Model::load(p); }, needles);
}

TEST(GgufModel, BadModelFiles) {
  const std::string f32 = read_text(kLlama / "model-f32.gguf");
  const test::GgufLayout L = test::walk_gguf(f32);
  // A renamed tensor (same length).
  std::string b = f32;
  b.replace(L.tensor.at("blk.1.ffn_up.weight").name_len + 8, 19, "blk.1.ffn_uq.weight");
  expect_load_error(b, {"missing tensor 'blk.1.ffn_up.weight'"});
  // Metadata that disagrees with the tensors.
  expect_load_error(test::with(f32, L.value.at("llama.feed_forward_length"), uint32_t(32)),
                    {"tensor 'blk.0.ffn_gate.weight'", "shape [64, 32], expected [32, 32]"});
  // A tensor type we cannot compute with (Q8_1 rows are smaller than F32 rows, so it still fits).
  expect_load_error(test::with(f32, L.tensor.at("blk.0.attn_q.weight").type, uint32_t(9)),
                    {"tensor 'blk.0.attn_q.weight' is Q8_1", "cannot compute", "Q4_K"});
  // Another architecture.
  b = f32;
  b.replace(L.value.at("general.architecture") + 8, 5, "bloom");
  expect_load_error(b, {"general.architecture is 'bloom'", "expected llama or qwen2"});
  // A missing required key.
  b = f32;
  b.replace(L.key_len.at("llama.context_length") + 8, 20, "llama.context_lengtX");
  expect_load_error(b, {"missing metadata key 'llama.context_length'"});
  expect_load_error(test::with(f32, L.value.at("llama.attention.head_count_kv"), uint32_t(3)),
                    {"head_count_kv' is 3", "divisor of the 4"});
  // A block count the tensor table cannot hold is refused before the layers are allocated
  // (a fuzzer finding: 2^32-1 blocks became one huge allocation).
  expect_load_error(test::with(f32, L.value.at("llama.block_count"), uint32_t(0xFFFFFFFF)),
                    {"'llama.block_count' is 4294967295", "holds 21 tensors"});
  // Not a GGUF file at all, named .gguf.
  expect_load_error("PK\x03\x04 not gguf", {"not a GGUF file"});
}

// Metadata the loader refuses, each checked before any tensor is read (metadata-only files).
TEST(GgufModel, UnsupportedMetadata) {
  struct Case {
    std::function<void(test::GgufBuilder&)> edit;
    std::vector<std::string> needles;
  };
  const std::vector<Case> cases = {
      {[](auto& g) { g.add_u32("llama.expert_count", 8); }, {"expert_count' is 8", "mixture"}},
      {[](auto& g) { g.add("llama.rope.scaling.type", "yarn"); },
       {"rope.scaling.type' is 'yarn'", "none or linear"}},
      {[](auto& g) { g.add_u32("llama.rope.dimension_count", 4); },
       {"rope.dimension_count' is 4", "partial rotary"}},
      {[](auto& g) { g.add_u32("llama.attention.value_length", 16); },
       {"value_length' is 16", "key length 8"}},
      {[](auto& g) { g.add_u32("llama.attention.head_count_kv", 0); },
       {"head_count_kv' is 0", "divisor"}},
      {[](auto& g) { g.add("llama.block_count", "two"); },
       {"'llama.block_count' is STRING", "expected an integer"}},
      {[](auto& g) { g.add_f32("llama.rope.scaling.factor", -2.0f); },
       {"rope.scaling.factor' is -2", "> 0"}},
  };
  for (size_t k = 0; k < cases.size(); ++k) {
    test::GgufBuilder g;
    g.add("general.architecture", "llama");
    g.add_u32("llama.embedding_length", 32);
    g.add_u32("llama.feed_forward_length", 64);
    g.add_u32("llama.attention.head_count", 4);
    g.add_u32("llama.context_length", 64);
    g.add_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
    cases[k].edit(g);
    if (k != 5) g.add_u32("llama.block_count", 1);
    SCOPED_TRACE(k);
    expect_load_error(g.bytes(), cases[k].needles);
  }
}

TEST(GgufCli, InfoScoreAndErrors) {
  auto r = test::run_moa("info -m " + (kLlama / "model-mixed.gguf").string() + " --json");
  ASSERT_EQ(r.status, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["layers"], 2);
  EXPECT_EQ(j["heads"], 4);
  EXPECT_EQ(j["kv_heads"], 2);
  EXPECT_EQ(j["head_dim"], 8);
  EXPECT_EQ(j["hidden"], 32);
  EXPECT_EQ(j["vocab"], 64);
  EXPECT_EQ(j["format"], "gguf");
  EXPECT_EQ(j["dtypes"]["Q8_0"], 4 * 2 * (32 * 32 + 16 * 32) / 2 + 64 * 32);  // q,k,v,o + output
  EXPECT_EQ(j["tensor_bytes"]["Q5_0"], 2 * 32 * (64 / 32) * 22);              // ffn_down
  // Scoring ids through the GGUF file gives the checkpoint's NLL.
  const fs::path ids = test::temp_dir("gguf_cli") / "ids.txt";
  write_text_atomic(ids, "1 5 9 13 2 7 30 41 63 0 12");
  auto a = test::run_moa("score -m " + kLlama.string() + " --ids " + ids.string() + " --json");
  auto g = test::run_moa("score -m " + (kLlama / "model-f32.gguf").string() + " --ids " +
                         ids.string() + " --json");
  ASSERT_EQ(a.status, 0) << a.err;
  ASSERT_EQ(g.status, 0) << g.err;
  EXPECT_NEAR(nlohmann::json::parse(g.out)["nll"].get<double>(),
              nlohmann::json::parse(a.out)["nll"].get<double>(), 1e-5);
  // A truncated GGUF: exit 2, one line on stderr naming the file.
  const std::string bytes = read_text(kLlama / "model-f32.gguf");
  const fs::path cut = ids.parent_path() / "cut.gguf";
  write_text_atomic(cut, bytes.substr(0, bytes.size() / 2));
  r = test::run_moa("info -m " + cut.string() + " --json");
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find("cut.gguf"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty());
}

}  // namespace
}  // namespace moa
