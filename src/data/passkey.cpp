#include <cmath>

#include "moa/core/error.h"
#include "moa/data/tasks.h"

namespace moa {

nlohmann::json PasskeyRecord::to_json() const {
  return {{"prompt", prompt}, {"expected_number", passkey}, {"depth", depth}, {"answer", answer()}};
}

PasskeyRecord make_passkey(std::mt19937_64& rng, int64_t filler_repeats, double depth) {
  MOA_CHECK(filler_repeats >= 0 && depth >= 0 && depth <= 1);
  static const char* kIntro =
      "There is an important info hidden inside a lot of irrelevant text. Find it and memorize "
      "it. I will quiz you about the important information there.\n";
  static const char* kFiller =
      "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. ";
  PasskeyRecord r;
  r.passkey = int64_t(10000 + rng() % 90000);
  r.depth = depth;
  const int64_t at = std::llround(depth * double(filler_repeats));
  r.prompt = kIntro;
  for (int64_t i = 0; i <= filler_repeats; ++i) {
    if (i == at) {
      r.prompt += "The pass key is " + std::to_string(r.passkey) + ". Remember it. " +
                  std::to_string(r.passkey) + " is the pass key. ";
    }
    if (i < filler_repeats) r.prompt += kFiller;
  }
  r.prompt += "\nWhat is the pass key? The pass key is";
  return r;
}

}  // namespace moa
