#include "hearth/fleet/mqtt_client.h"

#include <mosquitto.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "hearth/core/status.h"

namespace hearth::fleet {
namespace {

std::once_flag g_lib_init;
using Clock = std::chrono::steady_clock;

class MosquittoClient final : public MqttClient {
 public:
  MosquittoClient(const MqttOptions& options, size_t max_payload) : opt_(options), max_payload_(max_payload) {
    brokers_.push_back({opt_.host, opt_.port});
    brokers_.insert(brokers_.end(), opt_.failover.begin(), opt_.failover.end());
    // Clients spread over a cluster's members: each starts at its own (stable) place in the list.
    uint32_t h = 2166136261u;  // FNV-1a of the client id
    for (unsigned char c : opt_.client_id) h = (h ^ c) * 16777619u;
    first_ = brokers_.size() > 1 ? h % brokers_.size() : 0;
    current_ = first_;
  }

  ~MosquittoClient() override {
    disconnect();
    if (mosq_ != nullptr) mosquitto_destroy(mosq_);
  }

  Status init() {
    std::call_once(g_lib_init, [] { mosquitto_lib_init(); });
    if (opt_.keepalive_s != 0 && (opt_.keepalive_s < 5 || opt_.keepalive_s > 65535))
      return make_error(ErrorCode::kInvalidArgument, "mqtt: keepalive {} s is not 0 or 5-65535", opt_.keepalive_s);
    if (opt_.max_inflight < 1 || opt_.max_inflight > 65535)
      return make_error(ErrorCode::kInvalidArgument, "mqtt: max_inflight {} is not 1-65535", opt_.max_inflight);
    if (opt_.stall_timeout_s < 0 || opt_.stall_timeout_s > 3600)
      return make_error(ErrorCode::kInvalidArgument, "mqtt: stall timeout {} s is not 0-3600", opt_.stall_timeout_s);
    if (brokers_.size() > 64)
      return make_error(ErrorCode::kInvalidArgument, "mqtt: {} broker addresses (at most 64)", brokers_.size());
    for (const auto& b : brokers_)
      if (b.host.empty() || b.port < 1 || b.port > 65535)
        return make_error(ErrorCode::kInvalidArgument, "mqtt: broker address '{}:{}' has no host or a bad port", b.host,
                          b.port);
    mosq_ = mosquitto_new(opt_.client_id.empty() ? nullptr : opt_.client_id.c_str(), opt_.clean_session, this);
    if (mosq_ == nullptr) return make_error(ErrorCode::kInternal, "mqtt: cannot create a client (out of memory?)");
    mosquitto_int_option(mosq_, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    // (libmosquitto applies its send maximum to MQTT 3.1.1 connections too: its in-flight limit)
    mosquitto_int_option(mosq_, MOSQ_OPT_SEND_MAXIMUM, opt_.max_inflight);
    // The network loop runs on this adapter's own thread (run_loop): publishes from other threads
    // are queued for it, never written by the caller (which could deadlock with a callback).
    mosquitto_threaded_set(mosq_, true);
    mosquitto_reconnect_delay_set(mosq_, opt_.reconnect_min_s, opt_.reconnect_max_s, /*exponential=*/true);
    if (!opt_.ca_file.empty()) {
      int rc = mosquitto_tls_set(mosq_, opt_.ca_file.c_str(), nullptr,
                                 opt_.cert_file.empty() ? nullptr : opt_.cert_file.c_str(),
                                 opt_.key_file.empty() ? nullptr : opt_.key_file.c_str(), nullptr);
      if (rc != MOSQ_ERR_SUCCESS)
        return make_error(ErrorCode::kInvalidArgument, "mqtt: TLS files (ca {}, cert {}, key {}): {}", opt_.ca_file,
                          opt_.cert_file, opt_.key_file, mosquitto_strerror(rc));
      mosquitto_tls_opts_set(mosq_, 1, "tlsv1.2", nullptr);
    }
    if (!opt_.will_topic.empty()) {
      int rc = mosquitto_will_set(mosq_, opt_.will_topic.c_str(), static_cast<int>(opt_.will_payload.size()),
                                  opt_.will_payload.data(), 1, opt_.will_retain);
      if (rc != MOSQ_ERR_SUCCESS)
        return make_error(ErrorCode::kInvalidArgument, "mqtt: last will: {}", mosquitto_strerror(rc));
    }
    mosquitto_connect_callback_set(
        mosq_, [](mosquitto*, void* self, int rc) { static_cast<MosquittoClient*>(self)->handle_connect(rc); });
    mosquitto_disconnect_callback_set(
        mosq_, [](mosquitto*, void* self, int rc) { static_cast<MosquittoClient*>(self)->handle_disconnect(rc); });
    mosquitto_message_callback_set(mosq_, [](mosquitto*, void* self, const mosquitto_message* m) {
      static_cast<MosquittoClient*>(self)->handle_message(m);
    });
    mosquitto_subscribe_callback_set(mosq_, [](mosquitto*, void* self, int mid, int n, const int* granted) {
      static_cast<MosquittoClient*>(self)->handle_suback(mid, n, granted);
    });
    mosquitto_publish_callback_set(
        mosq_, [](mosquitto*, void* self, int mid) { static_cast<MosquittoClient*>(self)->handle_puback(mid); });
    return ok_status();
  }

  void on_message(MessageHandler handler) override {
    std::lock_guard lock(mu_);
    message_handler_ = std::move(handler);
  }
  void on_connection(ConnectHandler handler) override {
    std::lock_guard lock(mu_);
    connect_handler_ = std::move(handler);
  }

  // Tries the brokers in turn until one takes the TCP connection.
  Status connect(int wait_s) override {
    std::string errors;
    bool reached = false;
    for (size_t k = 0; k < brokers_.size() && !reached; ++k) {
      const size_t i = (first_ + k) % brokers_.size();
      const MqttBroker& b = brokers_[i];
      int rc = mosquitto_connect(mosq_, b.host.c_str(), b.port, opt_.keepalive_s);
      if (rc == MOSQ_ERR_SUCCESS) {
        current_ = i;
        reached = true;
        break;
      }
      std::string why = rc == MOSQ_ERR_ERRNO ? std::strerror(errno) : mosquitto_strerror(rc);
      errors += fmt::format("{}{}:{}: {}", errors.empty() ? "" : "; ", b.host, b.port, why);
    }
    if (!reached) return make_error(ErrorCode::kUnavailable, "mqtt: cannot connect to {}", errors);
    if (auto st = start_loop(); !st.ok()) return st;
    if (wait_s <= 0) return ok_status();
    const std::string where = current_broker();
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, std::chrono::seconds(wait_s), [&] { return connected_ || connack_rc_ > 0; }))
      return make_error(ErrorCode::kUnavailable, "mqtt: no CONNACK from {} within {} s", where, wait_s);
    if (!connected_)
      return make_error(ErrorCode::kPermissionDenied, "mqtt: {} refused the connection: {}", where,
                        mosquitto_connack_string(connack_rc_));
    return ok_status();
  }

