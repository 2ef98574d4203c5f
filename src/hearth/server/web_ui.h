// The chat page of `hearth serve` (GET / and its files under /ui/): plain HTML, CSS and JS from
// src/hearth/server/web/, embedded in the binary at build time (cmake/embed_assets.cmake
// writes web_assets.cpp), so the page fetches nothing from anywhere but the server itself.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "hearth/server/http_server.h"

namespace hearth::server {

struct WebAsset {
  std::string_view name;    // the file's name under web/, e.g. "app.js"
  std::string_view body;    // its bytes
  std::string_view sha256;  // hex digest of the bytes (the ETag)
};

// Every embedded file (generated at build time).
std::span<const WebAsset> web_assets();

// True for the paths the page is served under: "/" and "/ui/NAME".
bool is_web_ui_path(std::string_view path);

// GET / (index.html) and GET /ui/NAME: the embedded file with its Content-Type, a strict
// Content-Security-Policy (only this origin; no inline script or style), nosniff and an ETag
// (If-None-Match answers 304). An unknown name is a 404.
HttpResponse handle_web_ui(const HttpRequest& req);

}  // namespace hearth::server
