// The Boost.Beast + Asio adapter (see http_server.h). Requests are read asynchronously on a few
// I/O threads (a slow client holds no thread), under the limits of HttpServerOptions; handlers
// run on a bounded worker pool. Each connection lives on its own strand; a worker talks to it
// only by posting to that strand. Library exceptions stop here.
#include "hearth/http/http_server.h"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <regex>
#include <thread>
#include <unordered_map>

#include <fmt/format.h>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "hearth/http/http_text.h"

namespace hearth::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using boost::system::error_code;

constexpr int kIoThreads = 2;
// After a refusal the connection is drained for a moment before it is closed, so the client
// reads the response instead of a reset (TCP resets a socket closed with unread data).
constexpr auto kLingerTime = std::chrono::seconds(1);
constexpr size_t kLingerBytes = 1 << 20;

struct Route {
  std::string method;
  std::regex pattern;
  HttpHandler handler;
};

class WorkerPool {
 public:
  void start(size_t n) {
    for (size_t i = 0; i < n; ++i) threads_.emplace_back([this] { run(); });
  }
  void post(std::function<void()> job) {
    {
      std::lock_guard l(mu_);
      if (stopping_) return;
      jobs_.push_back(std::move(job));
    }
    cv_.notify_one();
  }
  void stop() {
    std::deque<std::function<void()>> dropped;
    {
      std::lock_guard l(mu_);
      stopping_ = true;
      dropped.swap(jobs_);
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

 private:
  void run() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock l(mu_);
        cv_.wait(l, [&] { return stopping_ || !jobs_.empty(); });
        if (stopping_) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      job();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  std::vector<std::thread> threads_;
  bool stopping_ = false;
};

// What every connection shares: options, routes, hooks, the pool and the connection counts.
struct Core {
  HttpServerOptions o;
  std::vector<Route> routes;
  AccessHook access;
  ErrorBodyHook error_body;
  AdmissionHook admission;
  WorkerPool pool;
  std::atomic<bool> stopping{false};
  std::mutex conn_mu;
  uint32_t n_conn = 0;
  std::unordered_map<std::string, uint32_t> per_client;

  // Counts a new connection from `client`; false (nothing counted) when a cap is reached.
  bool admit_connection(const std::string& client) {
    std::lock_guard l(conn_mu);
    uint32_t& n = per_client[client];
    if (n_conn >= o.max_connections || n >= o.max_connections_per_client) {
      if (n == 0) per_client.erase(client);
      return false;
    }
    ++n;
    ++n_conn;
    return true;
  }
  void release_connection(const std::string& client) {
    std::lock_guard l(conn_mu);
    --n_conn;
    auto it = per_client.find(client);
    if (it != per_client.end() && --it->second == 0) per_client.erase(it);
  }

  HttpResponse error(int status) const {
    HttpResponse r;
    r.status = status;
    r.body = error_body ? error_body(status) : fmt::format("{{\"error\":{{\"message\":\"http {}\"}}}}", status);
    return r;
  }
};

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return std::string(s);
}

std::string reason(int status) {
  const auto r = bhttp::obsolete_reason(bhttp::int_to_status(static_cast<unsigned>(status)));
  return r.empty() || r == "<unknown-status>" ? std::string("Status") : std::string(r);
}

// True when the peer has hung up: end of stream (or an error) on the socket. Request bytes
// waiting to be read (a pipelined request) do not count.
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

// One connection. Stream is tcp::socket or asio::ssl::stream<tcp::socket>. Every member but
// the ones under fd_mu_ is touched only on the connection's strand.
template <class Stream>
class Session : public std::enable_shared_from_this<Session<Stream>> {
  static constexpr bool kTls = !std::is_same_v<Stream, tcp::socket>;

 public:
  Session(Core& core, Stream stream, std::string client)
      : core_(core), stream_(std::move(stream)), timer_(lowest().get_executor()), client_(std::move(client)) {
    start_ = Clock::now();
    start_wall_ = std::chrono::system_clock::now();
  }
  ~Session() { core_.release_connection(client_); }

