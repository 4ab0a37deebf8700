// Attention-influence profiles (DESIGN.md, "Formats"): per layer and query head, the influence
// summed into block x block tiles, averaged over the calibration samples, at one length.
// File: safetensors with one F32 tensor `influence` [layers, heads, nb, nb] (nb = length / block;
// tile [qb, kb] = queries of block qb on keys of block kb; zero above the diagonal) and
// __metadata__ {"format": "moa-profile/1", "length", "block", "samples", "model"}.
// The optimiser accepts any file of this form, whoever wrote it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace moa {

inline constexpr const char* kProfileFormat = "moa-profile/1";

struct Profile {
  int64_t layers = 0, heads = 0;
  int64_t length = 0;  // N the profile was taken at
  int64_t block = 64;
  int64_t samples = 0;
  std::string model;             // free text (model directory name), may be empty
  std::vector<float> influence;  // [layers][heads][nb][nb]

  int64_t nb() const { return (length + block - 1) / block; }
  float& at(int64_t l, int64_t h, int64_t qb, int64_t kb) {
    return influence[size_t(((l * heads + h) * nb() + qb) * nb() + kb)];
  }
  float at(int64_t l, int64_t h, int64_t qb, int64_t kb) const {
    return influence[size_t(((l * heads + h) * nb() + qb) * nb() + kb)];
  }
  // Zero-filled profile of this shape.
  static Profile zeros(int64_t layers, int64_t heads, int64_t length, int64_t block);

  // Reads and validates (format, tensor name/dtype/rank, nb == ceil(length / block), finite
  // values, metadata numbers). InputError names the file and the field.
  static Profile load(const std::filesystem::path& path);
  // Writes atomically.
  void save(const std::filesystem::path& path) const;
};

}  // namespace moa
