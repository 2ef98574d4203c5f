// The node agent (`hearth agent enroll|run|status`). Its files live in HOME/agent/ (HOME is
// $HEARTH_HOME): agent.json (fleet, node id, URLs, pins), node.key (made here, never sent),
// node.crt, ca.crt, controller-desired.pub (the key that signs desired states, pinned at
// enrollment) and state.json (the last desired generation applied, the model serving and the
// last-known-good one, written atomically after each switch: a node killed at any moment
// restarts serving the old model or the new one).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "hearth/core/status.h"
#include "hearth/fleet/fleet_db.h"
#include "hearth/fleet/protocol.h"

namespace hearth::fleet {

struct EnrollOptions {
  std::string home;            // $HEARTH_HOME
  std::string controller_url;  // https://HOST:PORT
  std::string token;
  std::string ca_sha256;  // pin of the fleet CA; empty: trust on first use (the fingerprint is returned)
  std::string node_id;    // empty: derived from the host name
};

struct AgentConfig {
  std::string dir;  // HOME/agent
  std::string fleet;
  std::string node;
  std::string broker_url;
  std::string controller_url;
  std::string ca_sha256;
  std::string desired_key_id;
  Labels labels;
  std::string ca_path() const { return dir + "/ca.crt"; }
  std::string cert_path() const { return dir + "/node.crt"; }
  std::string key_path() const { return dir + "/node.key"; }
  std::string desired_pub_path() const { return dir + "/controller-desired.pub"; }
  std::string state_path() const { return dir + "/state.json"; }
};

Result<AgentConfig> enroll_agent(const EnrollOptions& options);
Result<AgentConfig> load_agent(const std::string& home);

// A node id from a host name: lower-cased, other characters replaced by '-', cut to 63.
std::string node_id_from_hostname(std::string_view hostname);

struct AgentRunOptions {
  std::string home;
  int telemetry_interval_s = 10;
  // MQTT keep-alive: the broker declares the node offline (its last will) after 1.5 times this
  // without a packet from it.
  int keepalive_s = 30;
  // Labels this node declares for itself (sent with every report; the operator's win a key).
  Labels labels;
  // The node's OpenAI-compatible API (the same server as `hearth serve`, in process).
  std::string serve_host = "127.0.0.1";
  int serve_port = 8080;  // 0: any free port
  int n_threads = 0;      // 0: physical cores
  // The watchdog: requests waiting and no progress for this long means the serving model hangs
  // or loops. During a bake window the candidate is switched back out; after a commit the agent
  // rolls back to its last-known-good and reports `failed`. 0: off.
  int stall_timeout_s = 60;
};

class Agent {
 public:
  static Result<std::unique_ptr<Agent>> create(const AgentRunOptions& options);
  virtual ~Agent() = default;
  // Connects in the background (the broker may be down: the agent keeps retrying) and handles
  // desired states until stop().
  virtual Status run() = 0;
  virtual void stop() = 0;
  virtual int serve_port() const = 0;
};

}  // namespace hearth::fleet
