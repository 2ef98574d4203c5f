// Text helpers of the HTTP adapter that need no library: percent-decoding and the head of a
// response. Internal to the http module (its tests use them too).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "hearth/http/http_server.h"

namespace hearth::http {

// %XX sequences decoded (an invalid one is kept as written); with `plus_is_space`, '+' too.
std::string percent_decode(std::string_view s, bool plus_is_space);

// The status line and header fields of `r`, ending with the blank line. `length`: the
// Content-Length to announce, or nullopt for chunked encoding. CR and LF in handler-supplied
// header values are dropped (no response splitting).
std::string response_head(const HttpResponse& r, std::optional<uint64_t> length, bool keep_alive,
                          std::string_view reason);

}  // namespace hearth::http
