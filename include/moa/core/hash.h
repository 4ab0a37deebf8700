// FNV-1a 64: a stable hash (std::hash is not stable across platforms and library versions), for
// the held-out word split and checkpoint fingerprints. Chain calls to hash several pieces.
#pragma once

#include <cstdint>
#include <string_view>

namespace moa {

inline constexpr uint64_t kFnv1aBasis = 1469598103934665603ULL;

inline uint64_t fnv1a(std::string_view bytes, uint64_t h = kFnv1aBasis) {
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

}  // namespace moa
