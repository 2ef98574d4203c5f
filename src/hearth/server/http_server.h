// HttpServer: the one place that sees the HTTP library (cpp-httplib). Handlers receive a
// plain HttpRequest and return an HttpResponse; a streaming response gets a StreamWriter that
// reports a client that went away, so the caller can cancel its work.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "hearth/core/status.h"

namespace hearth::server {

struct HttpRequest {
  std::string method;
  std::string path;
  std::string body;
  std::string remote_addr;
  std::map<std::string, std::string> headers;  // lower-case names
  std::vector<std::string> path_params;        // regex captures of the route
  // Set by the HTTP layer: true once the client has closed its side of the connection (hung
  // up). A handler that waits for long polls it and cancels its work; unset in unit tests.
  std::function<bool()> connection_closed;

  std::string header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
  bool is_connection_closed() const { return connection_closed && connection_closed(); }
};

class StreamWriter {
 public:
  virtual ~StreamWriter() = default;
  // Sends bytes now; false when the client is gone.
  virtual bool write(std::string_view data) = 0;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  // When set, the response is sent with chunked encoding: the function writes the body and
  // returns when done (or when a write failed).
  std::function<void(StreamWriter&)> stream;
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                  // 0: any free port
  size_t max_body_bytes = 8 << 20;
  int read_timeout_s = 10;          // per read of headers/body: bounds slow (slowloris) clients
  int write_timeout_s = 30;
  int keep_alive_timeout_s = 5;
  int max_connections = 32;         // worker threads; more connections wait for one
  std::string tls_cert, tls_key;    // both set: HTTPS
};

// Called after every response with (request, status, duration in seconds) for the access log
// and metrics.
using AccessHook = std::function<void(const HttpRequest&, int status, double seconds)>;
// Builds the body for errors raised by the HTTP layer itself (413, 404 for unknown routes, ...).
using ErrorBodyHook = std::function<std::string(int status)>;

class HttpServer {
 public:
  static Result<std::unique_ptr<HttpServer>> create(const HttpServerOptions& options);
  virtual ~HttpServer() = default;

  // `pattern` is a regular expression over the path; its groups become path_params.
  virtual void route(const std::string& method, const std::string& pattern, HttpHandler handler) = 0;
  virtual void set_access_hook(AccessHook hook) = 0;
  virtual void set_error_body_hook(ErrorBodyHook hook) = 0;

  // Binds the socket (so the port is known before serving). Errors name the address.
  virtual Status bind() = 0;
  virtual int port() const = 0;
  // Serves until stop() is called (from another thread or a signal watcher).
  virtual Status serve() = 0;
  virtual void stop() = 0;
};

}  // namespace hearth::server
