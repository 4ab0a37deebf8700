// Helpers shared by the tests: run the `moa` binary, temp dirs, comparisons that report the
// first bad index and the max error.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "moa/attention/attention_spec.h"

namespace moa {
struct Model;
}

namespace moa::test {

struct RunResult {
  int status = -1;  // exit status
  std::string out;  // stdout
  std::string err;  // stderr
};

// Runs `moa <args>` (args are passed through a shell, quote as needed).
RunResult run_moa(const std::string& args);
// Runs a shell command line, capturing its stdout and stderr.
RunResult run_shell(const std::string& command);

// A fresh directory under the build's temp area, removed by the caller or left for debugging.
std::filesystem::path temp_dir(const std::string& name);

// Compares a against b elementwise with |a-b| <= atol + rtol*|b|. On failure the assertion message
// names the first bad index, both values and the max abs error.
::testing::AssertionResult all_close(std::span<const float> a, std::span<const float> b,
                                     double rtol, double atol);

// The attention reference of every kernel test, in double precision with the mask written out
// ("j <= i and (j < sink or i - j < window)"), independent of HeadSpan's own methods.
// spans: (H) one layer  q: (T, H, D)  k, v: (T, G, D)  -> out (T, H, D); lse (H, T) if given.
std::vector<double> attention_reference(const std::vector<HeadSpan>& spans, int64_t H, int64_t G,
                                        int64_t D, int64_t T, const std::vector<double>& q,
                                        const std::vector<double>& k, const std::vector<double>& v,
                                        std::vector<double>* lse = nullptr);
// A fresh seed from std::random_device, printed on stdout and recorded as the test's "seed"
// property (in --gtest_output XML), so that a failing draw can be replayed by putting the number
// in place of the call.
uint64_t draw_seed();

// Runs `load`, which must throw InputError whose message names `file` and holds every needle.
void expect_input_error(const std::filesystem::path& file, const std::function<void()>& load,
                        const std::vector<std::string>& needles);

// Logits (T, V) of every position of ids from one prefill under spec (dense over ids when omitted).
std::vector<float> prefill_logits(const Model& m, const std::vector<int32_t>& ids,
                                  const AttentionSpec* spec = nullptr);

}  // namespace moa::test

// Draws a seed into `var` and names it in every failure of the enclosing scope.
#define MOA_RANDOM_SEED(var)                     \
  const uint64_t var = ::moa::test::draw_seed(); \
  SCOPED_TRACE(::testing::Message() << "random seed " << var)
