// GGUF (llama.cpp's model format, versions 2 and 3, little-endian): a memory-mapped, zero-copy
// reader. Tensor data stays in its stored ggml type inside the mapping; GgufTensor::data points
// there and the mapping lives as long as any holder of mapping().
//
// File layout: "GGUF", u32 version, u64 tensor count, u64 metadata count; metadata as
// (string key, u32 value type, value); tensor infos as (string name, u32 n_dims, u64 ne[n_dims],
// u32 ggml type, u64 offset); padding to the alignment (metadata general.alignment, default 32);
// then the data section, each tensor at its offset (a multiple of the alignment) from its start.
// Strings are u64 length + bytes (no terminator); arrays are u32 element type, u64 count, items.
//
// Every count, length, shape and offset is checked against the bytes the file actually has before
// it is used or allocated; each bad input is one InputError naming the file, the field (metadata
// key or tensor) and what was expected.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "moa/core/file_io.h"
#include "moa/gguf/quant.h"

namespace moa {

enum class GgufType : uint32_t {
  kU8 = 0,
  kI8 = 1,
  kU16 = 2,
  kI16 = 3,
  kU32 = 4,
  kI32 = 5,
  kF32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kU64 = 10,
  kI64 = 11,
  kF64 = 12,
};

const char* gguf_type_name(GgufType t);  // "UINT32", "STRING", ...
// Bytes of one value of a scalar type id; 0 for STRING and ARRAY, -1 for an id GGUF does not define.
int gguf_scalar_size(uint32_t t);

// One metadata value. Scalars keep their exact stored value: unsigned integers and bools in u,
// signed integers in i, FLOAT32 and FLOAT64 in f (a double holds every float exactly).
// Arrays stay compact (a lying count cannot multiply into a huge allocation): scalar elements are
// read in place from the mapping (raw), strings are kept as strings, nested arrays as values.
struct GgufValue {
  GgufType type = GgufType::kU8;
  uint64_t u = 0;
  int64_t i = 0;
  double f = 0;
  std::string str;  // kString
  // kArray:
  GgufType elem = GgufType::kU8;  // element type
  uint64_t count = 0;             // number of elements
  const uint8_t* raw = nullptr;   // scalar elements, little-endian, inside the mapping
  std::vector<std::string> strs;  // STRING elements
  std::vector<GgufValue> arr;     // ARRAY elements

  bool is_unsigned() const;  // U8, U16, U32, U64
  bool is_signed() const;    // I8, I16, I32, I64
  // Element k of an array as a value of its own (MOA_CHECKed: an array, k < count).
  GgufValue at(uint64_t k) const;
};

struct GgufTensor {
  std::string name;
  uint32_t type_id = 0;           // ggml type id as stored (ggml_type_traits knows its sizes)
  std::vector<int64_t> ne;        // ggml order: ne[0] is the innermost (values per row)
  uint64_t offset = 0;            // from the start of the data section
  const uint8_t* data = nullptr;  // inside the mapping
  uint64_t nbytes = 0;

  GgmlType type() const { return GgmlType(type_id); }
  std::string type_name() const { return ggml_type_name(type_id); }
  int64_t numel() const;
  int64_t cols() const { return ne.empty() ? 1 : ne[0]; }
  int64_t rows() const;                // product of ne[1..]
  std::vector<int64_t> shape() const;  // row-major (PyTorch) order: ne reversed
};

class GgufFile {
 public:
  // Maps and validates the whole header (see above). Throws InputError.
  explicit GgufFile(const std::filesystem::path& path);

  const std::string& file() const { return file_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // start of the data section
  // Metadata in file order.
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return kv_; }
  const GgufValue* find(const std::string& key) const;
  const std::vector<GgufTensor>& tensors() const { return tensors_; }
  const GgufTensor* find_tensor(const std::string& name) const;
  // The mapping the tensors point into; hold a copy to keep their data alive.
  const std::shared_ptr<const MappedFile>& mapping() const { return map_; }

  // Typed metadata access. A missing key (without a default) or a value of another type is an
  // InputError naming the file, the key, the type seen and the type expected.
  int64_t get_int(const std::string& key) const;  // any integer type that fits int64
  int64_t get_int(const std::string& key, int64_t dflt) const;
  double get_float(const std::string& key) const;  // FLOAT32, FLOAT64 (or an integer)
  double get_float(const std::string& key, double dflt) const;
  std::string get_string(const std::string& key) const;
  std::string get_string(const std::string& key, const std::string& dflt) const;
  bool get_bool(const std::string& key, bool dflt) const;
  // An array value whose elements have type elem.
  const GgufValue& get_array(const std::string& key, GgufType elem) const;

 private:
  std::string file_;
  std::shared_ptr<const MappedFile> map_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::map<std::string, size_t> kv_index_;
  std::vector<GgufTensor> tensors_;
  std::map<std::string, size_t> tensor_index_;

  const GgufValue& require(const std::string& key) const;
};

// True when the path names a GGUF file (by its first four bytes; false for directories).
bool is_gguf_file(const std::filesystem::path& path);
// True when `path` should be read as GGUF: a regular file named *.gguf or starting with "GGUF"
// (so that a corrupt .gguf file gets GGUF's error messages).
bool is_gguf_path(const std::filesystem::path& path);

}  // namespace moa
