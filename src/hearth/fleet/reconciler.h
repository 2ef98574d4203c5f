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
//   6. commit   record the new model as serving and the old as last-known-good (atomically),
//               and only now let the version lock advance.
// A failure at any step leaves the serving model untouched and reports `failed` with the reason.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "hearth/core/status.h"
#include "hearth/fleet/protocol.h"

namespace hearth::model {
class Model;
}

namespace hearth::fleet {

// Where the node serves: the agent's in-process server.
class ServingSwitch {
 public:
  virtual ~ServingSwitch() = default;
  // Makes `model` the one that answers requests, atomically; returns once it does.
  virtual Status switch_to(std::shared_ptr<model::Model> model, const std::string& model_id) = 0;
  // The model serving now (null before the first switch).
  virtual std::shared_ptr<model::Model> current() const = 0;
};

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
};

// Runs steps 1-6 for `desired` against `serving`; on success `record` is updated and saved by
// the caller. Returns the outcome to report.
struct ReconcileResult {
  NodeState state = NodeState::kFailed;
  std::string reason;
  std::map<std::string, double> gate_values;
};
ReconcileResult reconcile(const DesiredState& desired, ServingSwitch& serving, ServingRecord& record,
                          const ReconcileOptions& options);

// Loads a model that the store holds (verified against the node's policy, version lock not
// advanced): what the agent serves at start-up, and what it rolls back to. Repacked on
// n_threads (0: physical cores).
Result<std::shared_ptr<model::Model>> load_verified(const std::string& home, const ModelPin& pin, bool record_version,
                                                    int n_threads = 0);

}  // namespace hearth::fleet
