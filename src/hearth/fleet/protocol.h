// The fleet's wire protocol over MQTT 3.1.1: topic names and the versioned JSON payloads.
//
// Topics, all under hearth/v1/<fleet>/nodes/<node>/:
//   desired    controller -> node, retained, QoS 1: a DSSE envelope signed by the controller
//   reported   node -> controller, retained, QoS 1: what the node is doing and serving
//   telemetry  node -> controller, QoS 0: counters every N seconds (never prompt or output text)
//   events     node -> controller, QoS 1: one event each, queued while offline
//   presence   node -> controller, retained, QoS 1: "online", and "offline" as the MQTT last will
//
// Every payload is JSON with a "schema" naming its kind and version, capped at
// kMaxPayloadBytes, nested at most kMaxPayloadDepth deep, and checked field by field: a
// message that fails any check is refused with an error that names what is wrong, and the
// caller logs and drops it.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hearth/core/status.h"

namespace hearth::trust {
class PrivateKey;
class PublicKey;
}  // namespace hearth::trust

namespace hearth::fleet {

inline constexpr size_t kMaxPayloadBytes = 256 << 10;
inline constexpr int kMaxPayloadDepth = 16;
inline constexpr size_t kMaxEvalTextBytes = 64 << 10;

// A fleet name, like a node id: 1..63 characters of [a-z0-9-], not starting with '-'.
bool valid_fleet_name(std::string_view name);

using Labels = std::map<std::string, std::string>;
// "k=v,k2=v2": keys and values of [A-Za-z0-9._-/], at most 32 pairs.
Result<Labels> parse_labels(std::string_view text);
std::string labels_to_string(const Labels& labels);
// True when every pair of `selector` is in `labels` (an empty selector matches every node).
bool labels_match(const Labels& labels, const Labels& selector);

enum class NodeTopic { kDesired, kReported, kTelemetry, kEvents, kPresence };
std::string_view node_topic_name(NodeTopic t);
// "hearth/v1/<fleet>/nodes/<node>/<kind>"
std::string node_topic(std::string_view fleet, std::string_view node, NodeTopic kind);
// "hearth/v1/<fleet>/nodes/+/<kind>": what the controller subscribes to.
std::string all_nodes_topic(std::string_view fleet, NodeTopic kind);
struct ParsedTopic {
  std::string node;
  NodeTopic kind;
};
// Parses a concrete topic of `fleet`; nullopt for anything else (wrong fleet, bad node id).
std::optional<ParsedTopic> parse_node_topic(std::string_view fleet, std::string_view topic);

// A model as the fleet names it: a store reference and the digest that pins it.
struct ModelPin {
  std::string reference;  // "host/repo:tag" or "host/repo@sha256:..."
  std::string digest;     // "sha256:<64 hex>" of the model's manifest
  bool empty() const { return reference.empty(); }
};

// One gate: METRIC OP NUMBER, e.g. "eval_ppl < 40" or "decode_tok_s >= 20".
struct Gate {
  // Before the switch: decode_tok_s prefill_tok_s ttft_ms eval_ppl eval_ppl_ratio; on real
  // traffic during the bake window: error_rate p95_latency_ms bake_requests (the request count).
  std::string metric;
  std::string op;  // < <= > >=
  double value = 0;
  bool passes(double measured) const;
  std::string to_string() const;
};
Result<Gate> parse_gate(std::string_view expr);

// What the controller wants a node to run. Signed by the controller's key as a DSSE envelope.
struct DesiredState {
  std::string fleet;
  std::string node;
  uint64_t generation = 0;  // strictly increasing per node; a node ignores one it has seen
  int64_t issued_at = 0;    // unix seconds
  std::string rollout_id;   // empty for a direct assignment
  ModelPin model;
  std::vector<std::string> sources;  // registry and mirror base URLs, in order of preference
  std::vector<Gate> gates;
  std::string eval_text;         // the evaluation text for eval_ppl gates (<= kMaxEvalTextBytes)
  std::string eval_text_digest;  // "sha256:<hex>" of eval_text, checked on parse
  int64_t bake_seconds = 0;
  bool allow_downgrade = false;
};

inline constexpr std::string_view kDesiredPayloadType = "application/vnd.hearth.fleet.desired.v1+json";

std::string desired_to_json(const DesiredState& d);
Result<DesiredState> desired_from_json(std::string_view text);
// The DSSE JSON envelope {payloadType, payload (base64), signatures:[{keyid, sig}]}.
Result<std::string> sign_desired(const DesiredState& d, const trust::PrivateKey& key);
// Checks size, envelope shape, payload type, and a signature by `controller_key` (the key
// pinned at enrollment), then parses the payload. Unauthenticated when no signature verifies.
Result<DesiredState> verify_desired(std::string_view envelope, const trust::PublicKey& controller_key);

enum class NodeState { kPending, kPulling, kVerifying, kGating, kServing, kFailed, kRolledBack, kOffline };
std::string_view node_state_name(NodeState s);
std::optional<NodeState> parse_node_state(std::string_view name);

struct ReportedState {
  std::string node;
  uint64_t generation = 0;  // the desired generation this report is about (0: none yet)
  // Strictly increasing per node across restarts: a report that arrives after a newer one
  // (resent after a reconnect, say) is recognised as stale and ignored.
  uint64_t seq = 0;
  NodeState state = NodeState::kPending;
  std::string reason;  // why, for failed / rolled_back (<= 1 KiB)
  ModelPin serving;
  ModelPin last_known_good;
  std::map<std::string, double> gate_values;  // measured metric -> value
  int64_t time = 0;
  // Labels the node declares for itself (agent run --labels: hardware, site, ...). Selectors
  // match them too; an operator's label (join token, fleet label) wins on the same key.
  Labels labels;
};
std::string reported_to_json(const ReportedState& r);
Result<ReportedState> reported_from_json(std::string_view text);

struct Telemetry {
  std::string node;
  int64_t time = 0;
  ModelPin serving;
  NodeState state = NodeState::kPending;
  double decode_tok_s = 0, prefill_tok_s = 0, ttft_p50_ms = 0, ttft_p95_ms = 0;
  uint64_t requests = 0, errors = 0;
  uint64_t memory_bytes = 0, disk_free_bytes = 0;
};
std::string telemetry_to_json(const Telemetry& t);
Result<Telemetry> telemetry_from_json(std::string_view text);

struct Event {
  std::string node;
  int64_t time = 0;
  uint64_t seq = 0;     // per node, strictly increasing; the controller drops duplicates
  std::string type;     // e.g. "model_switched", "gate_failed", "rolled_back", "refused"
  std::string message;  // <= 4 KiB
};
std::string event_to_json(const Event& e);
Result<Event> event_from_json(std::string_view text);

struct Presence {
  std::string node;
  bool online = false;
};
std::string presence_to_json(const Presence& p);
Result<Presence> presence_from_json(std::string_view text);

}  // namespace hearth::fleet
