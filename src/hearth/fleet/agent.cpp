#include "hearth/fleet/agent.h"

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "hearth/core/atomic_file.h"
#include "hearth/core/log.h"
#include "hearth/core/process_stats.h"
#include "hearth/core/status.h"
#include "hearth/fleet/fleet_dir.h"
#include "hearth/fleet/mqtt_client.h"
#include "hearth/fleet/outbox.h"
#include "hearth/fleet/pki.h"
#include "hearth/fleet/reconciler.h"
#include "hearth/model/model.h"
#include "hearth/registry/http_client.h"
#include "hearth/server/server.h"
#include "hearth/trust/signing_key.h"

namespace hearth::fleet {
namespace {

// Agent runs that may start applying one generation; a run that dies while applying counts.
constexpr int kMaxApplyAttempts = 2;

using json = nlohmann::json;
constexpr std::string_view kAgentSchema = "hearth.agent/v1";

int64_t now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

Status write_private(const std::string& path, std::string_view data) {
  auto w = AtomicFileWriter::create(path);
  if (!w.ok()) return w.status();
  ::chmod(w->temp_path().c_str(), 0600);
  if (auto st = w->write(data); !st.ok()) return st;
  return w->commit();
}

std::string agent_dir(const std::string& home) { return home + "/agent"; }

}  // namespace

std::string node_id_from_hostname(std::string_view hostname) {
  std::string id;
  for (char c : hostname) {
    if (id.size() == 63) break;
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    id += ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) ? c : '-';
  }
  while (!id.empty() && id.front() == '-') id.erase(id.begin());
  if (id.empty() || id.rfind("hearth-", 0) == 0) id = "node-" + id;
  return id.substr(0, 63);
}

