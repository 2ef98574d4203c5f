// The HTTP limit flags shared by `hearth serve` and `hearth registry serve` (documented in
// docs/server.md, "Limits"). Defaults come from http::HttpServerOptions.
#pragma once

#include <CLI/CLI.hpp>

#include "hearth/http/http_server.h"

namespace hearth::cli {

// `max_body_mib` is applied by the caller (in MiB on the command line, bytes in the options).
inline void add_http_limit_options(CLI::App& sub, http::HttpServerOptions& h, uint64_t& max_body_mib) {
  sub.add_option("--max-body", max_body_mib, "largest request body in MiB, chunked or not (larger: 413)")
      ->capture_default_str();
  sub.add_option("--max-header-bytes", h.max_header_bytes, "largest request line + headers in bytes (larger: 431)")
      ->capture_default_str();
  sub.add_option("--max-headers", h.max_headers, "most header fields in a request (more: 431)")->capture_default_str();
  sub.add_option("--request-timeout,--read-timeout", h.request_timeout_s,
                 "seconds a client has for a whole request: TLS handshake, headers and body (then 408)")
      ->capture_default_str();
  sub.add_option("--idle-timeout", h.idle_timeout_s, "seconds a kept-alive connection may wait for its next request")
      ->capture_default_str();
  sub.add_option("--write-timeout", h.write_timeout_s, "seconds a client has to take each response write")
      ->capture_default_str();
  sub.add_option("--max-connections", h.max_connections, "open connections in total (more: 503)")
      ->capture_default_str();
  sub.add_option("--max-connections-per-client", h.max_connections_per_client,
                 "open connections per client address (more: 503)")
      ->capture_default_str();
  sub.add_option("--workers", h.worker_threads, "threads that run request handlers")->capture_default_str();
}

}  // namespace hearth::cli
