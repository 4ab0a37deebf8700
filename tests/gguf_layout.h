// Test helpers: byte offsets of the fields of a well-formed GGUF file (an independent walk, not
// our reader), so tests can write corrupted copies field by field; and a minimal metadata-only
// GGUF writer for tests that build files too large to commit (tokenizers).
#pragma once

#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace moa::test {

struct GgufLayout {
  size_t n_tensors = 8, n_kv = 16;
  std::map<std::string, size_t> key_len, value_type, value;  // per metadata key
  struct Info {
    size_t name_len, n_dims, ne, type, offset;
  };
  std::map<std::string, Info> tensor;
};

inline GgufLayout walk_gguf(const std::string& b) {
  GgufLayout L;
  size_t p = 24;
  auto u32 = [&](size_t at) {
    uint32_t v;
    std::memcpy(&v, b.data() + at, 4);
    return v;
  };
  auto u64 = [&](size_t at) {
    uint64_t v;
    std::memcpy(&v, b.data() + at, 8);
    return v;
  };
  auto str = [&](size_t* at) {
    const uint64_t n = u64(*at);
    std::string s = b.substr(*at + 8, n);
    *at += 8 + n;
    return s;
  };
  std::function<void(uint32_t)> skip = [&](uint32_t t) {
    static const int sizes[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    if (t == 8) {
      str(&p);
    } else if (t == 9) {
      const uint32_t e = u32(p);
      const uint64_t n = u64(p + 4);
      p += 12;
      for (uint64_t k = 0; k < n; ++k) skip(e);
    } else {
      p += size_t(sizes[t]);
    }
  };
  const uint64_t n_kv = u64(16), n_t = u64(8);
  for (uint64_t k = 0; k < n_kv; ++k) {
    const size_t at = p;
    std::string key = str(&p);
    L.key_len[key] = at;
    L.value_type[key] = p;
    const uint32_t t = u32(p);
    p += 4;
    L.value[key] = p;
    skip(t);
  }
  for (uint64_t k = 0; k < n_t; ++k) {
    GgufLayout::Info info{};
    info.name_len = p;
    std::string name = str(&p);
    info.n_dims = p;
    const uint32_t nd = u32(p);
    info.ne = p + 4;
    p += 4 + 8 * nd;
    info.type = p;
    info.offset = p + 4;
    p += 12;
    L.tensor[name] = info;
  }
  return L;
}

// b with the bytes at `at` replaced by v.
template <typename T>
inline std::string with(std::string b, size_t at, T v) {
  std::memcpy(b.data() + at, &v, sizeof(T));
  return b;
}

// A GGUF v3 file with metadata and no tensors, little-endian, in the order the keys were added.
class GgufBuilder {
 public:
  void add(const std::string& key, const std::string& v) { kv(key, 8), text(v); }
  void add_u32(const std::string& key, uint32_t v) { kv(key, 4), pod(v); }
  void add_i32(const std::string& key, int32_t v) { kv(key, 5), pod(v); }
  void add_bool(const std::string& key, bool v) { kv(key, 7), pod(uint8_t(v)); }
  void add_f32(const std::string& key, float v) { kv(key, 6), pod(v); }
  void add(const std::string& key, const std::vector<std::string>& v) {
    array(key, 8, v.size());
    for (auto& s : v) text(s);
  }
  void add(const std::string& key, const std::vector<int32_t>& v) {
    array(key, 5, v.size());
    for (auto x : v) pod(x);
  }
  void add(const std::string& key, const std::vector<float>& v) {
    array(key, 6, v.size());
    for (auto x : v) pod(x);
  }
  std::string bytes() const {
    std::string h = "GGUF";
    auto put = [&](auto x) { h.append(reinterpret_cast<const char*>(&x), sizeof(x)); };
    put(uint32_t(3));
    put(uint64_t(0));  // tensors
    put(uint64_t(n_));
    return h + body_;
  }

 private:
  template <typename T>
  void pod(T v) {
    body_.append(reinterpret_cast<const char*>(&v), sizeof(T));
  }
  void text(const std::string& s) {
    pod(uint64_t(s.size()));
    body_ += s;
  }
  void kv(const std::string& key, uint32_t type) {
    ++n_;
    text(key);
    pod(type);
  }
  void array(const std::string& key, uint32_t elem, size_t n) {
    kv(key, 9);
    pod(elem);
    pod(uint64_t(n));
  }
  std::string body_;
  uint64_t n_ = 0;
};

}  // namespace moa::test