Result<AgentConfig> enroll_agent(const EnrollOptions& o) {
  auto ep = parse_endpoint(o.controller_url, "https", 8443);
  if (!ep.ok()) return ep.status().with_context("--controller");
  std::string node = o.node_id;
  if (node.empty()) {
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    node = node_id_from_hostname(host);
  }
  if (!valid_node_id(node))
    return make_error(ErrorCode::kInvalidArgument, "node id '{}' is not 1-63 characters of [a-z0-9-]", node);
  AgentConfig cfg;
  cfg.dir = agent_dir(o.home);
  std::error_code ec;
  std::filesystem::create_directories(cfg.dir, ec);
  if (ec) return make_error(ErrorCode::kIo, "cannot create {}: {}", cfg.dir, ec.message());
  ::chmod(cfg.dir.c_str(), 0700);
  std::string base = ep->to_string();

  // 1. The fleet CA, fetched without verification and then pinned by its digest.
  registry::HttpClient http;
  registry::HttpRequest get;
  get.url = base + "/v1/ca";
  get.tls_no_verify = true;
  get.max_body_bytes = 64 << 10;
  auto ca = http.send(get);
  if (!ca.ok()) return ca.status().with_context("fetching the fleet CA from " + base);
  if (ca->status != 200) return make_error(ErrorCode::kUnavailable, "{}/v1/ca answered HTTP {}", base, ca->status);
  auto fp = certificate_sha256(ca->body);
  if (!fp.ok()) return fp.status().with_context("the controller's CA");
  if (!o.ca_sha256.empty() && !constant_time_equal(*fp, o.ca_sha256))
    return make_error(ErrorCode::kUnauthenticated,
                      "the controller's CA has sha256 {}, not the pinned {}: refusing to enroll", *fp, o.ca_sha256);
  if (auto st = write_file_atomic(cfg.ca_path(), ca->body); !st.ok()) return st;

  // 2. A key made here, and a CSR for the controller to sign.
  auto kc = make_key_and_csr(node);
  if (!kc.ok()) return kc.status();
  registry::HttpRequest post;
  post.method = "POST";
  post.url = base + "/v1/enroll";
  post.ca_file = cfg.ca_path();
  post.redirects = registry::Redirects::kNone;
  post.headers = {"Content-Type: application/json"};
  post.body = json{{"token", o.token}, {"node", node}, {"csr", kc->csr_pem}}.dump();
  auto r = http.send(post);
  if (!r.ok()) return r.status().with_context("enrolling at " + base);
  json body = json::parse(r->body, nullptr, false);
  if (r->status != 200) {
    std::string msg =
        body.is_object() && body.contains("error") ? body["error"].value("message", "") : r->body.substr(0, 200);
    return make_error(r->status == 403 ? ErrorCode::kPermissionDenied : ErrorCode::kFailedPrecondition,
                      "the controller refused the enrollment (HTTP {}): {}", r->status, msg);
  }
  if (!body.is_object()) return make_error(ErrorCode::kInvalidArgument, "enroll: the answer is not JSON");
  std::string cert = body.value("certificate", ""), pub = body.value("desired_public_key", "");
  auto cn = verify_certificate(cert, ca->body);
  if (!cn.ok()) return cn.status().with_context("the issued certificate");
  if (*cn != node) return make_error(ErrorCode::kDataLoss, "the issued certificate is for '{}', not '{}'", *cn, node);
  auto key = trust::PublicKey::from_pem(pub, "desired_public_key");
  if (!key.ok()) return key.status();
  auto labels = parse_labels(body.contains("labels") && body["labels"].is_object()
                                 ? [&] {
                                     Labels l;
                                     for (auto& [k, v] : body["labels"].items())
                                       if (v.is_string()) l[k] = v.get<std::string>();
                                     return labels_to_string(l);
                                   }()
                                 : std::string());
  cfg.fleet = body.value("fleet", "");
  cfg.node = node;
  cfg.broker_url = body.value("broker_url", "");
  cfg.controller_url = base;
  cfg.ca_sha256 = *fp;
  cfg.desired_key_id = key->key_id();
  cfg.labels = labels.ok() ? *labels : Labels{};
  if (!valid_fleet_name(cfg.fleet)) return make_error(ErrorCode::kInvalidArgument, "enroll: bad fleet name");
  if (auto b = parse_endpoints(cfg.broker_url, "mqtts", 8883); !b.ok()) return b.status().with_context("enroll");

  if (auto st = write_private(cfg.key_path(), kc->key_pem); !st.ok()) return st;
  if (auto st = write_file_atomic(cfg.cert_path(), cert); !st.ok()) return st;
  if (auto st = write_file_atomic(cfg.desired_pub_path(), key->pem()); !st.ok()) return st;
  json info = {{"schema", kAgentSchema},
               {"fleet", cfg.fleet},
               {"node", cfg.node},
               {"broker_url", cfg.broker_url},
               {"controller_url", cfg.controller_url},
               {"ca_sha256", cfg.ca_sha256},
               {"desired_key_id", cfg.desired_key_id},
               {"labels", labels_to_string(cfg.labels)}};
  // agent.json last: it marks a complete enrollment.
  if (auto st = write_file_atomic(cfg.dir + "/agent.json", info.dump(2) + "\n"); !st.ok()) return st;
  return cfg;
}

Result<AgentConfig> load_agent(const std::string& home) {
  AgentConfig cfg;
  cfg.dir = agent_dir(home);
  auto text = read_file(cfg.dir + "/agent.json", 1 << 20);
  if (!text.ok())
    return make_error(ErrorCode::kFailedPrecondition,
                      "this node is not enrolled ({}/agent.json is missing; run "
                      "`hearth agent enroll`)",
                      cfg.dir);
  json j = json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || j.value("schema", "") != kAgentSchema)
    return make_error(ErrorCode::kInvalidArgument, "{}/agent.json: not a hearth agent file", cfg.dir);
  cfg.fleet = j.value("fleet", "");
  cfg.node = j.value("node", "");
  cfg.broker_url = j.value("broker_url", "");
  cfg.controller_url = j.value("controller_url", "");
  cfg.ca_sha256 = j.value("ca_sha256", "");
  cfg.desired_key_id = j.value("desired_key_id", "");
  auto labels = parse_labels(j.value("labels", ""));
  if (labels.ok()) cfg.labels = *labels;
  if (!valid_fleet_name(cfg.fleet) || !valid_node_id(cfg.node))
    return make_error(ErrorCode::kInvalidArgument, "{}/agent.json: bad fleet or node id", cfg.dir);
  return cfg;
}

