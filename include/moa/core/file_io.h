// Files: read-only memory maps and atomic writes (temp file + rename), so that no command
// ever leaves a half-written output behind.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

namespace moa {

class MappedFile {
 public:
  // Throws InputError naming the file when it cannot be opened or mapped.
  explicit MappedFile(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Writes `path` atomically: `write(fd_stream)` fills `<path>.tmp.<pid>`, which is flushed and
// renamed over `path` only when write returns normally; on any exception the temp file is removed.
// Temp files of `path` left by a killed process (its pid no longer alive) are removed first.
void write_file_atomic(const std::filesystem::path& path,
                       const std::function<void(std::FILE*)>& write);
void write_text_atomic(const std::filesystem::path& path, std::string_view text);

std::string read_text(const std::filesystem::path& path);  // InputError when unreadable

}  // namespace moa
