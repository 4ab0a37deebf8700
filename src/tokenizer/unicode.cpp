// UTF-8, category lookup and NFC over the generated tables (unicode_tables.cpp). The NFC here is
// the textbook algorithm (full decomposition, canonical ordering, canonical composition) and is
// the same code as the checker in gen_unicode_tables.mjs, which verified the tables against the
// JavaScript engine's String.prototype.normalize.
#include "moa/tokenizer/unicode.h"

#include <algorithm>
#include <array>
#include <memory>

#include "tokenizer/unicode_tables.h"

namespace moa::unicode {
namespace {

namespace t = tables;

uint16_t lookup_flags(char32_t cp) {
  const t::CategoryRange* begin = t::kCategoryRanges;
  const t::CategoryRange* end = t::kCategoryRanges + t::kNumCategoryRanges;
  auto it = std::upper_bound(begin, end, cp,
                             [](char32_t c, const t::CategoryRange& r) { return c < r.first; });
  if (it == begin) return 0;
  --it;
  return cp <= it->last ? it->flags : 0;
}

// Flags of the Basic Multilingual Plane, expanded once (128 KiB).
const std::array<uint16_t, 0x10000>& bmp_flags() {
  static const auto table = [] {
    auto a = std::make_unique<std::array<uint16_t, 0x10000>>();
    for (size_t i = 0; i < t::kNumCategoryRanges; ++i) {
      const auto& r = t::kCategoryRanges[i];
      for (char32_t c = r.first; c <= r.last && c < 0x10000; ++c) (*a)[c] = r.flags;
    }
    return a;
  }();
  return *table;
}

// Hangul syllables: algorithmic (de)composition.
constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr char32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount,
                   kSCount = kLCount * kNCount;

uint8_t ccc(char32_t cp) {
  if (cp < 0x300 || cp >= kInvalidBase) return 0;
  const t::CccEntry* begin = t::kCcc;
  const t::CccEntry* end = t::kCcc + t::kNumCcc;
  auto it =
      std::lower_bound(begin, end, cp, [](const t::CccEntry& e, char32_t c) { return e.cp < c; });
  return (it != end && it->cp == cp) ? it->rank : 0;
}

void decompose(char32_t cp, std::vector<char32_t>& out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    char32_t si = cp - kSBase;
    out.push_back(kLBase + si / kNCount);
    out.push_back(kVBase + (si % kNCount) / kTCount);
    if (si % kTCount) out.push_back(kTBase + si % kTCount);
    return;
  }
  if (cp >= 0xC0 && cp < kInvalidBase) {
    const t::DecompEntry* begin = t::kDecomp;
    const t::DecompEntry* end = t::kDecomp + t::kNumDecomp;
    auto it = std::lower_bound(begin, end, cp,
                               [](const t::DecompEntry& e, char32_t c) { return e.cp < c; });
    if (it != end && it->cp == cp) {
      out.insert(out.end(), t::kDecompData + it->offset, t::kDecompData + it->offset + it->length);
      return;
    }
  }
  out.push_back(cp);
}

// The primary composite of (a, b), or 0.
char32_t compose(char32_t a, char32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount) {
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  }
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase &&
      b < kTBase + kTCount) {
    return a + (b - kTBase);
  }
  const t::CompEntry* begin = t::kComp;
  const t::CompEntry* end = t::kComp + t::kNumComp;
  auto it = std::lower_bound(begin, end, std::pair{a, b}, [](const t::CompEntry& e, auto key) {
    return e.first < key.first || (e.first == key.first && e.second < key.second);
  });
  return (it != end && it->first == a && it->second == b) ? it->composite : 0;
}

}  // namespace

const char* version() { return t::kUnicodeVersion; }

uint16_t flags(char32_t cp) {
  if (cp < 0x10000) return bmp_flags()[cp];
  if (cp >= kInvalidBase) return 0;
  return lookup_flags(cp);
}

