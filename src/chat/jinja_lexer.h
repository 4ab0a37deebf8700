// Tokens of a template, lexed as @huggingface/jinja lexes (see jinja.h): the source is first
// preprocessed (trailing newline, lstrip_blocks, trim_blocks, generation tags), then split into
// text and the tokens inside {{ }}, {% %} and comments.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace moa::jinja {

enum class Tok : uint8_t {
  kText,
  kNumber,
  kString,
  kIdentifier,
  kEquals,
  kOpenParen,
  kCloseParen,
  kOpenStatement,
  kCloseStatement,
  kOpenExpression,
  kCloseExpression,
  kOpenSquare,
  kCloseSquare,
  kOpenCurly,
  kCloseCurly,
  kComma,
  kDot,
  kColon,
  kPipe,
  kAdditive,
  kMultiplicative,
  kPower,
  kComparison,
  kUnary,
  kComment,
  kEnd
};
const char* tok_name(Tok t);

struct Token {
  Tok type;
  std::string value;
  size_t pos;  // byte offset in the original source
};

// The tokens, ending with one kEnd. Throws TemplateError (with a position) on bad input.
std::vector<Token> tokenize(const std::string& source);

// 1-based line and column (in code points) of a byte offset.
struct LineCol {
  size_t line, column;
};
LineCol line_col(const std::string& source, size_t pos);

}  // namespace moa::jinja
