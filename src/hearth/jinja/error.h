// The interpreter's internal error: thrown anywhere in the lexer, parser or evaluator, and
// turned into a Status at the module's API (Template::parse / Template::render), so that a
// tree walk of any depth unwinds in one step. It never leaves the module.
#pragma once

#include <string>
#include <utility>

namespace hearth::jinja {

enum class ErrorKind { kError, kRaised, kResource };

struct TemplateError {
  int line = 0;
  std::string message;
  ErrorKind kind = ErrorKind::kError;
};

[[noreturn]] inline void fail(int line, std::string message) {
  throw TemplateError{line, std::move(message), ErrorKind::kError};
}

}  // namespace hearth::jinja
