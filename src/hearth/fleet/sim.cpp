#include "hearth/fleet/sim.h"

#include <mosquitto.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/epoll.h>
#include <sys/resource.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <queue>
#include <thread>
#include <vector>

#include "hearth/core/atomic_file.h"
#include "hearth/core/log.h"
#include "hearth/core/sha256.h"
#include "hearth/fleet/fleet_dir.h"
#include "hearth/fleet/pki.h"
#include "hearth/registry/http_client.h"
#include "hearth/trust/signing_key.h"

namespace hearth::fleet {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr size_t kMaxNodes = 100000;
constexpr int kMaxHandshakesInFlight = 64;  // per thread: TLS handshakes started, CONNACK not yet seen

double wall_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}
int64_t now_s() { return static_cast<int64_t>(wall_now()); }

struct Identity {
  std::string key_pem, cert_pem;
};

std::string node_name(const std::string& prefix, size_t i) { return fmt::format("{}{:05}", prefix, i); }

// A value that passes (or fails) `g`, away from its threshold.
double value_for(const Gate& g, bool pass) {
  const bool below = g.op == "<" || g.op == "<=";  // passing values are below the threshold
  const double mag = std::max(std::fabs(g.value), 1.0);
  return (below == pass) ? g.value - 0.5 * mag : g.value + 0.5 * mag;
}

class SimImpl;

// One simulated node; touched only by the thread that owns it.
struct SimNode {
  SimImpl* sim = nullptr;
  struct Worker* worker = nullptr;
  std::string id;
  std::string desired_topic, reported_topic, events_topic, telemetry_topic, presence_topic;
  mosquitto* mosq = nullptr;
  SSL_CTX* ctx = nullptr;
  bool started = false;      // mosquitto_connect called at least once
  bool socket_open = false;  // a socket is in the epoll set
  bool connected = false;    // CONNACK seen
  bool handshaking = false;  // connected the socket, no CONNACK yet
  bool want_out = false;
  double retry_at = 0;
  int backoff_s = 1;
  uint64_t applied_generation = 0;
  NodeState state = NodeState::kPending;
  std::string reason;
  ModelPin serving, last_known_good;
  std::map<std::string, double> gate_values;
  uint64_t requests = 0;
  double next_telemetry = 0;
};

struct Timer {
  double at;
  SimNode* node;
  std::function<void()> fn;
  bool operator>(const Timer& o) const { return at > o.at; }
};

struct Worker {
  int epfd = -1;
  std::vector<SimNode*> nodes;
  size_t next_to_start = 0;
  int handshaking = 0;
  std::priority_queue<Timer, std::vector<Timer>, std::greater<>> timers;
  std::unique_ptr<trust::PublicKey> desired_key;  // one per thread: no sharing of OpenSSL objects
  std::thread thread;
};

double mono() { return std::chrono::duration<double>(Clock::now().time_since_epoch()).count(); }

class SimImpl final : public Sim {
 public:
  explicit SimImpl(SimOptions o) : opt_(std::move(o)) {}
  ~SimImpl() override {
    for (auto& n : nodes_) {
      if (n->mosq) mosquitto_destroy(n->mosq);
      if (n->ctx) SSL_CTX_free(n->ctx);
    }
    if (store_) X509_STORE_free(store_);
    for (auto& w : workers_)
      if (w->epfd >= 0) close(w->epfd);
    if (timeline_) std::fclose(timeline_);
  }

