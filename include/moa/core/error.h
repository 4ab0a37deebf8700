// Errors. Two kinds, kept apart on purpose:
//  - MOA_CHECK: an internal invariant broke (a bug). Aborts with file, line and the values.
//  - moa::InputError: the user gave us something we cannot use (a file, a field, an option).
//    Thrown from the place that knows the file and field, caught once at the command boundary,
//    printed as one line, exit status 2.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <fmt/format.h>

namespace moa {

class InputError : public std::runtime_error {
 public:
  explicit InputError(const std::string& what) : std::runtime_error(what) {}
};

// InputError with a fmt::format message: input_error("{}: field '{}' is {}, expected {}", ...).
template <typename... Args>
[[noreturn]] void input_error(fmt::format_string<Args...> f, Args&&... args) {
  throw InputError(fmt::format(f, std::forward<Args>(args)...));
}

[[noreturn]] inline void check_failed(const char* file, int line, const char* cond,
                                      const std::string& msg) {
  std::fprintf(stderr, "%s:%d: MOA_CHECK(%s) failed: %s\n", file, line, cond, msg.c_str());
  std::abort();
}

}  // namespace moa

// MOA_CHECK(cond) or MOA_CHECK(cond, "fmt {}", values...)
#define MOA_CHECK(cond, ...)                                                      \
  do {                                                                            \
    if (!(cond)) ::moa::check_failed(__FILE__, __LINE__, #cond, ::moa::detail::check_msg(__VA_ARGS__)); \
  } while (0)

namespace moa::detail {
inline std::string check_msg() { return ""; }
template <typename... Args>
std::string check_msg(fmt::format_string<Args...> f, Args&&... args) {
  return fmt::format(f, std::forward<Args>(args)...);
}
}  // namespace moa::detail
