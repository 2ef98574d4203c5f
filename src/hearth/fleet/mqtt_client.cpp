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
#include <thread>

#include "hearth/core/status.h"

namespace hearth::fleet {
namespace {

std::once_flag g_lib_init;

class MosquittoClient final : public MqttClient {
 public:
  MosquittoClient(const MqttOptions& options, size_t max_payload) : opt_(options), max_payload_(max_payload) {}

  ~MosquittoClient() override {
    disconnect();
    if (mosq_ != nullptr) mosquitto_destroy(mosq_);
  }

  Status init() {
    std::call_once(g_lib_init, [] { mosquitto_lib_init(); });
    if (opt_.keepalive_s != 0 && (opt_.keepalive_s < 5 || opt_.keepalive_s > 65535))
      return make_error(ErrorCode::kInvalidArgument, "mqtt: keepalive {} s is not 0 or 5-65535", opt_.keepalive_s);
    mosq_ = mosquitto_new(opt_.client_id.empty() ? nullptr : opt_.client_id.c_str(), opt_.clean_session, this);
    if (mosq_ == nullptr) return make_error(ErrorCode::kInternal, "mqtt: cannot create a client (out of memory?)");
    mosquitto_int_option(mosq_, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
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

  Status connect(int wait_s) override {
    int rc = mosquitto_connect(mosq_, opt_.host.c_str(), opt_.port, opt_.keepalive_s);
    if (rc != MOSQ_ERR_SUCCESS) {
      std::string why = rc == MOSQ_ERR_ERRNO ? std::strerror(errno) : mosquitto_strerror(rc);
      return make_error(ErrorCode::kUnavailable, "mqtt: cannot connect to {}:{}: {}", opt_.host, opt_.port, why);
    }
    if (auto st = start_loop(); !st.ok()) return st;
    if (wait_s <= 0) return ok_status();
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, std::chrono::seconds(wait_s), [&] { return connected_ || connack_rc_ > 0; }))
      return make_error(ErrorCode::kUnavailable, "mqtt: no CONNACK from {}:{} within {} s", opt_.host, opt_.port,
                        wait_s);
    if (!connected_)
      return make_error(ErrorCode::kPermissionDenied, "mqtt: {}:{} refused the connection: {}", opt_.host, opt_.port,
                        mosquitto_connack_string(connack_rc_));
    return ok_status();
  }

  Status start_background() override {
    int rc = mosquitto_connect_async(mosq_, opt_.host.c_str(), opt_.port, opt_.keepalive_s);
    // An unreachable broker is fine here: the network thread keeps retrying.
    (void)rc;
    return start_loop();
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
    if (qos == 0 || wait_s <= 0) return ok_status();
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, std::chrono::seconds(wait_s), [&] { return pubacks_.count(mid) > 0; }))
      return make_error(ErrorCode::kUnavailable, "mqtt: no PUBACK for '{}' within {} s", topic, wait_s);
    pubacks_.erase(mid);
    return ok_status();
  }

  Result<int> publish_tracked(const std::string& topic, std::string_view payload, int qos) override {
    if (!connected()) return make_error(ErrorCode::kUnavailable, "mqtt: publish '{}': not connected", topic);
    int mid = 0;
    int rc = mosquitto_publish(mosq_, &mid, topic.c_str(), static_cast<int>(payload.size()), payload.data(), qos,
                               /*retain=*/false);
    if (rc != MOSQ_ERR_SUCCESS)
      return make_error(ErrorCode::kUnavailable, "mqtt: publish '{}': {}", topic, mosquitto_strerror(rc));
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

  // libmosquitto's own loop gives up for good on a TLS or protocol error (a broker killed
  // mid-stream ends in one); this one reconnects after any error, with backoff, until disconnect().
  void run_loop() {
    int delay = std::max(opt_.reconnect_min_s, 1);
    for (;;) {
      mosquitto_loop_forever(mosq_, 1000, 1);
      std::unique_lock lock(mu_);
      if (stop_) return;
      if (connected_) {  // the callback did not run (e.g. TLS error): say so now
        connected_ = false;
        lock.unlock();
        handle_disconnect(MOSQ_ERR_CONN_LOST);
        lock.lock();
      }
      if (ever_connected_) delay = std::max(opt_.reconnect_min_s, 1), ever_connected_ = false;
      cv_.wait_for(lock, std::chrono::seconds(delay), [&] { return stop_; });
      if (stop_) return;
      delay = std::min(delay * 2, std::max(opt_.reconnect_max_s, 1));
      lock.unlock();
      mosquitto_reconnect(mosq_);  // failures show up as the next loop_forever returning at once
    }
  }

  void handle_connect(int rc) {
    ConnectHandler handler;
    {
      std::lock_guard lock(mu_);
      connected_ = rc == 0;
      if (rc == 0) ever_connected_ = true;
      connack_rc_ = rc;
      handler = connect_handler_;
    }
    cv_.notify_all();
    if (handler) handler(rc == 0, rc == 0 ? std::string() : mosquitto_connack_string(rc));
  }

  void handle_disconnect(int rc) {
    ConnectHandler handler;
    {
      std::lock_guard lock(mu_);
      connected_ = false;
      handler = connect_handler_;
    }
    cv_.notify_all();
    if (handler) handler(false, rc == 0 ? "disconnected" : mosquitto_strerror(rc));
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
      pubacks_[mid] = true;
      if (pubacks_.size() > 4096) pubacks_.erase(pubacks_.begin());  // acks nobody waits for
      handler = published_handler_;
    }
    cv_.notify_all();
    if (handler) handler(mid);
  }

  MqttOptions opt_;
  size_t max_payload_;
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
  std::map<int, bool> pubacks_;
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
