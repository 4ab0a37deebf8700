// Checks for option values whose failure message is one line naming what was expected, e.g.
// "--n-predict: expected a number >= 0, got 'abc'" (CLI11's own range checks print the bounds of
// a double with std::to_string: a 309-digit number). main.cpp prefixes the command and exits 2.
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

namespace moa::cli {

CLI::Validator at_least(double lo);              // a number >= lo
CLI::Validator above(double lo);                 // a number > lo
CLI::Validator in_range(double lo, double hi);   // a number in [lo, hi]
CLI::Validator one_of(std::vector<std::string> choices);

}  // namespace moa::cli
