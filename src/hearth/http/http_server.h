// HttpServer: the one HTTP adapter of hearth (`hearth serve`, `hearth registry serve`, later the
// fleet controller). Handlers receive a plain HttpRequest and return an HttpResponse; a
// streaming response gets a StreamWriter that reports a client that went away. Only
// http_server.cpp sees the library (Boost.Beast + Asio); every limit a network-facing server
// needs is enforced there, before a handler runs (see docs/server.md, "Limits").
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "hearth/core/status.h"

namespace hearth::http {

struct HttpRequest {
  std::string method;
  std::string path;                            // percent-decoded, without the query
  std::string query;                           // raw, without '?'
  std::string body;                            // bytes as sent; never interpreted by Content-Type
  std::string remote_addr;                     // numeric address of the client
  std::map<std::string, std::string> headers;  // lower-case names; repeated fields joined by ", "
  std::vector<std::string> path_params;        // regex captures of the route
  // Set by the HTTP layer: true once the client has closed its side of the connection (hung
  // up), or the server is stopping. A handler that waits for long polls it and cancels its
  // work; unset in unit tests.
  std::function<bool()> connection_closed;

  std::string header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
  bool is_connection_closed() const { return connection_closed && connection_closed(); }
  // The percent-decoded value of query parameter `name` ('+' is a space); nullopt if absent.
  std::optional<std::string> query_param(std::string_view name) const;
};

class StreamWriter {
 public:
  virtual ~StreamWriter() = default;
  // Sends bytes now; false when the client is gone (or too slow: the write timeout).
  virtual bool write(std::string_view data) = 0;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  // When set, the function writes the body and returns when done (or when a write failed).
  // Sent with chunked encoding, unless content_length is set: then exactly that many bytes
  // must be written (the connection is closed otherwise).
  std::function<void(StreamWriter&)> stream;
  // The body's length when it is streamed, or the length a HEAD response announces.
  std::optional<uint64_t> content_length;
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                           // 0: any free port
  uint64_t max_body_bytes = 8 << 20;         // after de-chunking; larger: 413
  uint32_t max_header_bytes = 16 << 10;      // request line + header fields; larger: 431
  uint32_t max_headers = 100;                // header fields; more: 431
  int request_timeout_s = 30;                // TLS handshake + headers + body of one request: 408
  int idle_timeout_s = 5;                    // a kept-alive connection waiting for its next request
  int write_timeout_s = 30;                  // each response write; the connection is closed after
  uint32_t max_connections = 256;            // open connections in total; more get 503
  uint32_t max_connections_per_client = 32;  // per client address; more get 503
  uint32_t worker_threads = 16;              // handlers run here (a stream holds one until done)
  std::string tls_cert, tls_key;             // both set: HTTPS
};

// What the access log needs of one response. Never holds a body.
struct AccessRecord {
  std::chrono::system_clock::time_point time;  // when the request started
  std::string remote_addr;
  std::string method;
  std::string path;
  int status = 0;
  uint64_t bytes = 0;  // response bytes written (headers included)
  double seconds = 0;
};

// "2026-12-06T05:20:00.123Z 127.0.0.1 GET /v1/models 200 312B 0.002s": control characters,
// bytes >= 0x7f, backslashes and spaces of the method and path are escaped as \xHH, so a
// request can never forge or break a log line.
std::string format_access_line(const AccessRecord& r);
std::string escape_for_log(std::string_view s);

// Called after every response (on the thread that ran the handler, or the I/O thread for
// responses the HTTP layer itself sent) with the request and what was sent.
using AccessHook = std::function<void(const HttpRequest&, const AccessRecord&)>;
// Builds the body for errors raised by the HTTP layer itself (413, 404 for unknown routes, ...).
using ErrorBodyHook = std::function<std::string(int status)>;
// Runs on the request line and headers alone (body empty), before any body byte is read: a
// returned response is sent instead and the connection is closed, so a request that will be
// refused (e.g. no API key) never gets to send its body.
using AdmissionHook = std::function<std::optional<HttpResponse>(const HttpRequest&)>;

// True when `host` is a loopback address or a name that resolves only to loopback addresses
// (127.0.0.0/8, ::1, ::ffff:127.0.0.0/104). A name that does not resolve is not loopback.
bool is_loopback_host(const std::string& host);

class HttpServer {
 public:
  static Result<std::unique_ptr<HttpServer>> create(const HttpServerOptions& options);
  virtual ~HttpServer() = default;

  // `pattern` is a regular expression over the path; its groups become path_params. A GET
  // route also answers HEAD (the handler sees method "HEAD"; no body is sent).
  virtual void route(const std::string& method, const std::string& pattern, HttpHandler handler) = 0;
  virtual void set_access_hook(AccessHook hook) = 0;
  virtual void set_error_body_hook(ErrorBodyHook hook) = 0;
  virtual void set_admission_hook(AdmissionHook hook) = 0;

  // Binds the socket (so the port is known before serving). A port in use is an error that
  // names the address.
  virtual Status bind() = 0;
  virtual int port() const = 0;
  // The numeric address bound (after bind()).
  virtual std::string bound_address() const = 0;
  // Serves until stop() is called (from another thread or a signal watcher).
  virtual Status serve() = 0;
  virtual void stop() = 0;
};

}  // namespace hearth::http
