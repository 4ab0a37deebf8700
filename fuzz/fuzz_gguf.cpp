// libFuzzer harness for the GGUF reader and everything that reads a GGUF file: the container
// (metadata, tensor infos, offsets), the model loader (llama / qwen2 metadata, tensor shapes and
// types, the q/k re-permutation) and the tokenizer built from tokenizer.ggml.* metadata.
//
// Bad input must end in moa::InputError; anything else (another exception, a sanitizer report, a
// MOA_CHECK abort, a hang or a huge allocation) is a finding. GgufFile maps a path, so each input
// is written to one scratch file first.
#include <cstdint>
#include <cstdio>
#include <filesystem>

#include "fuzz_common.h"
#include "fuzz_tokenizer.h"
#include "moa/gguf/gguf.h"
#include "moa/model/model.h"
#include "moa/tokenizer/tokenizer.h"

namespace {

// Touch every metadata value and tensor the reader accepted, as the loaders would.
void walk(const moa::GgufFile& g) {
  size_t sum = 0;
  for (const auto& [key, v] : g.metadata()) {
    sum += key.size() + v.str.size();
    if (v.type == moa::GgufType::kArray && v.elem != moa::GgufType::kArray &&
        v.elem != moa::GgufType::kString && v.count > 0) {
      sum += v.at(v.count - 1).u;
    }
  }
  for (const moa::GgufTensor& t : g.tensors()) {
    if (t.nbytes > 0) sum += t.data[0] + t.data[t.nbytes - 1];
  }
  if (sum == 1) std::fputc(' ', stderr);  // keeps the reads from being optimised away
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using moa::fuzz::expect_only_input_errors;
  static const std::filesystem::path path = moa::fuzz::scratch_dir("gguf") / "input.gguf";
  moa::fuzz::write_file(path, data, size);
  expect_only_input_errors([&] {
    moa::GgufFile g(path);
    walk(g);
    expect_only_input_errors([&] { moa::fuzz::exercise_tokenizer(*moa::Tokenizer::from_gguf(g)); });
    expect_only_input_errors([&] { (void)moa::Model::load_gguf(path); });
  });
  return 0;
}
