#include "moa/compress/profile.h"

#include <cmath>
#include <limits>
#include <map>

#include "moa/core/error.h"
#include "moa/model/safetensors.h"

namespace moa {

Profile Profile::zeros(int64_t layers, int64_t heads, int64_t length, int64_t block) {
  MOA_CHECK(layers > 0 && heads > 0 && length > 0 && block > 0);
  Profile p;
  p.layers = layers;
  p.heads = heads;
  p.length = length;
  p.block = block;
  p.influence.assign(size_t(layers * heads * p.nb() * p.nb()), 0.0f);
  return p;
}

namespace {

// Lengths and blocks beyond 2^40 tokens are no profile; the bound keeps nb() = ceil(length /
// block) inside int64 (a length near 2^63 overflowed it: signed overflow).
constexpr int64_t kMaxProfileTokens = int64_t(1) << 40;

int64_t meta_int(const std::map<std::string, std::string>& meta, const std::string& key,
                 const std::string& file, int64_t min_value,
                 int64_t max_value = std::numeric_limits<int64_t>::max()) {
  auto it = meta.find(key);
  if (it == meta.end()) input_error("{}: __metadata__ has no '{}' (expected a moa-profile/1 file)", file, key);
  size_t used = 0;
  int64_t v = 0;
  try {
    v = std::stoll(it->second, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != it->second.size() || v < min_value || v > max_value) {
    if (max_value == std::numeric_limits<int64_t>::max()) {
      input_error("{}: __metadata__.{} is '{}', expected an integer >= {}", file, key, it->second,
                  min_value);
    }
    input_error("{}: __metadata__.{} is '{}', expected an integer in {}..{}", file, key, it->second,
                min_value, max_value);
  }
  return v;
}

}  // namespace

Profile Profile::load(const std::filesystem::path& path) {
  const std::string file = path.string();
  SafetensorsFile st(path);
  const auto& meta = st.metadata();
  auto fmt_it = meta.find("format");
  if (fmt_it == meta.end() || fmt_it->second != kProfileFormat) {
    input_error("{}: __metadata__.format is '{}', expected '{}'", file,
                fmt_it == meta.end() ? std::string("(missing)") : fmt_it->second, kProfileFormat);
  }
  auto t_it = st.tensors().find("influence");
  if (t_it == st.tensors().end()) input_error("{}: no tensor 'influence'", file);
  const TensorView& t = t_it->second;
  if (t.dtype != DType::kF32) input_error("{}: tensor 'influence' is {}, expected F32", file, dtype_name(t.dtype));
  if (t.shape.size() != 4) {
    input_error("{}: tensor 'influence' has rank {}, expected 4 [layers, heads, nb, nb]", file, t.shape.size());
  }
  Profile p;
  p.length = meta_int(meta, "length", file, 1, kMaxProfileTokens);
  p.block = meta_int(meta, "block", file, 1, kMaxProfileTokens);
  p.samples = meta_int(meta, "samples", file, 0);
  if (auto m = meta.find("model"); m != meta.end()) p.model = m->second;
  if (auto k = meta.find("influence"); k != meta.end()) {
    if (k->second != "entry" && k->second != "tile") {
      input_error("{}: __metadata__.influence is '{}', expected 'entry' or 'tile'", file, k->second);
    }
    p.influence_kind = k->second;
  }
  p.layers = t.shape[0];
  p.heads = t.shape[1];
  if (p.layers < 1 || p.heads < 1) input_error("{}: tensor 'influence' has an empty layer or head axis", file);
  if (t.shape[2] != p.nb() || t.shape[3] != p.nb()) {
    input_error("{}: tensor 'influence' is [{}, {}, {}, {}], expected nb = ceil(length {} / block {}) = {}",
                file, t.shape[0], t.shape[1], t.shape[2], t.shape[3], p.length, p.block, p.nb());
  }
  p.influence.resize(size_t(t.numel()));
  t.to_f32(p.influence.data());
  for (size_t i = 0; i < p.influence.size(); ++i) {
    if (!std::isfinite(p.influence[i])) input_error("{}: tensor 'influence' has a non-finite value at flat index {}", file, i);
  }
  return p;
}

void Profile::save(const std::filesystem::path& path) const {
  MOA_CHECK(int64_t(influence.size()) == layers * heads * nb() * nb());
  std::map<std::string, std::string> meta = {{"format", kProfileFormat},
                                             {"length", std::to_string(length)},
                                             {"block", std::to_string(block)},
                                             {"samples", std::to_string(samples)},
                                             {"model", model},
                                             {"influence", influence_kind}};
  write_safetensors(path, {{"influence", DType::kF32, {layers, heads, nb(), nb()}, influence.data()}}, meta);
}

}  // namespace moa
