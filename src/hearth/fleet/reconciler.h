// Reconciler: how a node moves to the model that a (verified) desired state names.
//   1. pull     the model from the desired state's sources into the node's store (resumable,
//               every blob checked against its digest; signatures checked before layers);
//   2. verify   against the node's own trust policy, whatever the controller asked; the
//               manifest digest must be the one the desired state pins;
//   3. fit      the weights must fit in available memory, with room to spare;
//   4. gate     load the model beside the serving one and measure the gates on this hardware:
//               a short self-benchmark (prefill and decode tok/s, TTFT) and perplexity on the
//               rollout's evaluation text, and its ratio to the serving model's;
//   5. switch   hand the loaded model to the server (in-flight requests finish on the old one);
//   5b. bake    when the desired state has traffic gates (error_rate, p95_latency_ms), serve
//               real requests for its bake window (reported as `gating`) and measure them; if a
//               gate fails, or the watchdog sees requests waiting with no progress for
//               stall_seconds (the model hangs or loops), switch back to the previous model at
//               once and report `failed`;
//   6. commit   record the new model as serving and the old as last-known-good (atomically),
//               and only now let the version lock advance.
// A failure at any step leaves the serving model (or, after 5, the previous one) serving and
// reports `failed` with the reason. error_rate and p95_latency_ms gates with no inference
// request in the whole bake window pass, with bake_requests = 0 in the reported values (there
// was nothing to judge); a `bake_requests >= N` gate makes traffic a requirement.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "hearth/core/status.h"
#include "hearth/fleet/protocol.h"
#include "hearth/server/metrics.h"

namespace hearth::model {
class Model;
}

namespace hearth::fleet {

// What the serving model has to do and how far it got: the watchdog's input.
struct WorkProgress {
  int64_t waiting = 0;    // requests running or queued
  uint64_t progress = 0;  // grows with every forward pass (scheduler steps and tokens)
};

// The watchdog: a model that hangs or loops leaves work waiting and makes no progress. observe()
// returns the seconds without progress once they reach `limit_s` while work waited (and keeps
// returning it until progress resumes or the work goes); nullopt otherwise. limit_s <= 0: off.
class StallWatch {
 public:
  explicit StallWatch(double limit_s) : limit_s_(limit_s) {}
  std::optional<double> observe(const WorkProgress& work, double now_s);

 private:
  double limit_s_;
  bool seen_ = false;
  bool waiting_ = false;  // work waited at the last look
  uint64_t last_progress_ = 0;
  double since_ = 0;  // when the current stretch without progress (with work waiting) began
};

// Where the node serves: the agent's in-process server.
class ServingSwitch {
 public:
  virtual ~ServingSwitch() = default;
  // Makes `model` the one that answers requests, atomically; returns once it does.
  virtual Status switch_to(std::shared_ptr<model::Model> model, const std::string& model_id) = 0;
  // The model serving now (null before the first switch).
  virtual std::shared_ptr<model::Model> current() const = 0;
  // The served requests so far (for the bake-window gates); nullopt: this switch cannot
  // measure traffic, and a desired state with traffic gates is refused.
  virtual std::optional<server::TrafficSnapshot> traffic() const { return std::nullopt; }
  // The serving model's work and progress (the watchdog); nullopt: not measured.
  virtual std::optional<WorkProgress> work() const { return std::nullopt; }
};

// True for the gates measured on real traffic during the bake window (not before the switch).
bool is_traffic_gate(const Gate& gate);

// The traffic-gate values of the window between two snapshots: error_rate (5xx / requests;
// 0 with no request), p95_latency_ms (absent with no request) and bake_requests.
std::map<std::string, double> traffic_gate_values(const server::TrafficSnapshot& before,
                                                  const server::TrafficSnapshot& after);

// What the node serves and what it would fall back to; persisted in state.json.
struct ServingRecord {
  ModelPin serving;
  ModelPin last_known_good;
  double serving_eval_ppl = 0;      // measured when it was gated (0: unknown)
  std::string serving_eval_digest;  // of the evaluation text it was measured on
};

struct GateOutcome {
  bool passed = false;
  std::string reason;
  std::map<std::string, double> values;
};

// Measures the gate metrics of `model` (and of `current`, for eval_ppl_ratio) and checks them.
GateOutcome run_gates(const model::Model& model, const model::Model* current, const DesiredState& desired,
                      int n_threads);

struct ReconcileOptions {
  std::string home;  // the node's HEARTH_HOME (store, trust policy)
  int n_threads = 0;
  // Called at every step: state, reason, gate values so far.
  std::function<void(NodeState, const std::string&, const std::map<std::string, double>&)> progress;
  // Polled during the bake window: true ends it early (the agent stops, or a newer desired
  // state arrived); the candidate is then switched back out and nothing is committed.
  std::function<bool()> interrupted;
  // How often the bake window is polled (and the wait granularity), in milliseconds.
  int bake_poll_ms = 200;
  // The watchdog during the bake window: this long with requests waiting and no progress means
  // the candidate hangs or loops, and it is switched back out. 0: off.
  double stall_seconds = 60;
};

// 5b on its own: serves the candidate (already switched in) for the desired state's bake window,
// watching its traffic gates and the watchdog. `why` is empty when every gate held; `values` has
// the traffic-gate values measured (error_rate, p95_latency_ms, bake_requests).
struct BakeOutcome {
  std::string why;
  bool interrupted = false;
  std::map<std::string, double> values;
};
BakeOutcome bake_window(const DesiredState& desired, const ServingSwitch& serving,
                        const server::TrafficSnapshot& before, const ReconcileOptions& options);

// Runs steps 1-6 for `desired` against `serving`; on success `record` is updated and saved by
// the caller. Returns the outcome to report.
struct ReconcileResult {
  NodeState state = NodeState::kFailed;
  std::string reason;
  bool interrupted = false;  // the bake window was cut short (options.interrupted): nothing committed
  std::map<std::string, double> gate_values;
};
ReconcileResult reconcile(const DesiredState& desired, ServingSwitch& serving, ServingRecord& record,
                          const ReconcileOptions& options);

// Loads a model that the store holds (verified against the node's policy, version lock not
// advanced): what the agent serves at start-up, and what it rolls back to. Repacked on
// n_threads (0: physical cores).
// allow_downgrade: the version lock lets it load below the highest version seen (a rollback to
// the retained last-known-good).
Result<std::shared_ptr<model::Model>> load_verified(const std::string& home, const ModelPin& pin, bool record_version,
                                                    int n_threads = 0, bool allow_downgrade = false);

}  // namespace hearth::fleet
