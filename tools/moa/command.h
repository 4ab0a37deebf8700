// Subcommand registry: each tools/moa/cmd_*.cpp registers itself with MOA_COMMAND, so adding a
// command touches one file. A command's setup declares its options once (name, default, help)
// and installs the callback that runs it.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

namespace moa::cli {

struct Command {
  std::string name;
  std::string help;
  std::function<void(CLI::App&)> setup;
};

std::vector<Command>& registry();

struct Registrar {
  Registrar(std::string name, std::string help, std::function<void(CLI::App&)> setup) {
    registry().push_back({std::move(name), std::move(help), std::move(setup)});
  }
};

}  // namespace moa::cli

#define MOA_CONCAT_INNER(a, b) a##b
#define MOA_CONCAT(a, b) MOA_CONCAT_INNER(a, b)
#define MOA_COMMAND(name, help, setup_fn) \
  static ::moa::cli::Registrar MOA_CONCAT(moa_cmd_registrar_, __LINE__)(name, help, setup_fn)
