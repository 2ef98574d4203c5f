// The read-only OCI registry on the shared HTTP adapter (see registry_server.h). Blobs are
// streamed from their file; a Range is one `bytes=` range checked against the blob's size.
#include "hearth/registry/registry_server.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <set>
#include <variant>

#include "hearth/core/log.h"
#include "hearth/registry/blob_range.h"
#include "hearth/registry/oci_client.h"
#include "hearth/store/store.h"

namespace hearth::registry {
namespace {

using http::HttpRequest;
using http::HttpResponse;
using store::Digest;

HttpResponse error_response(int status, const std::string& code, const std::string& message) {
  nlohmann::json j = {{"errors", {{{"code", code}, {"message", message}}}}};
  HttpResponse r;
  r.status = status;
  r.body = j.dump();
  return r;
}

// The manifests a repository name holds, plus (recursively) their referrers.
std::set<Digest> repo_manifests(const store::RefsTable& t, const std::string& name) {
  std::set<Digest> out;
  auto it = t.repos.find(name);
  if (it == t.repos.end()) return out;
  std::vector<Digest> todo(it->second.manifests.begin(), it->second.manifests.end());
  for (const auto& [tag, d] : it->second.tags) todo.push_back(d);
  while (!todo.empty()) {
    Digest d = todo.back();
    todo.pop_back();
    if (!out.insert(d).second) continue;
    if (auto r = t.referrers.find(d); r != t.referrers.end())
      todo.insert(todo.end(), r->second.begin(), r->second.end());
  }
  return out;
}

// Closes the descriptor when the last copy of the stream function is gone.
struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

struct RegistryServer::Impl {
  std::string home;
  http::HttpServerOptions options;
  std::atomic<uint64_t> blob_bytes{0};
  std::unique_ptr<http::HttpServer> server;

  Result<store::Store> open() const { return store::Store::open(home); }

  HttpResponse handle_manifest(const HttpRequest& req) {
    const std::string& name = req.path_params[0];
    const std::string& reference = req.path_params[1];
    auto st = open();
    auto refs = st.ok() ? st->refs() : Result<store::RefsTable>(st.status());
    if (!refs.ok()) return error_response(500, "UNKNOWN", refs.status().message());
    Digest digest;
    if (auto d = Digest::parse(reference); d.ok()) {
      if (repo_manifests(*refs, name).count(*d) == 0)
        return error_response(404, "MANIFEST_UNKNOWN", "manifest unknown");
      digest = *d;
    } else {
      auto r = store::parse_reference(name + ":" + reference);
      if (!r.ok()) return error_response(400, "NAME_INVALID", r.status().message());
      auto d2 = st->resolve(*r);
      if (!d2.ok()) return error_response(404, "MANIFEST_UNKNOWN", "manifest unknown");
      digest = *d2;
    }
    auto bytes = st->read_blob(digest, store::kMaxManifestBytes);
    if (!bytes.ok()) return error_response(500, "UNKNOWN", bytes.status().message());
    HttpResponse res;
    res.content_type = store::parse_index(*bytes).ok() ? std::string(store::kOciIndexMediaType)
                                                       : std::string(store::kOciManifestMediaType);
    res.headers.emplace_back("Docker-Content-Digest", digest.str());
    res.body = std::move(*bytes);  // a HEAD response announces its length and sends none of it
    return res;
  }

