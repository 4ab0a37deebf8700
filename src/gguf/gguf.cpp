// GGUF reader, written from the GGUF specification (ggml's docs/gguf.md): every read goes through
// a Cursor that checks the bytes are there first, and every declared count is bounded by the
// bytes left before anything is reserved, so a lying header can neither crash nor exhaust memory.
#include "moa/gguf/gguf.h"

#include <fmt/ranges.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <limits>

#include "moa/core/error.h"

namespace moa {

const char* gguf_type_name(GgufType t) {
  switch (t) {
    case GgufType::kU8:
      return "UINT8";
    case GgufType::kI8:
      return "INT8";
    case GgufType::kU16:
      return "UINT16";
    case GgufType::kI16:
      return "INT16";
    case GgufType::kU32:
      return "UINT32";
    case GgufType::kI32:
      return "INT32";
    case GgufType::kF32:
      return "FLOAT32";
    case GgufType::kBool:
      return "BOOL";
    case GgufType::kString:
      return "STRING";
    case GgufType::kArray:
      return "ARRAY";
    case GgufType::kU64:
      return "UINT64";
    case GgufType::kI64:
      return "INT64";
    case GgufType::kF64:
      return "FLOAT64";
  }
  return "?";
}

bool GgufValue::is_unsigned() const {
  return type == GgufType::kU8 || type == GgufType::kU16 || type == GgufType::kU32 ||
         type == GgufType::kU64;
}

bool GgufValue::is_signed() const {
  return type == GgufType::kI8 || type == GgufType::kI16 || type == GgufType::kI32 ||
         type == GgufType::kI64;
}

int64_t GgufTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : ne) n *= d;
  return n;
}

int64_t GgufTensor::rows() const {
  int64_t n = 1;
  for (size_t k = 1; k < ne.size(); ++k) n *= ne[k];
  return n;
}

std::vector<int64_t> GgufTensor::shape() const { return {ne.rbegin(), ne.rend()}; }

GgufValue GgufValue::at(uint64_t k) const {
  MOA_CHECK(type == GgufType::kArray && k < count, "element {} of a {} of {}", k,
            gguf_type_name(type), count);
  if (elem == GgufType::kString) {
    GgufValue v;
    v.type = elem;
    v.str = strs[size_t(k)];
    return v;
  }
  if (elem == GgufType::kArray) return arr[size_t(k)];
  GgufValue v;
  v.type = elem;
  const uint8_t* p = raw;
  auto get = [&](auto x) {
    std::memcpy(&x, p + k * sizeof(x), sizeof(x));
    return x;
  };
  switch (elem) {
    case GgufType::kU8:
    case GgufType::kBool:
      v.u = get(uint8_t{});
      break;
    case GgufType::kU16:
      v.u = get(uint16_t{});
      break;
    case GgufType::kU32:
      v.u = get(uint32_t{});
      break;
    case GgufType::kU64:
      v.u = get(uint64_t{});
      break;
    case GgufType::kI8:
      v.i = get(int8_t{});
      break;
    case GgufType::kI16:
      v.i = get(int16_t{});
      break;
    case GgufType::kI32:
      v.i = get(int32_t{});
      break;
    case GgufType::kI64:
      v.i = get(int64_t{});
      break;
    case GgufType::kF32:
      v.f = get(float{});
      break;
    case GgufType::kF64:
      v.f = get(double{});
      break;
    case GgufType::kString:
    case GgufType::kArray:
      break;
  }
  return v;
}

namespace {

constexpr uint32_t kMaxDims = 4;   // ggml's GGML_MAX_DIMS
constexpr int kMaxArrayDepth = 8;  // arrays of arrays: deeper nesting is not a real file
constexpr uint64_t kMaxNestedArrays = 1 << 16;
constexpr uint64_t kMinKvBytes = 13;          // key length (8) + value type (4) + a 1-byte value
constexpr uint64_t kMinTensorInfoBytes = 24;  // name length, n_dims, type, offset


// Smallest encoding of one value of type t (for bounding array counts).
uint64_t min_value_bytes(uint32_t t) {
  const int s = gguf_scalar_size(t);
  if (s > 0) return uint64_t(s);
  return GgufType(t) == GgufType::kString ? 8 : 12;  // string length; array type + count
}

class Cursor {
 public:
  Cursor(const std::string& file, const uint8_t* data, size_t size)
      : file_(file), data_(data), size_(size) {}

