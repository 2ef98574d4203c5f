#include "hearth/fleet/controller.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <set>
#include <iterator>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <unordered_map>
#include <unistd.h>

#include "hearth/core/atomic_file.h"
#include "hearth/core/log.h"
#include "hearth/core/sha256.h"
#include "hearth/core/status.h"
#include "hearth/fleet/dashboard.h"
#include "hearth/fleet/fleet_metrics.h"
#include "hearth/fleet/mqtt_client.h"
#include "hearth/fleet/pki.h"
#include "hearth/fleet/protocol.h"
#include "hearth/fleet/rollout.h"
#include "hearth/http/http_server.h"
#include "hearth/registry/oci_client.h"
#include "hearth/store/reference.h"
#include "hearth/trust/signing_key.h"

namespace hearth::fleet {
namespace {

using json = nlohmann::json;
using http::HttpRequest;
using http::HttpResponse;

constexpr int64_t kMaxTokenTtl = 30LL * 86400;
constexpr int kNodeCertDays = 365;

int64_t now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string hash_hex(std::string_view s) { return sha256_hex(std::as_bytes(std::span(s.data(), s.size()))); }

HttpResponse json_response(int status, const json& body) {
  HttpResponse r;
  r.status = status;
  r.body = body.dump();
  return r;
}

HttpResponse error_response(int status, std::string_view message) {
  return json_response(status, json{{"error", {{"message", message}}}});
}

int http_status(const Status& st) {
  switch (st.code()) {
    case ErrorCode::kInvalidArgument: return 400;
    case ErrorCode::kUnauthenticated: return 401;
    case ErrorCode::kPermissionDenied: return 403;
    case ErrorCode::kNotFound: return 404;
    case ErrorCode::kAlreadyExists: return 409;
    default: return 500;
  }
}

HttpResponse status_response(const Status& st) { return error_response(http_status(st), st.message()); }

json node_json(const NodeRecord& n) {
  json gates = json::parse(n.gate_values_json.empty() ? "{}" : n.gate_values_json, nullptr, false);
  if (gates.is_discarded()) gates = json::object();
  json telemetry = json::parse(n.telemetry_json.empty() ? "{}" : n.telemetry_json, nullptr, false);
  if (!telemetry.is_object() || telemetry.empty()) {
    telemetry = nullptr;
  } else {
    telemetry.erase("schema");
    telemetry.erase("node");
  }
  return json{
      {"id", n.id},
      {"labels", n.effective_labels()},
      {"operator_labels", n.labels},
      {"declared_labels", n.declared_labels},
      {"enrolled_at", n.enrolled_at},
      {"presence", n.online ? "online" : "offline"},
      {"last_seen", n.last_seen},
      {"state", n.state},
      {"reason", n.reason},
      {"serving", n.serving_reference.empty() ? json(nullptr)
                                              : json{{"reference", n.serving_reference}, {"digest", n.serving_digest}}},
      {"reported_generation", n.reported_generation},
      {"gate_values", gates},
      {"telemetry", telemetry}};
}

class ControllerImpl final : public Controller {
 public:
  ControllerImpl(FleetInfo fleet, ControllerOptions options) : fleet_(std::move(fleet)), opt_(std::move(options)) {}

