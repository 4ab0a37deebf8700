// Template tokens -> syntax tree, with @huggingface/jinja's grammar and precedence (lowest
// first): `x if c else y`, or, and, not, comparisons and in/not in, + - ~, * / // %, **, is
// tests, | filters, unary + -, calls / attributes / subscripts, primaries.
#pragma once

#include <vector>

#include "chat/jinja_ast.h"
#include "chat/jinja_lexer.h"

namespace moa::jinja {

// Throws TemplateError with the offending token's position.
NodeList parse(const std::vector<Token>& tokens);

}  // namespace moa::jinja
