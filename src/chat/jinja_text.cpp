#include "chat/jinja_text.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

namespace moa::jinja {

CodePoint decode_utf8(std::string_view s, size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) return {c, 1};
  size_t len = 0;
  uint32_t cp = 0;
  if ((c & 0xE0) == 0xC0) {
    len = 2, cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3, cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4, cp = c & 0x07;
  } else {
    return {c, 1};
  }
  if (i + len > s.size()) return {c, 1};
  for (size_t k = 1; k < len; ++k) {
    const auto d = static_cast<unsigned char>(s[i + k]);
    if ((d & 0xC0) != 0x80) return {c, 1};
    cp = (cp << 6) | (d & 0x3F);
  }
  // Overlong forms and surrogates are not characters: keep them as single bytes.
  static constexpr uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return {c, 1};
  return {cp, len};
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD;
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

bool is_js_space(uint32_t cp) {
  if (cp <= 32) return cp == 32 || (cp >= 9 && cp <= 13);
  return cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
         cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000 || cp == 0xFEFF;
}

namespace {
// An invalid byte decodes as itself; it must not pass for U+00A0 or U+0085.
bool space_cp(CodePoint c) { return is_js_space(c.cp) && !(c.len == 1 && c.cp >= 0x80); }
}  // namespace

size_t js_space_run(std::string_view s, size_t i) {
  size_t j = i;
  while (j < s.size()) {
    const CodePoint c = decode_utf8(s, j);
    if (!space_cp(c)) break;
    j += c.len;
  }
  return j - i;
}

std::string_view js_trim_start(std::string_view s) { return s.substr(js_space_run(s, 0)); }

std::string_view js_trim_end(std::string_view s) {
  size_t keep = 0;
  for (size_t i = 0; i < s.size();) {
    const CodePoint c = decode_utf8(s, i);
    i += c.len;
    if (!space_cp(c)) keep = i;
  }
  return s.substr(0, keep);
}

std::string_view js_trim(std::string_view s) { return js_trim_end(js_trim_start(s)); }

size_t utf16_length(std::string_view s) {
  size_t n = 0;
  for (size_t i = 0; i < s.size();) {
    const CodePoint c = decode_utf8(s, i);
    n += c.cp >= 0x10000 ? 2 : 1;
    i += c.len;
  }
  return n;
}

bool utf16_at(std::string_view s, int64_t i, std::string& out) {
  const auto n = static_cast<int64_t>(utf16_length(s));
  if (i < 0) i += n;
  if (i < 0 || i >= n) return false;
  int64_t unit = 0;
  for (size_t p = 0; p < s.size();) {
    const CodePoint c = decode_utf8(s, p);
    const int64_t w = c.cp >= 0x10000 ? 2 : 1;
    if (i < unit + w) {
      out.clear();
      if (w == 2) {
        append_utf8(out, 0xFFFD);
      } else {
        out.assign(s.substr(p, c.len));
      }
      return true;
    }
    unit += w;
    p += c.len;
  }
  return false;
}

int utf16_compare(std::string_view a, std::string_view b) {
  // UTF-8 byte order equals code point order; UTF-16 differs only where a supplementary code
  // point (surrogates D800..DFFF) meets one in E000..FFFF.
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    const CodePoint x = decode_utf8(a, i), y = decode_utf8(b, j);
    if (x.cp != y.cp) {
      auto key = [](uint32_t cp) -> uint32_t {
        return cp >= 0x10000 ? 0xD800 + ((cp - 0x10000) >> 10) : cp;
      };
      const uint32_t kx = key(x.cp), ky = key(y.cp);
      if (kx != ky) return kx < ky ? -1 : 1;
      return x.cp < y.cp ? -1 : 1;
    }
    i += x.len;
    j += y.len;
  }
  if (i < a.size()) return 1;
  if (j < b.size()) return -1;
  return 0;
}

std::string ascii_upper(std::string_view s) {
  std::string r(s);
  for (char& c : r) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 32);
  }
  return r;
}

std::string ascii_lower(std::string_view s) {
  std::string r(s);
  for (char& c : r) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  }
  return r;
}

std::string js_number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v < 0 ? "-Infinity" : "Infinity";
  if (v == 0) return "0";
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  std::string_view s(buf, static_cast<size_t>(r.ptr - buf));
  const bool neg = s[0] == '-';
  if (neg) s.remove_prefix(1);
  const size_t e = s.find('e');
  std::string digits;
  for (char c : s.substr(0, e)) {
    if (c != '.') digits += c;
  }
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  const int exp = std::atoi(std::string(s.substr(e + 1)).c_str());
  const int k = static_cast<int>(digits.size());
  const int n = exp + 1;  // the decimal point sits after n digits
  std::string out;
  if (k <= n && n <= 21) {
    out = digits + std::string(static_cast<size_t>(n - k), '0');
  } else if (0 < n && n <= 21) {
    out = digits.substr(0, static_cast<size_t>(n)) + "." + digits.substr(static_cast<size_t>(n));
  } else if (-6 < n && n <= 0) {
    out = "0." + std::string(static_cast<size_t>(-n), '0') + digits;
  } else {
    out = digits.substr(0, 1);
    if (k > 1) out += "." + digits.substr(1);
    out += n - 1 >= 0 ? "e+" : "e-";
    out += std::to_string(std::abs(n - 1));
  }
  return neg ? "-" + out : out;
}