namespace {

json pin_to_json(const ModelPin& p) {
  if (p.empty()) return nullptr;
  return json{{"reference", p.reference}, {"digest", p.digest}};
}
ModelPin pin_from_json(const json& j) {
  if (!j.is_object()) return {};
  return {j.value("reference", ""), j.value("digest", "")};
}

// The agent's in-process server as the reconciler's switch.
class ServerSwitch final : public ServingSwitch {
 public:
  explicit ServerSwitch(server::Server& s) : server_(s) {}
  Status switch_to(std::shared_ptr<model::Model> m, const std::string& id) override {
    return server_.swap_model(std::move(m), id);
  }
  std::shared_ptr<model::Model> current() const override { return server_.current_model(); }
  std::optional<server::TrafficSnapshot> traffic() const override { return server_.metrics().traffic(); }
  std::optional<WorkProgress> work() const override {
    auto s = server_.scheduler_stats();
    if (!s) return std::nullopt;
    return WorkProgress{s->active_slots + s->queue_depth, s->steps + s->prompt_tokens + s->generated_tokens};
  }

 private:
  server::Server& server_;
};

class AgentImpl final : public Agent {
 public:
  explicit AgentImpl(AgentRunOptions o) : opt_(std::move(o)) {}

  Status init() {
    auto cfg = load_agent(opt_.home);
    if (!cfg.ok()) return cfg.status();
    cfg_ = *cfg;
    auto key = trust::PublicKey::load(cfg_.desired_pub_path());
    if (!key.ok()) return key.status();
    desired_key_ = std::make_unique<trust::PublicKey>(*key);
    auto brokers = parse_endpoints(cfg_.broker_url, "mqtts", 8883);  // one, or a cluster's members
    if (!brokers.ok()) return brokers.status();
    load_state();
    auto outbox = Outbox::open(cfg_.dir + "/outbox");
    if (!outbox.ok()) return outbox.status();
    outbox_.emplace(std::move(*outbox));
    MqttOptions m;
    m.host = brokers->front().host;
    m.port = brokers->front().port;
    for (size_t i = 1; i < brokers->size(); ++i) m.failover.push_back({(*brokers)[i].host, (*brokers)[i].port});
    if (brokers->size() > 1) m.stall_timeout_s = 10;  // a cluster that lost a member may hold acks back
    m.client_id = cfg_.node;
    m.ca_file = cfg_.ca_path();
    m.cert_file = cfg_.cert_path();
    m.key_file = cfg_.key_path();
    m.clean_session = false;
    m.reconnect_max_s = 10;  // back soon after a broker restart
    m.keepalive_s = opt_.keepalive_s;
    m.will_topic = node_topic(cfg_.fleet, cfg_.node, NodeTopic::kPresence);
    m.will_payload = presence_to_json({cfg_.node, false});
    auto mqtt = MqttClient::create(m, kMaxPayloadBytes);
    if (!mqtt.ok()) return mqtt.status();
    mqtt_ = std::move(*mqtt);

    server::ServerConfig sc;
    sc.http.host = opt_.serve_host;
    sc.http.port = opt_.serve_port;
    sc.scheduler.n_threads = opt_.n_threads;
    sc.model_id = "none";
    auto srv = server::Server::create(sc);
    if (!srv.ok()) return srv.status().with_context("agent --serve");
    server_ = std::move(*srv);
    switch_ = std::make_unique<ServerSwitch>(*server_);
    return ok_status();
  }

  int serve_port() const override { return server_->port(); }

