// libFuzzer harness for tokenizer.json: Tokenizer::load of the input as the only file of a
// directory (normalizer, pre-tokenizer, BPE model and merges, added tokens, post-processor and
// decoder), then an encode of a fixed text with and without special tokens, its decode, and the
// streamed bytes of tokens (fuzz_tokenizer.h).
//
// Only moa::InputError may leave (fuzz_common.h).
#include <cstdint>
#include <filesystem>

#include "fuzz_common.h"
#include "fuzz_tokenizer.h"
#include "moa/tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::filesystem::path file =
      moa::fuzz::scratch_dir("tokenizer_json") / "tokenizer.json";
  moa::fuzz::write_file(file, data, size);
  moa::fuzz::expect_only_input_errors(
      [&] { moa::fuzz::exercise_tokenizer(*moa::Tokenizer::load(file)); });
  return 0;
}