std::string js_float(double v) {
  if (v == 0 && std::signbit(v)) return "-0.0";
  if (std::isfinite(v) && std::fmod(v, 1.0) == 0) {
    if (std::fabs(v) >= 1e21) return js_number(v);  // toFixed falls back to toString there
    char buf[400];
    std::snprintf(buf, sizeof buf, "%.1f", v);
    return buf;
  }
  return js_number(v);
}

std::string json_number(double v) { return std::isfinite(v) ? js_number(v) : "null"; }

void json_quote(std::string& out, std::string_view s, bool ensure_ascii) {
  static const char* kHex = "0123456789abcdef";
  auto unit = [&](uint32_t u) {
    out += "\\u";
    for (int sh = 12; sh >= 0; sh -= 4) out += kHex[(u >> sh) & 0xF];
  };
  out += '"';
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      switch (c) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
        case '\b':
          out += "\\b";
          break;
        case '\f':
          out += "\\f";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        default:
          if (c < 0x20 || (ensure_ascii && c == 0x7F)) {
            unit(c);
          } else {
            out += static_cast<char>(c);
          }
      }
      ++i;
      continue;
    }
    const CodePoint cp = decode_utf8(s, i);
    if (ensure_ascii) {
      const uint32_t v = cp.len == 1 ? 0xFFFD : cp.cp;
      if (v >= 0x10000) {
        unit(0xD800 + ((v - 0x10000) >> 10));
        unit(0xDC00 + ((v - 0x10000) & 0x3FF));
      } else {
        unit(v);
      }
    } else {
      out.append(s.substr(i, cp.len));
    }
    i += cp.len;
  }
  out += '"';
}

namespace {

// Length of the longest StrDecimalLiteral prefix of s (sign, digits, fraction, exponent).
size_t decimal_prefix(std::string_view s) {
  size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
  if (s.substr(i, 8) == "Infinity") return i + 8;
  const size_t int_start = i;
  while (i < s.size() && is_digit_byte(s[i])) ++i;
  size_t digits = i - int_start;
  if (i < s.size() && s[i] == '.') {
    size_t j = i + 1;
    while (j < s.size() && is_digit_byte(s[j])) ++j;
    digits += j - i - 1;
    if (digits > 0) i = j;
  }
  if (digits == 0) return 0;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    size_t j = i + 1;
    if (j < s.size() && (s[j] == '+' || s[j] == '-')) ++j;
    const size_t exp_start = j;
    while (j < s.size() && is_digit_byte(s[j])) ++j;
    if (j > exp_start) i = j;
  }
  return i;
}

double parse_decimal(std::string_view s) {
  bool neg = false;
  std::string_view body = s;
  if (!body.empty() && (body[0] == '+' || body[0] == '-')) {
    neg = body[0] == '-';
    body.remove_prefix(1);
  }
  if (body == "Infinity") return neg ? -INFINITY : INFINITY;
  const std::string text(s);
  return std::strtod(text.c_str(), nullptr);
}

}  // namespace

double js_parse_int(std::string_view s) {
  s = js_trim_start(s);
  size_t i = 0;
  bool neg = false;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
  const size_t start = i;
  while (i < s.size() && is_digit_byte(s[i])) ++i;
  if (i == start) return std::numeric_limits<double>::quiet_NaN();
  const double v = std::strtod(std::string(s.substr(start, i - start)).c_str(), nullptr);
  return neg ? -v : v;
}

double js_parse_float(std::string_view s) {
  s = js_trim_start(s);
  const size_t n = decimal_prefix(s);
  if (n == 0) return std::numeric_limits<double>::quiet_NaN();
  return parse_decimal(s.substr(0, n));
}

double js_to_number(std::string_view s) {
  s = js_trim(s);
  if (s.empty()) return 0;
  if (s.size() > 2 && s[0] == '0' &&
      std::string_view("xob").find(s[1] | 0x20) != std::string_view::npos) {
    const int base = (s[1] | 0x20) == 'x' ? 16 : (s[1] | 0x20) == 'o' ? 8 : 2;
    double v = 0;
    for (char c : s.substr(2)) {
      int d = -1;
      if (c >= '0' && c <= '9')
        d = c - '0';
      else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
        d = (c | 0x20) - 'a' + 10;
      if (d < 0 || d >= base) return std::numeric_limits<double>::quiet_NaN();
      v = v * base + d;
    }
    return v;
  }
  if (decimal_prefix(s) != s.size()) return std::numeric_limits<double>::quiet_NaN();
  return parse_decimal(s);
}

}  // namespace moa::jinja