  void start() {
    arm_at(start_ + std::chrono::seconds(core_.o.request_timeout_s));
    if constexpr (kTls) {
      stream_.async_handshake(asio::ssl::stream_base::server, [self = this->shared_from_this()](error_code ec) {
        if (ec) return self->close();
        self->read_header();
      });
    } else {
      read_header();
    }
  }

  // --- called from a worker thread ---

  void run_handler(const HttpHandler& handler) {
    HttpResponse r;
    try {
      r = handler(*req_);
    } catch (const std::exception&) {
      r = core_.error(500);
    }
    const bool head = req_->method == "HEAD";
    if (r.stream && !head) return stream_response(r);
    const uint64_t length = head ? r.content_length.value_or(r.body.size()) : r.body.size();
    auto out = std::make_shared<std::string>(response_head(r, length, keep_alive_, reason(r.status)));
    if (!head) *out += r.body;
    log_access(r.status, out->size());
    asio::post(lowest().get_executor(), [self = this->shared_from_this(), out] { self->write_then_continue(out); });
  }

  // Sends `data` through the strand and waits for it to be written; false when the client is
  // gone, too slow (write timeout) or the server stops.
  bool write_blocking(std::string data) {
    struct Wait {
      std::mutex mu;
      std::condition_variable cv;
      bool done = false, ok = false;
    };
    auto w = std::make_shared<Wait>();
    auto buf = std::make_shared<std::string>(std::move(data));
    auto signal = [w](bool ok) {
      std::lock_guard l(w->mu);
      w->done = true;
      w->ok = ok;
      w->cv.notify_all();
    };
    asio::post(lowest().get_executor(), [self = this->shared_from_this(), buf, signal] {
      if (self->is_closed()) return signal(false);
      self->arm_at(Clock::now() + std::chrono::seconds(self->core_.o.write_timeout_s));
      asio::async_write(self->stream_, asio::buffer(*buf), [self, buf, signal](error_code ec, size_t n) {
        self->disarm();
        self->bytes_sent_ += n;
        signal(!ec);
      });
    });
    std::unique_lock l(w->mu);
    while (!w->done) {
      if (core_.stopping.load()) return false;
      w->cv.wait_for(l, std::chrono::milliseconds(100));
    }
    return w->ok;
  }

 private:
  class Writer final : public StreamWriter {
   public:
    Writer(Session& s, std::optional<uint64_t> length) : s_(s), length_(length) {}
    bool write(std::string_view data) override {
      if (!ok_) return false;
      if (data.empty()) return true;
      if (length_) {
        if (data.size() > *length_ - written_) return ok_ = false;  // more than announced
        written_ += data.size();
        return ok_ = s_.write_blocking(std::string(data));
      }
      return ok_ = s_.write_blocking(fmt::format("{:x}\r\n", data.size()) + std::string(data) + "\r\n");
    }
    bool ok() const { return ok_; }
    bool complete() const { return ok_ && (!length_ || written_ == *length_); }

   private:
    Session& s_;
    std::optional<uint64_t> length_;
    uint64_t written_ = 0;
    bool ok_ = true;
  };

  void stream_response(HttpResponse& r) {
    Writer w(*this, r.content_length);
    bool ok = write_blocking(response_head(r, r.content_length, keep_alive_, reason(r.status)));
    if (ok) {
      r.stream(w);
      ok = w.complete();
      if (ok && !r.content_length) ok = write_blocking("0\r\n\r\n");
    }
    log_access(r.status, bytes_sent_.load());
    asio::post(lowest().get_executor(), [self = this->shared_from_this(), keep = ok && keep_alive_] {
      if (keep) {
        self->wait_request();
      } else {
        self->close();
      }
    });
  }

  // --- on the strand ---