size_t valid_utf8_length(std::string_view s, size_t i) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size();
  unsigned char c = p[i];
  if (c < 0x80) return 1;
  auto cont = [&](size_t k, unsigned char lo = 0x80, unsigned char hi = 0xBF) {
    return i + k < n && p[i + k] >= lo && p[i + k] <= hi;
  };
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c == 0xE0) return cont(1, 0xA0) && cont(2) ? 3 : 0;
  if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) return cont(1) && cont(2) ? 3 : 0;
  if (c == 0xED) return cont(1, 0x80, 0x9F) && cont(2) ? 3 : 0;
  if (c == 0xF0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  if (c >= 0xF1 && c <= 0xF3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (c == 0xF4) return cont(1, 0x80, 0x8F) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}

bool is_valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    size_t len = valid_utf8_length(s, i);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

void decode_utf8(std::string_view s, std::vector<char32_t>* cps, std::vector<uint32_t>* offsets) {
  cps->clear();
  cps->reserve(s.size());
  if (offsets) {
    offsets->clear();
    offsets->reserve(s.size() + 1);
  }
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  for (size_t i = 0; i < s.size();) {
    if (offsets) offsets->push_back(uint32_t(i));
    unsigned char c = p[i];
    if (c < 0x80) {
      cps->push_back(c);
      ++i;
      continue;
    }
    size_t len = valid_utf8_length(s, i);
    if (len == 0) {
      cps->push_back(kInvalidBase + c);
      ++i;
      continue;
    }
    char32_t cp = len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    for (size_t k = 1; k < len; ++k) cp = (cp << 6) | (p[i + k] & 0x3F);
    cps->push_back(cp);
    i += len;
  }
  if (offsets) offsets->push_back(uint32_t(s.size()));
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < kInvalidBase) {
    out += char(0xF0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(cp - kInvalidBase);
  }
}

std::string sanitize_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  for (size_t i = 0; i < s.size();) {
    size_t len = valid_utf8_length(s, i);
    if (len) {
      out.append(s.substr(i, len));
      i += len;
      continue;
    }
    // Maximal subpart: the longest prefix of a valid sequence that starts here, at least 1 byte.
    size_t skip = 1;
    unsigned char c = p[i];
    auto in = [&](size_t k, unsigned char lo, unsigned char hi) {
      return i + k < s.size() && p[i + k] >= lo && p[i + k] <= hi;
    };
    unsigned char lo = 0x80, hi = 0xBF;
    size_t need = 0;
    if (c >= 0xC2 && c <= 0xDF)
      need = 1;
    else if (c >= 0xE0 && c <= 0xEF)
      need = 2, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    else if (c >= 0xF0 && c <= 0xF4)
      need = 3, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    if (need && in(1, lo, hi)) {
      skip = 2;
      while (skip <= need && in(skip, 0x80, 0xBF)) ++skip;
    }
    out += "\xEF\xBF\xBD";
    i += skip;
  }
  return out;
}

std::string nfc(std::string_view s) {
  // Below U+0300 every character is its own NFC and nothing composes with it.
  bool simple = true;
  for (unsigned char c : s) {
    if (c >= 0xCC) {
      simple = false;
      break;
    }
  }
  if (simple) return std::string(s);

  std::vector<char32_t> in, d;
  decode_utf8(s, &in);
  d.reserve(in.size() + 8);
  for (char32_t c : in) decompose(c, d);
  // Canonical ordering: stable sort of each run of non-starters by class.
  for (size_t i = 1; i < d.size(); ++i) {
    uint8_t cc = ccc(d[i]);
    if (cc == 0) continue;
    for (size_t j = i; j > 0 && ccc(d[j - 1]) > cc; --j) std::swap(d[j - 1], d[j]);
  }
  // Canonical composition.
  std::vector<char32_t> res;
  res.reserve(d.size());
  long starter = -1;
  int last_ccc = -1;
  for (char32_t c : d) {
    int cc = ccc(c);
    if (starter >= 0) {
      bool adjacent = long(res.size()) - 1 == starter;
      if (adjacent || (last_ccc != 0 && last_ccc < cc)) {
        if (char32_t comp = compose(res[starter], c)) {
          res[starter] = comp;
          if (adjacent) last_ccc = 0;
          continue;
        }
      }
    }
    if (cc == 0) {
      starter = long(res.size());
      last_ccc = 0;
    } else {
      last_ccc = cc;
    }
    res.push_back(c);
  }
  std::string out;
  out.reserve(s.size());
  for (char32_t c : res) append_utf8(out, c);
  return out;
}

}  // namespace moa::unicode