  Status init() {
    auto ca_cert = read_file(fleet_.ca_cert_path(), 64 << 10);
    if (!ca_cert.ok()) return ca_cert.status();
    auto ca_key = read_file(fleet_.ca_key_path(), 64 << 10);
    if (!ca_key.ok()) return ca_key.status();
    ca_ = {*ca_cert, *ca_key};
    auto token = read_file(fleet_.admin_token_path(), 4096);
    if (!token.ok()) return token.status();
    admin_token_ = *token;
    while (!admin_token_.empty() && (admin_token_.back() == '\n' || admin_token_.back() == '\r'))
      admin_token_.pop_back();
    if (admin_token_.size() < 32)
      return make_error(ErrorCode::kFailedPrecondition, "{}: the admin token is too short", fleet_.admin_token_path());
    auto pub = read_file(fleet_.desired_pub_path(), 64 << 10);
    if (!pub.ok()) return pub.status();
    desired_pub_pem_ = *pub;
    auto pub_key = trust::PublicKey::from_pem(desired_pub_pem_, fleet_.desired_pub_path());
    if (!pub_key.ok()) return pub_key.status();
    desired_pub_ = std::make_unique<trust::PublicKey>(*pub_key);
    auto signing = trust::PrivateKey::load(fleet_.desired_key_path());
    if (!signing.ok()) return signing.status();
    signing_key_ = std::make_unique<trust::PrivateKey>(*signing);
    auto db = FleetDb::open(opt_.db_url.empty() ? "sqlite:" + fleet_.dir + "/controller/fleet.db" : opt_.db_url);
    if (!db.ok()) return db.status();
    db_ = std::move(*db);

    http::HttpServerOptions h;
    h.host = opt_.listen_host.empty() ? fleet_.controller.host : opt_.listen_host;
    h.port = opt_.listen_port >= 0 ? opt_.listen_port : fleet_.controller.port;
    h.tls_cert = fleet_.controller_cert_path();
    h.tls_key = fleet_.controller_key_path();
    h.max_body_bytes = 1 << 20;
    auto server = http::HttpServer::create(h);
    if (!server.ok()) return server.status();
    server_ = std::move(*server);
    routes();
    dashboard_ = std::make_unique<Dashboard>(
        db_.get(), [this](const HttpRequest& req) { return is_admin(req); },
        [](const NodeRecord& n) { return node_json(n).dump(); });
    dashboard_->register_routes(*server_);
    return ok_status();
  }

  Status start() override {
    if (auto st = server_->bind(); !st.ok()) return st;
    self_url_ = fmt::format("https://{}:{}", opt_.listen_host.empty() ? fleet_.controller.host : opt_.listen_host,
                            server_->port());
    MqttOptions m;
    m.host = fleet_.broker.host;
    m.port = fleet_.broker.port;
    for (size_t i = 1; i < fleet_.brokers.size(); ++i)
      m.failover.push_back({fleet_.brokers[i].host, fleet_.brokers[i].port});
    if (fleet_.brokers.size() > 1) m.stall_timeout_s = 10;  // a cluster that lost a member may hold acks back
    m.client_id = "hearth-controller";
    m.ca_file = fleet_.ca_cert_path();
    m.cert_file = fleet_.controller_cert_path();
    m.key_file = fleet_.controller_key_path();
    m.clean_session = false;  // QoS 1 reports sent while the controller was away are kept for it
    m.max_inflight = kMaxInflight;  // a batch's desired states go out pipelined (publish_many)
    auto mqtt = MqttClient::create(m, kMaxPayloadBytes);
    if (!mqtt.ok()) return mqtt.status();
    mqtt_ = std::move(*mqtt);
    mqtt_->on_message([this](const MqttMessage& msg) { on_mqtt(msg); });
    mqtt_->on_connection([this](bool up, const std::string& why) {
      if (!up) {
        log::warn("controller: broker connection lost: {}", why);
        return;
      }
      log::info("controller: connected to the broker {}", mqtt_->current_broker());
      // Subscribing from the network thread: queue without waiting for the SUBACK.
      for (NodeTopic t : {NodeTopic::kReported, NodeTopic::kPresence, NodeTopic::kEvents, NodeTopic::kTelemetry})
        (void)mqtt_->subscribe(all_nodes_topic(fleet_.name, t), 1, 0);
      // The broker may have lost its retained desired states (a crash, a new broker): send
      // each node's last one again. Nodes ignore a generation they have already applied.
      if (auto all = db_->all_desired(); all.ok()) {
        for (const auto& row : *all)
          (void)mqtt_->publish(node_topic(fleet_.name, row.node, NodeTopic::kDesired), row.envelope, 1, true, 0);
      } else {
        log::error("controller: {}", all.status().message());
      }
    });
    // The MQTT client starts when this controller leads (drive_loop): a standby must not take
    // the hearth-controller session (and its queued reports) from the leader.
    env_.db = db_.get();
    env_.now = now_s;
    env_.prepare = [this](const std::string& node, DesiredState d) { return prepare_desired(node, std::move(d)); };
    env_.send = [this](const std::vector<PreparedDesired>& p) { return send_desired(p); };
    writer_ = std::thread([this] { writer_loop(); });
    driver_ = std::thread([this] { drive_loop(); });
    return ok_status();
  }