  Status run() override {
    Status serve_status;
    std::thread http([this, &serve_status] { serve_status = server_->run(); });
    resume_serving();
    mqtt_->on_connection([this](bool up, const std::string& why) {
      if (!up) {
        log::warn("agent: broker connection lost ({}); serving continues", why);
        std::lock_guard lock(outbox_mu_);
        in_flight_.clear();  // what was not acknowledged is sent again after the next connect
        return;
      }
      log::info("agent {}: connected to {}", cfg_.node, mqtt_->current_broker());
      (void)mqtt_->publish(node_topic(cfg_.fleet, cfg_.node, NodeTopic::kPresence), presence_to_json({cfg_.node, true}),
                           1, true, 0);
      (void)mqtt_->subscribe(node_topic(cfg_.fleet, cfg_.node, NodeTopic::kDesired), 1, 0);
      std::string payload;
      {
        std::lock_guard lock(mu_);
        payload = report_payload_locked();
      }
      publish_report(payload);
      flush_outbox();
    });
    mqtt_->on_message([this](const MqttMessage& m) { on_desired(m); });
    mqtt_->on_published([this](int mid) { on_event_acknowledged(mid); });
    if (auto st = mqtt_->start_background(); !st.ok()) {
      server_->stop();
      http.join();
      return st;
    }
    // Kept in the outbox until the broker has it: a node that restarts while cut off says so
    // when its link returns.
    event("started", fmt::format("agent started; serving {}",
                                 record_.serving.empty() ? std::string("nothing") : record_.serving.reference));
    // Desired states are applied on their own thread, so that telemetry keeps going out while a
    // model is pulled, gated or baked (the newest desired state wins; see on_desired).
    std::thread applier([this] {
      std::unique_lock lock(mu_);
      while (true) {
        cv_.wait(lock, [&] { return stopping_ || pending_.has_value() || !hang_reason_.empty(); });
        if (stopping_) return;
        applying_ = true;
        if (!hang_reason_.empty()) {
          std::string why = std::move(hang_reason_);
          hang_reason_.clear();
          lock.unlock();
          roll_back_hung(why);
        } else {
          DesiredState d = std::move(*pending_);
          pending_.reset();
          lock.unlock();
          apply(d);
        }
        lock.lock();
        applying_ = false;
      }
    });
    std::unique_lock lock(mu_);
    auto next_telemetry = std::chrono::steady_clock::now();
    StallWatch watch(opt_.stall_timeout_s);
    while (!stopping_) {
      cv_.wait_until(lock, std::min(next_telemetry, std::chrono::steady_clock::now() + std::chrono::seconds(1)),
                     [&] { return stopping_; });
      if (stopping_) break;
      watch_serving(lock, watch);
      if (std::chrono::steady_clock::now() < next_telemetry) continue;
      next_telemetry = std::chrono::steady_clock::now() + std::chrono::seconds(opt_.telemetry_interval_s);
      Telemetry t;
      t.node = cfg_.node;
      t.time = now_s();
      t.state = state_;
      t.serving = record_.serving;
      lock.unlock();  // never publish while holding the agent's lock
      fill_counters(t);
      (void)mqtt_->publish(node_topic(cfg_.fleet, cfg_.node, NodeTopic::kTelemetry), telemetry_to_json(t), 0, false, 0);
      lock.lock();
    }
    lock.unlock();
    applier.join();
    mqtt_->disconnect();
    server_->stop();
    http.join();
    return serve_status;
  }

  void stop() override {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
  }

 private:
  // Telemetry counters (never content): throughput and TTFT quantiles over the interval since
  // the last telemetry, cumulative requests and 5xx errors, resident memory, free disk.
  void fill_counters(Telemetry& t) {
    const server::TrafficSnapshot now = server_->metrics().traffic();
    const double now_t = now_seconds();
    if (last_traffic_) {
      const server::TrafficSnapshot& was = *last_traffic_;
      const double dt = now_t - last_traffic_time_;
      if (dt > 0) {
        t.decode_tok_s = static_cast<double>(now.completion_tokens - was.completion_tokens) / dt;
        t.prefill_tok_s = static_cast<double>(now.prompt_tokens - was.prompt_tokens) / dt;
      }
      const double p50 = server::window_quantile(0.5, now.ttft_bounds, now.ttft_counts, was.ttft_counts);
      const double p95 = server::window_quantile(0.95, now.ttft_bounds, now.ttft_counts, was.ttft_counts);
      t.ttft_p50_ms = std::isfinite(p50) ? 1000.0 * p50 : 0.0;  // 0: no first token in the interval
      t.ttft_p95_ms = std::isfinite(p95) ? 1000.0 * p95 : 0.0;
    }
    t.requests = now.requests;
    t.errors = now.server_errors;
    t.memory_bytes = current_rss_bytes();
    struct statvfs fs {};
    if (statvfs(opt_.home.c_str(), &fs) == 0) t.disk_free_bytes = static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
    last_traffic_ = now;
    last_traffic_time_ = now_t;
  }

  // The watchdog outside a bake window (the reconciler watches its own): a committed model
  // that stops making progress with requests waiting is rolled back on the applier thread.
  void watch_serving(std::unique_lock<std::mutex>& lock, StallWatch& watch) {
    if (applying_ || !hang_reason_.empty()) {
      watch = StallWatch(opt_.stall_timeout_s);  // the model may change: start afresh
      return;
    }
    lock.unlock();
    std::optional<WorkProgress> work = switch_->work();
    lock.lock();
    if (!work || applying_) return;
    if (auto stalled = watch.observe(*work, now_seconds())) {
      hang_reason_ = fmt::format("{} made no progress for {:.0f} s with {} request(s) waiting: it hangs or loops",
                                 record_.serving.empty() ? std::string("the serving model") : record_.serving.reference,
                                 *stalled, work->waiting);
      log::error("agent: {}", hang_reason_);
      cv_.notify_all();
    }
  }

