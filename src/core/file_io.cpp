#include "moa/core/file_io.h"

#include <atomic>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "moa/core/error.h"

namespace moa {

MappedFile::MappedFile(const std::filesystem::path& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) input_error("{}: cannot open ({})", path.string(), std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    input_error("{}: not a regular file", path.string());
  }
  size_ = size_t(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      ::close(fd);
      input_error("{}: cannot memory-map ({})", path.string(), std::strerror(errno));
    }
    data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

namespace {

// A process killed while writing leaves its `<name>.tmp.<pid>` behind. The next write of the
// same file removes those whose process is gone, so a killed run's debris does not outlive the
// rerun (a live pid may be a concurrent writer: left alone).
void remove_stale_temps(const std::filesystem::path& path) {
  std::error_code ec;
  const std::filesystem::path dir = path.has_parent_path() ? path.parent_path() : ".";
  const std::string prefix = path.filename().string() + ".tmp.";
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!name.starts_with(prefix)) continue;
    pid_t p = 0;
    const char* end_of_name = name.data() + name.size();
    const auto [at, bad] = std::from_chars(name.data() + prefix.size(), end_of_name, p);
    if (bad != std::errc() || at != end_of_name || p <= 0) continue;
    if (p != ::getpid() && ::kill(p, 0) != 0 && errno == ESRCH) {
      std::filesystem::remove(it->path(), ec);
    }
  }
}

// Fault injection for tests/test_crash_safety.cpp: with
// MOA_TEST_KILL_AT_WRITE=N the process SIGKILLs itself during its N-th atomic write, after the
// temp file is filled and cut to half its length, i.e. as a kill -9 mid-write would leave it.
bool kill_at_this_write() {
  static const long at = [] {
    const char* v = std::getenv("MOA_TEST_KILL_AT_WRITE");
    return v ? std::atol(v) : 0L;
  }();
  static std::atomic<long> count{0};
  return at > 0 && ++count == at;
}

}  // namespace

void write_file_atomic(const std::filesystem::path& path,
                       const std::function<void(std::FILE*)>& write) {
  remove_stale_temps(path);
  auto tmp = path;
  tmp += ".tmp." + std::to_string(::getpid());
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) input_error("{}: cannot write ({})", path.string(), std::strerror(errno));
  try {
    write(f);
    if (kill_at_this_write()) {
      std::fflush(f);
      const long n = std::ftell(f);
      if (n > 0 && ::ftruncate(::fileno(f), n / 2) != 0) std::perror("ftruncate");
      ::raise(SIGKILL);
    }
    if (std::fflush(f) != 0 || std::ferror(f) || ::fsync(::fileno(f)) != 0) {
      input_error("{}: write failed ({})", path.string(), std::strerror(errno));
    }
  } catch (...) {
    std::fclose(f);
    std::filesystem::remove(tmp);
    throw;
  }
  if (std::fclose(f) != 0) {
    std::filesystem::remove(tmp);
    input_error("{}: write failed ({})", path.string(), std::strerror(errno));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp);
    input_error("{}: cannot rename the finished file into place ({})", path.string(), ec.message());
  }
}

void write_text_atomic(const std::filesystem::path& path, std::string_view text) {
  write_file_atomic(path, [&](std::FILE* f) {
    if (std::fwrite(text.data(), 1, text.size(), f) != text.size()) {
      input_error("{}: write failed", path.string());
    }
  });
}

std::string read_text(const std::filesystem::path& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) input_error("{}: cannot open ({})", path.string(), std::strerror(errno));
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace moa
