// A web page's file embedded in the binary (the chat page of `hearth serve`, the fleet
// dashboard), served the same way everywhere: its Content-Type from its name, a strict
// same-origin Content-Security-Policy (no inline script or style, no plugins, no framing, no
// form posts elsewhere; the page reaches its API with fetch, connect-src 'self'), nosniff, no
// referrer, and an ETag from its SHA-256 that a matching If-None-Match turns into a 304.
#pragma once

#include <string_view>

#include "hearth/http/http_server.h"

namespace hearth::http {

// "text/html; charset=utf-8" for .html, likewise .js, .css, .svg; else application/octet-stream.
std::string_view content_type_for(std::string_view name);

// Whether an If-None-Match value (a list of entity tags, or "*") matches `etag` (weak
// comparison, RFC 9110 13.1.2).
bool etag_matches(std::string_view if_none_match, std::string_view etag);

// The response for the file `name` with these bytes and hex SHA-256.
HttpResponse embedded_file_response(const HttpRequest& req, std::string_view name, std::string_view body,
                                    std::string_view sha256);

}  // namespace hearth::http