  // Serves the last-known-good instead of a model that hangs; reports `failed` either way (a
  // rollout counts it), and keeps the generation applied (only a new desired state retries).
  void roll_back_hung(const std::string& why) {
    ModelPin lkg;
    {
      std::lock_guard lock(mu_);
      lkg = record_.last_known_good;
    }
    std::string reason;
    bool rolled_back = false;
    if (lkg.empty()) {
      reason = why + "; there is no last-known-good to roll back to";
    } else if (auto m = load_verified(opt_.home, lkg, /*record_version=*/false, opt_.n_threads,
                                      /*allow_downgrade=*/true);
               !m.ok()) {
      reason = fmt::format("{}; the last-known-good {} does not load: {}", why, lkg.reference, m.status().message());
    } else if (auto st = server_->swap_model(*m, lkg.reference); !st.ok()) {
      reason = fmt::format("{}; switching to the last-known-good {} failed: {}", why, lkg.reference, st.message());
    } else {
      std::lock_guard lock(mu_);
      record_.serving = lkg;
      record_.last_known_good = {};
      record_.serving_eval_ppl = 0;
      record_.serving_eval_digest.clear();
      if (auto saved = save_state_locked(); !saved.ok()) log::error("agent: {}", saved.message());
      reason = fmt::format("{}; rolled back to the last-known-good {}", why, lkg.reference);
      rolled_back = true;
    }
    log::error("agent: {}", reason);
    event(rolled_back ? "rolled_back" : "failed", reason);
    report(NodeState::kFailed, reason, {});
  }

  // What the node served before it stopped: the recorded model, else its last-known-good.
  void resume_serving() {
    for (const ModelPin* pin : {&record_.serving, &record_.last_known_good}) {
      if (pin->empty()) continue;
      auto m = load_verified(opt_.home, *pin, /*record_version=*/false, opt_.n_threads);
      if (!m.ok()) {
        log::error("agent: cannot serve {} ({}): {}", pin->reference, pin->digest, m.status().message());
        continue;
      }
      if (auto st = server_->swap_model(*m, pin->reference); st.ok()) {
        std::lock_guard lock(mu_);
        if (pin != &record_.serving) record_.serving = *pin;
        state_ = NodeState::kServing;
        log::info("agent: serving {} ({})", pin->reference, pin->digest);
        return;
      }
    }
  }

  void load_state() {
    auto text = read_file(cfg_.state_path(), 1 << 20);
    if (!text.ok()) return;  // first run
    json j = json::parse(*text, nullptr, false);
    if (!j.is_object()) return;
    applied_generation_ = j.value("generation", uint64_t{0});
    report_seq_ = j.value("report_seq", uint64_t{0});
    event_seq_ = j.value("event_seq", uint64_t{0});
    attempt_generation_ = j.value("attempt_generation", uint64_t{0});
    attempt_count_ = j.value("attempt_count", 0);
    record_.serving = pin_from_json(j.value("serving", json()));
    record_.last_known_good = pin_from_json(j.value("last_known_good", json()));
    record_.serving_eval_ppl = j.value("serving_eval_ppl", 0.0);
    record_.serving_eval_digest = j.value("serving_eval_digest", "");
  }

  Status save_state_locked() {
    json j = {{"generation", applied_generation_},
              {"event_seq", event_seq_},
              {"report_seq", report_seq_},
              {"attempt_generation", attempt_generation_},
              {"attempt_count", attempt_count_},
              {"serving", pin_to_json(record_.serving)},
              {"last_known_good", pin_to_json(record_.last_known_good)},
              {"serving_eval_ppl", record_.serving_eval_ppl},
              {"serving_eval_digest", record_.serving_eval_digest}};
    return write_file_atomic(cfg_.state_path(), j.dump());
  }

