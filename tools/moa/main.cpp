// `moa`: the command line. Errors in user input end here as one line on stderr and exit 2.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "cli_errors.h"
#include "command.h"
#include "moa/core/error.h"

namespace moa::cli {
std::vector<Command>& registry() {
  static std::vector<Command> r;
  return r;
}
}  // namespace moa::cli

// Debian's OpenBLAS picks its kernels by CPU model and, in the VMs we run on, chooses its
// Haswell (AVX2) sgemm on AVX-512 machines: measured 190 vs 340 GFLOP/s at 1024^3 on 2 cores
// (docs/PERF.md). The core type can only be chosen before the library initialises, so on a CPU
// with the AVX-512 subsets SkylakeX kernels need, we set OPENBLAS_CORETYPE and re-execute once.
// Setting OPENBLAS_CORETYPE yourself (e.g. to Haswell) overrides this. The SkylakeX kernels are
// checked against the reference by the *_skylakex tests.
static void choose_blas_kernels(char** argv) {
  if (std::getenv("OPENBLAS_CORETYPE")) return;
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw") ||
      !__builtin_cpu_supports("avx512vl") || !__builtin_cpu_supports("avx512dq")) {
    return;
  }
  setenv("OPENBLAS_CORETYPE", "SkylakeX", 1);
  execv("/proc/self/exe", argv);  // only returns on failure: then run with what we have
}

int main(int argc, char** argv) {
  choose_blas_kernels(argv);
  CLI::App app{"moa: MoA.cpp, long-context inference with Mixture of Sparse Attention"};
  app.require_subcommand(1);
  // "plan check" registers under a group command "plan", created on first use.
  for (auto& cmd : moa::cli::registry()) {
    CLI::App* parent = &app;
    std::string name = cmd.name;
    if (auto sp = name.find(' '); sp != std::string::npos) {
      std::string group = name.substr(0, sp);
      name = name.substr(sp + 1);
      CLI::App* g = nullptr;
      for (CLI::App* s : app.get_subcommands({})) {
        if (s->get_name() == group) g = s;
      }
      if (!g) {
        g = app.add_subcommand(group, group + " commands");
        g->require_subcommand(1);
      }
      parent = g;
    }
    CLI::App* sub = parent->add_subcommand(name, cmd.help);
    cmd.setup(*sub);
  }
  if (auto unknown = moa::cli::unknown_command(app, argc, argv)) {
    std::fprintf(stderr, "error: %s\n", unknown->c_str());
    return 2;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --version and the like
    std::fprintf(stderr, "error: %s\n", moa::cli::describe_parse_error(app, e).c_str());
    return 2;
  } catch (const moa::InputError& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "error: out of memory (try a shorter context, a smaller batch or a smaller model)\n");
    return 2;
  } catch (const std::exception& e) {
    // Not the input's fault, or a check we lack: still one line, never an abort.
    std::fprintf(stderr, "error: internal: %s (please report it)\n", e.what());
    return 1;
  }
  return 0;
}
