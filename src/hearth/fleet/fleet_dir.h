// A fleet directory, made once by `hearth fleet init DIR` on the operator's machine:
//
//   DIR/fleet.json                 name, controller and broker URLs, CA fingerprint, signing key id
//   DIR/ca/ca.crt, ca.key          the fleet CA (P-256); ca.key never leaves this directory
//   DIR/controller/                the controller's TLS identity (server + MQTT client, CN
//                                  hearth-controller), its desired-state signing key and the
//                                  admin credential for the HTTPS API
//   DIR/broker/                    what Mosquitto reads: the CA certificate, the broker's
//                                  certificate and key, mosquitto.conf, the ACL, and data/
//
// Every file is written atomically; keys are 0600. When run as root and the system has a
// `mosquitto` user, the broker's files are group-readable by that user and mosquitto.conf says
// `user mosquitto`, since Mosquitto drops to that user before it reads them.
#pragma once

#include <string>
#include <vector>

#include "hearth/core/status.h"

namespace hearth::fleet {

inline constexpr std::string_view kControllerIdentity = "hearth-controller";

struct Endpoint {
  std::string scheme;  // "https" or "mqtts"
  std::string host;
  int port = 0;
  std::string to_string() const;
};
// Parses "scheme://host:port" (IPv6 hosts in brackets); `scheme` must match.
Result<Endpoint> parse_endpoint(std::string_view url, std::string_view scheme, int default_port);
// A comma-separated list of such URLs (1-16, spaces around commas allowed): the members of a
// broker cluster. One URL is a list of one.
Result<std::vector<Endpoint>> parse_endpoints(std::string_view urls, std::string_view scheme, int default_port);
std::string endpoints_to_string(const std::vector<Endpoint>& endpoints);  // comma-separated

struct FleetInitOptions {
  std::string name = "default";
  std::string controller_url = "https://127.0.0.1:8443";
  std::string broker_url = "mqtts://127.0.0.1:8883";  // or a comma-separated list (a cluster)
  int ca_validity_days = 3650;
  int cert_validity_days = 825;
};

struct FleetInfo {
  std::string dir;
  std::string name;
  Endpoint controller;
  Endpoint broker;                // the first of `brokers`
  std::vector<Endpoint> brokers;  // every broker URL of fleet.json's broker_url (a cluster: several)
  std::string ca_sha256;          // of ca.crt's DER: what `agent enroll --ca-sha256` pins
  std::string desired_key_id;     // sha256 hex of the desired-state signing key's public PEM

  std::string ca_cert_path() const { return dir + "/ca/ca.crt"; }
  std::string ca_key_path() const { return dir + "/ca/ca.key"; }
  std::string controller_cert_path() const { return dir + "/controller/controller.crt"; }
  std::string controller_key_path() const { return dir + "/controller/controller.key"; }
  std::string desired_key_path() const { return dir + "/controller/desired-signing.key"; }
  std::string desired_pub_path() const { return dir + "/controller/desired-signing.pub"; }
  std::string admin_token_path() const { return dir + "/controller/admin.token"; }
  std::string mosquitto_conf_path() const { return dir + "/broker/mosquitto.conf"; }
  std::string acl_path() const { return dir + "/broker/acl"; }
  std::string broker_urls() const { return endpoints_to_string(brokers); }
};

// Creates DIR (which must not exist or be empty) with everything above. Refuses to overwrite
// an existing fleet.
Result<FleetInfo> init_fleet(const std::string& dir, const FleetInitOptions& options);
Result<FleetInfo> load_fleet(const std::string& dir);

// The ACL text for `fleet` (what init_fleet writes): the controller may read and write the
// fleet's topics; a node, whose MQTT username is its certificate CN, may read only its own
// desired topic and write only its own reported, telemetry, events and presence topics.
std::string mosquitto_acl(std::string_view fleet);

// NATS as the fleet's broker cluster (nats-server's MQTT listener, sessions and retained
// messages in JetStream, replicated on 3 servers). One configuration per server; they differ in
// name, ports and store. Each client is known by its certificate's subject (verify_and_map:
// "CN=<node id>"), and NATS has no per-user pattern like Mosquitto's %u: every node that may
// connect is listed, with permissions on its own subjects only (MQTT topic a/b is subject a.b),
// and the list is made again (and the servers reloaded, SIGHUP) when nodes join.
struct NatsServerOptions {
  std::string name;                 // server_name, unique in the cluster
  std::string host = "127.0.0.1";   // where its listeners bind
  int mqtt_port = 8883;             // the fleet's broker URL for this server
  int cluster_port = 6222;          // routes between the servers
  int client_port = -1;             // NATS protocol; -1: any free port (hearth does not use it)
  int monitor_port = 0;             // HTTP monitoring (/healthz, /jsz); 0: off
  std::vector<std::string> routes;  // the other servers' cluster "host:port"
  std::string store_dir;            // JetStream's files
  int replicas = 3;                 // of the MQTT streams and consumers
};
std::string nats_server_conf(const FleetInfo& fleet, const NatsServerOptions& server,
                             const std::vector<std::string>& node_ids);

}  // namespace hearth::fleet