  Status init() {
    if (opt_.nodes == 0 || opt_.nodes > kMaxNodes)
      return make_error(ErrorCode::kInvalidArgument, "--nodes must be 1 to {}", kMaxNodes);
    if (!(opt_.fail_rate >= 0 && opt_.fail_rate <= 1))
      return make_error(ErrorCode::kInvalidArgument, "--fail-rate must be between 0 and 1");
    if (opt_.threads < 1 || opt_.threads > 64)
      return make_error(ErrorCode::kInvalidArgument, "--threads must be 1 to 64");
    if (!valid_node_id(node_name(opt_.prefix, 0)))
      return make_error(ErrorCode::kInvalidArgument,
                        "--prefix '{}' does not make a valid node id ([a-z0-9-], not starting with 'hearth-')",
                        opt_.prefix);
    auto f = load_fleet(opt_.fleet_dir);
    if (!f.ok()) return f.status();
    fleet_ = *f;
    sim_dir_ = fleet_.dir + "/sim";
    std::error_code ec;
    std::filesystem::create_directories(sim_dir_, ec);
    if (ec) return make_error(ErrorCode::kIo, "cannot create {}: {}", sim_dir_, ec.message());
    auto ca = read_file(fleet_.ca_cert_path(), 64 << 10);
    if (!ca.ok()) return ca.status();
    ca_pem_ = *ca;
    load_identities();
    if (!opt_.timeline_path.empty()) {
      timeline_ = std::fopen(opt_.timeline_path.c_str(), "a");
      if (!timeline_) return make_error(ErrorCode::kIo, "cannot open --timeline {}", opt_.timeline_path);
    }
    return ok_status();
  }

  Status enroll(const std::function<void(size_t, size_t)>& progress) override {
    std::vector<std::string> missing;
    for (size_t i = 0; i < opt_.nodes; ++i)
      if (!identities_.count(node_name(opt_.prefix, i))) missing.push_back(node_name(opt_.prefix, i));
    if (missing.empty()) return ok_status();
    auto token = read_file(fleet_.admin_token_path(), 4096);
    if (!token.ok()) return token.status().with_context("the sim enrolls with the fleet's admin token");
    std::string admin = *token;
    while (!admin.empty() && (admin.back() == '\n' || admin.back() == '\r')) admin.pop_back();
    FILE* out = std::fopen(identities_path().c_str(), "a");
    if (!out) return make_error(ErrorCode::kIo, "cannot open {}", identities_path());
    std::atomic<size_t> next{0}, done{0};
    std::mutex mu;
    Status first_error;
    auto worker = [&] {
      registry::HttpClient http;
      for (size_t i = next++; i < missing.size(); i = next++) {
        {
          std::lock_guard lock(mu);
          if (!first_error.ok()) return;
        }
        auto id = enroll_one(http, admin, missing[i]);
        std::lock_guard lock(mu);
        if (!id.ok()) {
          if (first_error.ok()) first_error = id.status().with_context("enrolling " + missing[i]);
          return;
        }
        std::string line = json{{"node", missing[i]}, {"key", id->key_pem}, {"cert", id->cert_pem}}.dump() + "\n";
        std::fwrite(line.data(), 1, line.size(), out);
        identities_[missing[i]] = std::move(*id);
        ++done;
      }
    };
    std::vector<std::thread> threads;
    for (int t = 0; t < std::max(1, opt_.enroll_parallel); ++t) threads.emplace_back(worker);
    auto last = Clock::now();
    while (done.load() < missing.size()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      {
        std::lock_guard lock(mu);
        if (!first_error.ok()) break;
      }
      if (progress && Clock::now() - last > std::chrono::seconds(2)) {
        progress(done.load(), missing.size());
        last = Clock::now();
      }
    }
    for (auto& t : threads) t.join();
    std::fflush(out);
    ::fsync(fileno(out));
    std::fclose(out);
    if (progress) progress(done.load(), missing.size());
    if (!desired_pub_pem_.empty()) {
      if (auto st = write_file_atomic(desired_pub_path(), desired_pub_pem_); !st.ok()) return st;
    }
    return first_error;
  }

