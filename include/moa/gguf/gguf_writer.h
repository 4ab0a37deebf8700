// GGUF writer (version 3, little-endian; the layout is described in gguf.h): typed metadata of
// every GGUF value type (scalars, strings, arrays of scalars, strings and arrays) and tensors whose
// bytes are produced while the file is written, so a converter streams a model out one tensor at a
// time instead of holding a second copy of it in memory.
//
// general.alignment (UINT32, default 32) is written unless the caller sets it; every tensor's data
// starts at a multiple of it from the start of the data section, and is padded with zeros.
// write() is atomic (temp file + rename, core/file_io.h): on any error no file is left behind.
#pragma once

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "moa/gguf/gguf.h"
#include "moa/gguf/quant.h"

namespace moa {

// A metadata value that owns its bytes (so values read from a GgufFile stay valid after the file
// is closed). Scalars and strings live in v (as GgufValue keeps them: u, i, f, str, strs for
// string arrays; v.elem and v.count for arrays); v.raw and v.arr are unused: scalar array elements
// are in `owned` (little-endian), nested arrays in `owned_arr`.
struct GgufOwnedValue {
  GgufValue v;
  std::vector<uint8_t> owned;
  std::vector<GgufOwnedValue> owned_arr;

  static GgufOwnedValue copy_of(const GgufValue& v);
  static GgufOwnedValue u8(uint8_t x);
  static GgufOwnedValue i8(int8_t x);
  static GgufOwnedValue u16(uint16_t x);
  static GgufOwnedValue i16(int16_t x);
  static GgufOwnedValue u32(uint32_t x);
  static GgufOwnedValue i32(int32_t x);
  static GgufOwnedValue u64(uint64_t x);
  static GgufOwnedValue i64(int64_t x);
  static GgufOwnedValue f32(float x);
  static GgufOwnedValue f64(double x);
  static GgufOwnedValue boolean(bool x);
  static GgufOwnedValue string(std::string s);
  // An array of `count` scalar elements of type elem, little-endian bytes at `data`.
  static GgufOwnedValue scalar_array(GgufType elem, const void* data, uint64_t count);
  static GgufOwnedValue f32_array(const std::vector<float>& xs);
  static GgufOwnedValue i32_array(const std::vector<int32_t>& xs);
  static GgufOwnedValue string_array(std::vector<std::string> xs);
  static GgufOwnedValue array_of_arrays(std::vector<GgufOwnedValue> xs);
};

// Where a tensor's producer writes its bytes; counts them.
class GgufSink {
 public:
  GgufSink(std::FILE* f, std::string file) : f_(f), file_(std::move(file)) {}
  void write(const void* data, size_t n);
  uint64_t written() const { return written_; }

 private:
  std::FILE* f_;
  std::string file_;
  uint64_t written_ = 0;
};

struct GgufTensorOut {
  std::string name;
  GgmlType type = GgmlType::kF32;
  std::vector<int64_t> ne;  // ggml order: ne[0] values per row
  // Writes exactly nbytes() bytes (checked), called once during write().
  std::function<void(GgufSink&)> fill;
  uint64_t nbytes() const;
};

class GgufWriter {
 public:
  // Adds or replaces a key (a replaced key keeps its place).
  void set(const std::string& key, GgufOwnedValue v);
  void remove(const std::string& key);
  const GgufOwnedValue* find(const std::string& key) const;
  // MOA_CHECKs a valid name (unique, < 64 KiB), a known type and ne[0] a multiple of its block.
  void add_tensor(GgufTensorOut t);

  size_t tensor_count() const { return tensors_.size(); }
  const std::vector<GgufTensorOut>& tensors() const { return tensors_; }
  // Total bytes of tensor data (without padding).
  uint64_t tensor_bytes() const;

  // Writes the file atomically. InputError on I/O failure or when a producer throws one; a
  // producer that writes the wrong number of bytes is an InputError too (naming the tensor).
  // progress(k, name, type) is called before tensor k's bytes are produced.
  using Progress = std::function<void(size_t k, const std::string& name, GgmlType type)>;
  void write(const std::filesystem::path& path, const Progress& progress = {}) const;

 private:
  std::vector<std::pair<std::string, GgufOwnedValue>> kv_;
  std::vector<GgufTensorOut> tensors_;
};

}  // namespace moa
