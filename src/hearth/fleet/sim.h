// `hearth fleet sim`: many simulated nodes in one process, for scale tests of the controller and
// the broker. Each simulated node is a real fleet member as far as anyone else can tell: it
// enrolls through the controller's enrollment API (a join token, a key made here, a certificate
// issued from its CSR), connects with its own certificate over mutual TLS, sets its presence with
// a retained message and a last will, verifies every desired state against the controller's key
// pinned at enrollment (protocol.h's verify_desired), and answers with the same reported, event
// and telemetry messages as `hearth agent run`. What it does not have is an engine: a node
// "pulls" and "loads" at once and reports the gate values it was told to (--gate metric=value),
// and a deterministic share of the nodes (--fail-rate, by --seed, node id and model digest)
// measures values that fail the rollout's first gate.
//
// Scale: the nodes share a few network threads, each an epoll loop over its nodes' sockets,
// driving libmosquitto through its external-loop calls (mosquitto_loop_read/write/misc). This
// file is the second one of the module that sees libmosquitto and OpenSSL, for that reason: the
// MqttClient adapter runs one thread per connection, which does not scale to 10,000 of them.
// Identities are kept in DIR/sim/identities.jsonl, so a second run with the same node ids does
// not enroll again.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "hearth/core/status.h"
#include "hearth/fleet/protocol.h"

namespace hearth::fleet {

struct SimOptions {
  std::string fleet_dir;
  size_t nodes = 10;
  std::string prefix = "sim-";  // node ids are PREFIX00000, PREFIX00001, ...
  Labels labels;                // the operator labels of the join tokens (only at enrollment)
  double fail_rate = 0;         // share of the nodes that fail a rollout's gates, 0..1
  uint64_t seed = 1;
  std::map<std::string, double> gate_values;  // what a node measures; unset metrics pass their gate
  int threads = 2;                            // network threads
  int enroll_parallel = 4;                    // enrollment requests in flight
  int keepalive_s = 60;
  int telemetry_interval_s = 10;  // 0: no telemetry
  int step_ms = 100;              // between the pulling, verifying, gating and final reports
  std::string timeline_path;      // JSON lines: every desired state received and final report sent
};

struct SimStats {
  std::atomic<uint64_t> connected{0};
  std::atomic<uint64_t> connects{0};     // CONNACKs, reconnections included
  std::atomic<uint64_t> published{0};    // messages this process sent
  std::atomic<uint64_t> received{0};     // messages this process received
  std::atomic<uint64_t> desired_ok{0};   // verified desired states applied
  std::atomic<uint64_t> refused{0};      // desired states that failed verification
  std::atomic<uint64_t> served{0};       // final reports: serving
  std::atomic<uint64_t> failed{0};       // final reports: failed
};

class Sim {
 public:
  static Result<std::unique_ptr<Sim>> create(const SimOptions& options);
  virtual ~Sim() = default;
  // Enrolls the nodes that have no identity yet (through the controller's API); `progress` is
  // called now and then with (done, total).
  virtual Status enroll(const std::function<void(size_t, size_t)>& progress) = 0;
  // Connects every node and runs until stop().
  virtual Status run() = 0;
  virtual void stop() = 0;
  virtual const SimStats& stats() const = 0;
};

// Whether node `node` fails the gates of the model `digest` at `fail_rate` (deterministic).
bool sim_node_fails(uint64_t seed, const std::string& node, const std::string& digest, double fail_rate);

}  // namespace hearth::fleet
