// Test support: a 3-server NATS cluster on loopback as the fleet's broker (nats-server's MQTT
// listeners with mutual TLS from the fleet CA, sessions and retained messages in JetStream,
// replicated on all three). The configurations are what fleet_dir's nats_server_conf writes.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "hearth/fleet/fleet_dir.h"

namespace hearth::testing {

class NatsCluster {
 public:
  static constexpr const char* kBinary = "/usr/sbin/nats-server";
  // Starts one server per MQTT port (their ports in the order of `mqtt_ports`), with routes to
  // each other and JetStream under `dir`/nI. nullptr (with `why` set) when nats-server is missing
  // or the cluster is not healthy (every server's /healthz) within 45 s.
  static std::unique_ptr<NatsCluster> start(const fleet::FleetInfo& fleet, const std::vector<int>& mqtt_ports,
                                            const std::vector<std::string>& node_ids, const std::string& dir,
                                            std::string* why);
  ~NatsCluster();
  size_t size() const { return servers_.size(); }
  int mqtt_port(size_t i) const { return servers_[i].options.mqtt_port; }
  std::string log_path(size_t i) const { return servers_[i].log; }
  bool running(size_t i) const { return servers_[i].pid > 0; }
  // SIGKILL: the server vanishes as in a crash or power loss.
  void kill_hard(size_t i);
  // Every server's configuration written again for `node_ids`, then SIGHUP (nats-server reloads).
  bool allow_nodes(const std::vector<std::string>& node_ids);
  // GET path on server i's monitoring port; "" when it does not answer.
  std::string monitor(size_t i, const std::string& path) const;

 private:
  struct Server {
    fleet::NatsServerOptions options;
    std::string conf, log;
    pid_t pid = -1;
  };
  NatsCluster() = default;
  bool write_configs(const std::vector<std::string>& node_ids);
  fleet::FleetInfo fleet_;
  std::vector<Server> servers_;
};

}  // namespace hearth::testing