  size_t pos() const { return pos_; }
  size_t left() const { return size_ - pos_; }

  // Fails unless n more bytes are there; `what` names the field being read.
  void need(uint64_t n, const std::string& what) const {
    if (n > left()) {
      input_error(
          "{}: truncated: {} needs {} bytes at offset {}, the file has {} (expected a "
          "complete GGUF file)",
          file_, what, n, pos_, size_);
    }
  }
  template <typename T>
  T read(const std::string& what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  // Advances over n bytes (checked) and returns where they start.
  const uint8_t* skip(uint64_t n, const std::string& what) {
    need(n, what);
    const uint8_t* p = data_ + pos_;
    pos_ += size_t(n);
    return p;
  }
  std::string read_string(const std::string& what) {
    const uint64_t n = read<uint64_t>(what + " (string length)");
    if (n > left()) {
      input_error(
          "{}: {}: string length {} exceeds the {} bytes left in the file (corrupt or "
          "truncated)",
          file_, what, n, left());
    }
    std::string s(reinterpret_cast<const char*>(data_ + pos_), size_t(n));
    pos_ += size_t(n);
    return s;
  }

 private:
  const std::string& file_;
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

GgufValue read_value(Cursor& c, const std::string& file, uint32_t type, const std::string& what,
                     int depth) {
  GgufValue v;
  if (gguf_scalar_size(type) < 0) {
    input_error("{}: {}: unknown value type {} (expected 0..12, UINT8..FLOAT64)", file, what, type);
  }
  v.type = GgufType(type);
  switch (v.type) {
    case GgufType::kU8:
      v.u = c.read<uint8_t>(what);
      break;
    case GgufType::kU16:
      v.u = c.read<uint16_t>(what);
      break;
    case GgufType::kU32:
      v.u = c.read<uint32_t>(what);
      break;
    case GgufType::kU64:
      v.u = c.read<uint64_t>(what);
      break;
    case GgufType::kI8:
      v.i = c.read<int8_t>(what);
      break;
    case GgufType::kI16:
      v.i = c.read<int16_t>(what);
      break;
    case GgufType::kI32:
      v.i = c.read<int32_t>(what);
      break;
    case GgufType::kI64:
      v.i = c.read<int64_t>(what);
      break;
    case GgufType::kF32:
      v.f = c.read<float>(what);
      break;
    case GgufType::kF64:
      v.f = c.read<double>(what);
      break;
    case GgufType::kBool: {
      v.u = c.read<uint8_t>(what);
      if (v.u > 1) input_error("{}: {}: BOOL value {}, expected 0 or 1", file, what, v.u);
      break;
    }
    case GgufType::kString:
      v.str = c.read_string(what);
      break;
    case GgufType::kArray: {
      if (depth >= kMaxArrayDepth) {
        input_error("{}: {}: arrays nested deeper than {} levels", file, what, kMaxArrayDepth);
      }
      const uint32_t elem = c.read<uint32_t>(what + " (array element type)");
      if (gguf_scalar_size(elem) < 0) {
        input_error("{}: {}: unknown array element type {} (expected 0..12)", file, what, elem);
      }
      v.elem = GgufType(elem);
      v.count = c.read<uint64_t>(what + " (array length)");
      if (v.count > c.left() / min_value_bytes(elem)) {
        input_error("{}: {}: array of {} {} values cannot fit in the {} bytes left in the file",
                    file, what, v.count, gguf_type_name(v.elem), c.left());
      }
      if (const int s = gguf_scalar_size(elem); s > 0) {
        v.raw = c.skip(v.count * uint64_t(s), what);
        if (v.elem == GgufType::kBool) {
          for (uint64_t k = 0; k < v.count; ++k) {
            if (v.raw[k] > 1) {
              input_error("{}: {}: element {} is BOOL value {}, expected 0 or 1", file, what, k,
                          v.raw[k]);
            }
          }
        }
      } else if (v.elem == GgufType::kString) {
        v.strs.reserve(size_t(v.count));
        for (uint64_t k = 0; k < v.count; ++k) v.strs.push_back(c.read_string(what));
      } else {
        // A value struct is ~10x the 12 bytes an empty nested array takes in the file: bound it.
        if (v.count > kMaxNestedArrays) {
          input_error("{}: {}: {} nested arrays, at most {} supported", file, what, v.count,
                      kMaxNestedArrays);
        }
        v.arr.reserve(size_t(v.count));
        for (uint64_t k = 0; k < v.count; ++k) {
          v.arr.push_back(read_value(c, file, elem, what, depth + 1));
        }
      }
      break;
    }
  }
  return v;
}

uint64_t checked_mul(uint64_t a, uint64_t b, const std::string& file, const std::string& what) {
  uint64_t r;
  if (__builtin_mul_overflow(a, b, &r) || r > uint64_t(std::numeric_limits<int64_t>::max())) {
    input_error("{}: {}: size overflows 64 bits (corrupt shape)", file, what);
  }
  return r;
}

// Reads one tensor info and checks its shape and type (the offset is checked later, once the
// data section is known).
GgufTensor read_tensor_info(Cursor& c, const std::string& file, uint64_t index) {
  GgufTensor t;
  t.name = c.read_string(fmt::format("tensor #{} name", index));
  const std::string what = fmt::format("tensor '{}'", t.name);
  const uint32_t n_dims = c.read<uint32_t>(what + " n_dims");
  if (n_dims < 1 || n_dims > kMaxDims) {
    input_error("{}: {}: n_dims is {}, expected 1..{}", file, what, n_dims, kMaxDims);
  }
  uint64_t numel = 1;
  for (uint32_t k = 0; k < n_dims; ++k) {
    const uint64_t d = c.read<uint64_t>(what + " ne");
    if (d > uint64_t(std::numeric_limits<int64_t>::max())) {
      input_error("{}: {}: ne[{}] = {} is not a valid dimension", file, what, k, d);
    }
    numel = checked_mul(numel, d, file, what);
    t.ne.push_back(int64_t(d));
  }
  t.type_id = c.read<uint32_t>(what + " type");
  t.offset = c.read<uint64_t>(what + " offset");
  const GgmlTypeTraits tr = ggml_type_traits(t.type_id);
  if (!tr.name) {
    input_error("{}: {}: unknown ggml type id {} (expected a ggml tensor type such as {})", file,
                what, t.type_id, ggml_computable_types());
  }
  if (t.ne[0] % tr.block != 0) {
    input_error("{}: {}: row of {} values is not a multiple of {}'s block of {}", file, what,
                t.ne[0], tr.name, tr.block);
  }
  const uint64_t row_bytes = uint64_t(t.ne[0] / tr.block) * uint64_t(tr.bytes);
  t.nbytes = checked_mul(row_bytes, numel / std::max<uint64_t>(1, uint64_t(t.ne[0])), file, what);
  if (t.ne[0] == 0) t.nbytes = 0;
  return t;
}

void check_magic_and_version(Cursor& c, const std::string& file, uint32_t* version) {
  c.need(4, "the magic");
  uint8_t magic[4];
  for (auto& m : magic) m = c.read<uint8_t>("the magic");
  if (std::memcmp(magic, "GGUF", 4) != 0) {
    input_error(
        "{}: not a GGUF file: magic bytes {:02x} {:02x} {:02x} {:02x}, expected 'GGUF' "
        "(47 47 55 46)",
        file, magic[0], magic[1], magic[2], magic[3]);
  }
  *version = c.read<uint32_t>("the version");
  if (*version == 1) {
    input_error(
        "{}: GGUF version 1 is not supported (expected 2 or 3; convert the model again "
        "with a current llama.cpp)",
        file);
  }
  if (*version != 2 && *version != 3) {
    if ((*version & 0xffff) == 0 && (*version >> 16) != 0) {
      input_error(
          "{}: version field {:#x} looks byte-swapped: big-endian GGUF files are not "
          "supported (expected a little-endian file, version 2 or 3)",
          file, *version);
    }
    input_error("{}: GGUF version {} is not supported (expected 2 or 3)", file, *version);
  }
}

// Data offsets of each tensor: aligned, inside the data section, not overlapping.
void place_tensors(std::vector<GgufTensor>& ts, const std::string& file, const uint8_t* base,
                   uint64_t data_offset, uint64_t file_size, uint64_t alignment) {
  const uint64_t data_size = data_offset <= file_size ? file_size - data_offset : 0;
  std::vector<std::pair<uint64_t, size_t>> order;
  for (size_t k = 0; k < ts.size(); ++k) {
    GgufTensor& t = ts[k];
    if (t.offset % alignment != 0) {
      input_error(
          "{}: tensor '{}': data offset {} is not a multiple of the alignment {} "
          "(misaligned)",
          file, t.name, t.offset, alignment);
    }
    if (t.offset > data_size || t.nbytes > data_size - t.offset) {
      input_error(
          "{}: tensor '{}': data [{}, {}) lies outside the data section of {} bytes "
          "(truncated file or lying offset; {} {} needs {} bytes)",
          file, t.name, t.offset, t.offset + t.nbytes, data_size, t.type_name(),
          fmt::join(t.ne, "x"), t.nbytes);
    }
    // An empty tensor may sit at the very end, past the mapping: give it no pointer at all.
    t.data = t.nbytes > 0 ? base + data_offset + t.offset : nullptr;
    if (t.nbytes > 0) order.emplace_back(t.offset, k);
  }
  std::sort(order.begin(), order.end());
  for (size_t k = 1; k < order.size(); ++k) {
    const GgufTensor& a = ts[order[k - 1].second];
    const GgufTensor& b = ts[order[k].second];
    if (b.offset < a.offset + a.nbytes) {
      input_error("{}: tensor '{}' (offset {}) overlaps tensor '{}' ([{}, {}))", file, b.name,
                  b.offset, a.name, a.offset, a.offset + a.nbytes);
    }
  }
}

}  // namespace

GgufFile::GgufFile(const std::filesystem::path& path) : file_(path.string()) {
  map_ = std::make_shared<const MappedFile>(path);
  const std::string& file = file_;
  Cursor c(file, map_->data(), map_->size());
  check_magic_and_version(c, file, &version_);
  const uint64_t n_tensors = c.read<uint64_t>("the tensor count");
  const uint64_t n_kv = c.read<uint64_t>("the metadata count");
  if (n_kv > c.left() / kMinKvBytes) {
    input_error(
        "{}: metadata count {} cannot fit in the {} bytes left in the file (corrupt "
        "header)",
        file, n_kv, c.left());
  }
  for (uint64_t k = 0; k < n_kv; ++k) {
    std::string key = c.read_string(fmt::format("metadata key #{}", k));
    const std::string what = fmt::format("metadata key '{}'", key);
    const uint32_t type = c.read<uint32_t>(what + " (value type)");
    GgufValue v = read_value(c, file, type, what, 0);
    if (kv_index_.count(key)) input_error("{}: {} appears twice", file, what);
    kv_index_[key] = kv_.size();
    kv_.emplace_back(std::move(key), std::move(v));
  }
  if (const GgufValue* a = find("general.alignment")) {
    if (!a->is_unsigned() && !a->is_signed()) {
      input_error("{}: metadata key 'general.alignment' is {}, expected UINT32", file,
                  gguf_type_name(a->type));
    }
    const int64_t al = a->is_unsigned() ? int64_t(std::min<uint64_t>(a->u, 1ull << 62)) : a->i;
    if (al <= 0 || (al & (al - 1)) != 0 || al > (int64_t(1) << 30)) {
      input_error(
          "{}: metadata key 'general.alignment' is {}, expected a power of two "
          "(default 32)",
          file, al);
    }
    alignment_ = uint64_t(al);
  }
  if (n_tensors > c.left() / kMinTensorInfoBytes) {
    input_error(
        "{}: tensor count {} cannot fit in the {} bytes left in the file (corrupt "
        "header)",
        file, n_tensors, c.left());
  }
  tensors_.reserve(size_t(n_tensors));
  for (uint64_t k = 0; k < n_tensors; ++k) {
    GgufTensor t = read_tensor_info(c, file, k);
    if (tensor_index_.count(t.name)) input_error("{}: tensor '{}' appears twice", file, t.name);
    tensor_index_[t.name] = tensors_.size();
    tensors_.push_back(std::move(t));
  }
  data_offset_ = (uint64_t(c.pos()) + alignment_ - 1) / alignment_ * alignment_;
  place_tensors(tensors_, file, map_->data(), data_offset_, map_->size(), alignment_);
}

const GgufValue* GgufFile::find(const std::string& key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

const GgufTensor* GgufFile::find_tensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const GgufValue& GgufFile::require(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) input_error("{}: missing metadata key '{}'", file_, key);
  return *v;
}

namespace {

int64_t as_int(const GgufValue& v, const std::string& file, const std::string& key) {
  if (v.is_signed()) return v.i;
  if (v.is_unsigned()) {
    if (v.u > uint64_t(std::numeric_limits<int64_t>::max())) {
      input_error("{}: metadata key '{}' is {}, too large", file, key, v.u);
    }
    return int64_t(v.u);
  }
  input_error("{}: metadata key '{}' is {}, expected an integer", file, key,
              gguf_type_name(v.type));
}

}  // namespace

int64_t GgufFile::get_int(const std::string& key) const { return as_int(require(key), file_, key); }

int64_t GgufFile::get_int(const std::string& key, int64_t dflt) const {
  const GgufValue* v = find(key);
  return v ? as_int(*v, file_, key) : dflt;
}

double GgufFile::get_float(const std::string& key) const {
  const GgufValue& v = require(key);
  if (v.type == GgufType::kF32 || v.type == GgufType::kF64) return v.f;
  if (v.is_signed() || v.is_unsigned()) return double(as_int(v, file_, key));
  input_error("{}: metadata key '{}' is {}, expected FLOAT32", file_, key, gguf_type_name(v.type));
}

double GgufFile::get_float(const std::string& key, double dflt) const {
  return find(key) ? get_float(key) : dflt;
}

std::string GgufFile::get_string(const std::string& key) const {
  const GgufValue& v = require(key);
  if (v.type != GgufType::kString) {
    input_error("{}: metadata key '{}' is {}, expected STRING", file_, key, gguf_type_name(v.type));
  }
  return v.str;
}

std::string GgufFile::get_string(const std::string& key, const std::string& dflt) const {
  return find(key) ? get_string(key) : dflt;
}

bool GgufFile::get_bool(const std::string& key, bool dflt) const {
  const GgufValue* v = find(key);
  if (!v) return dflt;
  if (v->type != GgufType::kBool) {
    input_error("{}: metadata key '{}' is {}, expected BOOL", file_, key, gguf_type_name(v->type));
  }
  return v->u != 0;
}

const GgufValue& GgufFile::get_array(const std::string& key, GgufType elem) const {
  const GgufValue& v = require(key);
  if (v.type != GgufType::kArray || v.elem != elem) {
    input_error("{}: metadata key '{}' is {}{}{}, expected ARRAY of {}", file_, key,
                gguf_type_name(v.type), v.type == GgufType::kArray ? " of " : "",
                v.type == GgufType::kArray ? gguf_type_name(v.elem) : "", gguf_type_name(elem));
  }
  return v;
}

bool is_gguf_file(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return false;
  std::ifstream f(path, std::ios::binary);
  char m[4] = {};
  f.read(m, 4);
  return f.gcount() == 4 && std::memcmp(m, "GGUF", 4) == 0;
}

bool is_gguf_path(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return false;
  return path.extension() == ".gguf" || is_gguf_file(path);
}

int gguf_scalar_size(uint32_t t) {
  switch (GgufType(t)) {
    case GgufType::kU8:
    case GgufType::kI8:
    case GgufType::kBool:
      return 1;
    case GgufType::kU16:
    case GgufType::kI16:
      return 2;
    case GgufType::kU32:
    case GgufType::kI32:
    case GgufType::kF32:
      return 4;
    case GgufType::kU64:
    case GgufType::kI64:
    case GgufType::kF64:
      return 8;
    case GgufType::kString:
    case GgufType::kArray:
      return 0;
  }
  return -1;
}

}  // namespace moa
