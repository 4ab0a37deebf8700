// libFuzzer harness for profile files (moa-profile/1: safetensors with one F32 tensor
// `influence` [layers, heads, nb, nb] and __metadata__ format, length, block, samples, model,
// influence): Profile::load, a read of every tile, then save and load again, which must succeed.
//
// Only moa::InputError may leave the load (fuzz_common.h); the rewrite must be accepted.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>

#include "fuzz_common.h"
#include "moa/compress/profile.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::filesystem::path file =
      moa::fuzz::scratch_dir("profile") / "profile.safetensors";
  static const std::filesystem::path rewrite =
      moa::fuzz::scratch_dir("profile") / "rewrite.safetensors";
  moa::fuzz::write_file(file, data, size);
  std::optional<moa::Profile> p;
  moa::fuzz::expect_only_input_errors([&] { p = moa::Profile::load(file); });
  if (!p) return 0;
  double sum = 0;
  for (int64_t l = 0; l < p->layers; ++l) {
    for (int64_t h = 0; h < p->heads; ++h) {
      for (int64_t q = 0; q < p->nb(); ++q) sum += p->at(l, h, q, q);
    }
  }
  p->save(rewrite);
  const moa::Profile back = moa::Profile::load(rewrite);
  if (back.influence != p->influence || back.length != p->length || back.block != p->block) {
    std::fprintf(stderr, "profile rewrite differs\n");
    std::abort();
  }
  if (sum == 1) std::fputc(' ', stderr);  // keeps the reads from being optimised away
  return 0;
}