  ~ControllerImpl() override {
    stop_driver();
    if (mqtt_) mqtt_->disconnect();  // no more messages for the writer
    stop_writer();
  }

  int port() const override { return server_->port(); }
  Status serve() override { return server_->serve(); }
  void stop() override {
    stop_driver();
    dashboard_->stop();  // ends its live streams
    server_->stop();
    if (mqtt_ && leading_.load()) mqtt_->disconnect();
    stop_writer();  // after the last message came in: what is queued is written
  }

 private:
  // A batch's desired states in flight at once (publish_many's window): a busy broker acks
  // late, and the window, not its speed, would bound the rate.
  static constexpr int kMaxInflight = 1024;
  // Messages from nodes wait here for the writer; the network thread waits when it is full.
  static constexpr size_t kMaxInbox = 50000;
  // At most this many are taken (and committed) in one transaction.
  static constexpr size_t kMaxBurst = 10000;
  // A pass of the driver starts at most this often when reports wake it (else every 500 ms).
  static constexpr auto kMinPassGap = std::chrono::milliseconds(200);

  // Sets a loop's stop flag under its mutex, wakes it and waits for its thread.
  static void stop_loop(std::mutex& mu, bool& stop, std::condition_variable& cv, std::thread& t) {
    {
      std::lock_guard lock(mu);
      stop = true;
    }
    cv.notify_all();
    if (t.joinable()) t.join();
  }
  void stop_writer() { stop_loop(inbox_mu_, inbox_stop_, inbox_cv_, writer_); }

  // Reports, presence and telemetry are committed in bursts: whatever came in while the last
  // burst was written, up to kMaxBurst messages, in one transaction (one disk sync), in order.
  void writer_loop() {
    using clock = std::chrono::steady_clock;
    std::vector<MqttMessage> burst;
    // How the writer keeps up, logged every 10 s while messages come in.
    size_t taken = 0, bursts = 0, waiting = 0;
    clock::duration busy{};
    auto since = clock::now();
    for (;;) {
      {
        std::unique_lock lock(inbox_mu_);
        inbox_cv_.wait(lock, [&] { return inbox_stop_ || !inbox_.empty(); });
        if (inbox_.empty()) return;  // stopping, and everything is written
        const size_t n = std::min(inbox_.size(), kMaxBurst);
        burst.assign(std::make_move_iterator(inbox_.begin()), std::make_move_iterator(inbox_.begin() + n));
        inbox_.erase(inbox_.begin(), inbox_.begin() + n);
        waiting = std::max(waiting, inbox_.size());
      }
      inbox_cv_.notify_all();  // room for the network thread
      const auto t0 = clock::now();
      take_burst(burst);
      busy += clock::now() - t0;
      taken += burst.size();
      ++bursts;
      burst.clear();
      if (clock::now() - since >= std::chrono::seconds(10)) {
        log::info("controller: wrote {} node message(s) in {} transaction(s) over {:.1f} s ({:.2f} s writing; at most "
                  "{} waiting)",
                  taken, bursts, std::chrono::duration<double>(clock::now() - since).count(),
                  std::chrono::duration<double>(busy).count(), waiting);
        taken = bursts = waiting = 0;
        busy = {};
        since = clock::now();
      }
      {
        std::lock_guard lock(driver_mu_);
        driver_wake_ = true;  // the rollouts may have moved on
      }
      driver_cv_.notify_all();
    }
  }
  void stop_driver() { stop_loop(driver_mu_, driver_stop_, driver_cv_, driver_); }

