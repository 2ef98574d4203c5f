// The cpp-httplib adapter (Debian's libcpp-httplib, built with OpenSSL). Library exceptions
// stop here.
#include "hearth/server/http_server.h"

#include <dirent.h>
#include <httplib.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <atomic>
#include <cctype>
#include <chrono>
#include <exception>

namespace hearth::server {
namespace {

thread_local std::chrono::steady_clock::time_point t_request_start;

class SinkWriter final : public StreamWriter {
 public:
  explicit SinkWriter(httplib::DataSink& sink) : sink_(sink) {}
  bool write(std::string_view data) override {
    if (!ok_) return false;
    if (data.empty()) return true;
    ok_ = sink_.is_writable() && sink_.write(data.data(), data.size());
    return ok_;
  }

 private:
  httplib::DataSink& sink_;
  bool ok_ = true;
};

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// The numeric host and the port of a socket address, as cpp-httplib reports them.
bool address_of(const sockaddr_storage& a, socklen_t len, std::string& host, int& port) {
  char h[NI_MAXHOST], p[NI_MAXSERV];
  if (getnameinfo(reinterpret_cast<const sockaddr*>(&a), len, h, sizeof h, p, sizeof p,
                  NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
    return false;
  }
  host = h;
  port = std::atoi(p);
  return true;
}

// cpp-httplib 0.11 does not hand the connection to handlers (newer versions have
// Request::is_connection_closed): find the socket of this process whose local and peer
// addresses are the request's. The connection stays open, so the descriptor stays ours, until
// the handler returns. -1 when not found.
int find_request_socket(const std::string& local_addr, int local_port, const std::string& remote_addr,
                        int remote_port) {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  int found = -1;
  while (const dirent* e = readdir(dir)) {
    char* end = nullptr;
    const long fd = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0' || fd == dirfd(dir)) continue;
    struct stat st;
    if (fstat(static_cast<int>(fd), &st) != 0 || !S_ISSOCK(st.st_mode)) continue;
    sockaddr_storage a{};
    socklen_t len = sizeof a;
    std::string host;
    int port = -1;
    if (getpeername(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&a), &len) != 0 ||
        !address_of(a, len, host, port) || port != remote_port || host != remote_addr) {
      continue;
    }
    len = sizeof a;
    if (getsockname(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&a), &len) != 0 ||
        !address_of(a, len, host, port) || port != local_port || host != local_addr) {
      continue;
    }
    found = static_cast<int>(fd);
    break;
  }
  closedir(dir);
  return found;
}

// True when the peer has hung up: end of stream (or an error) on the socket. Pipelined request
// bytes waiting to be read do not count.
bool peer_closed(int fd) {
  pollfd p{fd, static_cast<short>(POLLIN | POLLRDHUP), 0};
  if (::poll(&p, 1, 0) <= 0) return false;
  if (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) return true;
  if (p.revents & POLLIN) {
    char c;
    const ssize_t n = ::recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
  }
  return false;
}

std::function<bool()> connection_probe(const httplib::Request& r) {
  // Looked up on first use (most handlers never ask); -2: not looked up yet. With TLS the same
  // lookup finds the TCP socket under the TLS session.
  auto state = std::make_shared<int>(-2);
  return [state, local = r.local_addr, lport = r.local_port, remote = r.remote_addr, rport = r.remote_port] {
    if (*state == -2) *state = find_request_socket(local, lport, remote, rport);
    return *state >= 0 && peer_closed(*state);
  };
}

HttpRequest convert(const httplib::Request& r) {
  HttpRequest q;
  q.method = r.method;
  q.path = r.path;
  q.body = r.body;
  q.remote_addr = r.remote_addr;
  for (const auto& [k, v] : r.headers) q.headers.emplace(lower(k), v);
  for (size_t i = 1; i < r.matches.size(); ++i) q.path_params.push_back(r.matches[i].str());
  q.connection_closed = connection_probe(r);
  return q;
}

class HttplibServer final : public HttpServer {
 public:
  explicit HttplibServer(const HttpServerOptions& o) : o_(o) {}

