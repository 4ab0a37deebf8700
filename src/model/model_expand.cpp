// Depth expansion: new layers inserted whose attention output and MLP down projections are zero
// start as exact identities on the residual stream, so the expanded model computes the same
// logits as the original until training moves them (the block expansion of LLaMA Pro). The other
// matrices are random or copied from the layer before (non-zero either way), so the zero
// projections get gradients from the first step. Random queries and keys of size 0.02 score every
// key about alike; such heads stayed near-uniform through 3000 steps of training (the shipped
// e1), which is why kCopy exists.
#include <algorithm>
#include <set>

#include "moa/core/error.h"
#include "moa/model/model.h"

namespace moa {

Model expand_depth(const Model& m, const std::vector<int64_t>& insert_after, uint64_t seed, ExpandInit init) {
  const int64_t L = m.cfg.layers;
  if (insert_after.empty()) input_error("expand: no layer to insert after (expected at least one of 0..{})", L - 1);
  std::multiset<int64_t> at;
  for (int64_t i : insert_after) {
    if (i < 0 || i >= L) input_error("expand: cannot insert after layer {}: the model has layers 0..{}", i, L - 1);
    at.insert(i);
  }
  ModelConfig c = m.cfg;
  c.layers = L + int64_t(insert_after.size());
  // Fresh layers drawn from the model's own random initialiser, so they match `moa init`.
  Model fresh = init == ExpandInit::kRandom ? Model::random(c, seed) : Model{};
  Model out;
  out.cfg = c;
  out.stored_dtype = m.stored_dtype;
  out.embed = m.embed;
  out.final_norm = m.final_norm;
  out.lm_head = m.lm_head;
  out.layers.reserve(size_t(c.layers));
  for (int64_t i = 0; i < L; ++i) {
    out.layers.push_back(m.layers[size_t(i)]);
    for (size_t k = 0; k < at.count(i); ++k) {
      LayerWeights nl = init == ExpandInit::kCopy ? m.layers[size_t(i)] : std::move(fresh.layers[out.layers.size()]);
      nl.wo = Weight::from_f32(std::vector<float>(size_t(nl.wo.numel()), 0.0f), nl.wo.rows, nl.wo.cols);
      nl.w_down = Weight::from_f32(std::vector<float>(size_t(nl.w_down.numel()), 0.0f), nl.w_down.rows,
                                   nl.w_down.cols);
      std::fill(nl.bo.begin(), nl.bo.end(), 0.0f);
      std::fill(nl.b_down.begin(), nl.b_down.end(), 0.0f);
      out.layers.push_back(std::move(nl));
    }
  }
  return out;
}

}  // namespace moa
