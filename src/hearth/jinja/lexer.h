// The template lexer: splits source into text and the tokens inside {{ }} / {% %}, applying
// jinja2's whitespace rules (trim_blocks, lstrip_blocks, the `-` and `+` modifiers, comments,
// one trailing newline dropped).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace hearth::jinja {

enum class TokenType { kText, kVarBegin, kVarEnd, kBlockBegin, kBlockEnd, kName, kString, kInt, kFloat, kOp, kEof };

struct Token {
  TokenType type;
  std::string value;  // text, name, decoded string, number text or operator
  int line = 1;
};

// Throws TemplateError (error.h) on an unterminated tag, comment or string, or a bad character.
std::vector<Token> tokenize(std::string_view source);

}  // namespace hearth::jinja
