// OpenAI error bodies and the Status -> HTTP mapping.
#include "hearth/server/api_error.h"

#include <nlohmann/json.hpp>

namespace hearth::server {

ApiError api_error_from_status(const Status& s) {
  ApiError e;
  e.message = s.message();
  switch (s.code()) {
    case ErrorCode::kInvalidArgument: e.status = 400; break;
    case ErrorCode::kOutOfRange:
      e.status = 400;
      e.code = "context_length_exceeded";
      break;
    case ErrorCode::kNotFound:
      e.status = 404;
      e.code = "not_found";
      break;
    case ErrorCode::kUnauthenticated:
      e.status = 401;
      e.type = "authentication_error";
      e.code = "invalid_api_key";
      break;
    case ErrorCode::kPermissionDenied:
      e.status = 403;
      e.type = "permission_error";
      break;
    case ErrorCode::kResourceExhausted:
      e.status = 503;
      e.type = "server_overloaded";
      e.code = "queue_full";
      e.headers.emplace_back("Retry-After", "1");
      break;
    case ErrorCode::kUnavailable:
      e.status = 503;
      e.type = "unavailable_error";
      e.headers.emplace_back("Retry-After", "1");
      break;
    default:
      e.status = 500;
      e.type = "server_error";
      break;
  }
  return e;
}

std::string error_body(const ApiError& e) {
  nlohmann::json j;
  j["error"]["message"] = e.message;
  j["error"]["type"] = e.type;
  j["error"]["param"] = e.param.empty() ? nlohmann::json() : nlohmann::json(e.param);
  j["error"]["code"] = e.code.empty() ? nlohmann::json() : nlohmann::json(e.code);
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string error_body_for_status(int status) {
  ApiError e;
  e.status = status;
  switch (status) {
    case 404:
      e.message = "unknown route";
      e.code = "not_found";
      break;
    case 405: e.message = "method not allowed"; break;
    case 413:
      e.message = "the request body is too large";
      e.code = "request_too_large";
      break;
    case 414: e.message = "the request URI is too long"; break;
    case 400: e.message = "bad request"; break;
    default:
      e.message = "internal server error";
      e.type = "server_error";
      break;
  }
  return error_body(e);
}

}  // namespace hearth::server
