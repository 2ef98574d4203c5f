// Status and Result<T>: hearth's error model. Every fallible function returns one of these;
// exceptions from libraries are caught in their adapter and never cross a module's API.
#pragma once

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include <fmt/format.h>

namespace hearth {

// Codes follow the canonical (abseil/gRPC) set so callers can map them to exit codes and HTTP.
enum class ErrorCode {
  kOk = 0,
  kInvalidArgument,  // the input is malformed (bad file, bad request, bad flag)
  kNotFound,         // a file, key, tensor or reference does not exist
  kAlreadyExists,
  kOutOfRange,          // a value is outside what is supported (context too large, ...)
  kFailedPrecondition,  // the system is not in a state that allows this
  kResourceExhausted,   // memory limit, disk full, quota
  kPermissionDenied,    // policy forbids it
  kUnauthenticated,     // signature missing, wrong or untrusted
  kDataLoss,            // digest mismatch, tampered or truncated data
  kUnimplemented,
  kUnavailable,  // a remote could not be reached
  kCancelled,
  kInternal,
  kIo,  // an operating-system I/O call failed
};

std::string_view error_code_name(ErrorCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok_status() { return {}; }

  bool ok() const { return code_ == ErrorCode::kOk; }
  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "invalid_argument: message"
  std::string to_string() const;

  // Prefixes the message with context: "ctx: message".
  Status with_context(std::string_view ctx) const&;

 private:
  ErrorCode code_ = ErrorCode::kOk;
  std::string message_;
};

inline Status ok_status() { return {}; }

// make_error(code, "tensor '{}': {} dims, at most {}", name, n, kMax): the message is formatted by fmt, and
// the format string is checked against the arguments at compile time. A message that is only a runtime
// string is make_error(code, "{}", s).
template <typename... Args>
Status make_error(ErrorCode code, fmt::format_string<Args...> format, Args&&... args) {
  return Status(code, fmt::vformat(format, fmt::make_format_args(args...)));
}

// Result<T>: either a value or a non-ok Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT(implicit)
  Result(Status status) : v_(std::move(status)) {  // NOLINT(implicit)
    assert(!std::get<Status>(v_).ok() && "Result constructed from an ok Status");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return ok(); }

  const Status& status() const& {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  Status status() && { return ok() ? Status() : std::get<Status>(std::move(v_)); }

  T& value() & {
    assert(ok());
    return std::get<T>(v_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<T>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<T>(std::move(v_));
  }

  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  T value_or(T fallback) const& { return ok() ? std::get<T>(v_) : std::move(fallback); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace hearth

#define HEARTH_CONCAT_INNER(a, b) a##b
#define HEARTH_CONCAT(a, b) HEARTH_CONCAT_INNER(a, b)

// HEARTH_TRY(expr): evaluates a Status expression and returns it from the caller if not ok.
#define HEARTH_TRY(expr)                                     \
  do {                                                       \
    ::hearth::Status hearth_try_status_ = (expr);            \
    if (!hearth_try_status_.ok()) return hearth_try_status_; \
  } while (0)

// HEARTH_ASSIGN_OR_RETURN(lhs, expr): lhs = value of Result expr, or return its Status.
// (__LINE__ is expanded once, as an argument, so that an invocation spanning several lines
// still names one temporary.)
#define HEARTH_ASSIGN_OR_RETURN(lhs, expr) HEARTH_ASSIGN_OR_RETURN_LINE(__LINE__, lhs, expr)
#define HEARTH_ASSIGN_OR_RETURN_LINE(line, lhs, expr) \
  HEARTH_ASSIGN_OR_RETURN_IMPL(HEARTH_CONCAT(hearth_result_, line), lhs, expr)
#define HEARTH_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return std::move(tmp).status();     \
  lhs = std::move(tmp).value()