  // Leadership is checked and rollouts advance here, one pass every half second; all their
  // state is in the database, so a new leader continues where the last one stopped.
  void drive_loop() {
    std::unique_lock lock(driver_mu_);
    int64_t warned_at = 0;
    while (!driver_stop_) {
      lock.unlock();
      auto lead = db_->lead(self_url_);
      if (leading_.load()) {
        if (!lead.ok() || !*lead) {
          // Another controller may lead now: this one must not publish one more message. Exit
          // at once (status 75); a supervisor starts it again, as a standby.
          log::error("controller: lost the leadership ({}); exiting",
                     lead.ok() ? "another controller holds it" : lead.status().message());
          std::_Exit(75);
        }
      } else if (lead.ok() && *lead) {
        become_leader();
      } else if (!lead.ok() && now_s() - warned_at >= 30) {
        warned_at = now_s();
        log::warn("controller: cannot contend for the leadership: {}", lead.status().message());
      }
      const auto pass_start = std::chrono::steady_clock::now();
      if (leading_.load()) {
        std::lock_guard rl(rollout_mu_);
        if (auto st = drive_rollouts(env_); !st.ok()) log::warn("controller: rollouts: {}", st.message());
        const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - pass_start).count();
        if (took >= 1.0) log::info("controller: a pass over the rollouts took {:.2f} s", took);
      }
      lock.lock();
      // The next pass: in 500 ms, or sooner when reports were written (but not more often
      // than kMinPassGap: a pass reads every node of a running rollout).
      driver_cv_.wait_until(lock, pass_start + kMinPassGap, [&] { return driver_stop_; });
      driver_cv_.wait_until(lock, pass_start + std::chrono::milliseconds(500),
                            [&] { return driver_stop_ || driver_wake_; });
      driver_wake_ = false;
    }
  }

  void become_leader() {
    log::info("controller: leading (as {})", self_url_);
    record("controller", "leader_elected", self_url_, fmt::format("pid {}", static_cast<long>(getpid())));
    leading_.store(true);
    if (auto st = mqtt_->start_background(); !st.ok()) log::error("controller: {}", st.message());
  }

  // Signs a desired state for `node` with the next generation (rollout.h: recorded by the
  // driver, then sent with send_desired).
  Result<PreparedDesired> prepare_desired(const std::string& node, DesiredState d) {
    auto last = db_->desired(node);
    if (!last.ok()) return last.status();
    d.fleet = fleet_.name;
    d.node = node;
    if (last->has_value() && !d.rollout_id.empty()) {
      // A controller that stopped (or lost the broker) after recording a rollout's desired state
      // and before noting its generation in the rollout left it here: that same state is sent
      // again under its own generation, never under a new one.
      auto prev = verify_desired((*last)->envelope, *desired_pub_);
      if (prev.ok() && prev->rollout_id == d.rollout_id && prev->model.reference == d.model.reference &&
          prev->model.digest == d.model.digest && prev->allow_downgrade == d.allow_downgrade)
        return PreparedDesired{node, (*last)->generation, (*last)->envelope, true};
    }
    // A generation is never reused: the database refuses one that is not newer than the
    // recorded one, even if a publish fails and is retried.
    d.generation = (last->has_value() ? (*last)->generation : 0) + 1;
    d.issued_at = now_s();
    auto env = sign_desired(d, *signing_key_);
    if (!env.ok()) return env.status();
    return PreparedDesired{node, d.generation, std::move(*env), false};
  }

  // Publishes recorded desired states, retained, without waiting for each PUBACK.
  Status send_desired(const std::vector<PreparedDesired>& prepared) {
    std::vector<MqttOutgoing> out;
    out.reserve(prepared.size());
    for (const auto& p : prepared) out.push_back({node_topic(fleet_.name, p.node, NodeTopic::kDesired), p.envelope});
    return mqtt_->publish_many(out, /*retain=*/true, /*wait_s=*/10);
  }

  // Writes go to the leader only: a standby answers 503 with the leader's URL (reads it serves
  // from the shared database).
  template <typename F>
  http::HttpHandler leader_only(F f) {
    return [this, f](const HttpRequest& req) {
      if (!leading_.load()) {
        auto leader = db_->leader();
        std::string url = leader.ok() ? *leader : "";
        HttpResponse r = json_response(
            503, json{{"error",
                       {{"message", fmt::format("this controller is a standby; send writes to the leader{}",
                                                url.empty() || url == self_url_ ? "" : " at " + url)}}},
                      {"leader", url}});
        r.headers.emplace_back("Retry-After", "1");
        return r;
      }
      return f(req);
    };
  }