  auto& lowest() { return beast::get_lowest_layer(stream_); }

  bool is_closed() {
    std::lock_guard l(fd_mu_);
    return closed_;
  }

  // Cancels the pending socket operations at `t` (the handler then sees operation_aborted and
  // timed_out_). A newer arm_at or disarm makes an older timer harmless.
  void arm_at(Clock::time_point t) {
    const uint64_t gen = ++timer_gen_;
    timed_out_ = false;
    timer_.expires_at(t);
    timer_.async_wait([self = this->shared_from_this(), gen](error_code ec) {
      if (ec || gen != self->timer_gen_) return;
      self->timed_out_ = true;
      error_code ignored;
      self->lowest().cancel(ignored);
    });
  }
  void disarm() {
    ++timer_gen_;
    timer_.cancel();
  }

  // A kept-alive connection waits `idle_timeout_s` for the first byte of its next request; the
  // request deadline runs from that byte.
  void wait_request() {
    req_.reset();
    hp_.reset();
    bp_.reset();
    bytes_sent_ = 0;
    if (buffer_.size() > 0) return begin_request();
    arm_at(Clock::now() + std::chrono::seconds(core_.o.idle_timeout_s));
    stream_.async_read_some(buffer_.prepare(4096), [self = this->shared_from_this()](error_code ec, size_t n) {
      if (ec || n == 0) return self->close();
      self->buffer_.commit(n);
      self->begin_request();
    });
  }

  void begin_request() {
    start_ = Clock::now();
    start_wall_ = std::chrono::system_clock::now();
    arm_at(start_ + std::chrono::seconds(core_.o.request_timeout_s));
    read_header();
  }

  void read_header() {
    hp_.emplace();
    hp_->header_limit(core_.o.max_header_bytes);
    hp_->body_limit(boost::none);  // the declared length is checked below, the real one by bp_
    bhttp::async_read_header(stream_, buffer_, *hp_,
                             [self = this->shared_from_this()](error_code ec, size_t) { self->on_header(ec); });
  }

  void on_header(error_code ec) {
    if (ec == bhttp::error::header_limit) return refuse(431);
    if (ec == asio::error::operation_aborted && timed_out_) return refuse(408);
    if (ec == bhttp::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
        ec == asio::error::operation_aborted || ec == asio::ssl::error::stream_truncated) {
      return close();
    }
    if (ec) return refuse(400);
    const auto& h = hp_->get();
    req_ = std::make_shared<HttpRequest>();
    req_->method = std::string(h.method_string());
    const std::string_view target = h.target();
    const size_t q = target.find('?');
    req_->path = percent_decode(target.substr(0, q), false);
    if (q != std::string_view::npos) req_->query = std::string(target.substr(q + 1));
    req_->remote_addr = client_;
    uint32_t n_fields = 0;
    for (const auto& f : h) {
      ++n_fields;
      std::string& v = req_->headers[lower(f.name_string())];
      if (!v.empty()) v += ", ";
      v += std::string(f.value());
    }
    keep_alive_ = hp_->keep_alive();
    if (n_fields > core_.o.max_headers) return refuse(431);
    if (const std::string ce = lower(trim(req_->header("content-encoding"))); !ce.empty() && ce != "identity") {
      return refuse(415);
    }
    if (hp_->content_length() && *hp_->content_length() > core_.o.max_body_bytes) return refuse(413);
    if (core_.admission) {
      if (auto r = core_.admission(*req_)) return refuse_with(std::move(*r));
    }
    const HttpHandler* handler = nullptr;
    bool path_known = false;
    for (const Route& route : core_.routes) {
      std::smatch m;
      if (!std::regex_match(req_->path, m, route.pattern)) continue;
      path_known = true;
      if (route.method != req_->method && !(route.method == "GET" && req_->method == "HEAD")) continue;
      for (size_t i = 1; i < m.size(); ++i) req_->path_params.push_back(m[i].str());
      handler = &route.handler;
      break;
    }
    if (handler == nullptr) return refuse(path_known ? 405 : 404);
    handler_ = handler;
    if (hp_->is_done()) return dispatch(std::string());
    if (lower(trim(req_->header("expect"))) == "100-continue") {
      auto cont = std::make_shared<std::string>("HTTP/1.1 100 Continue\r\n\r\n");
      asio::async_write(stream_, asio::buffer(*cont),
                        [self = this->shared_from_this(), cont](error_code write_ec, size_t) {
                          if (write_ec) return self->close();
                          self->read_body();
                        });
      return;
    }
    read_body();
  }

