// MqttClient: the fleet's one MQTT 3.1.1 adapter (libmosquitto is seen only by mqtt_client.cpp).
// TLS with a client certificate (mutual TLS), a last will, automatic reconnection with backoff,
// and callbacks on libmosquitto's network thread. Works with any MQTT 3.1.1 broker, and with
// the members of a broker cluster (NATS's MQTT listeners, bridged Mosquittos): given several
// addresses, it moves to the next one whenever a connection fails or drops.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hearth/core/status.h"

namespace hearth::fleet {

struct MqttBroker {
  std::string host;
  int port = 8883;
};

struct MqttOptions {
  std::string host = "127.0.0.1";
  int port = 8883;
  // More brokers of the same cluster (or bridged brokers). With several, a client starts at a
  // place in the list chosen by its client id (so clients spread over the members), and a
  // connection that fails or drops is made again to the next address, round-robin. The session
  // (clean_session=false) lives on the cluster, so subscriptions and queued QoS 1 messages follow.
  std::vector<MqttBroker> failover;
  // > 0: a connection that has not had its CONNACK, or has a QoS 1 publish without PUBACK, for
  // this long is dropped and made again (to the next broker); libmosquitto resends the
  // unacknowledged publishes then. A clustered broker that lost a member can hold acks back
  // while it elects new leaders; a single broker never needs this (0: off).
  int stall_timeout_s = 0;
  std::string client_id;  // unique per connection; a broker drops an older session with the same id
  std::string ca_file;    // the fleet CA: the broker's certificate must chain to it
  std::string cert_file;  // this client's certificate and key (mTLS); empty: no client certificate
  std::string key_file;
  int keepalive_s = 30;
  bool clean_session = true;
  // The last will, published by the broker when this client disappears without a DISCONNECT.
  std::string will_topic, will_payload;
  bool will_retain = true;
  int reconnect_min_s = 1, reconnect_max_s = 30;
  // QoS 1 publishes in flight (sent, PUBACK not yet in) at once, 1-65535: more wait in the
  // client's queue. Also publish_many's window.
  int max_inflight = 20;
};

struct MqttOutgoing {
  std::string topic;
  std::string payload;
};

struct MqttMessage {
  std::string topic;
  std::string payload;
  int qos = 0;
  bool retain = false;
};

class MqttClient {
 public:
  using MessageHandler = std::function<void(const MqttMessage&)>;
  using ConnectHandler = std::function<void(bool connected, const std::string& why)>;
  using PublishedHandler = std::function<void(int mid)>;

  // Messages larger than `max_payload` are dropped by the adapter (and counted) before any
  // handler sees them.
  static Result<std::unique_ptr<MqttClient>> create(const MqttOptions& options, size_t max_payload);
  virtual ~MqttClient() = default;

  virtual void on_message(MessageHandler handler) = 0;
  // Called on every connect (true) and disconnect (false); subscriptions are best redone here.
  virtual void on_connection(ConnectHandler handler) = 0;

  // Connects (TLS handshake included) and starts the network thread. An error names the broker
  // and the reason (refused certificate, not authorised, unreachable). With `wait_s` > 0 it
  // waits that long for the CONNACK.
  virtual Status connect(int wait_s) = 0;
  // Starts the network thread without requiring the broker to be up: it keeps retrying.
  virtual Status start_background() = 0;
  virtual bool connected() const = 0;
  virtual void disconnect() = 0;

  // Returns after the SUBACK (up to `wait_s`) with the granted QoS (0x80: refused). Mosquitto
  // 2.0 grants a subscription that its ACL forbids and then withholds every message on it.
  virtual Result<int> subscribe(const std::string& topic_filter, int qos, int wait_s) = 0;
  // Queues a publish; with QoS 1 and `wait_s` > 0 waits for the PUBACK.
  virtual Status publish(const std::string& topic, std::string_view payload, int qos, bool retain, int wait_s) = 0;
  // Pipelined QoS 1 publishes: sends them without waiting for each PUBACK, with at most
  // max_inflight unacknowledged at a time (a slot frees when a PUBACK comes in), and returns
  // when every one is acknowledged. When no PUBACK came for `wait_s` (a lost or stalled
  // connection), the rest are queued without a window and kUnavailable says how many are
  // unacknowledged: the client sends them after its next connect. One call at a time (others wait).
  virtual Status publish_many(const std::vector<MqttOutgoing>& messages, bool retain, int wait_s) = 0;
  // Queues a publish and returns its message id at once; the published handler gets that id
  // when the broker has it (QoS 1: the PUBACK). Errors (kUnavailable) when not connected: the
  // caller keeps the message and sends it again after the next connect.
  virtual Result<int> publish_tracked(const std::string& topic, std::string_view payload, int qos) = 0;
  // Called on the network thread for every acknowledged publish.
  virtual void on_published(PublishedHandler handler) = 0;

  virtual uint64_t dropped_oversize() const = 0;
  // The broker of the current (or last) connection, "host:port".
  virtual std::string current_broker() const = 0;
};

}  // namespace hearth::fleet