  HttpResponse start_rollout_route(const HttpRequest& req) {
    auto spec = rollout_spec_from_json(req.body);
    if (!spec.ok()) return status_response(spec.status());
    if (spec->model.digest.empty()) {
      // Resolve the tag at the first source now: the rollout pins that exact manifest.
      auto ref = store::parse_reference(spec->model.reference);
      if (!ref.ok()) return status_response(ref.status());
      if (spec->sources.empty()) return error_response(400, "rollout: at least one --mirror (registry URL) is needed");
      registry::RegistryClient client(spec->sources.front(), {});
      auto m = client.get_manifest(ref->name, ref->pinned() ? ref->digest.str() : ref->tag);
      if (!m.ok()) return status_response(m.status().with_context("resolving " + spec->model.reference));
      spec->model.digest = m->digest.str();
    }
    std::lock_guard rl(rollout_mu_);
    auto id = start_rollout(env_, *spec, "admin");
    if (!id.ok()) return status_response(id.status());
    return json_response(200, json{{"id", *id}, {"digest", spec->model.digest}});
  }

  HttpResponse rollout_status_route(const std::string& id) {
    auto r = db_->rollout(id);
    if (!r.ok()) return status_response(r.status());
    if (!r->has_value()) return error_response(404, "no rollout '" + id + "'");
    auto nodes = db_->rollout_nodes(id);
    if (!nodes.ok()) return status_response(nodes.status());
    auto spec = rollout_spec_from_json((*r)->spec_json);
    json batches = json::array();
    for (const auto& n : *nodes) {
      while (static_cast<int64_t>(batches.size()) <= n.batch)
        batches.push_back({{"index", batches.size()}, {"nodes", json::array()}});
      json gates = json::parse(n.gate_values_json, nullptr, false);
      batches[n.batch]["nodes"].push_back({{"node", n.node},
                                           {"state", n.state},
                                           {"reason", n.reason},
                                           {"gate_values", gates.is_discarded() ? json::object() : gates},
                                           {"previous", n.previous_reference}});
    }
    return json_response(
        200, json{{"id", (*r)->id},
                  {"state", (*r)->state},
                  {"reason", (*r)->reason},
                  {"current_batch", (*r)->current_batch},
                  {"model", spec.ok() ? json{{"reference", spec->model.reference}, {"digest", spec->model.digest}}
                                      : json(nullptr)},
                  {"gates", spec.ok() ? json(spec->gates) : json::array()},
                  {"batches", batches}});
  }

  bool is_admin(const HttpRequest& req) const {
    std::string auth = req.header("authorization");
    constexpr std::string_view kBearer = "Bearer ";
    if (auth.size() <= kBearer.size() || auth.compare(0, kBearer.size(), kBearer) != 0) return false;
    return constant_time_equal(std::string_view(auth).substr(kBearer.size()), admin_token_);
  }

  template <typename F>
  http::HttpHandler admin(F f) {
    return [this, f](const HttpRequest& req) {
      if (!is_admin(req))
        return error_response(401, "this route needs the fleet's admin token (Authorization: Bearer)");
      return f(req);
    };
  }

  void record(std::string actor, std::string action, std::string subject, std::string detail) {
    if (auto st = db_->audit({0, now_s(), std::move(actor), std::move(action), std::move(subject), std::move(detail)});
        !st.ok())
      log::error("controller: audit: {}", st.message());
  }

  static Result<json> body_json(const HttpRequest& req) {
    json j = json::parse(req.body, nullptr, false);
    if (j.is_discarded() || !j.is_object())
      return make_error(ErrorCode::kInvalidArgument, "the request body must be a JSON object");
    return j;
  }