  void read_body() {
    bp_.emplace(std::move(*hp_));
    bp_->body_limit(core_.o.max_body_bytes);  // holds for chunked bodies too (decoded bytes)
    bhttp::async_read(stream_, buffer_, *bp_, [self = this->shared_from_this()](error_code ec, size_t) {
      if (ec == bhttp::error::body_limit) return self->refuse(413);
      if (ec == asio::error::operation_aborted && self->timed_out_) return self->refuse(408);
      if (ec == bhttp::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
          ec == asio::error::operation_aborted) {
        return self->close();
      }
      if (ec) return self->refuse(400);
      self->dispatch(std::move(self->bp_->get().body()));
    });
  }

  void dispatch(std::string body) {
    disarm();
    req_->body = std::move(body);
    std::weak_ptr<Session> weak = this->shared_from_this();
    Core* core = &core_;
    req_->connection_closed = [weak, core] {
      auto s = weak.lock();
      if (!s || core->stopping.load()) return true;
      std::lock_guard l(s->fd_mu_);
      return s->closed_ || peer_closed(s->lowest().native_handle());
    };
    const HttpHandler* handler = handler_;
    core_.pool.post([self = this->shared_from_this(), handler] { self->run_handler(*handler); });
  }

  void write_then_continue(std::shared_ptr<std::string> out) {
    arm_at(Clock::now() + std::chrono::seconds(core_.o.write_timeout_s));
    asio::async_write(stream_, asio::buffer(*out), [self = this->shared_from_this(), out](error_code ec, size_t) {
      self->disarm();
      if (ec) return self->close();
      if (self->keep_alive_) return self->wait_request();
      self->linger_close();
    });
  }

  void refuse(int status) { refuse_with(core_.error(status)); }

  // Sends `r` without reading (more of) the request, then closes the connection.
  void refuse_with(HttpResponse r) {
    keep_alive_ = false;
    const bool head = req_ && req_->method == "HEAD";
    auto out = std::make_shared<std::string>(response_head(r, r.body.size(), false, reason(r.status)));
    if (!head) *out += r.body;
    log_access(r.status, out->size());
    write_then_continue(out);
  }

  // Half-closes and reads what the client is still sending for a moment, so that it sees the
  // response rather than a reset; then closes.
  void linger_close() {
    error_code ignored;
    lowest().shutdown(tcp::socket::shutdown_send, ignored);
    arm_at(Clock::now() + kLingerTime);
    drain_left_ = kLingerBytes;
    drain();
  }
  void drain() {
    if (!scratch_) scratch_ = std::make_unique<std::array<char, 16384>>();
    lowest().async_read_some(asio::buffer(*scratch_), [self = this->shared_from_this()](error_code ec, size_t n) {
      if (ec || n == 0 || n >= self->drain_left_) return self->close();
      self->drain_left_ -= n;
      self->drain();
    });
  }

  void close() {
    std::lock_guard l(fd_mu_);
    if (closed_) return;
    closed_ = true;
    disarm();
    error_code ignored;
    lowest().close(ignored);
  }

