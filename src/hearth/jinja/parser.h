// The template parser: tokens (lexer.h) to a statement tree (ast.h), following jinja2's grammar
// and operator precedence. Nesting is bounded (kMaxParseDepth) so hostile input cannot exhaust
// the stack.
#pragma once

#include <vector>

#include "hearth/jinja/ast.h"
#include "hearth/jinja/lexer.h"

namespace hearth::jinja {

inline constexpr int kMaxParseDepth = 500;   // recursion of the parser's own functions
inline constexpr int kMaxBlockDepth = 100;   // statements nested in statements (real templates: < 10)
inline constexpr int kMaxExprHeight = 256;   // height of one expression's tree

// Throws TemplateError (error.h) naming the line of the first problem.
Body parse_tokens(const std::vector<Token>& tokens);

}  // namespace hearth::jinja
