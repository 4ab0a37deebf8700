#include "test_util.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <system_error>
#include <vector>

#include "moa/core/error.h"
#include "moa/model/forward.h"
#include "moa/model/model.h"

namespace moa::test {

static std::string slurp(const std::filesystem::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

RunResult run_moa(const std::string& args) { return run_shell(std::string(MOA_BIN) + " " + args); }

RunResult run_shell(const std::string& command) {
  auto dir = temp_dir("run");
  auto out = dir / "out.txt", err = dir / "err.txt";
  std::string cmd = command + " >" + out.string() + " 2>" + err.string();
  int rc = std::system(cmd.c_str());
  RunResult r;
  r.status = WIFEXITED(rc) ? WEXITSTATUS(rc) : 128 + WTERMSIG(rc);
  r.out = slurp(out);
  r.err = slurp(err);
  std::filesystem::remove_all(dir);
  return r;
}

namespace {

// Every directory temp_dir made, removed when the test binary exits (tests that stop at a failed
// ASSERT skip their own clean-up, and /tmp collected hundreds of them).
std::vector<std::filesystem::path>& made_dirs() {
  static std::vector<std::filesystem::path> dirs;
  return dirs;
}

void remove_made_dirs() {
  std::error_code ec;
  for (const auto& d : made_dirs()) std::filesystem::remove_all(d, ec);
}

}  // namespace

std::filesystem::path temp_dir(const std::string& name) {
  static int counter = 0;
  if (counter == 0) {
    made_dirs();  // constructed before the handler is registered, so destroyed after it runs
    std::atexit(remove_made_dirs);
  }
  auto base =
      std::filesystem::temp_directory_path() /
      ("moa-test-" + std::to_string(getpid()) + "-" + name + "-" + std::to_string(counter++));
  std::filesystem::remove_all(base);
  std::filesystem::create_directories(base);
  made_dirs().push_back(base);
  return base;
}

::testing::AssertionResult all_close(std::span<const float> a, std::span<const float> b,
                                     double rtol, double atol) {
  if (a.size() != b.size()) {
    return ::testing::AssertionFailure() << "size " << a.size() << " vs " << b.size();
  }
  double max_err = 0;
  long first_bad = -1;
  for (size_t i = 0; i < a.size(); ++i) {
    double e = std::fabs(double(a[i]) - double(b[i]));
    if (!(e <= atol + rtol * std::fabs(double(b[i])))) {  // also catches NaN
      if (first_bad < 0) first_bad = long(i);
    }
    if (e > max_err || std::isnan(e)) max_err = e;
  }
  if (first_bad < 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "first bad index " << first_bad << ": " << a[first_bad] << " vs " << b[first_bad]
         << ", max abs error " << max_err << " (rtol " << rtol << ", atol " << atol << ")";
}

std::vector<double> attention_reference(const std::vector<HeadSpan>& spans, int64_t H, int64_t G,
                                        int64_t D, int64_t T, const std::vector<double>& q,
                                        const std::vector<double>& k, const std::vector<double>& v,
                                        std::vector<double>* lse) {
  std::vector<double> out(static_cast<size_t>(T * H * D), 0.0);
  if (lse) lse->assign(size_t(H * T), 0.0);
  const double scale = 1.0 / std::sqrt(double(D));
  for (int64_t h = 0; h < H; ++h) {
    const int64_t g = h / (H / G);
    const HeadSpan& sp = spans[size_t(h)];
    for (int64_t i = 0; i < T; ++i) {
      std::vector<double> s(static_cast<size_t>(T), -INFINITY);
      double mx = -INFINITY;
      for (int64_t j = 0; j <= i; ++j) {
        if (!(j < sp.sink || i - j < sp.window)) continue;
        double d = 0;
        for (int64_t e = 0; e < D; ++e) {
          d += q[size_t((i * H + h) * D + e)] * k[size_t((j * G + g) * D + e)];
        }
        s[size_t(j)] = d * scale;
        mx = std::max(mx, s[size_t(j)]);
      }
      double z = 0;
      for (int64_t j = 0; j < T; ++j) z += std::exp(s[size_t(j)] - mx);
      for (int64_t j = 0; j < T; ++j) {
        const double p = std::exp(s[size_t(j)] - mx) / z;
        if (p == 0) continue;
        for (int64_t e = 0; e < D; ++e) {
          out[size_t((i * H + h) * D + e)] += p * v[size_t((j * G + g) * D + e)];
        }
      }
      if (lse) (*lse)[size_t(h * T + i)] = mx + std::log(z);
    }
  }
  return out;
}

uint64_t draw_seed() {
  const uint64_t seed = (uint64_t(std::random_device{}()) << 32) | std::random_device{}();
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::printf("%s.%s: random seed %llu\n", info ? info->test_suite_name() : "?",
              info ? info->name() : "?", (unsigned long long)seed);
  ::testing::Test::RecordProperty("seed", std::to_string(seed));
  return seed;
}

void expect_input_error(const std::filesystem::path& file, const std::function<void()>& load,
                        const std::vector<std::string>& needles) {
  try {
    load();
    ADD_FAILURE() << file << ": no error";
  } catch (const InputError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(file.string()), std::string::npos) << msg;
    for (auto& s : needles)
      EXPECT_NE(msg.find(s), std::string::npos) << "'" << s << "' not in: " << msg;
  }
}

std::vector<float> prefill_logits(const Model& m, const std::vector<int32_t>& ids,
                                  const AttentionSpec* spec) {
  Session s(m, spec ? *spec : AttentionSpec::dense(m.cfg.attention_shape(), int64_t(ids.size())));
  std::vector<float> hidden;
  s.prefill(ids, &hidden);
  std::vector<float> logits(ids.size() * size_t(m.cfg.vocab));
  compute_logits(m, hidden.data(), int64_t(ids.size()), logits.data());
  return logits;
}

}  // namespace moa::test
