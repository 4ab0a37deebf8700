// Attention-influence profiles (DESIGN.md, "Formats"): per layer and query head, the influence
// summed into block x block tiles, averaged over the calibration samples, at one length.
// File: safetensors with one F32 tensor `influence` [layers, heads, nb, nb] (nb = length / block;
// tile [qb, kb] = queries of block qb on keys of block kb; zero above the diagonal) and
// __metadata__ {"format": "moa-profile/1", "length", "block", "samples", "model", "influence"}
// ("influence": "entry" or "tile", see moa/compress/profiler.h; files without it hold "entry").
// The optimiser accepts any file of this form, whoever wrote it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace moa {

inline constexpr const char* kProfileFormat = "moa-profile/1";

// What a tile of the profile holds. kEntry (the default, DESIGN.md): the sum of E over the tile,
// each entry removed alone. kTile: per row, the first-order change when the tile's entries are
// removed together, (M S - S_T) / (1 - M) with the tile's mass M and S_T = sum_T A G, summed
// over the tile's rows. The two agree when each row puts little mass in the tile; where a row
// puts most of its mass there (a retrieval head on its key line), the entry sum divides each
// entry by its own 1 - A instead of the tile's 1 - M, and understates the removal by up to
// (1 - A) / (1 - M).
enum class InfluenceKind { kEntry, kTile };
inline const char* influence_name(InfluenceKind k) { return k == InfluenceKind::kTile ? "tile" : "entry"; }

struct Profile {
  int64_t layers = 0, heads = 0;
  int64_t length = 0;  // N the profile was taken at
  int64_t block = 64;
  int64_t samples = 0;
  std::string model;             // free text (model directory name), may be empty
  std::string influence_kind = "entry";  // "entry" (DESIGN.md's E) or "tile" (InfluenceKind::kTile)
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