  Status init() {
    try {
      if (!o_.tls_cert.empty() || !o_.tls_key.empty()) {
        if (o_.tls_cert.empty() || o_.tls_key.empty()) {
          return make_error(ErrorCode::kInvalidArgument, "TLS needs both --tls-cert and --tls-key");
        }
        auto ssl = std::make_unique<httplib::SSLServer>(o_.tls_cert.c_str(), o_.tls_key.c_str());
        if (!ssl->is_valid()) {
          return make_error(ErrorCode::kInvalidArgument, "cannot load the TLS certificate '", o_.tls_cert, "' or key '",
                            o_.tls_key, "' (PEM files expected)");
        }
        svr_ = std::move(ssl);
      } else {
        svr_ = std::make_unique<httplib::Server>();
      }
    } catch (const std::exception& e) {
      return make_error(ErrorCode::kInternal, "http server: ", e.what());
    }
    const size_t n_threads = static_cast<size_t>(std::max(o_.max_connections, 2));
    svr_->new_task_queue = [n_threads] { return new httplib::ThreadPool(n_threads); };
    svr_->set_payload_max_length(o_.max_body_bytes);
    svr_->set_read_timeout(o_.read_timeout_s, 0);
    svr_->set_write_timeout(o_.write_timeout_s, 0);
    svr_->set_keep_alive_timeout(o_.keep_alive_timeout_s);
    svr_->set_keep_alive_max_count(1000);
    svr_->set_tcp_nodelay(true);
    svr_->set_pre_routing_handler([](const httplib::Request&, httplib::Response&) {
      t_request_start = std::chrono::steady_clock::now();
      return httplib::Server::HandlerResponse::Unhandled;
    });
    svr_->set_error_handler(httplib::Server::HandlerWithResponse(
        [this](const httplib::Request&, httplib::Response& res) {
          if (!res.body.empty() || !error_body_) return httplib::Server::HandlerResponse::Unhandled;
          res.set_content(error_body_(res.status), "application/json");
          return httplib::Server::HandlerResponse::Handled;
        }));
    svr_->set_exception_handler([this](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
      res.status = 500;
      res.set_content(error_body_ ? error_body_(500) : std::string("{}"), "application/json");
    });
    svr_->set_logger([this](const httplib::Request& req, const httplib::Response& res) {
      if (!access_) return;
      const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_request_start).count();
      access_(convert(req), res.status, dt);
    });
    return ok_status();
  }

  void route(const std::string& method, const std::string& pattern, HttpHandler handler) override {
    auto h = [handler = std::move(handler)](const httplib::Request& req, httplib::Response& res) {
      HttpResponse r = handler(convert(req));
      res.status = r.status;
      for (const auto& [k, v] : r.headers) res.set_header(k, v);
      if (r.stream) {
        auto fn = std::make_shared<std::function<void(StreamWriter&)>>(std::move(r.stream));
        res.set_chunked_content_provider(r.content_type, [fn](size_t, httplib::DataSink& sink) {
          SinkWriter w(sink);
          (*fn)(w);
          sink.done();
          return true;
        });
      } else {
        res.set_content(r.body, r.content_type);
      }
    };
    if (method == "GET") {
      svr_->Get(pattern, h);
    } else {
      svr_->Post(pattern, h);
    }
  }

  void set_access_hook(AccessHook hook) override { access_ = std::move(hook); }
  void set_error_body_hook(ErrorBodyHook hook) override { error_body_ = std::move(hook); }

  Status bind() override {
    bool ok = false;
    try {
      if (o_.port == 0) {
        port_ = svr_->bind_to_any_port(o_.host);
        ok = port_ > 0;
      } else {
        ok = svr_->bind_to_port(o_.host, o_.port);
        port_ = o_.port;
      }
    } catch (const std::exception& e) {
      return make_error(ErrorCode::kIo, "cannot listen on ", o_.host, ":", std::to_string(o_.port), ": ", e.what());
    }
    if (!ok) {
      return make_error(ErrorCode::kIo, "cannot listen on ", o_.host, ":", std::to_string(o_.port),
                        " (address in use, or not an address of this machine?)");
    }
    return ok_status();
  }

  int port() const override { return port_; }

  Status serve() override {
    try {
      if (!svr_->listen_after_bind()) return make_error(ErrorCode::kIo, "the http server stopped with an error");
    } catch (const std::exception& e) {
      return make_error(ErrorCode::kInternal, "http server: ", e.what());
    }
    return ok_status();
  }

  void stop() override { svr_->stop(); }

 private:
  HttpServerOptions o_;
  std::unique_ptr<httplib::Server> svr_;
  AccessHook access_;
  ErrorBodyHook error_body_;
  int port_ = 0;
};

}  // namespace

Result<std::unique_ptr<HttpServer>> HttpServer::create(const HttpServerOptions& options) {
  auto s = std::make_unique<HttplibServer>(options);
  HEARTH_TRY(s->init());
  return std::unique_ptr<HttpServer>(std::move(s));
}

}  // namespace hearth::server