  Status start_background() override {
    const MqttBroker& b = brokers_[first_];
    int rc = mosquitto_connect_async(mosq_, b.host.c_str(), b.port, opt_.keepalive_s);
    // An unreachable broker is fine here: the network thread keeps retrying (the next one).
    (void)rc;
    return start_loop();
  }

  std::string current_broker() const override {
    const MqttBroker& b = brokers_[current_.load() % brokers_.size()];
    return b.host.find(':') != std::string::npos ? fmt::format("[{}]:{}", b.host, b.port)
                                                 : fmt::format("{}:{}", b.host, b.port);
  }

  bool connected() const override {
    std::lock_guard lock(mu_);
    return connected_;
  }

  void disconnect() override {
    if (!loop_started_) return;
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    mosquitto_disconnect(mosq_);
    if (loop_.joinable()) loop_.join();
    loop_started_ = false;
  }

  Result<int> subscribe(const std::string& filter, int qos, int wait_s) override {
    int mid = 0;
    int rc = mosquitto_subscribe(mosq_, &mid, filter.c_str(), qos);
    if (rc != MOSQ_ERR_SUCCESS)
      return make_error(ErrorCode::kUnavailable, "mqtt: subscribe '{}': {}", filter, mosquitto_strerror(rc));
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, std::chrono::seconds(wait_s), [&] { return subacks_.count(mid) > 0; }))
      return make_error(ErrorCode::kUnavailable, "mqtt: no SUBACK for '{}' within {} s", filter, wait_s);
    int granted = subacks_[mid];
    subacks_.erase(mid);
    return granted;
  }

  Status publish(const std::string& topic, std::string_view payload, int qos, bool retain, int wait_s) override {
    int mid = 0;
    int rc =
        mosquitto_publish(mosq_, &mid, topic.c_str(), static_cast<int>(payload.size()), payload.data(), qos, retain);
    if (rc != MOSQ_ERR_SUCCESS && rc != MOSQ_ERR_NO_CONN)
      return make_error(ErrorCode::kUnavailable, "mqtt: publish '{}': {}", topic, mosquitto_strerror(rc));
    if (rc == MOSQ_ERR_NO_CONN && wait_s > 0)
      return make_error(ErrorCode::kUnavailable, "mqtt: publish '{}': not connected", topic);
    if (rc == MOSQ_ERR_SUCCESS) track(mid, qos);
    if (qos == 0 || wait_s <= 0) return ok_status();
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, std::chrono::seconds(wait_s), [&] { return pubacks_.count(mid) > 0; }))
      return make_error(ErrorCode::kUnavailable, "mqtt: no PUBACK for '{}' within {} s", topic, wait_s);
    pubacks_.erase(mid);
    return ok_status();
  }

  Status publish_many(const std::vector<MqttOutgoing>& messages, bool retain, int wait_s) override {
    std::lock_guard one_call(many_mu_);
    const size_t window = static_cast<size_t>(opt_.max_inflight);
    const auto patience = std::chrono::seconds(std::max(wait_s, 1));
    Status first_error = ok_status();
    bool stalled = false;
    std::unique_lock lock(mu_);
    awaited_.clear();
    // Waits until fewer than `limit` are unacknowledged; false when no PUBACK came for `patience`.
    auto wait_below = [&](size_t limit) {
      while (awaited_.size() >= limit && limit > 0) {
        const size_t before = awaited_.size();
        if (!cv_.wait_for(lock, patience, [&] { return awaited_.size() < before; })) return false;
      }
      return true;
    };
    for (const auto& m : messages) {
      if (!stalled && !wait_below(window)) stalled = true;
      lock.unlock();
      const auto sent_at = Clock::now();
      int mid = 0;
      int rc = mosquitto_publish(mosq_, &mid, m.topic.c_str(), static_cast<int>(m.payload.size()), m.payload.data(),
                                 1, retain);
      // MOSQ_ERR_NO_CONN: queued, sent after the next connect.
      if (rc == MOSQ_ERR_SUCCESS || rc == MOSQ_ERR_NO_CONN) track(mid, 1);
      lock.lock();
      if (rc == MOSQ_ERR_SUCCESS || rc == MOSQ_ERR_NO_CONN) {
        // Its PUBACK may be in already (not an older one for the same 16-bit id).
        auto early = pubacks_.find(mid);
        if (early != pubacks_.end() && early->second >= sent_at)
          pubacks_.erase(early);
        else
          awaited_.insert(mid);
      } else if (first_error.ok()) {
        first_error = make_error(ErrorCode::kUnavailable, "mqtt: publish '{}': {}", m.topic, mosquitto_strerror(rc));
      }
    }
    if (!stalled) stalled = !wait_below(1);
    const size_t left = awaited_.size();
    awaited_.clear();
    if (!first_error.ok()) return first_error;
    if (stalled)
      return make_error(ErrorCode::kUnavailable,
                        "mqtt: {} of {} publishes not acknowledged within {} s (they are sent again after a reconnect)",
                        left, messages.size(), std::max(wait_s, 1));
    return ok_status();
  }

  Result<int> publish_tracked(const std::string& topic, std::string_view payload, int qos) override {
    if (!connected()) return make_error(ErrorCode::kUnavailable, "mqtt: publish '{}': not connected", topic);
    int mid = 0;
    int rc = mosquitto_publish(mosq_, &mid, topic.c_str(), static_cast<int>(payload.size()), payload.data(), qos,
                               /*retain=*/false);
    if (rc != MOSQ_ERR_SUCCESS)
      return make_error(ErrorCode::kUnavailable, "mqtt: publish '{}': {}", topic, mosquitto_strerror(rc));
    track(mid, qos);
    return mid;
  }

  void on_published(PublishedHandler handler) override {
    std::lock_guard lock(mu_);
    published_handler_ = std::move(handler);
  }

  uint64_t dropped_oversize() const override { return dropped_.load(); }

 private:
  Status start_loop() {
    if (loop_started_) return ok_status();
    loop_started_ = true;
    loop_ = std::thread([this] { run_loop(); });
    return ok_status();
  }

  // A QoS 1 publish waits for its PUBACK here (only with a stall timeout). An ack that came in
  // before this runs is already in pubacks_.
  void track(int mid, int qos) {
    if (qos == 0 || opt_.stall_timeout_s <= 0) return;
    std::lock_guard lock(mu_);
    if (pubacks_.count(mid) > 0) return;
    unacked_[mid] = Clock::now();
    if (unacked_.size() > 65536) unacked_.erase(unacked_.begin());  // mids are 16-bit
  }

  // Why the connection looks stalled ("" if it does not).
  std::string stalled() {
    if (opt_.stall_timeout_s <= 0) return {};
    const auto limit = std::chrono::seconds(opt_.stall_timeout_s);
    const auto now = Clock::now();
    std::lock_guard lock(mu_);
    if (!connected_) {
      if (now - attempt_start_ > limit) return fmt::format("no CONNACK within {} s", opt_.stall_timeout_s);
      return {};
    }
    for (const auto& [mid, since] : unacked_)
      if (now - since > limit) return fmt::format("no PUBACK within {} s", opt_.stall_timeout_s);
    return {};
  }

  bool stopping() {
    std::lock_guard lock(mu_);
    return stop_;
  }

  // Runs one connection (or connection attempt) until it ends; returns why it ended.
  std::string run_connection() {
    for (;;) {
      int rc = mosquitto_loop(mosq_, 500, 1);
      if (stopping()) {
        // Let the DISCONNECT that disconnect() queued go out (the broker then drops the will).
        for (int i = 0; i < 4 && mosquitto_socket(mosq_) >= 0; ++i) mosquitto_loop(mosq_, 500, 1);
        return {};
      }
      if (rc != MOSQ_ERR_SUCCESS) return rc == MOSQ_ERR_ERRNO ? std::strerror(errno) : mosquitto_strerror(rc);
      if (std::string why = stalled(); !why.empty()) return why;
    }
  }

  // libmosquitto's own loop reconnects to one host only and gives up for good on a TLS or
  // protocol error (a broker killed mid-stream ends in one); this one reconnects after any error,
  // moving on to the next broker of the list, until disconnect(). A lost connection is made again
  // at once to the next broker; a whole round of failed attempts waits (backoff, up to
  // reconnect_max_s) before the next round.
  void run_loop() {
    int delay = std::max(opt_.reconnect_min_s, 1);
    size_t failed_attempts = 0;  // since the last CONNACK
    for (;;) {
      {
        std::lock_guard lock(mu_);
        attempt_start_ = Clock::now();
      }
      std::string why = run_connection();
      std::unique_lock lock(mu_);
      if (stop_) return;
      // The callback did not run (a TLS error, a stall): say so now. A stalled socket is closed
      // by the reconnect below.
      if (connected_) {
        connected_ = false;
        lock.unlock();
        handle_disconnect_why(why.empty() ? std::string(mosquitto_strerror(MOSQ_ERR_CONN_LOST)) : why);
        lock.lock();
      }
      // With one broker every attempt waits; with several, a lost connection goes on to the next
      // at once, and only a whole round of failed attempts waits.
      bool wait = brokers_.size() == 1;
      if (ever_connected_) {
        delay = std::max(opt_.reconnect_min_s, 1);
        ever_connected_ = false;
        failed_attempts = 0;
      } else if (++failed_attempts % brokers_.size() == 0) {
        wait = true;
      }
      const size_t next = (current_.load() + 1) % brokers_.size();
      if (wait) {
        cv_.wait_for(lock, std::chrono::seconds(delay), [&] { return stop_; });
        if (stop_) return;
        delay = std::min(delay * 2, std::max(opt_.reconnect_max_s, 1));
      }
      lock.unlock();
      if (next == current_.load()) {
        mosquitto_reconnect(mosq_);  // failures show up as the next loop returning at once
      } else {
        current_ = next;
        // A new host for the same client: its session (clean_session=false) and the QoS 1
        // messages not yet acknowledged carry over.
        mosquitto_connect_async(mosq_, brokers_[next].host.c_str(), brokers_[next].port, opt_.keepalive_s);
      }
    }
  }

  void handle_connect(int rc) {
    ConnectHandler handler;
    {
      std::lock_guard lock(mu_);
      connected_ = rc == 0;
      if (rc == 0) {
        ever_connected_ = true;
        // libmosquitto sends the unacknowledged ones again now: their wait starts over.
        for (auto& [mid, since] : unacked_) since = Clock::now();
      }
      connack_rc_ = rc;
      handler = connect_handler_;
    }
    cv_.notify_all();
    if (handler) handler(rc == 0, rc == 0 ? std::string() : mosquitto_connack_string(rc));
  }

  void handle_disconnect(int rc) { handle_disconnect_why(rc == 0 ? "disconnected" : mosquitto_strerror(rc)); }
  void handle_disconnect_why(const std::string& why) {
    ConnectHandler handler;
    {
      std::lock_guard lock(mu_);
      connected_ = false;
      handler = connect_handler_;
    }
    cv_.notify_all();
    if (handler) handler(false, fmt::format("{} ({})", why, current_broker()));
  }

  void handle_message(const mosquitto_message* m) {
    if (m == nullptr || m->topic == nullptr || m->payloadlen < 0) return;
    if (static_cast<size_t>(m->payloadlen) > max_payload_) {
      dropped_.fetch_add(1);
      return;
    }
    MessageHandler handler;
    {
      std::lock_guard lock(mu_);
      handler = message_handler_;
    }
    if (!handler) return;
    MqttMessage msg;
    msg.topic = m->topic;
    msg.payload.assign(static_cast<const char*>(m->payload), static_cast<size_t>(m->payloadlen));
    msg.qos = m->qos;
    msg.retain = m->retain;
    handler(msg);
  }

  void handle_suback(int mid, int n, const int* granted) {
    {
      std::lock_guard lock(mu_);
      subacks_[mid] = n > 0 ? granted[0] : 0x80;
    }
    cv_.notify_all();
  }

  void handle_puback(int mid) {
    PublishedHandler handler;
    {
      std::lock_guard lock(mu_);
      if (awaited_.erase(mid) == 0) {
        pubacks_[mid] = Clock::now();
        if (pubacks_.size() > 4096) pubacks_.erase(pubacks_.begin());  // acks nobody waits for
      }
      unacked_.erase(mid);
      handler = published_handler_;
    }
    cv_.notify_all();
    if (handler) handler(mid);
  }

  MqttOptions opt_;
  size_t max_payload_;
  std::vector<MqttBroker> brokers_;  // host:port, then the failover list
  size_t first_ = 0;                 // where this client starts in brokers_
  std::atomic<size_t> current_{0};   // the one connected to or being tried
  Clock::time_point attempt_start_ = Clock::now();
  std::map<int, Clock::time_point> unacked_;  // QoS 1 mids without PUBACK (with a stall timeout)
  mosquitto* mosq_ = nullptr;
  bool loop_started_ = false;
  std::thread loop_;
  bool stop_ = false;
  bool ever_connected_ = false;  // since the last backoff reset
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool connected_ = false;
  int connack_rc_ = -1;
  std::map<int, int> subacks_;
  std::map<int, Clock::time_point> pubacks_;  // acknowledged mids (when)
  std::set<int> awaited_;  // publish_many's mids without PUBACK
  std::mutex many_mu_;     // one publish_many at a time
  MessageHandler message_handler_;
  ConnectHandler connect_handler_;
  PublishedHandler published_handler_;
  std::atomic<uint64_t> dropped_{0};
};

}  // namespace

Result<std::unique_ptr<MqttClient>> MqttClient::create(const MqttOptions& options, size_t max_payload) {
  auto client = std::make_unique<MosquittoClient>(options, max_payload);
  if (auto st = client->init(); !st.ok()) return st;
  return std::unique_ptr<MqttClient>(std::move(client));
}

}  // namespace hearth::fleet
