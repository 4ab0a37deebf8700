// Text helpers with JavaScript's semantics over UTF-8 strings. The reference implementation of
// chat templates (@huggingface/jinja) runs on JavaScript strings, so its whitespace set, trimming,
// lengths and number formatting are JavaScript's; these reproduce them byte for byte.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace moa::jinja {

// One code point decoded at s[i]; an invalid byte decodes as itself with length 1.
struct CodePoint {
  uint32_t cp;
  size_t len;
};
CodePoint decode_utf8(std::string_view s, size_t i);
void append_utf8(std::string& out, uint32_t cp);

// JavaScript's \s (WhiteSpace and LineTerminator; not U+0085).
bool is_js_space(uint32_t cp);
// Length of the run of JS whitespace starting at s[i].
size_t js_space_run(std::string_view s, size_t i);
std::string_view js_trim_start(std::string_view s);
std::string_view js_trim_end(std::string_view s);
std::string_view js_trim(std::string_view s);

inline bool is_word_byte(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}
inline bool is_digit_byte(unsigned char c) { return c >= '0' && c <= '9'; }

// String.length: UTF-16 code units.
size_t utf16_length(std::string_view s);
// s.at(i) on UTF-16 units (negative counts from the end); a unit inside a surrogate pair has no
// UTF-8 form and is returned as U+FFFD. False when out of range.
bool utf16_at(std::string_view s, int64_t i, std::string& out);
// Comparison in UTF-16 code unit order (what JavaScript's < does on strings).
int utf16_compare(std::string_view a, std::string_view b);

// ASCII-only case mapping (see jinja.h: non-ASCII letters are left unchanged).
std::string ascii_upper(std::string_view s);
std::string ascii_lower(std::string_view s);

// Number.prototype.toString() (shortest round trip, JS exponent rules).
std::string js_number(double v);
// FloatValue.toString() of @huggingface/jinja: integral values keep one decimal ("1.0").
std::string js_float(double v);
// JSON.stringify of a number (non-finite -> null).
std::string json_number(double v);
// JSON.stringify of a string; ensure_ascii escapes every UTF-16 unit from U+007F up.
void json_quote(std::string& out, std::string_view s, bool ensure_ascii);

// parseInt(s, 10) and parseFloat(s); NaN when no number starts the string.
double js_parse_int(std::string_view s);
double js_parse_float(std::string_view s);
// Number(s): the whole string must be a number (after trimming), "" is 0.
double js_to_number(std::string_view s);

}  // namespace moa::jinja
