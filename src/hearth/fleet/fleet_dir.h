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

struct FleetInitOptions {
  std::string name = "default";
  std::string controller_url = "https://127.0.0.1:8443";
  std::string broker_url = "mqtts://127.0.0.1:8883";
  int ca_validity_days = 3650;
  int cert_validity_days = 825;
};

struct FleetInfo {
  std::string dir;
  std::string name;
  Endpoint controller;
  Endpoint broker;
  std::string ca_sha256;       // of ca.crt's DER: what `agent enroll --ca-sha256` pins
  std::string desired_key_id;  // sha256 hex of the desired-state signing key's public PEM

  std::string ca_cert_path() const { return dir + "/ca/ca.crt"; }
  std::string ca_key_path() const { return dir + "/ca/ca.key"; }
  std::string controller_cert_path() const { return dir + "/controller/controller.crt"; }
  std::string controller_key_path() const { return dir + "/controller/controller.key"; }
  std::string desired_key_path() const { return dir + "/controller/desired-signing.key"; }
  std::string desired_pub_path() const { return dir + "/controller/desired-signing.pub"; }
  std::string admin_token_path() const { return dir + "/controller/admin.token"; }
  std::string mosquitto_conf_path() const { return dir + "/broker/mosquitto.conf"; }
  std::string acl_path() const { return dir + "/broker/acl"; }
};

// Creates DIR (which must not exist or be empty) with everything above. Refuses to overwrite
// an existing fleet.
Result<FleetInfo> init_fleet(const std::string& dir, const FleetInitOptions& options);
Result<FleetInfo> load_fleet(const std::string& dir);

// The ACL text for `fleet` (what init_fleet writes): the controller may read and write the
// fleet's topics; a node, whose MQTT username is its certificate CN, may read only its own
// desired topic and write only its own reported, telemetry, events and presence topics.
std::string mosquitto_acl(std::string_view fleet);

}  // namespace hearth::fleet