  Status run() override {
    raise_fd_limit();
    mosquitto_lib_init();
    auto pub = read_file(desired_pub_path(), 64 << 10);
    if (!pub.ok()) return pub.status().with_context("the controller's desired-state key pinned at enrollment");
    if (auto st = make_ssl_store(); !st.ok()) return st;
    workers_.clear();
    for (int t = 0; t < opt_.threads; ++t) {
      auto w = std::make_unique<Worker>();
      w->epfd = epoll_create1(EPOLL_CLOEXEC);
      if (w->epfd < 0) return make_error(ErrorCode::kIo, "epoll_create1: {}", std::strerror(errno));
      auto key = trust::PublicKey::from_pem(*pub, desired_pub_path());
      if (!key.ok()) return key.status();
      w->desired_key = std::make_unique<trust::PublicKey>(*key);
      workers_.push_back(std::move(w));
    }
    for (size_t i = 0; i < opt_.nodes; ++i) {
      auto n = std::make_unique<SimNode>();
      n->sim = this;
      n->id = node_name(opt_.prefix, i);
      auto it = identities_.find(n->id);
      if (it == identities_.end()) return make_error(ErrorCode::kFailedPrecondition, "{} is not enrolled", n->id);
      if (auto st = make_client(*n, it->second); !st.ok()) return st.with_context(n->id);
      n->worker = workers_[i % workers_.size()].get();
      n->worker->nodes.push_back(n.get());
      nodes_.push_back(std::move(n));
    }
    for (auto& w : workers_) w->thread = std::thread([this, w = w.get()] { loop(*w); });
    for (auto& w : workers_) w->thread.join();
    for (auto& n : nodes_)
      if (n->mosq && n->socket_open) mosquitto_disconnect(n->mosq);
    return ok_status();
  }

  void stop() override { stopping_ = true; }
  const SimStats& stats() const override { return stats_; }

  // libmosquitto's callbacks (on the owning worker's thread).
  void on_connect(SimNode& n, int rc) {
    end_handshake(n);
    if (rc != 0) {
      log::warn("sim: {}: the broker refused the connection: {}", n.id, mosquitto_connack_string(rc));
      return;
    }
    n.connected = true;
    n.backoff_s = 1;
    ++stats_.connected;
    ++stats_.connects;
    publish(n, n.presence_topic, presence_to_json({n.id, true}), 1, true);
    mosquitto_subscribe(n.mosq, nullptr, n.desired_topic.c_str(), 1);
    report(n);
  }

  void on_disconnect(SimNode& n) {
    if (n.connected) --stats_.connected;
    n.connected = false;
  }

  void on_message(SimNode& n, const mosquitto_message* m) {
    ++stats_.received;
    if (m->topic == nullptr || n.desired_topic != m->topic) return;
    std::string_view payload(static_cast<const char*>(m->payload), m->payloadlen > 0 ? m->payloadlen : 0);
    auto d = verify_desired(payload, *n.worker->desired_key);
    if (!d.ok()) {
      ++stats_.refused;
      event(n, "refused", d.status().message());
      return;
    }
    if (d->fleet != fleet_.name || d->node != n.id) {
      ++stats_.refused;
      event(n, "refused", fmt::format("a desired state for {}/{} reached {}/{}", d->fleet, d->node, fleet_.name, n.id));
      return;
    }
    if (d->generation <= n.applied_generation) return;
    ++stats_.desired_ok;
    n.applied_generation = d->generation;
    note_timeline(n, "desired", d->rollout_id, d->generation);
    event(n, "desired_accepted", fmt::format("generation {} model {} ({})", d->generation, d->model.reference,
                                             d->model.digest));
    // The agent's steps, without the work: pulling, verifying, gating, then the outcome.
    const double step = opt_.step_ms / 1000.0;
    const uint64_t gen = d->generation;
    auto desired = std::make_shared<DesiredState>(std::move(*d));
    const NodeState steps[] = {NodeState::kPulling, NodeState::kVerifying, NodeState::kGating};
    for (int i = 0; i < 3; ++i) {
      NodeState s = steps[i];
      at(n, step * i, [this, &n, s, gen] {
        if (n.applied_generation != gen) return;  // a newer desired state took over
        n.state = s;
        n.reason.clear();
        n.gate_values.clear();
        report(n);
      });
    }
    at(n, step * 3, [this, &n, desired, gen] {
      if (n.applied_generation != gen) return;
      finish(n, *desired);
    });
  }

