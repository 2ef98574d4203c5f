// The chat page's files: which one a path names; served by http::embedded_file_response
// (hearth/http/embedded_file.h), which keeps the page to its own origin (see web_ui.h).
#include "hearth/server/web_ui.h"

#include "hearth/http/embedded_file.h"
#include "hearth/server/api_error.h"

namespace hearth::server {
namespace {

// The file a path names: "/" is index.html, "/ui/NAME" is NAME; null for any other path.
const WebAsset* find_asset(std::string_view path) {
  std::string_view name;
  if (path == "/") {
    name = "index.html";
  } else if (path.rfind("/ui/", 0) == 0) {
    name = path.substr(4);
  } else {
    return nullptr;
  }
  for (const WebAsset& a : web_assets()) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

}  // namespace

bool is_web_ui_path(std::string_view path) { return path == "/" || path.rfind("/ui/", 0) == 0; }

HttpResponse handle_web_ui(const HttpRequest& req) {
  const WebAsset* a = find_asset(req.path);
  if (!a) {
    HttpResponse r;
    r.status = 404;
    r.body = error_body_for_status(404);
    return r;
  }
  return http::embedded_file_response(req, a->name, a->body, a->sha256);
}

}  // namespace hearth::server
