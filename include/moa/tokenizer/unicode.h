// Unicode helpers for the tokenizers: UTF-8 decoding that keeps invalid bytes, category flags
// (the \p{..} classes of the pre-tokenizer regexes) and NFC. Tables: unicode_tables.cpp,
// generated from the reference tokenizer's JavaScript engine (gen_unicode_tables.mjs).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace moa::unicode {

enum Flag : uint16_t {
  kL = 1 << 0,      // letter
  kN = 1 << 1,      // number
  kP = 1 << 2,      // punctuation
  kS = 1 << 3,      // symbol
  kM = 1 << 4,      // mark
  kZ = 1 << 5,      // separator
  kC = 1 << 6,      // other (control, format, surrogate, private use, unassigned)
  kSpace = 1 << 7,  // White_Space (the \s of the tokenizer regexes)
  kWord = 1 << 8,   // \w: Alphabetic, M, Nd, Pc, Join_Control
};

// A byte that is not part of valid UTF-8 decodes to kInvalidBase + byte: it has no flags (so the
// regexes treat it as "other"), and encodes back to that same byte.
constexpr char32_t kInvalidBase = 0x110000;
inline bool is_invalid_byte(char32_t cp) { return cp >= kInvalidBase; }

uint16_t flags(char32_t cp);
inline bool has(char32_t cp, uint16_t f) { return (flags(cp) & f) != 0; }

// Decodes s into code points; offsets (optional) gets the byte offset of each code point plus
// s.size() at the end.
void decode_utf8(std::string_view s, std::vector<char32_t>* cps,
                 std::vector<uint32_t>* offsets = nullptr);
// Appends the UTF-8 of cp (the raw byte for kInvalidBase + byte).
void append_utf8(std::string& out, char32_t cp);
// Length in bytes of the valid UTF-8 sequence at s[i], or 0 when it is not valid there.
size_t valid_utf8_length(std::string_view s, size_t i);
bool is_valid_utf8(std::string_view s);
// Replaces each maximal invalid subsequence with U+FFFD (WHATWG TextDecoder behaviour).
std::string sanitize_utf8(std::string_view s);

// Unicode NFC; invalid bytes pass through unchanged.
std::string nfc(std::string_view s);

// The Unicode version of the tables.
const char* version();

}  // namespace moa::unicode
