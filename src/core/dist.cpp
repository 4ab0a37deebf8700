#include "moa/core/dist.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <algorithm>
#include <cstdlib>
#include <vector>

#ifdef MOA_HAVE_MPI
// The C API only: Open MPI's and MPICH's mpi.h otherwise pull in their deprecated C++ bindings,
// which need a library we do not link.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#endif

namespace moa::dist {

namespace {

int g_rank = 0, g_size = 1;
bool g_mpi = false;  // this process joined an MPI job
std::FILE* g_err = nullptr;
int64_t g_bytes = 0;

// A launcher's environment: Open MPI's mpirun, PMIx (Open MPI 4+, Slurm with --mpi=pmix) or
// PMI-1/2 (Slurm's srun, MPICH's hydra). Without one, MPI_Init would start a singleton, which
// Open MPI does by spawning its daemon: a plain `moa` run must not pay for that (or fail as root).
bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"}) {
    if (std::getenv(v)) return true;
  }
  return false;
}

// Rank 0 prints; the others keep their stderr only for their own fatal error.
void silence_this_rank() {
  const int saved = ::dup(2);
  g_err = saved >= 0 ? ::fdopen(saved, "w") : nullptr;
  const int null = ::open("/dev/null", O_WRONLY);
  if (null >= 0) {
    std::fflush(stdout);
    std::fflush(stderr);
    ::dup2(null, 1);
    ::dup2(null, 2);
    ::close(null);
  }
}

}  // namespace

bool built_with_mpi() {
#ifdef MOA_HAVE_MPI
  return true;
#else
  return false;
#endif
}

void init(int* argc, char*** argv) {
#ifdef MOA_HAVE_MPI
  if (!launched_by_mpi()) return;
  int provided = 0;
  // Only the main thread calls MPI (OpenMP regions never do).
  MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
  // Errors come back as codes we turn into exceptions, instead of MPI's default abort.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g_size);
  g_mpi = true;
  if (g_rank != 0) silence_this_rank();
#else
  (void)argc;
  (void)argv;
#endif
}

void finalize() {
#ifdef MOA_HAVE_MPI
  if (g_mpi) MPI_Finalize();
  g_mpi = false;
#endif
}

void abort_all(int status) {
  std::fflush(stdout);
  std::fflush(stderr);
  if (g_err) std::fflush(g_err);
#ifdef MOA_HAVE_MPI
  if (g_mpi && g_size > 1) MPI_Abort(MPI_COMM_WORLD, status);
#endif
  std::exit(status);
}

int rank() { return g_rank; }
int size() { return g_size; }
std::FILE* error_stream() { return g_rank == 0 || !g_err ? stderr : g_err; }
int64_t bytes_communicated() { return g_bytes; }

#ifdef MOA_HAVE_MPI
namespace {
void check(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  throw std::runtime_error(std::string("MPI ") + what + ": " + std::string(msg, size_t(len)));
}
}  // namespace
#endif

void broadcast(int64_t& v) {
#ifdef MOA_HAVE_MPI
  if (g_size > 1) {
    check(MPI_Bcast(&v, 1, MPI_INT64_T, 0, MPI_COMM_WORLD), "broadcast");
    g_bytes += int64_t(sizeof v);
  }
#else
  (void)v;
#endif
}

void broadcast(std::string& s) {
  int64_t n = int64_t(s.size());
  broadcast(n);
  if (g_size == 1) return;
#ifdef MOA_HAVE_MPI
  s.resize(size_t(n));
  for (int64_t off = 0; off < n;) {  // MPI counts are int: 1 GiB pieces
    const int piece = int(std::min<int64_t>(n - off, int64_t(1) << 30));
    check(MPI_Bcast(s.data() + off, piece, MPI_BYTE, 0, MPI_COMM_WORLD), "broadcast");
    off += piece;
  }
  g_bytes += n;
#endif
}

void barrier() {
#ifdef MOA_HAVE_MPI
  if (g_size > 1) check(MPI_Barrier(MPI_COMM_WORLD), "barrier");
#endif
}

void root_first(const std::function<void()>& fn) {
  int64_t ok = 1;
  if (g_rank == 0) {
    try {
      fn();
    } catch (...) {
      ok = 0;
      broadcast(ok);
      throw;
    }
  }
  broadcast(ok);
  if (!ok) throw PeerFailed("rank 0 failed");
}

void map_ordered(int64_t begin, int64_t end, const std::function<std::string(int64_t)>& work,
                 const std::function<void(int64_t, const std::string&)>& consume) {
  if (g_size == 1) {
    for (int64_t i = begin; i < end; ++i) consume(i, work(i));
    return;
  }
#ifdef MOA_HAVE_MPI
  std::vector<int> counts(static_cast<size_t>(g_size)), displs(static_cast<size_t>(g_size));
  std::string all;
  for (int64_t r0 = begin; r0 < end; r0 += g_size) {
    const int64_t mine = r0 + g_rank;
    const std::string out = mine < end ? work(mine) : std::string();
    if (out.size() > size_t(INT32_MAX)) throw std::runtime_error("MPI gather: one result over 2 GiB");
    int n = int(out.size());
    check(MPI_Gather(&n, 1, MPI_INT, counts.data(), 1, MPI_INT, 0, MPI_COMM_WORLD), "gather");
    int64_t total = 0;
    if (g_rank == 0) {
      for (int r = 0; r < g_size; ++r) {
        displs[size_t(r)] = int(total);
        total += counts[size_t(r)];
      }
      if (total > int64_t(INT32_MAX)) throw std::runtime_error("MPI gather: one round over 2 GiB");
      all.resize(size_t(total));
    }
    check(MPI_Gatherv(out.data(), n, MPI_BYTE, all.data(), counts.data(), displs.data(), MPI_BYTE,
                      0, MPI_COMM_WORLD),
          "gatherv");
    if (g_rank == 0) {
      g_bytes += total - n;
      for (int r = 0; r < g_size && r0 + r < end; ++r) {
        consume(r0 + r, all.substr(size_t(displs[size_t(r)]), size_t(counts[size_t(r)])));
      }
    } else {
      g_bytes += n;
    }
  }
#endif
}

}  // namespace moa::dist
