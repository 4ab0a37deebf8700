// The command line's error contract (CLI.md): every mistake in the arguments is one line on
// stderr, "error: moa <command>: <what>", naming the option and what it expects, and exit 2.
#pragma once

#include <CLI/CLI.hpp>

#include <optional>
#include <string>
#include <vector>

namespace moa::cli {

// The k known names closest to `word` by edit distance (ties by name).
std::vector<std::string> nearest_names(const std::string& word, const std::vector<std::string>& known, size_t k);

// "unknown command 'X' (nearest: a, b, c)" when argv names a command that does not exist at some
// level ("moa frobnicate", "moa plan chek"); nullopt when every command word is known. Checked
// before parsing: CLI11 would only say "A subcommand is required".
std::optional<std::string> unknown_command(CLI::App& app, int argc, char** argv);

// One line for a CLI11 parse error, with the command path and, for a value that does not
// convert, the option's expected type; for an unexpected argument, the nearest option names.
std::string describe_parse_error(CLI::App& app, const CLI::ParseError& e);

}  // namespace moa::cli
