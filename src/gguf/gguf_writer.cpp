// GGUF writer: see include/moa/gguf/gguf_writer.h.
#include "moa/gguf/gguf_writer.h"

#include <algorithm>
#include <cstring>

#include "moa/core/error.h"

namespace moa {

namespace {

constexpr uint32_t kVersion = 3;
constexpr uint64_t kDefaultAlignment = 32;


GgufOwnedValue scalar(GgufType t) {
  GgufOwnedValue o;
  o.v.type = t;
  return o;
}

// Serialises into a byte buffer (the header and metadata; small next to the tensors).
class Bytes {
 public:
  template <class T>
  void put(T x) {
    const size_t at = b_.size();
    b_.resize(at + sizeof(T));
    std::memcpy(b_.data() + at, &x, sizeof(T));
  }
  void put_bytes(const void* p, size_t n) {
    const auto* c = static_cast<const uint8_t*>(p);
    b_.insert(b_.end(), c, c + n);
  }
  void put_string(const std::string& s) {
    put<uint64_t>(s.size());
    put_bytes(s.data(), s.size());
  }
  void pad_to(uint64_t alignment) {
    while (b_.size() % alignment != 0) b_.push_back(0);
  }
  const std::vector<uint8_t>& data() const { return b_; }

 private:
  std::vector<uint8_t> b_;
};

// The little-endian bytes of one scalar of type t held in v.
void put_scalar(Bytes& out, const GgufValue& v) {
  switch (v.type) {
    case GgufType::kU8:
    case GgufType::kBool:
      return out.put<uint8_t>(uint8_t(v.u));
    case GgufType::kU16:
      return out.put<uint16_t>(uint16_t(v.u));
    case GgufType::kU32:
      return out.put<uint32_t>(uint32_t(v.u));
    case GgufType::kU64:
      return out.put<uint64_t>(v.u);
    case GgufType::kI8:
      return out.put<int8_t>(int8_t(v.i));
    case GgufType::kI16:
      return out.put<int16_t>(int16_t(v.i));
    case GgufType::kI32:
      return out.put<int32_t>(int32_t(v.i));
    case GgufType::kI64:
      return out.put<int64_t>(v.i);
    case GgufType::kF32:
      return out.put<float>(float(v.f));
    case GgufType::kF64:
      return out.put<double>(v.f);
    default:
      MOA_CHECK(false, "not a scalar GGUF type {}", uint32_t(v.type));
  }
}

// Value without its leading type (the type is written by the caller: keys and array elements).
void put_value(Bytes& out, const GgufOwnedValue& o) {
  const GgufValue& v = o.v;
  if (v.type == GgufType::kString) return out.put_string(v.str);
  if (v.type != GgufType::kArray) return put_scalar(out, v);
  out.put<uint32_t>(uint32_t(v.elem));
  out.put<uint64_t>(v.count);
  if (v.elem == GgufType::kString) {
    for (const std::string& s : v.strs) out.put_string(s);
  } else if (v.elem == GgufType::kArray) {
    for (const GgufOwnedValue& a : o.owned_arr) put_value(out, a);  // elements carry no type
  } else {
    out.put_bytes(o.owned.data(), o.owned.size());
  }
}

uint64_t aligned(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

}  // namespace

// --- values ---------------------------------------------------------------------------------

GgufOwnedValue GgufOwnedValue::copy_of(const GgufValue& v) {
  GgufOwnedValue o;
  o.v.type = v.type;
  o.v.u = v.u;
  o.v.i = v.i;
  o.v.f = v.f;
  o.v.str = v.str;
  if (v.type != GgufType::kArray) return o;
  o.v.elem = v.elem;
  o.v.count = v.count;
  if (v.elem == GgufType::kString) {
    o.v.strs = v.strs;
  } else if (v.elem == GgufType::kArray) {
    for (const GgufValue& a : v.arr) o.owned_arr.push_back(copy_of(a));
  } else {
    const size_t n = size_t(v.count) * size_t(std::max(gguf_scalar_size(uint32_t(v.elem)), 0));
    o.owned.assign(v.raw, v.raw + n);
  }
  return o;
}

// clang-format off
GgufOwnedValue GgufOwnedValue::u8(uint8_t x) { auto o = scalar(GgufType::kU8); o.v.u = x; return o; }
GgufOwnedValue GgufOwnedValue::u16(uint16_t x) { auto o = scalar(GgufType::kU16); o.v.u = x; return o; }
GgufOwnedValue GgufOwnedValue::u32(uint32_t x) { auto o = scalar(GgufType::kU32); o.v.u = x; return o; }
GgufOwnedValue GgufOwnedValue::u64(uint64_t x) { auto o = scalar(GgufType::kU64); o.v.u = x; return o; }
GgufOwnedValue GgufOwnedValue::i8(int8_t x) { auto o = scalar(GgufType::kI8); o.v.i = x; return o; }
GgufOwnedValue GgufOwnedValue::i16(int16_t x) { auto o = scalar(GgufType::kI16); o.v.i = x; return o; }
GgufOwnedValue GgufOwnedValue::i32(int32_t x) { auto o = scalar(GgufType::kI32); o.v.i = x; return o; }
GgufOwnedValue GgufOwnedValue::i64(int64_t x) { auto o = scalar(GgufType::kI64); o.v.i = x; return o; }
GgufOwnedValue GgufOwnedValue::f32(float x) { auto o = scalar(GgufType::kF32); o.v.f = x; return o; }
GgufOwnedValue GgufOwnedValue::f64(double x) { auto o = scalar(GgufType::kF64); o.v.f = x; return o; }
GgufOwnedValue GgufOwnedValue::boolean(bool x) { auto o = scalar(GgufType::kBool); o.v.u = x; return o; }
// clang-format on

GgufOwnedValue GgufOwnedValue::string(std::string s) {
  auto o = scalar(GgufType::kString);
  o.v.str = std::move(s);
  return o;
}

GgufOwnedValue GgufOwnedValue::scalar_array(GgufType elem, const void* data, uint64_t count) {
  const int s = std::max(gguf_scalar_size(uint32_t(elem)), 0);
  MOA_CHECK(s > 0, "array element type {} is not a scalar", gguf_type_name(elem));
  auto o = scalar(GgufType::kArray);
  o.v.elem = elem;
  o.v.count = count;
  const auto* p = static_cast<const uint8_t*>(data);
  o.owned.assign(p, p + count * uint64_t(s));
  return o;
}

GgufOwnedValue GgufOwnedValue::f32_array(const std::vector<float>& xs) {
  return scalar_array(GgufType::kF32, xs.data(), xs.size());
}

GgufOwnedValue GgufOwnedValue::i32_array(const std::vector<int32_t>& xs) {
  return scalar_array(GgufType::kI32, xs.data(), xs.size());
}

GgufOwnedValue GgufOwnedValue::string_array(std::vector<std::string> xs) {
  auto o = scalar(GgufType::kArray);
  o.v.elem = GgufType::kString;
  o.v.count = xs.size();
  o.v.strs = std::move(xs);
  return o;
}

GgufOwnedValue GgufOwnedValue::array_of_arrays(std::vector<GgufOwnedValue> xs) {
  auto o = scalar(GgufType::kArray);
  o.v.elem = GgufType::kArray;
  o.v.count = xs.size();
  for (const auto& x : xs) MOA_CHECK(x.v.type == GgufType::kArray, "nested value is not an array");
  o.owned_arr = std::move(xs);
  return o;
}

// --- tensors and file -----------------------------------------------------------------------

void GgufSink::write(const void* data, size_t n) {
  if (n && std::fwrite(data, 1, n, f_) != n) input_error("{}: write failed", file_);
  written_ += n;
}

uint64_t GgufTensorOut::nbytes() const {
  int64_t rows = 1;
  for (size_t d = 1; d < ne.size(); ++d) rows *= ne[d];
  return uint64_t(rows * ggml_row_bytes(type, ne.empty() ? 1 : ne[0]));
}

void GgufWriter::set(const std::string& key, GgufOwnedValue v) {
  for (auto& [k, old] : kv_) {
    if (k == key) {
      old = std::move(v);
      return;
    }
  }
  kv_.emplace_back(key, std::move(v));
}

void GgufWriter::remove(const std::string& key) {
  std::erase_if(kv_, [&](const auto& kv) { return kv.first == key; });
}

const GgufOwnedValue* GgufWriter::find(const std::string& key) const {
  for (const auto& [k, v] : kv_) {
    if (k == key) return &v;
  }
  return nullptr;
}

void GgufWriter::add_tensor(GgufTensorOut t) {
  const GgmlTypeTraits tr = ggml_type_traits(uint32_t(t.type));
  MOA_CHECK(tr.name != nullptr, "unknown ggml type {}", uint32_t(t.type));
  MOA_CHECK(!t.ne.empty() && t.ne.size() <= 4, "tensor '{}' has {} dimensions", t.name,
            t.ne.size());
  for (int64_t n : t.ne) MOA_CHECK(n > 0, "tensor '{}' has a dimension {}", t.name, n);
  MOA_CHECK(t.ne[0] % tr.block == 0, "tensor '{}': {} values per row, not a multiple of {}'s {}",
            t.name, t.ne[0], tr.name, tr.block);
  MOA_CHECK(!t.name.empty() && t.name.size() < 65536, "bad tensor name length {}", t.name.size());
  for (const auto& o : tensors_) MOA_CHECK(o.name != t.name, "duplicate tensor '{}'", t.name);
  tensors_.push_back(std::move(t));
}

uint64_t GgufWriter::tensor_bytes() const {
  uint64_t n = 0;
  for (const auto& t : tensors_) n += t.nbytes();
  return n;
}

void GgufWriter::write(const std::filesystem::path& path, const Progress& progress) const {
  uint64_t alignment = kDefaultAlignment;
  const GgufOwnedValue* al = find("general.alignment");
  if (al) {
    MOA_CHECK(al->v.type == GgufType::kU32 && al->v.u > 0 && (al->v.u & (al->v.u - 1)) == 0,
              "general.alignment must be a UINT32 power of two");
    alignment = al->v.u;
  }
  Bytes h;
  h.put_bytes("GGUF", 4);
  h.put<uint32_t>(kVersion);
  h.put<uint64_t>(tensors_.size());
  h.put<uint64_t>(kv_.size() + (al ? 0 : 1));
  auto put_kv = [&](const std::string& k, const GgufOwnedValue& v) {
    h.put_string(k);
    h.put<uint32_t>(uint32_t(v.v.type));
    put_value(h, v);
  };
  if (!al) put_kv("general.alignment", GgufOwnedValue::u32(uint32_t(alignment)));
  for (const auto& [k, v] : kv_) put_kv(k, v);
  uint64_t offset = 0;
  for (const auto& t : tensors_) {
    h.put_string(t.name);
    h.put<uint32_t>(uint32_t(t.ne.size()));
    for (int64_t n : t.ne) h.put<uint64_t>(uint64_t(n));
    h.put<uint32_t>(uint32_t(t.type));
    h.put<uint64_t>(offset);
    offset = aligned(offset + t.nbytes(), alignment);
  }
  h.pad_to(alignment);
  const std::string file = path.string();
  write_file_atomic(path, [&](std::FILE* f) {
    GgufSink sink(f, file);
    sink.write(h.data().data(), h.data().size());
    static const uint8_t zeros[256] = {};
    for (size_t k = 0; k < tensors_.size(); ++k) {
      const GgufTensorOut& t = tensors_[k];
      if (progress) progress(k, t.name, t.type);
      const uint64_t before = sink.written();
      t.fill(sink);
      const uint64_t n = sink.written() - before;
      if (n != t.nbytes()) {
        input_error("{}: tensor '{}': wrote {} bytes, expected {} ({} {})", file, t.name, n,
                    t.nbytes(), ggml_type_name(t.type), t.ne[0]);
      }
      for (uint64_t pad = aligned(n, alignment) - n; pad > 0;) {
        const uint64_t k = std::min<uint64_t>(pad, sizeof(zeros));
        sink.write(zeros, size_t(k));
        pad -= k;
      }
    }
  });
}

}  // namespace moa
