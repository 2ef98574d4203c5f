// ApiError: an error in the OpenAI wire shape {"error":{"message","type","param","code"}}
// with its HTTP status, and the mapping from hearth Status codes.
#pragma once

#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "hearth/core/status.h"

namespace hearth::server {

struct ApiError {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;                                         // empty: null
  std::string code;                                          // empty: null
  std::vector<std::pair<std::string, std::string>> headers;  // e.g. Retry-After
};

template <typename T>
using ApiResult = std::variant<T, ApiError>;

inline ApiError bad_request(std::string message, std::string param = {}, std::string code = {}) {
  return ApiError{400, std::move(message), "invalid_request_error", std::move(param), std::move(code), {}};
}

// kInvalidArgument -> 400, kOutOfRange -> 400 context_length_exceeded, kNotFound -> 404,
// kUnauthenticated -> 401, kPermissionDenied -> 403, kResourceExhausted -> 503 (queue full,
// with Retry-After), kUnavailable -> 503, others -> 500.
ApiError api_error_from_status(const Status& status);

// The JSON body of an error.
std::string error_body(const ApiError& e);
// The body for a bare HTTP status raised outside the handlers (413, 404, 405, 500, ...).
std::string error_body_for_status(int status);

}  // namespace hearth::server
