// FleetDb: the controller's state (nodes, join tokens, desired states, audit) in SQLite
// (sqlite3 is seen only by fleet_db.cpp; WAL with synchronous=FULL: a committed change survives
// a crash) or in PostgreSQL (libpq only in fleet_db_pg.cpp), with the same tables in both.
// Each backend's schema is a baseline plus ordered migration steps, recorded in schema_version.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hearth/core/status.h"
#include "hearth/fleet/protocol.h"

namespace hearth::fleet {

struct NodeRecord {
  std::string id;
  Labels labels;
  int64_t enrolled_at = 0;
  std::string cert_sha256;
  bool online = false;
  int64_t last_seen = 0;  // unix seconds of the last message from the node
  std::string state;      // the last reported state ("" before any report)
  std::string reason;
  std::string serving_reference, serving_digest;
  uint64_t reported_generation = 0;
  uint64_t reported_seq = 0;     // of the last report taken (reports are ordered by it)
  std::string gate_values_json;  // {"metric": value}
  std::string telemetry_json;    // the last telemetry message, as validated and re-serialised ("{}": none)
  Labels declared_labels;        // the node's own (agent run --labels), from its last report
  // What selectors match: the node's own labels, with the operator's (labels) winning a key.
  Labels effective_labels() const {
    Labels out = declared_labels;
    for (const auto& [k, v] : labels) out[k] = v;
    return out;
  }
};

struct AuditRecord {
  int64_t id = 0;
  int64_t time = 0;
  std::string actor;    // "admin", "controller", a node id
  std::string action;   // "token_created", "node_enrolled", "rollout_started", "node_rolled_back", ...
  std::string subject;  // what the action was on
  std::string detail;   // why, in words
};

struct RolloutRecord {
  std::string id;
  int64_t created = 0;
  std::string state;  // running | paused | succeeded | aborted
  std::string spec_json;
  int64_t current_batch = 0;
  int64_t batch_done_at = 0;  // when every node of the current batch was healthy (0: not yet)
  std::string reason;
};

struct RolloutNodeRecord {
  std::string rollout_id;
  std::string node;
  int64_t batch = 0;
  // pending | pulling | verifying | gating | serving | failed | rolled_back | offline
  std::string state = "pending";
  std::string reason;
  std::string gate_values_json = "{}";
  std::string previous_reference, previous_digest;  // what the node served before
  uint64_t generation = 0;                          // of the desired state sent for this rollout (0: not sent yet)
  int64_t assigned_at = 0;
  uint64_t rollback_generation = 0;  // of the rollback desired state (0: none)
};

// Telemetry history for the dashboard's charts: sums over a time bucket, so that samples can be
// added to a bucket as they arrive (an upsert that adds) and buckets merged into wider ones.
struct TelemetryBucket {
  std::string node;
  int64_t resolution = 0;  // the bucket's width in seconds (60: minutes, 3600: hours)
  int64_t bucket = 0;      // unix seconds of its start (a multiple of resolution)
  int64_t samples = 0;     // telemetry messages added
  double decode_tok_s = 0, prefill_tok_s = 0, ttft_p50_ms = 0, ttft_p95_ms = 0;  // sums over the samples
  int64_t requests = 0, errors = 0;  // requests served and 5xx errors in the bucket (counter deltas)
};

// Many writes committed in one transaction (all or none): what one rollout step decides (its
// nodes' desired states with their audit entries, rollout rows) or what a burst of MQTT messages
// reported. Node updates are applied in their order (a node's presence, then its telemetry, ...).
struct FleetWrites {
  struct Desired {
    std::string node;
    uint64_t generation = 0;
    std::string envelope;
  };
  struct NodeUpdate {
    enum Kind { kPresence, kTelemetry, kReported } kind = kPresence;
    std::string node;
    bool online = false;         // kPresence
    int64_t now = 0;             // kPresence, kTelemetry: last_seen
    std::string telemetry_json;  // kTelemetry
    NodeRecord reported;         // kReported: as set_reported takes it (its id is `node`)
  };
  // put_desired's rule holds for each: one whose generation is not newer than the stored one
  // fails the whole transaction (kAlreadyExists), so two controllers never issue one generation.
  std::vector<Desired> desired;
  std::vector<RolloutNodeRecord> rollout_nodes;  // insert or replace
  std::optional<RolloutRecord> rollout;          // insert or replace
  std::vector<NodeUpdate> node_updates;
  // A node's event (node, seq), noted as note_event does; its audit entry is written only when
  // the event is new (a node resends what the broker did not acknowledge).
  struct NodeEvent {
    std::string node;
    uint64_t seq = 0;
    AuditRecord audit;
  };
  std::vector<NodeEvent> events;
  std::vector<AuditRecord> audit;
  bool empty() const {
    return desired.empty() && rollout_nodes.empty() && !rollout && node_updates.empty() && events.empty() &&
           audit.empty();
  }
};

class FleetDb {
 public:
  // "sqlite:PATH", a plain path, or "postgresql://user@host:port/db" (any libpq URI; also
  // "postgres://"). Creates the schema on first use and applies pending migrations.
  static Result<std::unique_ptr<FleetDb>> open(const std::string& url);
  virtual ~FleetDb() = default;