  void routes() {
    server_->route("GET", "/v1/ca", [this](const HttpRequest&) {
      HttpResponse r;
      r.content_type = "application/x-pem-file";
      r.body = ca_.cert_pem;
      return r;
    });
    server_->route("GET", "/v1/leader", [this](const HttpRequest&) {
      auto leader = db_->leader();
      if (!leader.ok()) return status_response(leader.status());
      return json_response(200, json{{"leader", *leader}, {"self", self_url_}, {"leading", leading_.load()}});
    });
    server_->route("POST", "/v1/enroll", leader_only([this](const HttpRequest& req) { return enroll(req); }));
    server_->route("POST", "/v1/tokens",
                   admin(leader_only([this](const HttpRequest& req) { return create_token(req); })));
    server_->route("GET", "/v1/nodes", admin([this](const HttpRequest& req) {
                     Labels selector;
                     if (auto q = req.query_param("selector"); q && !q->empty()) {
                       auto parsed = parse_labels(*q);
                       if (!parsed.ok()) return status_response(parsed.status());
                       selector = *parsed;
                     }
                     auto nodes = db_->nodes(selector);
                     if (!nodes.ok()) return status_response(nodes.status());
                     json out = json::array();
                     for (const auto& n : *nodes) out.push_back(node_json(n));
                     return json_response(200, json{{"nodes", out}});
                   }));
    server_->route("PUT", "/v1/nodes/([a-z0-9-]{1,63})/labels", admin(leader_only([this](const HttpRequest& req) {
                     auto body = body_json(req);
                     if (!body.ok()) return status_response(body.status());
                     auto it = body->find("labels");
                     if (it == body->end() || !it->is_string())
                       return error_response(400, "'labels' must be a string k=v,...");
                     auto labels = parse_labels(it->get<std::string>());
                     if (!labels.ok()) return status_response(labels.status());
                     const std::string& id = req.path_params.at(0);
                     if (auto st = db_->set_labels(id, *labels); !st.ok()) return status_response(st);
                     record("admin", "labels_set", id, labels_to_string(*labels));
                     return json_response(200, json{{"node", id}, {"labels", *labels}});
                   })));
    server_->route("POST", "/v1/rollouts",
                   admin(leader_only([this](const HttpRequest& req) { return start_rollout_route(req); })));
    server_->route("GET", "/v1/rollouts/(r-[0-9a-f]{12})",
                   admin([this](const HttpRequest& req) { return rollout_status_route(req.path_params.at(0)); }));
    server_->route("POST", "/v1/rollouts/(r-[0-9a-f]{12})/(pause|resume|abort)",
                   admin(leader_only([this](const HttpRequest& req) {
                     std::lock_guard rl(rollout_mu_);
                     auto st = control_rollout(env_, req.path_params.at(0), req.path_params.at(1), "admin");
                     if (!st.ok()) return status_response(st);
                     return rollout_status_route(req.path_params.at(0));
                   })));
    server_->route("GET", "/v1/audit", admin([this](const HttpRequest& req) {
                     auto log = db_->audit_log(req.query_param("subject").value_or(""), 10000);
                     if (!log.ok()) return status_response(log.status());
                     json out = json::array();
                     for (const auto& a : *log)
                       out.push_back({{"id", a.id},
                                      {"time", a.time},
                                      {"actor", a.actor},
                                      {"action", a.action},
                                      {"subject", a.subject},
                                      {"detail", a.detail}});
                     return json_response(200, json{{"audit", out}});
                   }));
    server_->route("GET", "/metrics",
                   admin([this](const HttpRequest&) { return metrics_response(*db_, {opt_.metrics_per_node}); }));
  }

  HttpResponse create_token(const HttpRequest& req) {
    auto body = body_json(req);
    if (!body.ok()) return status_response(body.status());
    Labels labels;
    if (auto it = body->find("labels"); it != body->end() && !it->is_null()) {
      if (!it->is_string()) return error_response(400, "'labels' must be a string k=v,...");
      auto parsed = parse_labels(it->get<std::string>());
      if (!parsed.ok()) return status_response(parsed.status());
      labels = *parsed;
    }
    int64_t ttl = 3600;
    if (auto it = body->find("ttl_seconds"); it != body->end() && !it->is_null()) {
      if (!it->is_number_integer() || it->get<int64_t>() < 1 || it->get<int64_t>() > kMaxTokenTtl)
        return error_response(400, fmt::format("'ttl_seconds' must be an integer in [1, {}]", kMaxTokenTtl));
      ttl = it->get<int64_t>();
    }
    auto token = random_hex(24);
    if (!token.ok()) return status_response(token.status());
    int64_t expires = now_s() + ttl;
    if (auto st = db_->add_token(hash_hex(*token), labels, expires); !st.ok()) return status_response(st);
    record("admin", "token_created", hash_hex(*token).substr(0, 12),
           fmt::format("labels {} expires {}", labels_to_string(labels), expires));
    return json_response(200, json{{"token", *token}, {"expires_at", expires}, {"labels", labels}});
  }

