// A process killed with SIGKILL in the middle of writing a file (core/file_io.h's atomic write,
// with the MOA_TEST_KILL_AT_WRITE fault hook) leaves no file under the final name, and the
// rerun produces the same bytes as an uninterrupted run and removes the killed run's temp file.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "moa/core/file_io.h"
#include "moa/gguf/gguf.h"
#include "test_util.h"

namespace moa {
namespace {

namespace fs = std::filesystem;

std::vector<fs::path> temps_of(const fs::path& file) {
  std::vector<fs::path> out;
  const std::string prefix = file.filename().string() + ".tmp.";
  for (const auto& e : fs::directory_iterator(file.parent_path())) {
    if (e.path().filename().string().starts_with(prefix)) out.push_back(e.path());
  }
  return out;
}

test::RunResult run_killed_at_write(int n, const std::string& args) {
  ::setenv("MOA_TEST_KILL_AT_WRITE", std::to_string(n).c_str(), 1);
  test::RunResult r = test::run_moa(args);
  ::unsetenv("MOA_TEST_KILL_AT_WRITE");
  return r;
}

TEST(CrashSafety, ConvertKilledMidWrite) {
  const fs::path tiny = fs::path(MOA_TEST_DATA).parent_path().parent_path() / "models" / "moa-tiny";
  const fs::path ref = test::temp_dir("crash_convert_ref") / "tiny.gguf";
  const fs::path out = test::temp_dir("crash_convert") / "tiny.gguf";
  const std::string args = "convert -m " + tiny.string() + " --type q8_0 --out ";

  ASSERT_EQ(test::run_moa(args + ref.string()).status, 0);

  const test::RunResult killed = run_killed_at_write(1, args + out.string());
  EXPECT_EQ(killed.status, 128 + 9) << killed.err;
  EXPECT_FALSE(fs::exists(out));
  const std::vector<fs::path> left = temps_of(out);
  ASSERT_EQ(left.size(), 1u);
  EXPECT_GT(fs::file_size(left[0]), 0u);
  EXPECT_LT(fs::file_size(left[0]), fs::file_size(ref));

  const test::RunResult rerun = test::run_moa(args + out.string());
  ASSERT_EQ(rerun.status, 0) << rerun.err;
  EXPECT_TRUE(temps_of(out).empty());
  EXPECT_EQ(read_text(out), read_text(ref));
  GgufFile g(out);
  EXPECT_EQ(g.get_string("general.architecture"), "llama");
}

}  // namespace
}  // namespace moa
