// The library-free parts of the HTTP adapter: query parameters, percent-decoding, response
// heads, access log lines and the loopback test.
#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>

#include <cstring>
#include <ctime>

#include <fmt/format.h>

#include "hearth/http/http_server.h"
#include "hearth/http/http_text.h"

namespace hearth::http {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string without_crlf(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c != '\r' && c != '\n') out += c;
  }
  return out;
}

bool is_loopback(const sockaddr* a) {
  if (a->sa_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(a);
    return (ntohl(v4->sin_addr.s_addr) >> 24) == 127;
  }
  if (a->sa_family == AF_INET6) {
    const in6_addr& v6 = reinterpret_cast<const sockaddr_in6*>(a)->sin6_addr;
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
    return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
  }
  return false;
}

}  // namespace

std::string percent_decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      const int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    out += plus_is_space && s[i] == '+' ? ' ' : s[i];
  }
  return out;
}

std::optional<std::string> HttpRequest::query_param(std::string_view name) const {
  std::string_view q = query;
  while (!q.empty()) {
    const size_t amp = q.find('&');
    std::string_view item = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
    const size_t eq = item.find('=');
    if (percent_decode(item.substr(0, eq), true) != name) continue;
    return eq == std::string_view::npos ? std::string() : percent_decode(item.substr(eq + 1), true);
  }
  return std::nullopt;
}

std::string response_head(const HttpResponse& r, std::optional<uint64_t> length, bool keep_alive,
                          std::string_view reason) {
  std::string h = fmt::format("HTTP/1.1 {} {}\r\n", r.status, reason);
  if (!r.content_type.empty()) h += "Content-Type: " + without_crlf(r.content_type) + "\r\n";
  if (length) {
    h += fmt::format("Content-Length: {}\r\n", *length);
  } else {
    h += "Transfer-Encoding: chunked\r\n";
  }
  h += keep_alive ? "Connection: keep-alive\r\n" : "Connection: close\r\n";
  for (const auto& [k, v] : r.headers) h += without_crlf(k) + ": " + without_crlf(v) + "\r\n";
  h += "\r\n";
  return h;
}

std::string escape_for_log(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (c < 0x21 || c >= 0x7f || c == '\\' || c == '"') {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

std::string format_access_line(const AccessRecord& r) {
  const auto since_epoch = r.time.time_since_epoch();
  const std::time_t secs = std::chrono::duration_cast<std::chrono::seconds>(since_epoch).count();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char ts[32];
  std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:03d}Z {} {} {} {} {}B {:.3f}s", ts, static_cast<int>(ms), escape_for_log(r.remote_addr),
                     escape_for_log(r.method), escape_for_log(r.path), r.status, r.bytes, r.seconds);
}

bool is_loopback_host(const std::string& host) {
  if (host.empty()) return false;
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(host.c_str(), nullptr, &hints, &res) != 0 || res == nullptr) return false;
  bool all_loopback = true;
  for (const addrinfo* a = res; a != nullptr; a = a->ai_next) all_loopback = all_loopback && is_loopback(a->ai_addr);
  freeaddrinfo(res);
  return all_loopback;
}

}  // namespace hearth::http