  HttpResponse enroll(const HttpRequest& req) {
    auto body = body_json(req);
    if (!body.ok()) return status_response(body.status());
    auto str = [&](const char* k) -> std::string {
      auto it = body->find(k);
      return it != body->end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    std::string token = str("token"), node = str("node"), csr = str("csr");
    if (token.empty() || token.size() > 256 || csr.empty())
      return error_response(400, "enroll needs 'token', 'node' and 'csr'");
    if (!valid_node_id(node))
      return error_response(400, fmt::format("'node' must be 1-63 characters of [a-z0-9-], not starting with '-' or "
                                             "'hearth-' (got '{}')",
                                             node.substr(0, 80)));
    // Check the CSR before the token is spent, so a broken request can be retried.
    auto cert = issue_from_csr(ca_, csr, node, kNodeCertDays);
    if (!cert.ok()) return status_response(cert.status());
    auto labels = db_->consume_token(hash_hex(token), node, now_s());
    if (!labels.ok()) {
      record(node, "enroll_refused", node, labels.status().message());
      return status_response(labels.status());
    }
    auto fp = certificate_sha256(*cert);
    NodeRecord rec;
    rec.id = node;
    rec.labels = *labels;
    rec.enrolled_at = now_s();
    rec.cert_sha256 = fp.ok() ? *fp : "";
    if (auto st = db_->upsert_node(rec); !st.ok()) return status_response(st);
    {
      std::lock_guard lock(enrolled_mu_);
      enrolled_.insert(node);  // the writer reads its record again (re-enrollment resets its seq)
    }
    record(node, "node_enrolled", node,
           fmt::format("labels {} certificate {}", labels_to_string(*labels), rec.cert_sha256.substr(0, 16)));
    return json_response(200, json{{"certificate", *cert},
                                   {"ca", ca_.cert_pem},
                                   {"fleet", fleet_.name},
                                   {"node", node},
                                   {"broker_url", fleet_.broker_urls()},
                                   {"controller_url", fleet_.controller.to_string()},
                                   {"desired_public_key", desired_pub_pem_},
                                   {"labels", *labels}});
  }

  // On the network thread: queued for the writer (writer_loop), which commits in bursts.
  void on_mqtt(const MqttMessage& msg) {
    {
      std::unique_lock lock(inbox_mu_);
      inbox_cv_.wait(lock, [&] { return inbox_stop_ || inbox_.size() < kMaxInbox; });
      inbox_.push_back(msg);
    }
    inbox_cv_.notify_all();
  }

  // One burst of node messages, in the order they came: checked, applied to the nodes' records
  // (records_: read from the database once, then kept, since only this thread writes what nodes
  // report), and written in one transaction, events with them.
  void take_burst(const std::vector<MqttMessage>& burst) {
    FleetWrites w;
    std::vector<std::pair<NodeRecord, Telemetry>> telemetry;  // for the dashboard, after
    const int64_t now = now_s();
    {
      std::lock_guard lock(enrolled_mu_);
      for (const auto& id : enrolled_) records_.erase(id);  // (re-)enrolled: read again
      enrolled_.clear();
    }
    for (const auto& msg : burst) {
      auto topic = parse_node_topic(fleet_.name, msg.topic);
      if (!topic || topic->kind == NodeTopic::kDesired) continue;  // (our own publishes)
      auto it = records_.find(topic->node);
      if (it == records_.end()) {
        auto known = db_->node(topic->node);
        if (!known.ok()) {
          log::error("controller: {}", known.status().message());
          continue;
        }
        if (!known->has_value()) {  // not remembered: it may enroll later
          log::warn("controller: dropped a message from '{}', which is not enrolled", topic->node);
          continue;
        }
        it = records_.emplace(topic->node, std::move(**known)).first;
      }
      NodeRecord& rec = it->second;
      using U = FleetWrites::NodeUpdate;
      switch (topic->kind) {
        case NodeTopic::kPresence: {
          auto p = presence_from_json(msg.payload);
          if (!p.ok() || p->node != topic->node) {
            drop(msg, p.ok() ? "node mismatch" : p.status().message());
            continue;
          }
          rec.online = p->online;
          rec.last_seen = now;
          w.node_updates.push_back(U{U::kPresence, rec.id, p->online, now, "", {}});
          break;
        }
        case NodeTopic::kReported: {
          auto r = reported_from_json(msg.payload);
          if (!r.ok() || r->node != topic->node) {
            drop(msg, r.ok() ? "node mismatch" : r.status().message());
            continue;
          }
          if (r->seq != 0 && r->seq <= rec.reported_seq) {
            log::info("controller: ignored a stale report from {} (seq {} after {})", rec.id, r->seq,
                      rec.reported_seq);
            continue;
          }
          rec.reported_seq = r->seq;
          rec.state = std::string(node_state_name(r->state));
          rec.reason = r->reason;
          rec.serving_reference = r->serving.reference;
          rec.serving_digest = r->serving.digest;
          rec.reported_generation = r->generation;
          rec.gate_values_json = json(r->gate_values).dump();
          rec.declared_labels = r->labels;
          rec.last_seen = now;
          w.node_updates.push_back(U{U::kReported, rec.id, false, now, "", rec});
          break;
        }
        case NodeTopic::kEvents: {
          auto e = event_from_json(msg.payload);
          if (!e.ok() || e->node != topic->node) {
            drop(msg, e.ok() ? "node mismatch" : e.status().message());
            continue;
          }
          // Audited once: the write skips an event already noted (a resent one).
          w.events.push_back({e->node, e->seq, {0, now, e->node, "node_event:" + e->type, e->node, e->message}});
          break;
        }
        case NodeTopic::kTelemetry: {
          auto t = telemetry_from_json(msg.payload);
          if (!t.ok() || t->node != topic->node) {
            drop(msg, t.ok() ? "node mismatch" : t.status().message());
            continue;
          }
          telemetry.emplace_back(rec, *t);  // the record before it (the dashboard's counter deltas)
          // Stored as re-serialised from the checked fields, never as the bytes that came in.
          rec.telemetry_json = telemetry_to_json(*t);
          rec.online = true;
          rec.last_seen = now;
          w.node_updates.push_back(U{U::kTelemetry, rec.id, true, now, rec.telemetry_json, {}});
          break;
        }
        case NodeTopic::kDesired: break;
      }
    }
    if (auto st = db_->write(w); !st.ok()) {
      log::error("controller: writing {} node message(s): {}", burst.size(), st.message());
      records_.clear();  // what they say was not written: read the nodes again
    }
    for (const auto& [before, t] : telemetry) dashboard_->on_telemetry(before, t, now);  // the charts' history
  }

  void drop(const MqttMessage& msg, const std::string& why) {
    log::warn("controller: dropped a message on {}: {}", escape_topic(msg.topic), why);
  }
  static std::string escape_topic(const std::string& t) { return http::escape_for_log(t.substr(0, 200)); }

  FleetInfo fleet_;
  ControllerOptions opt_;
  CertAndKey ca_;
  std::string admin_token_;
  std::string desired_pub_pem_;
  std::unique_ptr<FleetDb> db_;
  std::unique_ptr<Dashboard> dashboard_;  // after db_, before server_ and mqtt_ (which call it)
  std::unique_ptr<http::HttpServer> server_;
  std::unique_ptr<MqttClient> mqtt_;
  std::unique_ptr<trust::PrivateKey> signing_key_;
  std::unique_ptr<trust::PublicKey> desired_pub_;  // to recognise a desired state already recorded
  std::string self_url_;                           // https://HOST:PORT this controller listens on
  std::atomic<bool> leading_{false};
  RolloutEnv env_;
  std::mutex rollout_mu_;  // one rollout step at a time (driver and API)
  std::thread driver_;
  std::mutex driver_mu_;
  std::condition_variable driver_cv_;
  bool driver_stop_ = false;
  bool driver_wake_ = false;  // reports were written since the last pass
  std::thread writer_;        // writer_loop
  std::mutex inbox_mu_;
  std::condition_variable inbox_cv_;
  std::deque<MqttMessage> inbox_;
  bool inbox_stop_ = false;
  // The writer's copy of each node's record (writer thread only), and the nodes enrolled since
  // it last looked.
  std::unordered_map<std::string, NodeRecord> records_;
  std::mutex enrolled_mu_;
  std::set<std::string> enrolled_;
};

}  // namespace

Result<std::unique_ptr<Controller>> Controller::create(const FleetInfo& fleet, const ControllerOptions& options) {
  auto c = std::make_unique<ControllerImpl>(fleet, options);
  if (auto st = c->init(); !st.ok()) return st;
  return std::unique_ptr<Controller>(std::move(c));
}

}  // namespace hearth::fleet
