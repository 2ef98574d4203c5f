// The libcurl adapter (see http_client.h).
#include "hearth/registry/http_client.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <mutex>

namespace hearth::registry {
namespace {

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Transfer {
  HttpResponse* resp;
  const BodySink* sink;
  uint64_t max_body;
  bool too_large = false;
  bool aborted = false;
  int upload_fd = -1;
  uint64_t upload_left = 0;
  const std::string* upload_body = nullptr;
  size_t upload_pos = 0;
  void* curl = nullptr;
};

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string_view line(data, size * n);
  if (line.substr(0, 5) == "HTTP/") {
    t->resp->headers.clear();  // a new response (after a redirect or 100-continue)
    return size * n;
  }
  size_t colon = line.find(':');
  if (colon != std::string_view::npos) {
    std::string name(line.substr(0, colon));
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' '))
      value.remove_suffix(1);
    t->resp->headers[name] = std::string(value);
  }
  return size * n;
}

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t len = size * n;
  long code = 0;
  curl_easy_getinfo(static_cast<CURL*>(t->curl), CURLINFO_RESPONSE_CODE, &code);
  // Error bodies are buffered (small, capped) rather than fed to the sink.
  if (t->sink != nullptr && code < 300) {
    if (!(*t->sink)(code, std::string_view(data, len))) {
      t->aborted = true;
      return 0;
    }
    return len;
  }
  if (t->resp->body.size() + len > t->max_body) {
    t->too_large = true;
    return 0;
  }
  t->resp->body.append(data, len);
  return len;
}

size_t on_read(char* buf, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t cap = size * n;
  if (t->upload_body != nullptr) {
    size_t k = std::min(cap, t->upload_body->size() - t->upload_pos);
    std::memcpy(buf, t->upload_body->data() + t->upload_pos, k);
    t->upload_pos += k;
    return k;
  }
  size_t want = static_cast<size_t>(std::min<uint64_t>(cap, t->upload_left));
  if (want == 0) return 0;
  ssize_t got = ::read(t->upload_fd, buf, want);
  if (got <= 0) return CURL_READFUNC_ABORT;
  t->upload_left -= static_cast<uint64_t>(got);
  return static_cast<size_t>(got);
}

}  // namespace

HttpClient::HttpClient() {
  global_init();
  curl_ = curl_easy_init();
}

HttpClient::~HttpClient() { curl_easy_cleanup(static_cast<CURL*>(curl_)); }

Result<HttpResponse> HttpClient::send(const HttpRequest& req, const BodySink* sink) {
  const bool upload = req.method == "PUT" || req.method == "POST" || req.method == "PATCH";
  HttpRequest cur = req;
  for (int hop = 0;; ++hop) {
    HEARTH_ASSIGN_OR_RETURN(HttpResponse resp, send_once(cur, sink));
    const std::string location = resp.header("location");
    if (resp.status < 300 || resp.status >= 400 || resp.status == 304 || location.empty()) return resp;
    const std::string next = resolve_url(cur.url, location);
    auto refuse = [&](std::string_view why) {
      return make_error(ErrorCode::kPermissionDenied, "{} {}: HTTP {} redirect to {} not followed: {}", req.method,
                        cur.url, resp.status, next.substr(0, 200), why);
    };
    if (upload) return refuse("uploads never follow redirects");
    if (cur.redirects == Redirects::kNone) return refuse("this request follows no redirects");
    if (next.rfind("http://", 0) != 0 && next.rfind("https://", 0) != 0) return refuse("not http(s)");
    if (cur.redirects == Redirects::kSameOrigin && url_origin(next) != url_origin(cur.url)) {
      return refuse(
          "another origin (configure the registry to allow cross-origin redirects if it hands blobs to a "
          "storage host)");
    }
    if (hop >= 5) return refuse("more than 5 redirects");
    cur.url = next;
  }
}