 private:
  void finish(SimNode& n, const DesiredState& d) {
    const bool fails = sim_node_fails(opt_.seed, n.id, d.model.digest, opt_.fail_rate);
    n.gate_values.clear();
    std::string failed_gate;
    for (size_t i = 0; i < d.gates.size(); ++i) {
      const Gate& g = d.gates[i];
      double v;
      if (fails && i == 0) {
        v = value_for(g, /*pass=*/false);
      } else if (auto it = opt_.gate_values.find(g.metric); it != opt_.gate_values.end()) {
        v = it->second;
      } else {
        v = value_for(g, /*pass=*/true);
      }
      n.gate_values[g.metric] = v;
      if (failed_gate.empty() && !g.passes(v))
        failed_gate = fmt::format("gate '{}' failed: measured {:.4g}", g.to_string(), v);
    }
    if (failed_gate.empty()) {
      if (!(n.serving.digest == d.model.digest)) {
        if (!n.serving.empty()) n.last_known_good = n.serving;
        n.serving = d.model;
      }
      n.state = NodeState::kServing;
      n.reason.clear();
      ++stats_.served;
      event(n, "model_switched", fmt::format("serving {} ({})", d.model.reference, d.model.digest));
    } else {
      n.state = NodeState::kFailed;
      n.reason = failed_gate;
      ++stats_.failed;
      event(n, "failed", failed_gate);
    }
    report(n);
    note_timeline(n, node_state_name(n.state), d.rollout_id, d.generation);
  }

  void report(SimNode& n) {
    ReportedState r;
    r.node = n.id;
    r.generation = n.applied_generation;
    r.seq = ++seq_;
    r.state = n.state;
    r.reason = n.reason;
    r.serving = n.serving;
    r.last_known_good = n.last_known_good;
    r.gate_values = n.gate_values;
    r.time = now_s();
    publish(n, n.reported_topic, reported_to_json(r), 1, true);
  }

  void event(SimNode& n, const std::string& type, const std::string& message) {
    Event e{n.id, now_s(), ++seq_, type, message.substr(0, 4000)};
    publish(n, n.events_topic, event_to_json(e), 1, false);
  }

  void telemetry(SimNode& n) {
    Telemetry t;
    t.node = n.id;
    t.time = now_s();
    t.serving = n.serving;
    t.state = n.state;
    auto value = [&](const char* metric, double fallback) {
      auto it = opt_.gate_values.find(metric);
      return it != opt_.gate_values.end() ? it->second : fallback;
    };
    t.decode_tok_s = value("decode_tok_s", 20.0);
    t.prefill_tok_s = value("prefill_tok_s", 200.0);
    t.ttft_p50_ms = value("ttft_ms", 50.0);
    t.ttft_p95_ms = t.ttft_p50_ms * 1.5;
    n.requests += 10;
    t.requests = n.requests;
    t.errors = 0;
    t.memory_bytes = 512ull << 20;
    t.disk_free_bytes = 10ull << 30;
    publish(n, n.telemetry_topic, telemetry_to_json(t), 0, false);
  }

  void publish(SimNode& n, const std::string& topic, const std::string& payload, int qos, bool retain) {
    if (!n.connected) return;  // the next connect reports the current state again
    int rc = mosquitto_publish(n.mosq, nullptr, topic.c_str(), static_cast<int>(payload.size()), payload.data(), qos,
                               retain);
    if (rc == MOSQ_ERR_SUCCESS) ++stats_.published;
  }

  void note_timeline(SimNode& n, std::string_view kind, const std::string& rollout, uint64_t generation) {
    if (!timeline_) return;
    std::string line = json{{"t", wall_now()}, {"node", n.id}, {"kind", kind}, {"rollout", rollout},
                            {"generation", generation}}
                           .dump() +
                       "\n";
    std::lock_guard lock(timeline_mu_);
    std::fwrite(line.data(), 1, line.size(), timeline_);
    std::fflush(timeline_);
  }

  void at(SimNode& n, double delay_s, std::function<void()> fn) {
    n.worker->timers.push(Timer{mono() + delay_s, &n, std::move(fn)});
  }

