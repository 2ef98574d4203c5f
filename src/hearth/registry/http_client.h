// HttpClient: the registry module's one door to HTTP (libcurl is seen only by
// http_client.cpp). Requests carry an in-memory body or a file range as body; responses are
// either buffered (with a size cap) or streamed to a sink that may abort.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "hearth/core/status.h"

namespace hearth::registry {

// Which redirects a request follows (at most 5 hops). PUT, POST and PATCH never follow one:
// a redirected upload would hand the body, and any credentials, to whoever the server names.
enum class Redirects { kNone, kSameOrigin, kAny };

struct HttpRequest {
  std::string method = "GET";
  Redirects redirects = Redirects::kSameOrigin;
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::string body;                  // used unless upload_path is set
  std::string upload_path;           // send [upload_offset, upload_offset + upload_length) of a file
  uint64_t upload_offset = 0;
  uint64_t upload_length = 0;
  uint64_t max_body_bytes = 4u << 20;      // buffered responses larger than this fail (OutOfRange)
  uint64_t max_recv_bytes_per_second = 0;  // 0: unlimited
  long connect_timeout_seconds = 10;
  long low_speed_seconds = 30;  // abort when under 1 byte/s for this long
  // TLS: `ca_file` replaces the system's CAs (a fleet's own CA). `tls_no_verify` skips the peer
  // check entirely; only for a fetch whose bytes the caller then pins by digest (agent enroll).
  std::string ca_file;
  bool tls_no_verify = false;
};

struct HttpResponse {
  long status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;                            // empty when streamed to a sink

  std::string header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
};

// Receives the body bytes of a successful (< 300) response with its status; return false to
// abort the transfer (the call then fails Cancelled, unless the sink recorded its own error).
using BodySink = std::function<bool(long status, std::string_view chunk)>;

class HttpClient {
 public:
  HttpClient();
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Transport failures are Unavailable; HTTP error statuses are returned as responses.
  // A redirect the request may not follow is an error (PermissionDenied) naming the target.
  Result<HttpResponse> send(const HttpRequest& req, const BodySink* sink = nullptr);

 private:
  Result<HttpResponse> send_once(const HttpRequest& req, const BodySink* sink);
  void* curl_ = nullptr;  // CURL*, reused so connections are kept alive
};

// "scheme://host:port" of a URL, lower-cased, with the scheme's default port filled in.
std::string url_origin(const std::string& url);

// Resolves a Location header against the request URL (absolute, absolute-path or relative).
std::string resolve_url(const std::string& base, const std::string& location);

}  // namespace hearth::registry
