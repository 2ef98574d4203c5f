// The cpp-httplib adapter for the read-only registry (see registry_server.h).
#include "hearth/registry/registry_server.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <httplib.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <set>

#include "hearth/core/log.h"
#include "hearth/registry/oci_client.h"
#include "hearth/store/store.h"

namespace hearth::registry {
namespace {

using store::Digest;

void error_response(httplib::Response& res, int status, const std::string& code, const std::string& message) {
  nlohmann::json j = {{"errors", {{{"code", code}, {"message", message}}}}};
  res.status = status;
  res.set_content(j.dump(), "application/json");
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
    if (auto r = t.referrers.find(d); r != t.referrers.end()) todo.insert(todo.end(), r->second.begin(), r->second.end());
  }
  return out;
}

}  // namespace

struct RegistryServer::Impl {
  std::string home;
  std::atomic<uint64_t> blob_bytes{0};
  httplib::Server server;

  Result<store::Store> open() const { return store::Store::open(home); }

  void handle_manifest(const httplib::Request& req, httplib::Response& res) {
    std::string name = req.matches[1], reference = req.matches[2];
    auto st = open();
    auto refs = st.ok() ? st->refs() : Result<store::RefsTable>(st.status());
    if (!refs.ok()) return error_response(res, 500, "UNKNOWN", refs.status().message());
    Digest digest;
    if (auto d = Digest::parse(reference); d.ok()) {
      if (repo_manifests(*refs, name).count(*d) == 0) {
        return error_response(res, 404, "MANIFEST_UNKNOWN", "manifest unknown");
      }
      digest = *d;
    } else {
      auto r = store::parse_reference(name + ":" + reference);
      if (!r.ok()) return error_response(res, 400, "NAME_INVALID", r.status().message());
      auto d2 = st->resolve(*r);
      if (!d2.ok()) {
        return error_response(res, 404, "MANIFEST_UNKNOWN", "manifest unknown");
      }
      digest = *d2;
    }
    auto bytes = st->read_blob(digest, store::kMaxManifestBytes);
    if (!bytes.ok()) return error_response(res, 500, "UNKNOWN", bytes.status().message());
    std::string media_type = store::parse_index(*bytes).ok() ? std::string(store::kOciIndexMediaType)
                                                             : std::string(store::kOciManifestMediaType);
    res.set_header("Docker-Content-Digest", digest.str());
    if (req.method == "HEAD") {
      res.set_header("Content-Length", std::to_string(bytes->size()));
      res.set_header("Content-Type", media_type);
      res.status = 200;
      return;
    }
    res.set_content(*bytes, media_type.c_str());
  }