  std::string report_payload_locked() {
    ReportedState r;
    r.node = cfg_.node;
    r.generation = applied_generation_;
    // Persisted before it is used, so that it keeps increasing across restarts.
    r.seq = ++report_seq_;
    (void)save_state_locked();
    r.state = state_;
    r.reason = reason_.substr(0, 1000);
    r.serving = record_.serving;
    r.last_known_good = record_.last_known_good;
    r.gate_values = gate_values_;
    r.labels = opt_.labels;
    r.time = now_s();
    return reported_to_json(r);
  }

  void publish_report(const std::string& payload) {
    (void)mqtt_->publish(node_topic(cfg_.fleet, cfg_.node, NodeTopic::kReported), payload, 1, true, 0);
  }

  void report(NodeState s, const std::string& reason, const std::map<std::string, double>& gates) {
    std::string payload;
    {
      std::lock_guard lock(mu_);
      state_ = s;
      reason_ = reason;
      gate_values_ = gates;
      payload = report_payload_locked();
    }
    publish_report(payload);
  }

  // Events go to the outbox first (on disk), then to the broker; the file goes when the broker
  // acknowledges it. Offline, or killed before the acknowledgement, the event goes out after the
  // next connect (the controller drops a duplicate by its seq).
  void event(const std::string& type, const std::string& message) {
    std::string payload;
    uint64_t seq = 0;
    {
      std::lock_guard lock(mu_);
      seq = ++event_seq_;
      Event e{cfg_.node, now_s(), seq, type, message.substr(0, 4000)};
      (void)save_state_locked();
      payload = event_to_json(e);
    }
    {
      std::lock_guard lock(outbox_mu_);
      if (auto st = outbox_->add(seq, payload); !st.ok()) log::error("agent: event {} not kept: {}", seq, st.message());
    }
    send_event(seq, payload);
  }

  void send_event(uint64_t seq, const std::string& payload) {
    std::lock_guard lock(outbox_mu_);  // held across the publish: its acknowledgement waits for the record
    for (const auto& [mid, s] : in_flight_)
      if (s == seq) return;
    auto mid = mqtt_->publish_tracked(node_topic(cfg_.fleet, cfg_.node, NodeTopic::kEvents), payload, 1);
    if (mid.ok()) in_flight_[*mid] = seq;  // else: not connected, sent after the next connect
  }

  void flush_outbox() {
    std::vector<std::pair<uint64_t, std::string>> pending;
    {
      std::lock_guard lock(outbox_mu_);
      pending = outbox_->pending();
    }
    if (!pending.empty()) log::info("agent: sending {} queued event(s)", pending.size());
    for (const auto& [seq, payload] : pending) send_event(seq, payload);
  }

  void on_event_acknowledged(int mid) {
    std::lock_guard lock(outbox_mu_);
    auto it = in_flight_.find(mid);
    if (it == in_flight_.end()) return;  // a report or telemetry, or sent before a reconnect
    outbox_->remove(it->second);
    in_flight_.erase(it);
  }

  // On the network thread: check, then hand over to run()'s loop (the newest desired wins).
  void on_desired(const MqttMessage& m) {
    if (m.topic != node_topic(cfg_.fleet, cfg_.node, NodeTopic::kDesired)) return;
    auto d = verify_desired(m.payload, *desired_key_);
    if (!d.ok()) {
      log::warn("agent: refused a desired state: {}", d.status().message());
      event("refused", d.status().message());
      return;
    }
    if (d->fleet != cfg_.fleet || d->node != cfg_.node) {
      event("refused",
            fmt::format("a desired state for {}/{} reached {}/{}", d->fleet, d->node, cfg_.fleet, cfg_.node));
      return;
    }
    std::lock_guard lock(mu_);
    if (d->generation <= applied_generation_) {
      log::info("agent: desired generation {} already applied (at {})", d->generation, applied_generation_);
      return;
    }
    pending_ = std::move(*d);
    cv_.notify_all();
  }

