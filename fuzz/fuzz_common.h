// What every harness of fuzz/ shares: the contract (only moa::InputError may leave a parser) and a
// private scratch directory, since most loaders read a path (they map or stat the file, or look
// for files beside it).
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "moa/core/error.h"

namespace moa::fuzz {

// One directory per process (libFuzzer's -jobs/-fork run several), holding nothing but what the
// harness writes, so that a loader looking for sibling files (tokenizer_config.json, config.json)
// finds only those the harness meant it to.
inline const std::filesystem::path& scratch_dir(const char* target) {
  static const std::filesystem::path dir = [&] {
    std::filesystem::path p = std::filesystem::temp_directory_path() /
                              ("moa-fuzz-" + std::string(target) + "-" + std::to_string(getpid()));
    std::filesystem::create_directories(p);
    return p;
  }();
  static const bool cleaned_up = [] {
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    });
    return true;
  }();
  (void)cleaned_up;
  return dir;
}

inline void write_file(const std::filesystem::path& path, const uint8_t* data, size_t size) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  if (size && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
}

// Bad input must end in moa::InputError; anything else (another exception, a sanitizer report, a
// MOA_CHECK abort, a hang or a huge allocation) escapes to libFuzzer and is a finding.
template <typename F>
void expect_only_input_errors(F&& f) {
  try {
    f();
  } catch (const moa::InputError&) {
  }
}

}  // namespace moa::fuzz
