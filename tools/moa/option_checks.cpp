#include "option_checks.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fmt/format.h>

namespace moa::cli {
namespace {

// Bounds as people write them: 1048576, not 1048576.000000; 0.5 stays 0.5.
std::string show(double v) {
  if (std::fabs(v) < 1e15 && v == std::floor(v)) return fmt::format("{}", static_cast<long long>(v));
  return fmt::format("{}", v);
}

bool parse_number(const std::string& s, double& v) {
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  v = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size() && errno == 0 && std::isfinite(v);
}

CLI::Validator number_check(std::string expected, std::function<bool(double)> ok) {
  return CLI::Validator(
      [expected, ok](std::string& in) -> std::string {
        double v = 0;
        if (parse_number(in, v) && ok(v)) return {};
        return fmt::format("expected {}, got '{}'", expected, in);
      },
      expected);
}

}  // namespace

CLI::Validator at_least(double lo) {
  return number_check("a number >= " + show(lo), [lo](double v) { return v >= lo; });
}

CLI::Validator above(double lo) {
  return number_check("a number > " + show(lo), [lo](double v) { return v > lo; });
}

CLI::Validator in_range(double lo, double hi) {
  return number_check(fmt::format("a number in [{}, {}]", show(lo), show(hi)),
                      [lo, hi](double v) { return v >= lo && v <= hi; });
}

CLI::Validator one_of(std::vector<std::string> choices) {
  const std::string expected = fmt::format("one of {}", fmt::join(choices, ", "));
  return CLI::Validator(
      [choices, expected](std::string& in) -> std::string {
        for (const auto& c : choices) {
          if (in == c) return {};
        }
        return fmt::format("expected {}, got '{}'", expected, in);
      },
      expected);
}

}  // namespace moa::cli