Result<HttpResponse> HttpClient::send_once(const HttpRequest& req, const BodySink* sink) {
  CURL* c = static_cast<CURL*>(curl_);
  curl_easy_reset(c);
  HttpResponse resp;
  Transfer t{&resp, sink, req.max_body_bytes};
  t.curl = c;
  curl_easy_setopt(c, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  // Redirects are followed by send(), which checks each target against the request's policy.
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, req.connect_timeout_seconds);
  if (!req.ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, req.ca_file.c_str());
  if (req.tls_no_verify) {
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, req.low_speed_seconds);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  if (req.max_recv_bytes_per_second > 0) {
    curl_easy_setopt(c, CURLOPT_MAX_RECV_SPEED_LARGE, static_cast<curl_off_t>(req.max_recv_bytes_per_second));
  }
  curl_slist* headers = nullptr;
  for (const auto& h : req.headers) headers = curl_slist_append(headers, h.c_str());
  headers = curl_slist_append(headers, "Expect:");  // no 100-continue round trip
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);

  bool has_body = req.method == "PUT" || req.method == "POST" || req.method == "PATCH";
  if (req.method == "HEAD") {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else if (has_body) {
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req.method.c_str());
    curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(c, CURLOPT_READDATA, &t);
    uint64_t len = req.body.size();
    if (!req.upload_path.empty()) {
      t.upload_fd = ::open(req.upload_path.c_str(), O_RDONLY | O_CLOEXEC);
      if (t.upload_fd < 0 || ::lseek(t.upload_fd, static_cast<off_t>(req.upload_offset), SEEK_SET) < 0) {
        if (t.upload_fd >= 0) ::close(t.upload_fd);
        curl_slist_free_all(headers);
        return make_error(ErrorCode::kIo, "{}: cannot read for upload: {}", req.upload_path, std::strerror(errno));
      }
      t.upload_left = req.upload_length;
      len = req.upload_length;
    } else {
      t.upload_body = &req.body;
    }
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(len));
  } else if (req.method != "GET") {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req.method.c_str());
  }

  CURLcode rc = curl_easy_perform(c);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp.status);
  if (t.upload_fd >= 0) ::close(t.upload_fd);
  curl_slist_free_all(headers);
  if (t.too_large) {
    return make_error(ErrorCode::kOutOfRange, "{} {}: response body exceeds {} bytes", req.method, req.url,
                      req.max_body_bytes);
  }
  if (t.aborted) return make_error(ErrorCode::kCancelled, "{} {}: transfer aborted", req.method, req.url);
  if (rc != CURLE_OK) {
    return make_error(ErrorCode::kUnavailable, "{} {}: {}", req.method, req.url, curl_easy_strerror(rc));
  }
  return resp;
}

std::string url_origin(const std::string& url) {
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return {};
  std::string scheme = url.substr(0, scheme_end);
  const size_t host_begin = scheme_end + 3;
  size_t host_end = url.find_first_of("/?#", host_begin);
  std::string authority =
      url.substr(host_begin, host_end == std::string::npos ? std::string::npos : host_end - host_begin);
  if (auto at = authority.rfind('@'); at != std::string::npos) authority.erase(0, at + 1);  // no userinfo
  for (char& ch : scheme) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  for (char& ch : authority) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  const size_t bracket = authority.rfind(']');
  const size_t colon = authority.rfind(':');
  const bool has_port = colon != std::string::npos && (bracket == std::string::npos || colon > bracket);
  if (!has_port) authority += scheme == "https" ? ":443" : scheme == "http" ? ":80" : "";
  return scheme + "://" + authority;
}

std::string resolve_url(const std::string& base, const std::string& location) {
  if (location.find("://") != std::string::npos) return location;
  size_t scheme = base.find("://");
  size_t host_end = base.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  std::string origin = host_end == std::string::npos ? base : base.substr(0, host_end);
  if (!location.empty() && location.front() == '/') return origin + location;
  size_t last = base.rfind('/');
  return base.substr(0, last + 1) + location;
}

}  // namespace hearth::registry