  void handle_blob(const httplib::Request& req, httplib::Response& res) {
    std::string name = req.matches[1];
    auto digest = Digest::parse(req.matches[2].str());
    if (!digest.ok()) return error_response(res, 400, "DIGEST_INVALID", digest.status().message());
    auto st = open();
    if (!st.ok()) return error_response(res, 500, "UNKNOWN", st.status().message());
    auto refs = st->refs();
    if (!refs.ok()) return error_response(res, 500, "UNKNOWN", refs.status().message());
    bool reachable = false;
    for (const auto& m : repo_manifests(*refs, name)) {
      if (m == *digest) reachable = true;
      auto man = st->read_manifest(m);
      if (!man.ok()) continue;
      if (man->config.digest == *digest) reachable = true;
      for (const auto& l : man->layers) reachable = reachable || l.digest == *digest;
      if (reachable) break;
    }
    if (!reachable || !st->has_blob(*digest)) return error_response(res, 404, "BLOB_UNKNOWN", "blob unknown");
    std::string path = st->blob_path(*digest);
    uint64_t size = st->blob_size(*digest).value_or(0);
    res.set_header("Docker-Content-Digest", digest->str());
    res.set_header("Accept-Ranges", "bytes");
    if (req.method == "HEAD") {
      res.set_header("Content-Length", std::to_string(size));
      res.set_header("Content-Type", "application/octet-stream");
      res.status = 200;
      return;
    }
    auto fd = std::make_shared<int>(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (*fd < 0) return error_response(res, 500, "UNKNOWN", "cannot open blob");
    // httplib applies the request's Range to a sized content provider (206 + Content-Range).
    res.set_content_provider(
        size, "application/octet-stream",
        [fd, this](size_t offset, size_t length, httplib::DataSink& sink) {
          std::vector<char> buf(std::min<size_t>(length, 1 << 20));
          ssize_t n = ::pread(*fd, buf.data(), buf.size(), static_cast<off_t>(offset));
          if (n <= 0) return false;
          sink.write(buf.data(), static_cast<size_t>(n));
          blob_bytes += static_cast<uint64_t>(n);
          return true;
        },
        [fd](bool) { ::close(*fd); });
  }

  void handle_tags(const httplib::Request& req, httplib::Response& res) {
    std::string name = req.matches[1];
    auto st = open();
    auto refs = st.ok() ? st->refs() : Result<store::RefsTable>(st.status());
    if (!refs.ok()) return error_response(res, 500, "UNKNOWN", refs.status().message());
    auto it = refs->repos.find(name);
    if (it == refs->repos.end()) return error_response(res, 404, "NAME_UNKNOWN", "repository name not known");
    nlohmann::json j = {{"name", name}, {"tags", nlohmann::json::array()}};
    for (const auto& [tag, d] : it->second.tags) j["tags"].push_back(tag);
    res.set_content(j.dump(), "application/json");
  }

  void handle_referrers(const httplib::Request& req, httplib::Response& res) {
    std::string name = req.matches[1];
    auto subject = Digest::parse(req.matches[2].str());
    if (!subject.ok()) return error_response(res, 400, "DIGEST_INVALID", subject.status().message());
    auto st = open();
    if (!st.ok()) return error_response(res, 500, "UNKNOWN", st.status().message());
    store::Index index;
    auto refs = st->referrers(*subject);
    if (refs.ok() && st->refs().ok() && repo_manifests(*st->refs(), name).count(*subject)) {
      for (const auto& r : *refs) {
        auto bytes = st->read_blob(r, store::kMaxManifestBytes);
        if (!bytes.ok()) continue;
        auto m = store::parse_manifest(*bytes);
        if (!m.ok()) continue;
        std::string filter = req.has_param("artifactType") ? req.get_param_value("artifactType") : "";
        if (!filter.empty() && filter != m->artifact_type) continue;
        index.manifests.push_back({std::string(store::kOciManifestMediaType), r, bytes->size(), m->artifact_type,
                                   m->annotations});
      }
    }
    res.set_content(store::serialize_index(index), std::string(store::kOciIndexMediaType).c_str());
  }
};

RegistryServer::RegistryServer(std::string home) : impl_(std::make_unique<Impl>()) {
  impl_->home = std::move(home);
  auto& s = impl_->server;
  Impl* impl = impl_.get();
  const std::string name = "([a-z0-9]+(?:[._-]+[a-z0-9]+)*(?:/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*)";
  s.Get("/v2/?", [](const httplib::Request&, httplib::Response& res) { res.set_content("{}", "application/json"); });
  auto manifest = [impl](const httplib::Request& q, httplib::Response& r) { impl->handle_manifest(q, r); };
  auto blob = [impl](const httplib::Request& q, httplib::Response& r) { impl->handle_blob(q, r); };
  s.Get("/v2/" + name + "/manifests/([A-Za-z0-9_.:-]+)", manifest);
  s.Get("/v2/" + name + "/blobs/([A-Za-z0-9_.:-]+)", blob);
  s.Get("/v2/" + name + "/tags/list", [impl](const httplib::Request& q, httplib::Response& r) { impl->handle_tags(q, r); });
  s.Get("/v2/" + name + "/referrers/([A-Za-z0-9_.:-]+)",
        [impl](const httplib::Request& q, httplib::Response& r) { impl->handle_referrers(q, r); });
  // httplib routes HEAD through the GET handlers; the handlers check req.method.
  s.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (res.body.empty()) error_response(res, res.status, "UNSUPPORTED", "read-only hearth mirror");
  });
  // Writes are refused.
  auto refuse = [](const httplib::Request&, httplib::Response& res) {
    error_response(res, 405, "UNSUPPORTED", "this hearth mirror is read-only");
  };
  s.Put(".*", refuse);
  s.Post(".*", refuse);
  s.Patch(".*", refuse);
  s.Delete(".*", refuse);
}

RegistryServer::~RegistryServer() { stop(); }

Status RegistryServer::bind(const std::string& host, int port) {
  if (port == 0) {
    port_ = impl_->server.bind_to_any_port(host);
  } else {
    port_ = impl_->server.bind_to_port(host, port) ? port : -1;
  }
  if (port_ <= 0) return make_error(ErrorCode::kUnavailable, "cannot listen on ", host, ":", std::to_string(port));
  return ok_status();
}

Status RegistryServer::serve() {
  if (!impl_->server.listen_after_bind()) {
    return make_error(ErrorCode::kUnavailable, "registry server stopped with an error");
  }
  return ok_status();
}

uint64_t RegistryServer::blob_bytes_served() const { return impl_->blob_bytes.load(); }

void RegistryServer::stop() {
  if (impl_) impl_->server.stop();
}

}  // namespace hearth::registry