  void apply(const DesiredState& d) {
    event("desired_accepted",
          fmt::format("generation {} model {} ({})", d.generation, d.model.reference, d.model.digest));
    ServingRecord record;
    {
      std::lock_guard lock(mu_);
      record = record_;
      attempt_count_ = attempt_generation_ == d.generation ? attempt_count_ + 1 : 1;
      attempt_generation_ = d.generation;
      if (auto st = save_state_locked(); !st.ok()) log::error("agent: {}", st.message());
    }
    if (attempt_count_ > kMaxApplyAttempts) {
      const std::string why = fmt::format(
          "the agent stopped {} times while applying generation {} ({}): the model may crash or hang the node; not "
          "tried again, serving {}",
          attempt_count_ - 1, d.generation, d.model.reference,
          record.serving.empty() ? "nothing" : record.serving.reference);
      {
        std::lock_guard lock(mu_);
        applied_generation_ = d.generation;
        attempt_generation_ = 0;
        attempt_count_ = 0;
        if (auto st = save_state_locked(); !st.ok()) log::error("agent: {}", st.message());
      }
      log::error("agent: {}", why);
      event("failed", why);
      report(NodeState::kFailed, why, {});
      return;
    }
    ReconcileOptions ro;
    ro.home = opt_.home;
    ro.n_threads = opt_.n_threads;
    ro.stall_seconds = opt_.stall_timeout_s;
    const int attempt = attempt_count_;
    ro.progress = [this, attempt](NodeState s, const std::string& why, const std::map<std::string, double>& g) {
      // A retry after the agent died while applying says so (it may be the model's doing).
      if (attempt > 1 && !why.empty())
        return report(s, fmt::format("{} (attempt {} of {})", why, attempt, kMaxApplyAttempts), g);
      report(s, why, g);
    };
    ro.interrupted = [this] {
      std::lock_guard lock(mu_);
      return stopping_ || pending_.has_value();
    };
    ReconcileResult r = reconcile(d, *switch_, record, ro);
    {
      std::lock_guard lock(mu_);
      if (r.interrupted && stopping_) {
        // Stopped in order (SIGTERM) during the bake: not the model's doing, so the attempt does
        // not count, and the next run applies this generation again.
        attempt_count_ = std::max(attempt_count_ - 1, 0);
      } else {
        applied_generation_ = d.generation;
        attempt_generation_ = 0;
        attempt_count_ = 0;
      }
      if (r.state == NodeState::kServing) record_ = record;
      if (auto st = save_state_locked(); !st.ok()) log::error("agent: {}", st.message());
    }
    if (r.interrupted && stopping_) {
      // Not a failure of the model: report nothing (a rollout must not count it), and carry on
      // with this generation after the restart.
      log::info("agent: stopping during the bake of generation {}; it is applied again at the next start",
                d.generation);
      return;
    }
    if (r.state == NodeState::kServing) {
      event("model_switched", fmt::format("serving {} ({})", d.model.reference, d.model.digest));
    } else {
      log::warn("agent: generation {} failed: {}", d.generation, r.reason);
      event("failed", r.reason);
    }
    report(r.state, r.reason, r.gate_values);
  }

  AgentRunOptions opt_;
  AgentConfig cfg_;
  std::unique_ptr<trust::PublicKey> desired_key_;
  std::unique_ptr<MqttClient> mqtt_;
  std::unique_ptr<server::Server> server_;
  std::unique_ptr<ServerSwitch> switch_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::optional<DesiredState> pending_;
  bool applying_ = false;    // the applier thread is busy (a desired state, or a rollback)
  std::string hang_reason_;  // set by the watchdog: the applier rolls back
  std::mutex outbox_mu_;  // outbox_ and in_flight_; never held with mu_
  std::optional<Outbox> outbox_;
  std::map<int, uint64_t> in_flight_;  // MQTT message id -> event seq, until the PUBACK
  uint64_t applied_generation_ = 0;
  // The generation being applied, and how many agent runs have started applying it: a run that
  // dies while applying (a model that crashes the process during gating or its bake window)
  // leaves it set, and after kMaxApplyAttempts the generation is reported failed, not retried.
  uint64_t attempt_generation_ = 0;
  int attempt_count_ = 0;
  std::optional<server::TrafficSnapshot> last_traffic_;  // at the last telemetry
  double last_traffic_time_ = 0;
  uint64_t event_seq_ = 0;
  uint64_t report_seq_ = 0;
  ServingRecord record_;
  NodeState state_ = NodeState::kPending;
  std::string reason_;
  std::map<std::string, double> gate_values_;
};

}  // namespace

Result<std::unique_ptr<Agent>> Agent::create(const AgentRunOptions& options) {
  auto a = std::make_unique<AgentImpl>(options);
  if (auto st = a->init(); !st.ok()) return st;
  return std::unique_ptr<Agent>(std::move(a));
}

}  // namespace hearth::fleet