  HttpResponse handle_blob(const HttpRequest& req) {
    const std::string& name = req.path_params[0];
    auto digest = Digest::parse(req.path_params[1]);
    if (!digest.ok()) return error_response(400, "DIGEST_INVALID", digest.status().message());
    auto st = open();
    if (!st.ok()) return error_response(500, "UNKNOWN", st.status().message());
    auto refs = st->refs();
    if (!refs.ok()) return error_response(500, "UNKNOWN", refs.status().message());
    bool reachable = false;
    for (const auto& m : repo_manifests(*refs, name)) {
      if (m == *digest) reachable = true;
      auto man = st->read_manifest(m);
      if (!man.ok()) continue;
      if (man->config.digest == *digest) reachable = true;
      for (const auto& l : man->layers) reachable = reachable || l.digest == *digest;
      if (reachable) break;
    }
    if (!reachable || !st->has_blob(*digest)) return error_response(404, "BLOB_UNKNOWN", "blob unknown");
    auto size = st->blob_size(*digest);
    if (!size.ok()) return error_response(500, "UNKNOWN", size.status().message());
    HttpResponse res;
    res.content_type = "application/octet-stream";
    res.headers.emplace_back("Docker-Content-Digest", digest->str());
    res.headers.emplace_back("Accept-Ranges", "bytes");
    if (req.method == "HEAD") {
      res.content_length = *size;
      return res;
    }
    uint64_t offset = 0, length = *size;
    if (const std::string range = req.header("range"); !range.empty()) {
      const auto r = parse_byte_range(range, *size);
      if (!r) {
        HttpResponse e = error_response(416, "RANGE_INVALID",
                                        "one satisfiable range 'bytes=a-b', 'bytes=a-' or "
                                        "'bytes=-n' is served, nothing else");
        e.headers.emplace_back("Content-Range", "bytes */" + std::to_string(*size));
        return e;
      }
      offset = r->first;
      length = r->last - r->first + 1;
      res.status = 206;
      res.headers.emplace_back("Content-Range", "bytes " + std::to_string(r->first) + "-" + std::to_string(r->last) +
                                                    "/" + std::to_string(*size));
    }
    auto fd = std::make_shared<Fd>(::open(st->blob_path(*digest).c_str(), O_RDONLY | O_CLOEXEC));
    if (fd->fd < 0) return error_response(500, "UNKNOWN", "cannot open blob");
    res.content_length = length;
    res.stream = [this, fd, offset, length](http::StreamWriter& w) {
      std::string buf(std::min<uint64_t>(length, 1 << 20), '\0');
      uint64_t done = 0;
      while (done < length) {
        const size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), length - done));
        const ssize_t n = ::pread(fd->fd, buf.data(), want, static_cast<off_t>(offset + done));
        if (n <= 0) return;  // the blob shrank: the adapter closes the short response
        if (!w.write(std::string_view(buf.data(), static_cast<size_t>(n)))) return;
        done += static_cast<uint64_t>(n);
        blob_bytes += static_cast<uint64_t>(n);
      }
    };
    return res;
  }

  HttpResponse handle_tags(const HttpRequest& req) {
    const std::string& name = req.path_params[0];
    auto st = open();
    auto refs = st.ok() ? st->refs() : Result<store::RefsTable>(st.status());
    if (!refs.ok()) return error_response(500, "UNKNOWN", refs.status().message());
    auto it = refs->repos.find(name);
    if (it == refs->repos.end()) return error_response(404, "NAME_UNKNOWN", "repository name not known");
    nlohmann::json j = {{"name", name}, {"tags", nlohmann::json::array()}};
    for (const auto& [tag, d] : it->second.tags) j["tags"].push_back(tag);
    HttpResponse res;
    res.body = j.dump();
    return res;
  }

  HttpResponse handle_referrers(const HttpRequest& req) {
    const std::string& name = req.path_params[0];
    auto subject = Digest::parse(req.path_params[1]);
    if (!subject.ok()) return error_response(400, "DIGEST_INVALID", subject.status().message());
    auto st = open();
    if (!st.ok()) return error_response(500, "UNKNOWN", st.status().message());
    store::Index index;
    auto refs = st->referrers(*subject);
    const std::string filter = req.query_param("artifactType").value_or("");
    if (refs.ok() && st->refs().ok() && repo_manifests(*st->refs(), name).count(*subject)) {
      for (const auto& r : *refs) {
        auto bytes = st->read_blob(r, store::kMaxManifestBytes);
        if (!bytes.ok()) continue;
        auto m = store::parse_manifest(*bytes);
        if (!m.ok()) continue;
        if (!filter.empty() && filter != m->artifact_type) continue;
        index.manifests.push_back(
            {std::string(store::kOciManifestMediaType), r, bytes->size(), m->artifact_type, m->annotations});
      }
    }
    HttpResponse res;
    res.content_type = std::string(store::kOciIndexMediaType);
    res.body = store::serialize_index(index);
    return res;
  }

  void add_routes() {
    http::HttpServer& s = *server;
    const std::string name = "([a-z0-9]+(?:[._-]+[a-z0-9]+)*(?:/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*)";
    s.route("GET", "/v2/?", [](const HttpRequest&) {
      HttpResponse r;
      r.body = "{}";
      return r;
    });
    // GET routes answer HEAD too (the adapter sends the head only).
    s.route("GET", "/v2/" + name + "/manifests/([A-Za-z0-9_.:-]+)",
            [this](const HttpRequest& q) { return handle_manifest(q); });
    s.route("GET", "/v2/" + name + "/blobs/([A-Za-z0-9_.:-]+)",
            [this](const HttpRequest& q) { return handle_blob(q); });
    s.route("GET", "/v2/" + name + "/tags/list", [this](const HttpRequest& q) { return handle_tags(q); });
    s.route("GET", "/v2/" + name + "/referrers/([A-Za-z0-9_.:-]+)",
            [this](const HttpRequest& q) { return handle_referrers(q); });
    auto refuse = [](const HttpRequest&) {
      return error_response(405, "UNSUPPORTED", "this hearth mirror is read-only");
    };
    for (const char* method : {"PUT", "POST", "PATCH", "DELETE"}) s.route(method, ".*", refuse);
    s.set_error_body_hook([](int status) {
      return error_response(status,
                            status == 405   ? "UNSUPPORTED"
                            : status == 404 ? "NOT_FOUND"
                                            : "UNKNOWN",
                            fmt::format("read-only hearth mirror: http {}", status))
          .body;
    });
    s.set_access_hook(
        [](const HttpRequest&, const http::AccessRecord& a) { log::info("{}", http::format_access_line(a)); });
  }
};

RegistryServer::RegistryServer(std::string home, http::HttpServerOptions limits) : impl_(std::make_unique<Impl>()) {
  impl_->home = std::move(home);
  impl_->options = std::move(limits);
}

RegistryServer::~RegistryServer() { stop(); }

Status RegistryServer::bind(const std::string& host, int port) {
  impl_->options.host = host;
  impl_->options.port = port;
  HEARTH_ASSIGN_OR_RETURN(impl_->server, http::HttpServer::create(impl_->options));
  impl_->add_routes();
  HEARTH_TRY(impl_->server->bind());
  port_ = impl_->server->port();
  return ok_status();
}

Status RegistryServer::serve() {
  if (!impl_->server) return make_error(ErrorCode::kFailedPrecondition, "registry server: serve() before bind()");
  return impl_->server->serve();
}

uint64_t RegistryServer::blob_bytes_served() const { return impl_->blob_bytes.load(); }

void RegistryServer::stop() {
  if (impl_ && impl_->server) impl_->server->stop();
}

}  // namespace hearth::registry
