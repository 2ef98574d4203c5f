#include "hearth/fleet/fleet_dir.h"

#include <arpa/inet.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "hearth/core/atomic_file.h"
#include "hearth/core/status.h"
#include "hearth/fleet/pki.h"
#include "hearth/fleet/protocol.h"
#include "hearth/trust/signing_key.h"

namespace hearth::fleet {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr std::string_view kFleetSchema = "hearth.fleet/v1";

bool is_ip_literal(const std::string& host) {
  unsigned char buf[16];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

Status write_file(const std::string& path, std::string_view data, mode_t mode) {
  if (auto st = write_file_atomic(path, data); !st.ok()) return st;
  if (chmod(path.c_str(), mode) != 0) return make_error(ErrorCode::kIo, "chmod {}: {}", path, std::strerror(errno));
  return ok_status();
}

Status make_dir(const std::string& path, mode_t mode) {
  if (mkdir(path.c_str(), mode) != 0 && errno != EEXIST)
    return make_error(ErrorCode::kIo, "mkdir {}: {}", path, std::strerror(errno));
  if (chmod(path.c_str(), mode) != 0) return make_error(ErrorCode::kIo, "chmod {}: {}", path, std::strerror(errno));
  return ok_status();
}

// Server identities answer to their URLs' hosts (every broker of a cluster shares one), plus
// loopback names for local use.
IssueOptions server_identity(std::string cn, const std::vector<Endpoint>& eps, CertUsage usage, int days) {
  IssueOptions o;
  o.common_name = std::move(cn);
  o.usage = usage;
  o.validity_days = days;
  o.dns_names = {"localhost"};
  o.ip_addresses = {"127.0.0.1", "::1"};
  for (const Endpoint& ep : eps) {
    auto& list = is_ip_literal(ep.host) ? o.ip_addresses : o.dns_names;
    if (std::find(list.begin(), list.end(), ep.host) == list.end()) list.push_back(ep.host);
  }
  return o;
}

std::string mosquitto_conf(const FleetInfo& f, const std::string& run_as_user) {
  std::string bind = is_ip_literal(f.broker.host) ? f.broker.host : "0.0.0.0";
  std::string b = f.dir + "/broker";
  std::string conf = fmt::format(
      "# Mosquitto configuration for hearth fleet '{}', written by `hearth fleet init`.\n"
      "# Start the broker with: mosquitto -c {}\n"
      "per_listener_settings false\n"
      "allow_anonymous false\n"
      "persistence true\n"
      "persistence_location {}/data/\n"
      "log_dest stderr\n"
      "log_type error\n"
      "log_type warning\n"
      "log_type notice\n"
      "# hearth's payloads are capped at 256 KiB; a larger packet is refused by the broker too.\n"
      "max_packet_size 1048576\n"
      "# Per client. A node is sent little (its desired state), but the controller receives every\n"
      "# node's reports: with 1000 it dropped reports at 1000 nodes (bench/fleet_scale). Bounded\n"
      "# in bytes too, so a controller that is away cannot make the broker grow without limit.\n"
      "max_queued_messages 200000\n"
      "max_queued_bytes 268435456\n"
      "acl_file {}/acl\n"
      "\n"
      "listener {} {}\n"
      "protocol mqtt\n"
      "cafile {}/ca.crt\n"
      "certfile {}/broker.crt\n"
      "keyfile {}/broker.key\n"
      "tls_version tlsv1.2\n"
      "# Mutual TLS: every client presents a certificate of the fleet CA, and its CN is its\n"
      "# MQTT username (a node id, or hearth-controller), which the ACL goes by.\n"
      "require_certificate true\n"
      "use_identity_as_username true\n",
      f.name, f.mosquitto_conf_path(), b, b, f.broker.port, bind, b, b, b);
  if (!run_as_user.empty())
    conf += fmt::format("# Mosquitto started as root drops to this user before it reads the files above.\nuser {}\n",
                        run_as_user);
  return conf;
}

}  // namespace

std::string Endpoint::to_string() const {
  bool v6 = host.find(':') != std::string::npos;
  return fmt::format("{}://{}{}{}:{}", scheme, v6 ? "[" : "", host, v6 ? "]" : "", port);
}

Result<Endpoint> parse_endpoint(std::string_view url, std::string_view scheme, int default_port) {
  auto bad = [&](std::string_view why) {
    return make_error(ErrorCode::kInvalidArgument, "'{}': {} (expected {}://HOST[:PORT])", url.substr(0, 200), why,
                      scheme);
  };
  std::string prefix = std::string(scheme) + "://";
  if (url.substr(0, prefix.size()) != prefix) return bad(fmt::format("not a {} URL", scheme));
  std::string_view rest = url.substr(prefix.size());
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  Endpoint ep;
  ep.scheme = std::string(scheme);
  ep.port = default_port;
  std::string_view port_text;
  if (!rest.empty() && rest.front() == '[') {
    size_t close = rest.find(']');
    if (close == std::string_view::npos) return bad("unclosed '['");
    ep.host = std::string(rest.substr(1, close - 1));
    rest.remove_prefix(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return bad("junk after the address");
      port_text = rest.substr(1);
    }
  } else {
    size_t colon = rest.rfind(':');
    ep.host = std::string(rest.substr(0, colon));
    if (colon != std::string_view::npos) port_text = rest.substr(colon + 1);
  }
  if (ep.host.empty() || ep.host.size() > 253) return bad("no host");
  for (char c : ep.host)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':'))
      return bad("the host has characters other than letters, digits, '.', '-' and ':'");
  if (!port_text.empty()) {
    int p = 0;
    for (char c : port_text) {
      if (c < '0' || c > '9' || p > 65535) return bad("the port is not a number");
      p = p * 10 + (c - '0');
    }
    if (p < 1 || p > 65535) return bad("the port is not within 1-65535");
    ep.port = p;
  }
  return ep;
}

