// Data parallelism across the ranks of an MPI job (mpirun, srun), or one process: built without
// MPI (CMake option MOA_MPI off), or started without an MPI launcher, size() is 1 and every call
// here is a plain local operation. Work is split by item index; each item's result travels to
// rank 0, which consumes the results in item order, so what it computes from them is
// bit-identical to one process. Rank 0 alone writes files and prints; the other ranks are
// silenced at init() and print only their own fatal errors.
#pragma once

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>

namespace moa::dist {

// Thrown on the ranks other than 0 when a step rank 0 ran for them all (root_first) failed there:
// rank 0 reports the error, the others end without repeating it.
struct PeerFailed : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Joins the MPI job when one launched this process (its environment names a rank), else nothing.
void init(int* argc, char*** argv);
// Leaves the job normally (every rank must get here).
void finalize();
// Ends every rank of the job with `status` (after an error on one rank the others may be waiting
// for it); one process: std::exit.
[[noreturn]] void abort_all(int status);

bool built_with_mpi();
int rank();
int size();
inline bool is_root() { return rank() == 0; }

// Where this rank prints a fatal error: stderr on rank 0, the original stderr (silenced for
// everything else) on the others.
std::FILE* error_stream();

// Runs fn on rank 0 while the others wait; if it throws there, rank 0 rethrows and the others
// throw PeerFailed. For steps only rank 0 takes (reading a checkpoint) whose failure must not
// leave the others waiting forever.
void root_first(const std::function<void()>& fn);

// Rank 0's value on every rank.
void broadcast(int64_t& v);
void broadcast(std::string& s);

// Returns once every rank has called it (after rank 0 wrote a file the others read next: the
// work directory of `moa compress` is on a filesystem every rank sees).
void barrier();

// Items [begin, end) split across ranks: in each round rank r computes item round_begin + r with
// work(i), and rank 0 receives every result of the round and calls consume(i, bytes) in item
// order, exactly the calls a one-process loop makes. consume runs on rank 0 only; work on all.
void map_ordered(int64_t begin, int64_t end, const std::function<std::string(int64_t)>& work,
                 const std::function<void(int64_t, const std::string&)>& consume);

// Payload bytes this process sent to or received from other ranks so far (the benchmarks report
// them per item).
int64_t bytes_communicated();

}  // namespace moa::dist
