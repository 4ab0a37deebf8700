// libFuzzer harness for the GGUF reader and everything that reads a GGUF file: the container
// (metadata, tensor infos, offsets), the model loader (llama / qwen2 metadata, tensor shapes and
// types, the q/k re-permutation) and the tokenizer built from tokenizer.ggml.* metadata.
//
// Bad input must end in moa::InputError; anything else (another exception, a sanitizer report, a
// MOA_CHECK abort, a hang or a huge allocation) is a finding. GgufFile maps a path, so each input
// is written to one scratch file first.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

#include "moa/core/error.h"
#include "moa/gguf/gguf.h"
#include "moa/model/model.h"
#include "moa/tokenizer/tokenizer.h"

namespace {

const std::filesystem::path& scratch_file() {
  static const std::filesystem::path p = std::filesystem::temp_directory_path() /
                                         ("moa-fuzz-gguf-" + std::to_string(getpid()) + ".gguf");
  return p;
}

void write_input(const uint8_t* data, size_t size) {
  std::FILE* f = std::fopen(scratch_file().c_str(), "wb");
  if (!f) std::abort();
  if (size && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
}

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

template <typename F>
void expect_only_input_errors(F&& f) {
  try {
    f();
  } catch (const moa::InputError&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  write_input(data, size);
  const std::filesystem::path& path = scratch_file();
  expect_only_input_errors([&] {
    moa::GgufFile g(path);
    walk(g);
    expect_only_input_errors([&] {
      auto tok = moa::Tokenizer::from_gguf(g);
      const std::vector<int32_t> ids = tok->encode("Hello, world 123 \xc3\xa9t\xc3\xa9\n", true);
      (void)tok->decode(ids);
    });
    expect_only_input_errors([&] { (void)moa::Model::load_gguf(path); });
  });
  return 0;
}
