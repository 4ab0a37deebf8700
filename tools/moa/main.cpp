// `moa`: the command line. Errors in user input end here as one line on stderr and exit 2.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include "cli_errors.h"
#include "command.h"
#include "moa/core/dist.h"
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

// The commands that split their work across MPI ranks; under mpirun any other would run once per
// rank, each writing the same files.
static bool runs_distributed(int argc, char** argv) {
  std::vector<std::string> words;
  for (int i = 1; i < argc && words.size() < 2; ++i) {
    if (argv[i][0] == '-') break;
    words.push_back(argv[i]);
  }
  if (words.empty()) return true;  // help, or the missing-command error
  if (words[0] == "profile" || words[0] == "validate" || words[0] == "compress") return true;
  if (words.size() < 2) return false;
  if (words[0] == "data") return words[1] == "calib";
  return words[0] == "eval" && (words[1] == "retrieval" || words[1] == "passkey" || words[1] == "ppl");
}

// A fatal error's one line, printed by main once the command has unwound.
static std::string g_error;
static int fail(int status, const std::string& msg) {
  g_error = msg;
  return status;
}

// Rank 0 prints its error as it is. Another rank's error is printed (named) after a pause: when
// rank 0 fails too (the same bad input reaches every rank) it ends the job first, and the user
// reads one line, not one per rank.
static void print_error() {
  if (g_error.empty()) return;
  if (moa::dist::rank() == 0) {
    std::fprintf(moa::dist::error_stream(), "error: %s\n", g_error.c_str());
    return;
  }
  ::usleep(500 * 1000);
  std::fprintf(moa::dist::error_stream(), "error: rank %d of %d: %s\n", moa::dist::rank(),
               moa::dist::size(), g_error.c_str());
}

static int run_cli(int argc, char** argv) {
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
  if (auto unknown = moa::cli::unknown_command(app, argc, argv)) return fail(2, *unknown);
  if (moa::dist::size() > 1 && !runs_distributed(argc, argv)) {
    return fail(2, "moa " + std::string(argv[1]) + " does not split its work across MPI ranks (" +
                       std::to_string(moa::dist::size()) +
                       " here): run it as one process; under MPI: data calib, profile, validate, "
                       "compress, eval retrieval, eval passkey, eval ppl");
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --version and the like
    return fail(2, moa::cli::describe_parse_error(app, e));
  } catch (const moa::InputError& e) {
    return fail(2, e.what());
  } catch (const moa::dist::PeerFailed&) {
    return 2;  // rank 0 has printed why
  } catch (const std::bad_alloc&) {
    return fail(2, "out of memory (try a shorter context, a smaller batch or a smaller model)");
  } catch (const std::exception& e) {
    // Not the input's fault, or a check we lack: still one line, never an abort.
    return fail(1, std::string("internal: ") + e.what() + " (please report it)");
  }
  return 0;
}

int main(int argc, char** argv) {
  choose_blas_kernels(argv);
  moa::dist::init(&argc, &argv);
  const int status = run_cli(argc, argv);
  print_error();
  // After a failure other ranks may be waiting for this one: end them all.
  if (status != 0 && moa::dist::size() > 1) moa::dist::abort_all(status);
  moa::dist::finalize();
  return status;
}
