// libFuzzer harness for the JSONL readers (src/core/jsonl.cpp, one object per non-blank line):
// calibration / validation samples with LongEval's expected_number (parse_calib, load_calib),
// LongEval retrieval records (load_retrieval_jsonl: prompt, expected_number, num_lines,
// random_idx, depth) and prompt lists (load_prompts_jsonl, `moa inspect --data`).
//
// Only moa::InputError may leave (fuzz_common.h).
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

#include "fuzz_common.h"
#include "moa/core/jsonl.h"
#include "moa/data/calib.h"
#include "moa/eval/eval.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using moa::fuzz::expect_only_input_errors;
  static const std::filesystem::path file = moa::fuzz::scratch_dir("jsonl") / "data.jsonl";
  moa::fuzz::write_file(file, data, size);
  size_t sum = 0;
  expect_only_input_errors([&] {
    for (const moa::CalibSample& s : moa::load_calib(file))
      sum += s.prompt.size() + s.answer.size();
  });
  expect_only_input_errors([&] {
    for (const moa::RetrievalItem& it : moa::load_retrieval_jsonl(file)) {
      sum += it.prompt.size() + size_t(it.expected) + size_t(it.num_lines) + size_t(it.depth * 5);
    }
  });
  expect_only_input_errors([&] {
    for (const std::string& p : moa::load_prompts_jsonl(file)) sum += p.size();
  });
  if (sum == 1) std::fputc(' ', stderr);  // keeps the reads from being optimised away
  return 0;
}
