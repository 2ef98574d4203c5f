// Staged rollouts, driven by the controller and persisted in its database, so that a restarted
// controller resumes where it was (every step is a row update; nothing is kept only in memory).
//
// Batches are cumulative sizes ("1,25%,100%"): the nodes that the selector matches are ordered
// by a stable hash of their id, and batch k holds the nodes from the end of batch k-1 up to its
// size. The first batch is the canary. A batch is done when each of its nodes serves the new
// model (or has failed, within --max-failures) and the gates have held for the bake time; then
// the next batch gets its desired states. Failures beyond --max-failures abort the rollout: nodes
// of the current batch that switched get their previous model back (a downgrade the controller
// signs), and later batches never hear of the new version. A node offline longer than the
// offline timeout counts as failed.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "hearth/core/status.h"
#include "hearth/fleet/fleet_db.h"
#include "hearth/fleet/protocol.h"

namespace hearth::fleet {

struct RolloutSpec {
  ModelPin model;
  Labels selector;
  std::vector<std::string> batches = {"1", "100%"};  // cumulative: a count or a percentage
  std::vector<std::string> gates;                    // "METRIC OP NUMBER"
  std::string eval_text;
  int64_t bake_seconds = 30;
  std::string max_failures = "0";  // a count or a percentage of the selected nodes
  std::vector<std::string> sources;
  bool allow_downgrade = false;
  int64_t offline_timeout_seconds = 120;
};
std::string rollout_spec_to_json(const RolloutSpec& s);
Result<RolloutSpec> rollout_spec_from_json(std::string_view text);
// Checks the batch sizes, gates and max-failures, with errors that name the bad value.
Status validate_rollout_spec(const RolloutSpec& s);

// Cumulative end index of each batch for `n` nodes ("1,25%,100%" of 8 -> 1, 2, 8); the last
// batch always ends at n. Empty batches are dropped.
Result<std::vector<size_t>> plan_batches(const std::vector<std::string>& batches, size_t n);
// The node ids ordered by sha256(id): stable across restarts and independent of insertion order.
std::vector<std::string> order_nodes(std::vector<std::string> ids);
Result<size_t> max_failures_of(const std::string& spec, size_t n_nodes);

// A desired state signed for a node, ready to be recorded and then published.
struct PreparedDesired {
  std::string node;
  uint64_t generation = 0;
  std::string envelope;
  // Already in the database: the node's recorded desired state was this rollout's same state
  // (a controller stopped between recording and publishing it), sent again under its generation.
  bool recorded = false;
};

// What the driver needs from the controller. A step's desired states are prepared, recorded
// with the rest of the step in one transaction (FleetDb::write), and only then sent, all at
// once: a send that fails is not retried by the driver, since the controller publishes every
// recorded desired state again whenever it (re)connects to the broker.
struct RolloutEnv {
  FleetDb* db = nullptr;
  // Signs `d` for `node` under its next generation (or finds it recorded); writes nothing.
  std::function<Result<PreparedDesired>(const std::string& node, DesiredState d)> prepare;
  // Publishes (retained, QoS 1, pipelined) desired states that are recorded.
  std::function<Status(const std::vector<PreparedDesired>&)> send;
  std::function<int64_t()> now;
};

// Creates the rollout (its nodes and their batches) in the database; returns its id.
Result<std::string> start_rollout(RolloutEnv& env, const RolloutSpec& spec, const std::string& actor);
// One pass over every running rollout: assign, observe, advance, abort. Idempotent.
Status drive_rollouts(RolloutEnv& env);
// pause | resume | abort by the operator.
Status control_rollout(RolloutEnv& env, const std::string& id, const std::string& action, const std::string& actor);

}  // namespace hearth::fleet