  // Join tokens are stored as their sha256; the token itself is shown once.
  virtual Status add_token(const std::string& token_sha256, const Labels& labels, int64_t expires_at) = 0;
  // Marks the token used by `node` in the same transaction that checks it: a token works
  // once. Returns the labels it carries. PermissionDenied when unknown, used or expired.
  virtual Result<Labels> consume_token(const std::string& token_sha256, const std::string& node, int64_t now) = 0;

  // Inserts or replaces the node (re-enrollment keeps its history, replaces its certificate).
  virtual Status upsert_node(const NodeRecord& node) = 0;
  virtual Result<std::optional<NodeRecord>> node(const std::string& id) = 0;
  virtual Result<std::vector<NodeRecord>> nodes(const Labels& selector) = 0;
  virtual Status set_labels(const std::string& id, const Labels& labels) = 0;
  virtual Status set_presence(const std::string& id, bool online, int64_t now) = 0;
  virtual Status set_reported(const NodeRecord& reported) = 0;  // state, reason, serving, generation, gates
  // The node's last telemetry (also marks it online, seen at `now`).
  virtual Status set_telemetry(const std::string& id, const std::string& telemetry_json, int64_t now) = 0;

  // The last desired state published to a node (generation and signed envelope), stored with
  // its audit record in one transaction, and only when `generation` is newer than the stored
  // one (kAlreadyExists otherwise): two controllers can never both issue one generation.
  // (One write() of that row and its audit record, in either backend.)
  Status put_desired(const std::string& node, uint64_t generation, const std::string& envelope,
                     const AuditRecord& audit);
  virtual Result<uint64_t> desired_generation(const std::string& node) = 0;
  struct DesiredRow {
    std::string node;
    uint64_t generation = 0;
    std::string envelope;
  };
  virtual Result<std::optional<DesiredRow>> desired(const std::string& node) = 0;
  // Every node's last desired state: republished whenever the controller (re)connects, so a
  // broker that lost its retained messages (a crash, a new broker) gets them back.
  virtual Result<std::vector<DesiredRow>> all_desired() = 0;

  // Everything in `w` in one transaction (FleetWrites); an empty `w` does nothing.
  virtual Status write(const FleetWrites& w) = 0;

  virtual Status put_rollout(const RolloutRecord& r) = 0;  // insert or replace
  // The same, with the audit entries of that step in one transaction: a controller killed
  // between the two leaves neither, and its successor records the step once.
  virtual Status put_rollout_audited(const RolloutRecord& r, const std::vector<AuditRecord>& audit) = 0;
  virtual Result<std::optional<RolloutRecord>> rollout(const std::string& id) = 0;
  virtual Result<std::vector<RolloutRecord>> rollouts() = 0;
  virtual Status put_rollout_node(const RolloutNodeRecord& n) = 0;  // insert or replace
  virtual Result<std::vector<RolloutNodeRecord>> rollout_nodes(const std::string& rollout_id) = 0;

  // Records that an event (node, seq) arrived: false when it had already (a node resends what
  // the broker did not acknowledge). The most recent 100000 seqs per node are remembered.
  virtual Result<bool> note_event(const std::string& node, uint64_t seq) = 0;

  virtual Status audit(const AuditRecord& record) = 0;
  virtual Result<std::vector<AuditRecord>> audit_log(const std::string& subject_filter, size_t limit) = 0;

  // The dashboard (dashboard.h). Not pure: a backend without them serves a dashboard without
  // telemetry history (and audit_recent reads the whole audit_log). The newest `limit` audit
  // records with id > after_id, in id order.
  virtual Result<std::vector<AuditRecord>> audit_recent(int64_t after_id, size_t limit);
  // Adds each row's sums to its (node, resolution, bucket), creating it, in one transaction.
  virtual Status add_telemetry(const std::vector<TelemetryBucket>& rows);
  // The node's buckets of `resolution` starting at or after `from`, oldest first.
  virtual Result<std::vector<TelemetryBucket>> telemetry(const std::string& node, int64_t resolution, int64_t from);
  // Retention: deletes the buckets of `resolution` that start before `before`.
  virtual Status prune_telemetry(int64_t resolution, int64_t before);

  // Leadership among controllers that share this database. Called every half second by each
  // controller: true while this one leads. PostgreSQL: a session advisory lock held on a
  // connection of its own, so it goes when the holder's session ends (a killed process's
  // connection closes; TCP keepalives end a vanished host's). After it returned true, false or an
  // error means leadership is lost for good (this object never leads again). SQLite: always
  // true (one controller per file). The winner records `holder` (its URL) for leader().
  virtual Result<bool> lead(const std::string& holder) = 0;
  // The holder recorded by the current (or last) leader; "" when none has led.
  virtual Result<std::string> leader() = 0;
};

// fleet_db_pg.cpp: a PostgreSQL FleetDb (FleetDb::open dispatches postgresql:// URLs here).
Result<std::unique_ptr<FleetDb>> open_postgres_fleet_db(const std::string& url);

}  // namespace hearth::fleet