Result<std::vector<Endpoint>> parse_endpoints(std::string_view urls, std::string_view scheme, int default_port) {
  std::vector<Endpoint> out;
  size_t start = 0;
  for (;;) {
    size_t comma = urls.find(',', start);
    std::string_view one = urls.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    while (!one.empty() && one.front() == ' ') one.remove_prefix(1);
    while (!one.empty() && one.back() == ' ') one.remove_suffix(1);
    if (out.size() == 16)
      return make_error(ErrorCode::kInvalidArgument, "'{}': more than 16 URLs", urls.substr(0, 200));
    auto ep = parse_endpoint(one, scheme, default_port);
    if (!ep.ok()) return ep.status();
    out.push_back(*ep);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

std::string endpoints_to_string(const std::vector<Endpoint>& endpoints) {
  std::string s;
  for (const Endpoint& e : endpoints) s += (s.empty() ? "" : ",") + e.to_string();
  return s;
}

std::string mosquitto_acl(std::string_view fleet) {
  return fmt::format(
      "# Mosquitto ACL for hearth fleet '{0}', written by `hearth fleet init`.\n"
      "# Usernames are certificate CNs (use_identity_as_username).\n"
      "\n"
      "# Every node (%u = its node id): its own desired state, and its own reports.\n"
      "pattern read hearth/v1/{0}/nodes/%u/desired\n"
      "pattern write hearth/v1/{0}/nodes/%u/reported\n"
      "pattern write hearth/v1/{0}/nodes/%u/telemetry\n"
      "pattern write hearth/v1/{0}/nodes/%u/events\n"
      "pattern write hearth/v1/{0}/nodes/%u/presence\n"
      "\n"
      "# The controller: the whole fleet.\n"
      "user {1}\n"
      "topic readwrite hearth/v1/{0}/#\n",
      fleet, kControllerIdentity);
}

std::string nats_server_conf(const FleetInfo& f, const NatsServerOptions& o, const std::vector<std::string>& nodes) {
  std::string routes;
  for (const auto& r : o.routes) routes += fmt::format("{}\"nats-route://{}\"", routes.empty() ? "" : ", ", r);
  const std::string b = f.dir + "/broker";
  std::string conf = fmt::format(
      "# nats-server configuration for hearth fleet '{0}', server {1}: one of a cluster whose MQTT\n"
      "# listeners are the fleet's broker URLs.\n"
      "server_name: \"{1}\"\n"
      "host: \"{2}\"\n"
      "port: {3}\n"
      "{4}"
      "# hearth's payloads are capped at 256 KiB.\n"
      "max_payload: 1MB\n"
      "jetstream {{ store_dir: \"{5}\", max_memory_store: 64MB, max_file_store: 1GB }}\n"
      "cluster {{ name: \"hearth-{0}\", host: \"{2}\", port: {6}, routes: [{7}] }}\n"
      "mqtt {{\n"
      "  host: \"{2}\"\n"
      "  port: {8}\n"
      "  # Left to itself nats-server 2.9 may make the MQTT streams with fewer replicas than the\n"
      "  # cluster has servers, and then losing one server stalls them for good.\n"
      "  stream_replicas: {9}\n"
      "  consumer_replicas: {9}\n"
      "  # Mutual TLS: the client's certificate subject is its user (below).\n"
      "  tls {{ cert_file: \"{10}/broker.crt\", key_file: \"{10}/broker.key\", ca_file: \"{10}/ca.crt\", "
      "verify_and_map: true, timeout: 5 }}\n"
      "}}\n",
      f.name, o.name, o.host, o.client_port,
      o.monitor_port > 0 ? fmt::format("http: \"{}:{}\"\n", o.host, o.monitor_port) : std::string(), o.store_dir,
      o.cluster_port, routes, o.mqtt_port, o.replicas, b);
  // MQTT topic hearth/v1/F/nodes/N/x is subject hearth.v1.F.nodes.N.x. A QoS 1 subscription is
  // delivered through a JetStream consumer on $MQTT.sub.<id>, which the user must be allowed to
  // subscribe to (MQTT clients cannot subscribe to $MQTT/... themselves).
  const std::string root = fmt::format("hearth.v1.{}", f.name);
  conf += fmt::format(
      "authorization {{\n"
      "  users = [\n"
      "    {{ user: \"CN={}\", allowed_connection_types: [\"MQTT\"],\n"
      "      permissions: {{ publish: [\"{}.>\"], subscribe: [\"{}.>\", \"$MQTT.sub.>\"] }} }}\n",
      kControllerIdentity, root, root);
  for (const auto& n : nodes) {
    if (!valid_node_id(n)) continue;
    const std::string t = fmt::format("{}.nodes.{}", root, n);
    conf += fmt::format(
        "    {{ user: \"CN={0}\", allowed_connection_types: [\"MQTT\"],\n"
        "      permissions: {{ publish: [\"{1}.reported\", \"{1}.telemetry\", \"{1}.events\", \"{1}.presence\"],\n"
        "                     subscribe: [\"{1}.desired\", \"$MQTT.sub.>\"] }} }}\n",
        n, t);
  }
  conf += "  ]\n}\n";
  return conf;
}

Result<FleetInfo> init_fleet(const std::string& dir, const FleetInitOptions& o) {
  if (!valid_fleet_name(o.name))
    return make_error(ErrorCode::kInvalidArgument, "fleet name '{}' is not 1-63 characters of [a-z0-9-]", o.name);
  FleetInfo f;
  f.dir = fs::absolute(dir).lexically_normal().string();
  if (!f.dir.empty() && f.dir.back() == '/' && f.dir.size() > 1) f.dir.pop_back();
  f.name = o.name;
  auto controller = parse_endpoint(o.controller_url, "https", 8443);
  if (!controller.ok()) return controller.status().with_context("--controller-url");
  auto brokers = parse_endpoints(o.broker_url, "mqtts", 8883);
  if (!brokers.ok()) return brokers.status().with_context("--broker-url");
  f.controller = *controller;
  f.brokers = *brokers;
  f.broker = f.brokers.front();

  std::error_code ec;
  if (fs::exists(f.dir + "/fleet.json", ec))
    return make_error(ErrorCode::kAlreadyExists, "{} already holds a fleet (fleet.json); refusing to overwrite it",
                      f.dir);
  if (fs::exists(f.dir, ec) && !fs::is_empty(f.dir, ec))
    return make_error(ErrorCode::kAlreadyExists, "{} exists and is not empty", f.dir);

  // Execute-only for others: the broker's user may reach DIR/broker but list nothing.
  for (auto [sub, mode] : {std::pair{"", 0711}, std::pair{"/ca", 0700}, std::pair{"/controller", 0700}})
    if (auto st = make_dir(f.dir + sub, mode); !st.ok()) return st;

  // Who the broker runs as: root gives way to `mosquitto` when that user exists.
  std::string run_as;
  uid_t broker_uid = geteuid();
  gid_t broker_gid = getegid();
  if (geteuid() == 0) {
    if (struct passwd* pw = getpwnam("mosquitto"); pw != nullptr) {
      run_as = "mosquitto";
      broker_uid = pw->pw_uid;
      broker_gid = pw->pw_gid;
    } else {
      run_as = "root";  // no such user: say so rather than let Mosquitto fail to drop
    }
  }
  bool shared_group = geteuid() == 0 && run_as == "mosquitto";
  if (auto st = make_dir(f.dir + "/broker", shared_group ? 0750 : 0700); !st.ok()) return st;
  if (auto st = make_dir(f.dir + "/broker/data", 0700); !st.ok()) return st;
  if (shared_group) {
    if (chown((f.dir + "/broker").c_str(), 0, broker_gid) != 0 ||
        chown((f.dir + "/broker/data").c_str(), broker_uid, broker_gid) != 0)
      return make_error(ErrorCode::kIo, "chown of {}/broker for the mosquitto user: {}", f.dir, std::strerror(errno));
  }

  auto ca = make_ca(fmt::format("hearth fleet {} CA", o.name), o.ca_validity_days);
  if (!ca.ok()) return ca.status();
  auto controller_id = issue_with_new_key(*ca, server_identity(std::string(kControllerIdentity), {f.controller},
                                                               CertUsage::kServerAndClient, o.cert_validity_days));
  if (!controller_id.ok()) return controller_id.status();
  auto broker_id =
      issue_with_new_key(*ca, server_identity("hearth-broker", f.brokers, CertUsage::kServer, o.cert_validity_days));
  if (!broker_id.ok()) return broker_id.status();
  auto signing = trust::PrivateKey::generate(trust::KeyAlgorithm::kEcdsaP256);
  if (!signing.ok()) return signing.status();
  auto admin = random_hex(32);
  if (!admin.ok()) return admin.status();
  auto ca_sha = certificate_sha256(ca->cert_pem);
  if (!ca_sha.ok()) return ca_sha.status();
  f.ca_sha256 = *ca_sha;
  f.desired_key_id = signing->public_key().key_id();

  struct File {
    std::string path;
    std::string data;
    mode_t mode;
    bool broker_readable;
  };
  const std::vector<File> files = {
      {f.ca_key_path(), ca->key_pem, 0600, false},
      {f.ca_cert_path(), ca->cert_pem, 0644, false},
      {f.controller_cert_path(), controller_id->cert_pem, 0644, false},
      {f.controller_key_path(), controller_id->key_pem, 0600, false},
      {f.desired_key_path(), signing->private_pem(), 0600, false},
      {f.desired_pub_path(), signing->public_key().pem(), 0644, false},
      {f.admin_token_path(), *admin + "\n", 0600, false},
      {f.dir + "/broker/ca.crt", ca->cert_pem, 0644, true},
      {f.dir + "/broker/broker.crt", broker_id->cert_pem, 0644, true},
      {f.dir + "/broker/broker.key", broker_id->key_pem, shared_group ? mode_t(0640) : mode_t(0600), true},
      {f.acl_path(), mosquitto_acl(o.name), 0644, true},
      {f.mosquitto_conf_path(), mosquitto_conf(f, run_as), 0644, true},
  };
  for (const auto& file : files) {
    if (auto st = write_file(file.path, file.data, file.mode); !st.ok()) return st;
    if (file.broker_readable && shared_group && chown(file.path.c_str(), 0, broker_gid) != 0)
      return make_error(ErrorCode::kIo, "chown {}: {}", file.path, std::strerror(errno));
  }
  json info = {{"schema", kFleetSchema},
               {"name", f.name},
               {"controller_url", f.controller.to_string()},
               {"broker_url", f.broker_urls()},
               {"ca_sha256", f.ca_sha256},
               {"desired_key_id", f.desired_key_id}};
  // fleet.json last: its presence marks a complete fleet directory.
  if (auto st = write_file(f.dir + "/fleet.json", info.dump(2) + "\n", 0644); !st.ok()) return st;
  return f;
}

Result<FleetInfo> load_fleet(const std::string& dir) {
  FleetInfo f;
  f.dir = fs::absolute(dir).lexically_normal().string();
  if (f.dir.size() > 1 && f.dir.back() == '/') f.dir.pop_back();
  auto text = read_file(f.dir + "/fleet.json", 1 << 20);
  if (!text.ok())
    return make_error(ErrorCode::kNotFound,
                      "{} is not a fleet directory (no fleet.json; make one with `hearth fleet init`)", f.dir);
  json j = json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || j.value("schema", "") != kFleetSchema)
    return make_error(ErrorCode::kInvalidArgument, "{}/fleet.json: not a hearth fleet file ({})", f.dir, kFleetSchema);
  f.name = j.value("name", "");
  f.ca_sha256 = j.value("ca_sha256", "");
  f.desired_key_id = j.value("desired_key_id", "");
  if (!valid_fleet_name(f.name)) return make_error(ErrorCode::kInvalidArgument, "{}/fleet.json: bad name", f.dir);
  auto c = parse_endpoint(j.value("controller_url", ""), "https", 8443);
  if (!c.ok()) return c.status().with_context(f.dir + "/fleet.json: controller_url");
  auto b = parse_endpoints(j.value("broker_url", ""), "mqtts", 8883);
  if (!b.ok()) return b.status().with_context(f.dir + "/fleet.json: broker_url");
  f.controller = *c;
  f.brokers = *b;
  f.broker = f.brokers.front();
  return f;
}

}  // namespace hearth::fleet
