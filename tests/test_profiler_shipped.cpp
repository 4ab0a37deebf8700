// Issue 6's check that the influence estimate means something, on the shipped model
// (models/moa-tiny): tile ablations at 512 tokens on its own calibration prompts, the predicted
// loss change against the change measured by masking the tile. The formula itself is checked
// against finite differences on random models in test_profiler.cpp.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>

#include "moa/data/calib.h"
#include "moa/compress/calib_set.h"
#include "moa/model/model.h"
#include "moa/compress/profiler.h"
#include "moa/data/tasks.h"
#include "moa/tokenizer/tokenizer.h"

namespace moa {
namespace {

namespace fs = std::filesystem;

TEST(ShippedModel, TileAblationsFollowTheProfile) {
#if defined(__SANITIZE_ADDRESS__)
  // About 130 model forwards per ablation: many minutes under the sanitizers, which already run the
  // same code on the random models of test_profiler.cpp.
  GTEST_SKIP() << "release build only";
#endif
  const fs::path root = fs::path(MOA_REF_DATA).parent_path().parent_path();
  const fs::path dir = root / "models" / "moa-tiny";
  const Model m = Model::load(dir);
  auto tok = Tokenizer::load(dir);
  // The prompts `moa compress` calibrates on at 512 tokens (its defaults: 64 prompts, seed 0),
  // answered by the model. With 16 prompts one draw of tiles in three fell below 0.8 for both
  // estimates (docs/RESULTS.md).
  CalibOptions c;
  c.lengths = {512};
  c.samples_per_length = 64;
  c.seed = 512;
  const std::string text = to_jsonl(make_calibration_set(m, *tok, WordLists::load(root / "data" / "words"), c));
  std::vector<TokenizedSample> samples;
  for (const CalibSample& s : parse_calib(text, "calibration")) samples.push_back(tokenize_sample(*tok, s));
  // Tiles a plan can drop (off the diagonal: every rule keeps at least 64 recent keys), 30 of
  // them drawn across the range of the prediction.
  const AblationReport r = check_ablations(m, samples, 512, 64, 30, 0, {}, true);
  ASSERT_EQ(r.ablations.size(), 30u);
  std::printf("moa-tiny, 30 droppable tiles, 64 prompts of 512 tokens: Spearman %.3f (entry sum), "
              "%.3f (tile-joint)\n", r.spearman, r.spearman_joint);
  // The tile-joint estimate (`--influence tile`): >= 0.84 on each of three draws of tiles. The
  // DESIGN.md entry sum is printed, not asserted: 0.63 on this draw, 0.84 and 1.00 on two others.
  EXPECT_GE(r.spearman_joint, 0.8);
}

}  // namespace
}  // namespace moa
