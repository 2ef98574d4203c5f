// RegistryServer: serves a node's store read-only over the OCI Distribution API v2, so peers
// can `hearth pull --mirror http://host:port`. Endpoints: GET /v2/, GET|HEAD manifests by tag
// or digest, GET|HEAD blobs (with Range), GET tags/list, GET referrers/<digest>. A repository
// serves only the blobs its own manifests (and their referrers) reach. It runs on the shared
// HTTP adapter (hearth/http), with the same limits as `hearth serve`.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "hearth/core/status.h"
#include "hearth/http/http_server.h"

namespace hearth::registry {

class RegistryServer {
 public:
  // `home` is the store's $HEARTH_HOME; `limits` are the HTTP limits (its host and port are
  // replaced by bind()'s).
  explicit RegistryServer(std::string home, http::HttpServerOptions limits = {});
  ~RegistryServer();

  // Binds host:port (port 0 picks a free port; see port()).
  Status bind(const std::string& host, int port);
  int port() const { return port_; }
  // Serves until stop() (blocks).
  Status serve();
  void stop();
  // Blob bytes sent so far (all requests), e.g. to confirm that a resumed download only
  // fetched the missing tail.
  uint64_t blob_bytes_served() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

}  // namespace hearth::registry