  // --- the network loop of one worker thread ---

  void loop(Worker& w) {
    std::vector<epoll_event> events(512);
    double next_misc = mono() + 1;
    while (!stopping_) {
      const double now = mono();
      start_some(w, now);
      while (!w.timers.empty() && w.timers.top().at <= now) {
        Timer t = w.timers.top();
        w.timers.pop();
        t.fn();
        interest(*t.node);
      }
      if (now >= next_misc) {
        misc(w, now);
        next_misc = now + 1;
      }
      double wait = 0.2;
      if (!w.timers.empty()) wait = std::min(wait, std::max(0.0, w.timers.top().at - mono()));
      if (w.next_to_start < w.nodes.size()) wait = std::min(wait, 0.005);
      int n = epoll_wait(w.epfd, events.data(), static_cast<int>(events.size()), static_cast<int>(wait * 1000));
      for (int i = 0; i < n; ++i) {
        auto* node = static_cast<SimNode*>(events[i].data.ptr);
        if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) read(*node);
        if (node->socket_open && (events[i].events & EPOLLOUT)) {
          if (mosquitto_loop_write(node->mosq, 1) != MOSQ_ERR_SUCCESS) dropped(*node);
        }
        interest(*node);
      }
    }
  }

  // Starts connections gradually: at most kMaxHandshakesInFlight per thread at a time.
  void start_some(Worker& w, double now) {
    while (w.next_to_start < w.nodes.size() && w.handshaking < kMaxHandshakesInFlight) {
      SimNode& n = *w.nodes[w.next_to_start++];
      n.started = true;
      connect(n, now, /*first=*/true);
    }
  }

  void connect(SimNode& n, double now, bool first) {
    int rc = first ? mosquitto_connect(n.mosq, fleet_.broker.host.c_str(), fleet_.broker.port, opt_.keepalive_s)
                   : mosquitto_reconnect(n.mosq);
    if (rc != MOSQ_ERR_SUCCESS) {
      retry_later(n, now);
      return;
    }
    n.handshaking = true;
    ++n.worker->handshaking;
    epoll_event ev{};
    ev.events = EPOLLIN;  // the ClientHello is out; the handshake goes on when the broker answers
    ev.data.ptr = &n;
    int fd = mosquitto_socket(n.mosq);
    if (epoll_ctl(n.worker->epfd, EPOLL_CTL_ADD, fd, &ev) != 0 && errno == EEXIST)
      epoll_ctl(n.worker->epfd, EPOLL_CTL_MOD, fd, &ev);
    n.socket_open = true;
    n.want_out = false;
  }

  void retry_later(SimNode& n, double now) {
    n.retry_at = now + n.backoff_s;
    n.backoff_s = std::min(n.backoff_s * 2, 10);
  }

  // Reads until the socket (and the TLS layer's buffer) is drained, then writes what that
  // queued (the CONNECT after the handshake, answers from callbacks) while the socket takes it.
  void read(SimNode& n) {
    if (!n.socket_open) return;
    for (int i = 0; i < 256; ++i) {
      errno = 0;
      int rc = mosquitto_loop_read(n.mosq, 1);
      if (rc != MOSQ_ERR_SUCCESS || mosquitto_socket(n.mosq) < 0) {
        dropped(n);
        return;
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    }
    if (mosquitto_want_write(n.mosq) && mosquitto_loop_write(n.mosq, 1) != MOSQ_ERR_SUCCESS) dropped(n);
  }

  // EPOLLOUT only while libmosquitto has something to write and the handshake is over (during
  // it, the socket is always writable and the TLS layer waits for the broker: read() drives it).
  void interest(SimNode& n) {
    if (!n.socket_open) return;
    if (mosquitto_socket(n.mosq) < 0) {
      dropped(n);
      return;
    }
    bool want = !n.handshaking && mosquitto_want_write(n.mosq);
    if (want == n.want_out) return;
    epoll_event ev{};
    ev.events = EPOLLIN | (want ? EPOLLOUT : 0u);
    ev.data.ptr = &n;
    epoll_ctl(n.worker->epfd, EPOLL_CTL_MOD, mosquitto_socket(n.mosq), &ev);
    n.want_out = want;
  }

  // Keep-alives, reconnections and telemetry, once a second.
  void misc(Worker& w, double now) {
    for (SimNode* np : w.nodes) {
      SimNode& n = *np;
      if (!n.started) continue;
      if (n.socket_open) {
        if (mosquitto_loop_misc(n.mosq) != MOSQ_ERR_SUCCESS || mosquitto_socket(n.mosq) < 0) {
          dropped(n);
        } else {
          interest(n);
        }
      } else if (now >= n.retry_at) {
        connect(n, now, /*first=*/false);
      }
      if (n.connected && opt_.telemetry_interval_s > 0) {
        if (n.next_telemetry == 0) {
          // Spread over the interval, so that the fleet's telemetry is a steady stream.
          n.next_telemetry = now + opt_.telemetry_interval_s * (std::hash<std::string>{}(n.id) % 1000) / 1000.0;
        } else if (now >= n.next_telemetry) {
          telemetry(n);
          n.next_telemetry = now + opt_.telemetry_interval_s;
          interest(n);
        }
      }
    }
  }

  void dropped(SimNode& n) {
    if (n.socket_open) {
      int fd = mosquitto_socket(n.mosq);
      if (fd >= 0) epoll_ctl(n.worker->epfd, EPOLL_CTL_DEL, fd, nullptr);
    }
    end_handshake(n);
    n.socket_open = false;
    on_disconnect(n);  // libmosquitto closed the socket when it returned the error
    retry_later(n, mono());
  }

  static void end_handshake(SimNode& n) {
    if (!n.handshaking) return;
    n.handshaking = false;
    --n.worker->handshaking;
  }

  // --- identities and TLS ---

  std::string identities_path() const { return sim_dir_ + "/identities.jsonl"; }
  std::string desired_pub_path() const { return sim_dir_ + "/controller-desired.pub"; }

  void load_identities() {
    auto text = read_file(identities_path(), size_t{1} << 30);
    if (!text.ok()) return;
    size_t pos = 0;
    while (pos < text->size()) {
      size_t end = text->find('\n', pos);
      if (end == std::string::npos) break;  // a torn last line: that node enrolls again
      json j = json::parse(std::string_view(*text).substr(pos, end - pos), nullptr, false);
      pos = end + 1;
      if (!j.is_object()) continue;
      std::string node = j.value("node", "");
      if (valid_node_id(node)) identities_[node] = Identity{j.value("key", ""), j.value("cert", "")};
    }
  }

  Result<Identity> enroll_one(registry::HttpClient& http, const std::string& admin, const std::string& node) {
    const std::string base = fleet_.controller.to_string();
    registry::HttpRequest tok;
    tok.method = "POST";
    tok.url = base + "/v1/tokens";
    tok.ca_file = fleet_.ca_cert_path();
    tok.redirects = registry::Redirects::kNone;
    tok.headers = {"Authorization: Bearer " + admin, "Content-Type: application/json"};
    tok.body = json{{"labels", labels_to_string(opt_.labels)}, {"ttl_seconds", 600}}.dump();
    auto t = http.send(tok);
    if (!t.ok()) return t.status();
    json tj = json::parse(t->body, nullptr, false);
    if (t->status != 200 || !tj.is_object())
      return make_error(ErrorCode::kFailedPrecondition, "POST /v1/tokens answered HTTP {}: {}", t->status,
                        t->body.substr(0, 200));
    auto kc = make_key_and_csr(node);
    if (!kc.ok()) return kc.status();
    registry::HttpRequest post;
    post.method = "POST";
    post.url = base + "/v1/enroll";
    post.ca_file = fleet_.ca_cert_path();
    post.redirects = registry::Redirects::kNone;
    post.headers = {"Content-Type: application/json"};
    post.body = json{{"token", tj.value("token", "")}, {"node", node}, {"csr", kc->csr_pem}}.dump();
    auto r = http.send(post);
    if (!r.ok()) return r.status();
    json body = json::parse(r->body, nullptr, false);
    if (r->status != 200 || !body.is_object())
      return make_error(ErrorCode::kFailedPrecondition, "POST /v1/enroll answered HTTP {}: {}", r->status,
                        r->body.substr(0, 200));
    std::string cert = body.value("certificate", "");
    auto cn = verify_certificate(cert, ca_pem_);
    if (!cn.ok()) return cn.status().with_context("the issued certificate");
    if (*cn != node) return make_error(ErrorCode::kDataLoss, "the issued certificate is for '{}', not '{}'", *cn, node);
    if (desired_pub_pem_.empty()) desired_pub_pem_ = body.value("desired_public_key", "");
    return Identity{kc->key_pem, cert};
  }

  Status make_ssl_store() {
    store_ = X509_STORE_new();
    BIO* bio = BIO_new_mem_buf(ca_pem_.data(), static_cast<int>(ca_pem_.size()));
    X509* ca = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
    if (!ca) return make_error(ErrorCode::kInvalidArgument, "{}: not a PEM certificate", fleet_.ca_cert_path());
    X509_STORE_add_cert(store_, ca);
    X509_free(ca);
    return ok_status();
  }

  // One SSL_CTX per node (libmosquitto takes the client certificate from the context), sharing
  // one certificate store with the fleet CA; the broker's certificate must name the broker host.
  Status make_client(SimNode& n, const Identity& id) {
    n.desired_topic = node_topic(fleet_.name, n.id, NodeTopic::kDesired);
    n.reported_topic = node_topic(fleet_.name, n.id, NodeTopic::kReported);
    n.events_topic = node_topic(fleet_.name, n.id, NodeTopic::kEvents);
    n.telemetry_topic = node_topic(fleet_.name, n.id, NodeTopic::kTelemetry);
    n.presence_topic = node_topic(fleet_.name, n.id, NodeTopic::kPresence);
    n.ctx = SSL_CTX_new(TLS_client_method());
    if (!n.ctx) return make_error(ErrorCode::kInternal, "SSL_CTX_new failed");
    SSL_CTX_set_min_proto_version(n.ctx, TLS1_2_VERSION);
    SSL_CTX_set1_cert_store(n.ctx, store_);
    SSL_CTX_set_verify(n.ctx, SSL_VERIFY_PEER, nullptr);
    X509_VERIFY_PARAM* param = SSL_CTX_get0_param(n.ctx);
    if (X509_VERIFY_PARAM_set1_ip_asc(param, fleet_.broker.host.c_str()) != 1)
      X509_VERIFY_PARAM_set1_host(param, fleet_.broker.host.c_str(), 0);
    BIO* cb = BIO_new_mem_buf(id.cert_pem.data(), static_cast<int>(id.cert_pem.size()));
    X509* cert = PEM_read_bio_X509(cb, nullptr, nullptr, nullptr);
    BIO_free(cb);
    BIO* kb = BIO_new_mem_buf(id.key_pem.data(), static_cast<int>(id.key_pem.size()));
    EVP_PKEY* key = PEM_read_bio_PrivateKey(kb, nullptr, nullptr, nullptr);
    BIO_free(kb);
    bool ok = cert && key && SSL_CTX_use_certificate(n.ctx, cert) == 1 && SSL_CTX_use_PrivateKey(n.ctx, key) == 1 &&
              SSL_CTX_check_private_key(n.ctx) == 1;
    X509_free(cert);
    EVP_PKEY_free(key);
    if (!ok) return make_error(ErrorCode::kDataLoss, "the stored identity in {} does not load", identities_path());

    // libmosquitto opens a socket pair in every client, only to wake its own loop thread out of
    // select(), which the sim does not use; with the open-file limit at 0 for the call, the pair
    // fails (a warning, not an error) and a node holds one descriptor instead of three, so that
    // 10,000 nodes fit a 20,000 limit. No other thread opens files while the clients are made.
    rlimit saved{};
    getrlimit(RLIMIT_NOFILE, &saved);
    rlimit none{0, saved.rlim_max};
    setrlimit(RLIMIT_NOFILE, &none);
    n.mosq = mosquitto_new(n.id.c_str(), /*clean_session=*/false, &n);
    setrlimit(RLIMIT_NOFILE, &saved);
    if (!n.mosq) return make_error(ErrorCode::kInternal, "mosquitto_new failed");
    mosquitto_int_option(n.mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    mosquitto_void_option(n.mosq, MOSQ_OPT_SSL_CTX, n.ctx);
    mosquitto_int_option(n.mosq, MOSQ_OPT_SSL_CTX_WITH_DEFAULTS, 0);
    const std::string will = presence_to_json({n.id, false});
    if (int rc = mosquitto_will_set(n.mosq, n.presence_topic.c_str(), static_cast<int>(will.size()), will.data(), 1,
                                    /*retain=*/true);
        rc != MOSQ_ERR_SUCCESS)
      return make_error(ErrorCode::kInternal, "last will: {}", mosquitto_strerror(rc));
    mosquitto_connect_callback_set(n.mosq, [](mosquitto*, void* obj, int rc) {
      auto* node = static_cast<SimNode*>(obj);
      node->sim->on_connect(*node, rc);
    });
    mosquitto_message_callback_set(n.mosq, [](mosquitto*, void* obj, const mosquitto_message* m) {
      auto* node = static_cast<SimNode*>(obj);
      node->sim->on_message(*node, m);
    });
    mosquitto_disconnect_callback_set(n.mosq, [](mosquitto*, void* obj, int) {
      auto* node = static_cast<SimNode*>(obj);
      node->sim->on_disconnect(*node);
    });
    return ok_status();
  }

  // Each node holds one descriptor, its socket (see make_client). Raises the limit to what
  // that needs (the hard limit too, where the process may), and says so when it cannot.
  void raise_fd_limit() const {
    const rlim_t need = static_cast<rlim_t>(opt_.nodes) + 256;
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
    if (rl.rlim_max < need) {
      rlimit more{need, need};
      if (setrlimit(RLIMIT_NOFILE, &more) == 0) return;
    }
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < need)
      log::warn("sim: {} nodes need about {} open files, and the limit is {} (raise it: ulimit -n)", opt_.nodes,
                static_cast<uint64_t>(need), static_cast<uint64_t>(rl.rlim_cur));
  }

  SimOptions opt_;
  FleetInfo fleet_;
  std::string sim_dir_, ca_pem_, desired_pub_pem_;
  std::map<std::string, Identity> identities_;
  X509_STORE* store_ = nullptr;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::unique_ptr<SimNode>> nodes_;
  std::atomic<bool> stopping_{false};
  // Report and event sequence numbers: one counter for the process, started from the clock so
  // that they keep increasing across runs (the controller drops a report older than the last).
  std::atomic<uint64_t> seq_{static_cast<uint64_t>(wall_now() * 1e6)};
  SimStats stats_;
  std::mutex timeline_mu_;
  FILE* timeline_ = nullptr;
};

}  // namespace

bool sim_node_fails(uint64_t seed, const std::string& node, const std::string& digest, double fail_rate) {
  if (fail_rate <= 0) return false;
  const std::string key = fmt::format("{}/{}/{}", seed, node, digest);
  const std::string h = sha256_hex(std::as_bytes(std::span(key.data(), key.size())));
  const double u = static_cast<double>(std::stoull(h.substr(0, 13), nullptr, 16)) / static_cast<double>(1ull << 52);
  return u < fail_rate;
}

Result<std::unique_ptr<Sim>> Sim::create(const SimOptions& options) {
  auto s = std::make_unique<SimImpl>(options);
  if (auto st = s->init(); !st.ok()) return st;
  return std::unique_ptr<Sim>(std::move(s));
}

}  // namespace hearth::fleet