  void log_access(int status, uint64_t bytes) {
    if (!core_.access) return;
    AccessRecord a;
    a.time = start_wall_;
    a.remote_addr = client_;
    a.method = req_ ? req_->method : "-";
    a.path = req_ ? req_->path : "-";
    a.status = status;
    a.bytes = bytes;
    a.seconds = std::chrono::duration<double>(Clock::now() - start_).count();
    static const HttpRequest kNone;
    core_.access(req_ ? *req_ : kNone, a);
  }

  Core& core_;
  Stream stream_;
  asio::steady_timer timer_;
  std::string client_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::empty_body>> hp_;
  std::optional<bhttp::request_parser<bhttp::string_body>> bp_;
  std::shared_ptr<HttpRequest> req_;
  const HttpHandler* handler_ = nullptr;
  bool keep_alive_ = true;
  bool timed_out_ = false;
  uint64_t timer_gen_ = 0;
  Clock::time_point start_;
  std::chrono::system_clock::time_point start_wall_;
  std::atomic<uint64_t> bytes_sent_{0};
  std::unique_ptr<std::array<char, 16384>> scratch_;
  size_t drain_left_ = 0;
  std::mutex fd_mu_;
  bool closed_ = false;
};

class BeastServer final : public HttpServer {
 public:
  explicit BeastServer(const HttpServerOptions& o) { core_.o = o; }
  ~BeastServer() override {
    stop();
    core_.pool.stop();
  }

  Status init() {
    const HttpServerOptions& o = core_.o;
    if (!o.tls_cert.empty() || !o.tls_key.empty()) {
      if (o.tls_cert.empty() || o.tls_key.empty()) {
        return make_error(ErrorCode::kInvalidArgument, "TLS needs both --tls-cert and --tls-key");
      }
      try {
        ssl_.emplace(asio::ssl::context::tls_server);
        ssl_->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                          asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1 |
                          asio::ssl::context::single_dh_use);
        ssl_->use_certificate_chain_file(o.tls_cert);
        ssl_->use_private_key_file(o.tls_key, asio::ssl::context::pem);
      } catch (const std::exception& e) {
        ssl_.reset();
        return make_error(ErrorCode::kInvalidArgument,
                          "cannot load the TLS certificate '{}' or key '{}' (PEM files expected): {}", o.tls_cert,
                          o.tls_key, e.what());
      }
    }
    if (o.max_connections == 0 || o.max_connections_per_client == 0 || o.worker_threads == 0 ||
        o.max_header_bytes == 0 || o.max_headers == 0 || o.request_timeout_s <= 0 || o.idle_timeout_s <= 0 ||
        o.write_timeout_s <= 0) {
      return make_error(ErrorCode::kInvalidArgument,
                        "http limits must be positive (connections, workers, header caps and timeouts)");
    }
    return ok_status();
  }

  void route(const std::string& method, const std::string& pattern, HttpHandler handler) override {
    core_.routes.push_back(Route{method, std::regex(pattern), std::move(handler)});
  }
  void set_access_hook(AccessHook hook) override { core_.access = std::move(hook); }
  void set_error_body_hook(ErrorBodyHook hook) override { core_.error_body = std::move(hook); }
  void set_admission_hook(AdmissionHook hook) override { core_.admission = std::move(hook); }

  Status bind() override {
    const HttpServerOptions& o = core_.o;
    const std::string where = fmt::format("{}:{}", o.host, o.port);
    error_code ec;
    tcp::resolver resolver(ioc_);
    auto results = resolver.resolve(o.host, std::to_string(o.port), tcp::resolver::numeric_service, ec);
    if (ec || results.empty()) {
      return make_error(ErrorCode::kIo, "cannot listen on {}: cannot resolve '{}' ({})", where, o.host,
                        ec ? ec.message() : std::string("no address"));
    }
    const tcp::endpoint ep = results.begin()->endpoint();
    acceptor_.open(ep.protocol(), ec);
    // SO_REUSEADDR only lets a restarted server bind while old connections linger in TIME_WAIT;
    // unlike SO_REUSEPORT it never lets two servers share a listening port.
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (ec == asio::error::address_in_use) {
      return make_error(ErrorCode::kUnavailable,
                        "cannot listen on {}: address already in use (another server is listening there; stop it or "
                        "choose another port)",
                        where);
    }
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return make_error(ErrorCode::kIo, "cannot listen on {}: {}", where, ec.message());
    const tcp::endpoint local = acceptor_.local_endpoint(ec);
    port_ = local.port();
    bound_ = local.address().to_string();
    return ok_status();
  }

