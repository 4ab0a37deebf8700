// libFuzzer harness for tokenizer.model: Tokenizer::load of the input as the only file of a
// directory, which checks the bytes (tokenizer_sentencepiece.cpp) and hands them to
// libsentencepiece, then an encode of a fixed text with and without special tokens, its decode,
// and the streamed bytes of tokens (fuzz_tokenizer.h).
//
// Only moa::InputError may leave (fuzz_common.h).
#include <cstdint>
#include <filesystem>

#include "fuzz_common.h"
#include "fuzz_tokenizer.h"
#include "moa/tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::filesystem::path file =
      moa::fuzz::scratch_dir("sentencepiece") / "tokenizer.model";
  moa::fuzz::write_file(file, data, size);
  moa::fuzz::expect_only_input_errors(
      [&] { moa::fuzz::exercise_tokenizer(*moa::Tokenizer::load(file)); });
  return 0;
}
