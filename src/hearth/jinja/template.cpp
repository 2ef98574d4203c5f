#include "hearth/jinja/template.h"

#include <exception>
#include <new>
#include <stdexcept>

#include "hearth/jinja/error.h"
#include "hearth/jinja/interpreter.h"
#include "hearth/jinja/lexer.h"
#include "hearth/jinja/parser.h"

namespace hearth::jinja {
namespace {

Status to_status(const TemplateError& e) {
  const ErrorCode code = e.kind == ErrorKind::kRaised     ? ErrorCode::kFailedPrecondition
                         : e.kind == ErrorKind::kResource ? ErrorCode::kResourceExhausted
                                                          : ErrorCode::kInvalidArgument;
  return make_error(code, "line {}: {}", e.line, e.message);
}

}  // namespace

Result<Template> Template::parse(std::string_view source) {
  if (source.size() > kMaxTemplateBytes) {
    return make_error(ErrorCode::kResourceExhausted, "template of {} bytes is over the limit of {} bytes", source.size(),
                      kMaxTemplateBytes);
  }
  try {
    Template t;
    t.body_ = std::make_shared<const Body>(parse_tokens(tokenize(source)));
    return t;
  } catch (const TemplateError& e) {
    return to_status(e);
  } catch (const std::bad_alloc&) {
    return make_error(ErrorCode::kResourceExhausted, "template too large to parse");
  } catch (const std::exception& e) {  // a library throw the interpreter did not expect
    return make_error(ErrorCode::kInternal, "template parse failed: {}", e.what());
  }
}

Result<std::string> Template::render(const Context& ctx) const {
  if (!body_) return make_error(ErrorCode::kFailedPrecondition, "render of a template that was not parsed");
  try {
    Interpreter interp(ctx);
    return interp.run(*body_);
  } catch (const TemplateError& e) {
    return to_status(e);
  } catch (const std::bad_alloc&) {
    return make_error(ErrorCode::kResourceExhausted, "template rendering ran out of memory");
  } catch (const std::length_error&) {
    return make_error(ErrorCode::kResourceExhausted, "template rendering built a value too large");
  } catch (const std::exception& e) {  // a library throw the interpreter did not expect
    return make_error(ErrorCode::kInternal, "template rendering failed: {}", e.what());
  }
}

std::string_view error_message_text(const Status& status) {
  std::string_view m = status.message();
  if (m.substr(0, 5) != "line ") return m;
  size_t i = 5;
  while (i < m.size() && m[i] >= '0' && m[i] <= '9') ++i;
  if (i > 5 && m.substr(i, 2) == ": ") return m.substr(i + 2);
  return m;
}

}  // namespace hearth::jinja