  int port() const override { return port_; }
  std::string bound_address() const override { return bound_; }

  Status serve() override {
    if (!acceptor_.is_open()) return make_error(ErrorCode::kFailedPrecondition, "serve() before bind()");
    core_.pool.start(core_.o.worker_threads);
    accept();
    auto guard = asio::make_work_guard(ioc_);
    std::vector<std::thread> io;
    for (int i = 1; i < kIoThreads; ++i) io.emplace_back([this] { run_io(); });
    run_io();
    for (auto& t : io) t.join();
    core_.pool.stop();
    return ok_status();
  }

  void stop() override {
    core_.stopping.store(true);
    ioc_.stop();
  }

 private:
  void run_io() {
    while (!ioc_.stopped()) {
      try {
        ioc_.run();
      } catch (const std::exception&) {
        // A handler threw (it should not); keep serving the other connections.
      }
    }
  }

  void accept() {
    acceptor_.async_accept(asio::make_strand(ioc_), [this](error_code ec, tcp::socket s) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
      if (ec) {
        // Out of descriptors, typically: retry shortly instead of spinning.
        retry_.expires_after(std::chrono::milliseconds(50));
        retry_.async_wait([this](error_code) { accept(); });
        return;
      }
      on_accept(std::move(s));
      accept();
    });
  }

  void on_accept(tcp::socket s) {
    error_code ec;
    const std::string client = s.remote_endpoint(ec).address().to_string();
    if (ec) return;
    s.set_option(tcp::no_delay(true), ec);
    if (!core_.admit_connection(client)) return refuse_connection(std::move(s));
    if (ssl_) {
      std::make_shared<Session<asio::ssl::stream<tcp::socket>>>(
          core_, asio::ssl::stream<tcp::socket>(std::move(s), *ssl_), client)
          ->start();
    } else {
      std::make_shared<Session<tcp::socket>>(core_, std::move(s), client)->start();
    }
  }

  // Over a connection cap: a plain 503 (nothing readable for a TLS client), what the client
  // already sent discarded so the close is not a reset, and the socket closed, all without
  // waiting.
  void refuse_connection(tcp::socket s) {
    error_code ec;
    s.non_blocking(true, ec);
    if (!ssl_) {
      HttpResponse r = core_.error(503);
      r.headers.emplace_back("Retry-After", "1");
      const std::string out = response_head(r, r.body.size(), false, reason(503)) + r.body;
      s.write_some(asio::buffer(out), ec);
    }
    s.shutdown(tcp::socket::shutdown_send, ec);
    std::array<char, 4096> scratch;
    for (int i = 0; i < 16 && s.read_some(asio::buffer(scratch), ec) > 0;) ++i;
    s.close(ec);
  }

  Core core_;
  int port_ = 0;
  std::string bound_;
  std::optional<asio::ssl::context> ssl_;
  // Declared last, destroyed first: the sessions its handlers still hold die while the core
  // they point to is alive.
  asio::io_context ioc_{kIoThreads};
  tcp::acceptor acceptor_{ioc_};
  asio::steady_timer retry_{ioc_};
};

}  // namespace

Result<std::unique_ptr<HttpServer>> HttpServer::create(const HttpServerOptions& options) {
  auto s = std::make_unique<BeastServer>(options);
  HEARTH_TRY(s->init());
  return std::unique_ptr<HttpServer>(std::move(s));
}

}  // namespace hearth::http
