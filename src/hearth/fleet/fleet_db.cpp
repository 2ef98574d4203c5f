#include "hearth/fleet/fleet_db.h"

#include <sqlite3.h>

#include <algorithm>
#include <mutex>
#include <optional>

#include "hearth/core/status.h"

namespace hearth::fleet {
namespace {

// 2: nodes.reported_seq, rollouts; 3: nodes.telemetry, nodes.declared_labels; 4: node_events;
// 5: leader; 6: telemetry_history. The version-4 tables are the baseline (kSchema, made if missing); older and newer
// versions go through kMigrations in order.
constexpr int kSchemaVersion = 6;

const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS nodes (
  id TEXT PRIMARY KEY,
  labels TEXT NOT NULL,
  enrolled_at INTEGER NOT NULL,
  cert_sha256 TEXT NOT NULL,
  online INTEGER NOT NULL DEFAULT 0,
  last_seen INTEGER NOT NULL DEFAULT 0,
  state TEXT NOT NULL DEFAULT '',
  reason TEXT NOT NULL DEFAULT '',
  serving_reference TEXT NOT NULL DEFAULT '',
  serving_digest TEXT NOT NULL DEFAULT '',
  reported_generation INTEGER NOT NULL DEFAULT 0,
  reported_seq INTEGER NOT NULL DEFAULT 0,
  gate_values TEXT NOT NULL DEFAULT '{}',
  telemetry TEXT NOT NULL DEFAULT '{}',
  declared_labels TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS join_tokens (
  token_sha256 TEXT PRIMARY KEY,
  labels TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  used_at INTEGER,
  used_by TEXT
);
CREATE TABLE IF NOT EXISTS desired (
  node TEXT PRIMARY KEY,
  generation INTEGER NOT NULL,
  envelope TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS rollouts (
  id TEXT PRIMARY KEY,
  created INTEGER NOT NULL,
  state TEXT NOT NULL,
  spec TEXT NOT NULL,
  current_batch INTEGER NOT NULL,
  batch_done_at INTEGER NOT NULL,
  reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS rollout_nodes (
  rollout_id TEXT NOT NULL,
  node TEXT NOT NULL,
  batch INTEGER NOT NULL,
  state TEXT NOT NULL,
  reason TEXT NOT NULL,
  gate_values TEXT NOT NULL,
  previous_reference TEXT NOT NULL,
  previous_digest TEXT NOT NULL,
  generation INTEGER NOT NULL,
  assigned_at INTEGER NOT NULL,
  rollback_generation INTEGER NOT NULL,
  PRIMARY KEY (rollout_id, node)
);
CREATE TABLE IF NOT EXISTS node_events (
  node TEXT NOT NULL,
  seq INTEGER NOT NULL,
  PRIMARY KEY (node, seq)
);
CREATE TABLE IF NOT EXISTS audit (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  time INTEGER NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  subject TEXT NOT NULL,
  detail TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS telemetry_history (
  node TEXT NOT NULL,
  resolution INTEGER NOT NULL,
  bucket INTEGER NOT NULL,
  samples INTEGER NOT NULL,
  decode_tok_s DOUBLE PRECISION NOT NULL,
  prefill_tok_s DOUBLE PRECISION NOT NULL,
  ttft_p50_ms DOUBLE PRECISION NOT NULL,
  ttft_p95_ms DOUBLE PRECISION NOT NULL,
  requests INTEGER NOT NULL,
  errors INTEGER NOT NULL,
  PRIMARY KEY (node, resolution, bucket)
);
)sql";

// One step each, applied in order in a transaction of its own with the new version number:
// `to` is the version after the step. New steps go at the end (and into fleet_db_pg.cpp's list).
struct Migration {
  int to;
  const char* sql;
};
constexpr Migration kMigrations[] = {
    {3,  // the nodes' last telemetry and their own labels
     "ALTER TABLE nodes ADD COLUMN telemetry TEXT NOT NULL DEFAULT '{}'; "
     "ALTER TABLE nodes ADD COLUMN declared_labels TEXT NOT NULL DEFAULT '';"},
    {4,  // events already noted per (node, seq)
     "CREATE TABLE IF NOT EXISTS node_events (node TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (node, seq));"},
    {5,  // who leads (one row)
     "CREATE TABLE IF NOT EXISTS leader (id INTEGER PRIMARY KEY CHECK (id = 1), holder TEXT NOT NULL, "
     "since INTEGER NOT NULL);"},
    {6,  // the dashboard's telemetry history (kSchema makes it too)
     "CREATE TABLE IF NOT EXISTS telemetry_history (node TEXT NOT NULL, resolution INTEGER NOT NULL, "
     "bucket INTEGER NOT NULL, samples INTEGER NOT NULL, decode_tok_s DOUBLE PRECISION NOT NULL, prefill_tok_s "
     "DOUBLE PRECISION NOT NULL, ttft_p50_ms DOUBLE PRECISION NOT NULL, ttft_p95_ms DOUBLE PRECISION NOT NULL, "
     "requests INTEGER NOT NULL, errors INTEGER NOT NULL, PRIMARY KEY (node, resolution, bucket));"},
};

// A prepared statement bound by position; finalized on destruction.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : db_(db) { rc_ = sqlite3_prepare_v2(db, sql, -1, &s_, nullptr); }
  ~Stmt() { sqlite3_finalize(s_); }
  bool ok() const { return rc_ == SQLITE_OK; }
  Stmt& bind(int i, const std::string& v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& bind(int i, int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  Stmt& bind(int i, double v) {
    sqlite3_bind_double(s_, i, v);
    return *this;
  }
  int step() { return sqlite3_step(s_); }
  std::string text(int col) {
    auto p = sqlite3_column_text(s_, col);
    return p ? std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(s_, col)))
             : std::string();
  }
  int64_t i64(int col) { return sqlite3_column_int64(s_, col); }
  double f64(int col) { return sqlite3_column_double(s_, col); }
  bool is_null(int col) { return sqlite3_column_type(s_, col) == SQLITE_NULL; }
  Status error(std::string_view what) const {
    return make_error(ErrorCode::kIo, "fleet database: {}: {}", what, sqlite3_errmsg(db_));
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* s_ = nullptr;
  int rc_;
};

class SqliteFleetDb final : public FleetDb {
 public:
  explicit SqliteFleetDb(sqlite3* db) : db_(db) {}
  ~SqliteFleetDb() override { sqlite3_close(db_); }

  Status init() {
    sqlite3_busy_timeout(db_, 5000);
    for (const char* pragma : {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL", "PRAGMA foreign_keys=ON"})
      if (auto st = exec(pragma); !st.ok()) return st;
    if (auto st = exec(kSchema); !st.ok()) return st;
    std::optional<int64_t> version;
    {
      Stmt q(db_, "SELECT version FROM schema_version");
      if (!q.ok()) return q.error("schema_version");
      if (q.step() == SQLITE_ROW) version = q.i64(0);
    }
    if (!version) {  // a new database: the baseline tables were just made
      Stmt ins(db_, "INSERT INTO schema_version (version) VALUES (4)");
      if (ins.step() != SQLITE_DONE) return ins.error("schema_version");
      version = 4;
    }
    if (*version < 2 || *version > kSchemaVersion)
      return make_error(ErrorCode::kFailedPrecondition,
                        "fleet database: schema version {} is not the {} this hearth knows (nor one it upgrades)",
                        *version, kSchemaVersion);
    for (const auto& m : kMigrations) {
      if (m.to <= *version) continue;
      const std::string sql = std::string("BEGIN IMMEDIATE; ") + m.sql +
                              " UPDATE schema_version SET version = " + std::to_string(m.to) + "; COMMIT;";
      if (auto st = exec(sql.c_str()); !st.ok()) {
        (void)exec("ROLLBACK");
        return st.with_context(fmt::format("fleet database: upgrading the schema from version {} to {}", m.to - 1, m.to));
      }
      version = m.to;
    }
    return ok_status();
  }

  Status add_token(const std::string& hash, const Labels& labels, int64_t expires_at) override {
    std::lock_guard lock(mu_);
    Stmt s(db_, "INSERT INTO join_tokens (token_sha256, labels, expires_at) VALUES (?, ?, ?)");
    s.bind(1, hash).bind(2, labels_to_string(labels)).bind(3, expires_at);
    return s.step() == SQLITE_DONE ? ok_status() : s.error("add token");
  }

  Result<Labels> consume_token(const std::string& hash, const std::string& node, int64_t now) override {
    std::lock_guard lock(mu_);
    if (auto st = exec("BEGIN IMMEDIATE"); !st.ok()) return st;
    auto rollback = [&](Status st) {
      (void)exec("ROLLBACK");
      return st;
    };
    Stmt q(db_, "SELECT labels, expires_at, used_at FROM join_tokens WHERE token_sha256 = ?");
    q.bind(1, hash);
    if (q.step() != SQLITE_ROW)
      return rollback(make_error(ErrorCode::kPermissionDenied, "the join token is not known to this controller"));
    std::string labels = q.text(0);
    int64_t expires_at = q.i64(1);
    if (!q.is_null(2)) return rollback(make_error(ErrorCode::kPermissionDenied, "the join token was already used"));
    if (now >= expires_at) return rollback(make_error(ErrorCode::kPermissionDenied, "the join token has expired"));
    Stmt u(db_, "UPDATE join_tokens SET used_at = ?, used_by = ? WHERE token_sha256 = ?");
    u.bind(1, now).bind(2, node).bind(3, hash);
    if (u.step() != SQLITE_DONE) return rollback(u.error("use token"));
    if (auto st = exec("COMMIT"); !st.ok()) return rollback(st);
    return parse_labels(labels);
  }

  Status upsert_node(const NodeRecord& n) override {
    std::lock_guard lock(mu_);
    Stmt s(db_,
           "INSERT INTO nodes (id, labels, enrolled_at, cert_sha256) VALUES (?, ?, ?, ?) "
           "ON CONFLICT(id) DO UPDATE SET labels = excluded.labels, enrolled_at = excluded.enrolled_at, "
           "cert_sha256 = excluded.cert_sha256, reported_seq = 0");
    s.bind(1, n.id).bind(2, labels_to_string(n.labels)).bind(3, n.enrolled_at).bind(4, n.cert_sha256);
    return s.step() == SQLITE_DONE ? ok_status() : s.error("upsert node");
  }

  Result<std::optional<NodeRecord>> node(const std::string& id) override {
    auto all = query_nodes("WHERE id = ?", id);
    if (!all.ok()) return all.status();
    if (all->empty()) return std::optional<NodeRecord>();
    return std::optional<NodeRecord>(std::move(all->front()));
  }

  Result<std::vector<NodeRecord>> nodes(const Labels& selector) override {
    auto all = query_nodes("", "");
    if (!all.ok()) return all.status();
    std::vector<NodeRecord> out;
    for (auto& n : *all)
      if (labels_match(n.effective_labels(), selector)) out.push_back(std::move(n));
    return out;
  }

  Status set_labels(const std::string& id, const Labels& labels) override {
    std::lock_guard lock(mu_);
    Stmt s(db_, "UPDATE nodes SET labels = ? WHERE id = ?");
    s.bind(1, labels_to_string(labels)).bind(2, id);
    if (s.step() != SQLITE_DONE) return s.error("set labels");
    if (sqlite3_changes(db_) == 0) return make_error(ErrorCode::kNotFound, "no node '{}' in this fleet", id);
    return ok_status();
  }

  Status set_presence(const std::string& id, bool online, int64_t now) override {
    std::lock_guard lock(mu_);
    return set_presence_locked(id, online, now);
  }

  Status set_telemetry(const std::string& id, const std::string& telemetry_json, int64_t now) override {
    std::lock_guard lock(mu_);
    return set_telemetry_locked(id, telemetry_json, now);
  }

  Status set_reported(const NodeRecord& r) override {
    std::lock_guard lock(mu_);
    return set_reported_locked(r);
  }

  Status write(const FleetWrites& w) override {
    if (w.empty()) return ok_status();
    for (const auto& d : w.desired)
      if (auto st = check_generation(d.generation); !st.ok()) return st;
    for (const auto& e : w.events)
      if (e.seq > static_cast<uint64_t>(INT64_MAX))
        return make_error(ErrorCode::kInvalidArgument, "fleet database: event seq {} out of range", e.seq);
    std::lock_guard lock(mu_);
    if (auto st = exec("BEGIN IMMEDIATE"); !st.ok()) return st;
    Status st = ok_status();
    for (size_t i = 0; i < w.desired.size() && st.ok(); ++i)
      st = put_desired_locked(w.desired[i].node, w.desired[i].generation, w.desired[i].envelope);
    for (size_t i = 0; i < w.node_updates.size() && st.ok(); ++i) {
      const auto& u = w.node_updates[i];
      switch (u.kind) {
        case FleetWrites::NodeUpdate::kPresence: st = set_presence_locked(u.node, u.online, u.now); break;
        case FleetWrites::NodeUpdate::kTelemetry: st = set_telemetry_locked(u.node, u.telemetry_json, u.now); break;
        case FleetWrites::NodeUpdate::kReported: st = set_reported_locked(u.reported); break;
      }
    }
    for (size_t i = 0; i < w.events.size() && st.ok(); ++i) {
      auto fresh = note_event_locked(w.events[i].node, w.events[i].seq);
      if (!fresh.ok()) st = fresh.status();
      else if (*fresh) st = audit_locked(w.events[i].audit);
    }
    for (size_t i = 0; i < w.rollout_nodes.size() && st.ok(); ++i) st = put_rollout_node_locked(w.rollout_nodes[i]);
    if (st.ok() && w.rollout) st = put_rollout_locked(*w.rollout);
    for (size_t i = 0; i < w.audit.size() && st.ok(); ++i) st = audit_locked(w.audit[i]);
    if (st.ok()) st = exec("COMMIT");
    if (!st.ok()) (void)exec("ROLLBACK");
    return st;
  }

 private:
  Status set_presence_locked(const std::string& id, bool online, int64_t now) {
    Stmt s(db_, "UPDATE nodes SET online = ?, last_seen = ? WHERE id = ?");
    s.bind(1, int64_t{online ? 1 : 0}).bind(2, now).bind(3, id);
    return s.step() == SQLITE_DONE ? ok_status() : s.error("set presence");
  }

  Status set_telemetry_locked(const std::string& id, const std::string& telemetry_json, int64_t now) {
    Stmt s(db_, "UPDATE nodes SET telemetry = ?, online = 1, last_seen = ? WHERE id = ?");
    s.bind(1, telemetry_json).bind(2, now).bind(3, id);
    return s.step() == SQLITE_DONE ? ok_status() : s.error("set telemetry");
  }

  Status set_reported_locked(const NodeRecord& r) {
    Stmt s(
        db_,
        "UPDATE nodes SET state = ?, reason = ?, serving_reference = ?, serving_digest = ?, "
        "reported_generation = ?, gate_values = ?, last_seen = ?, reported_seq = ?, declared_labels = ? WHERE id = ?");
    s.bind(1, r.state)
        .bind(2, r.reason)
        .bind(3, r.serving_reference)
        .bind(4, r.serving_digest)
        .bind(5, static_cast<int64_t>(r.reported_generation))
        .bind(6, r.gate_values_json)
        .bind(7, r.last_seen)
        .bind(8, static_cast<int64_t>(r.reported_seq))
        .bind(9, labels_to_string(r.declared_labels))
        .bind(10, r.id);
    return s.step() == SQLITE_DONE ? ok_status() : s.error("set reported");
  }

  static Status check_generation(uint64_t generation) {
    if (generation == 0 || generation > static_cast<uint64_t>(INT64_MAX))
      return make_error(ErrorCode::kInvalidArgument, "fleet database: desired generation {} out of range", generation);
    return ok_status();
  }

  // Only a newer generation replaces the stored one (kAlreadyExists otherwise).
  Status put_desired_locked(const std::string& node, uint64_t generation, const std::string& envelope) {
    Stmt s(db_,
           "INSERT INTO desired (node, generation, envelope) VALUES (?, ?, ?) ON CONFLICT(node) DO UPDATE SET "
           "generation = excluded.generation, envelope = excluded.envelope WHERE desired.generation < "
           "excluded.generation");
    s.bind(1, node).bind(2, static_cast<int64_t>(generation)).bind(3, envelope);
    if (s.step() != SQLITE_DONE) return s.error("put desired");
    if (sqlite3_changes(db_) == 0)
      return make_error(ErrorCode::kAlreadyExists,
                        "fleet database: desired generation {} for {} is not newer than the stored one", generation,
                        node);
    return ok_status();
  }

 public:
  Result<std::optional<DesiredRow>> desired(const std::string& node) override {
    std::lock_guard lock(mu_);
    Stmt s(db_, "SELECT node, generation, envelope FROM desired WHERE node = ?");
    s.bind(1, node);
    int rc = s.step();
    if (rc == SQLITE_ROW) return std::optional<DesiredRow>(DesiredRow{s.text(0), static_cast<uint64_t>(s.i64(1)), s.text(2)});
    if (rc == SQLITE_DONE) return std::optional<DesiredRow>();
    return s.error("desired");
  }

  // One controller per SQLite file: it always leads, and says so once.
  Result<bool> lead(const std::string& holder) override {
    std::lock_guard lock(mu_);
    if (recorded_holder_ == holder) return true;
    Stmt s(db_,
           "INSERT INTO leader (id, holder, since) VALUES (1, ?, strftime('%s', 'now')) ON CONFLICT(id) DO UPDATE SET "
           "holder = excluded.holder, since = excluded.since");
    s.bind(1, holder);
    if (s.step() != SQLITE_DONE) return s.error("leader");
    recorded_holder_ = holder;
    return true;
  }

  Result<std::string> leader() override {
    std::lock_guard lock(mu_);
    Stmt s(db_, "SELECT holder FROM leader WHERE id = 1");
    int rc = s.step();
    if (rc == SQLITE_ROW) return s.text(0);
    if (rc == SQLITE_DONE) return std::string();
    return s.error("leader");
  }

  Result<uint64_t> desired_generation(const std::string& node) override {
    std::lock_guard lock(mu_);
    Stmt s(db_, "SELECT generation FROM desired WHERE node = ?");
    s.bind(1, node);
    int rc = s.step();
    if (rc == SQLITE_ROW) return static_cast<uint64_t>(s.i64(0));
    if (rc == SQLITE_DONE) return uint64_t{0};
    return s.error("desired generation");
  }

  Status put_rollout(const RolloutRecord& r) override {
    std::lock_guard lock(mu_);
    return put_rollout_locked(r);
  }

  Status put_rollout_audited(const RolloutRecord& r, const std::vector<AuditRecord>& audit) override {
    std::lock_guard lock(mu_);
    if (auto st = exec("BEGIN IMMEDIATE"); !st.ok()) return st;
    Status st = put_rollout_locked(r);
    for (const auto& a : audit)
      if (st.ok()) st = audit_locked(a);
    if (st.ok()) st = exec("COMMIT");
    if (!st.ok()) (void)exec("ROLLBACK");
    return st;
  }

  Result<std::optional<RolloutRecord>> rollout(const std::string& id) override {
    auto all = query_rollouts("WHERE id = ?", id);
    if (!all.ok()) return all.status();
    if (all->empty()) return std::optional<RolloutRecord>();
    return std::optional<RolloutRecord>(std::move(all->front()));
  }

  Result<std::vector<RolloutRecord>> rollouts() override { return query_rollouts("", ""); }

  Status put_rollout_node(const RolloutNodeRecord& n) override {
    std::lock_guard lock(mu_);
    return put_rollout_node_locked(n);
  }

 private:
  Status put_rollout_node_locked(const RolloutNodeRecord& n) {
    Stmt s(db_,
           "INSERT INTO rollout_nodes (rollout_id, node, batch, state, reason, gate_values, previous_reference, "
           "previous_digest, generation, assigned_at, rollback_generation) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
           "ON CONFLICT(rollout_id, node) DO UPDATE SET batch = excluded.batch, state = excluded.state, "
           "reason = excluded.reason, gate_values = excluded.gate_values, previous_reference = "
           "excluded.previous_reference, previous_digest = excluded.previous_digest, generation = "
           "excluded.generation, assigned_at = excluded.assigned_at, rollback_generation = "
           "excluded.rollback_generation");
    s.bind(1, n.rollout_id).bind(2, n.node).bind(3, n.batch).bind(4, n.state).bind(5, n.reason);
    s.bind(6, n.gate_values_json).bind(7, n.previous_reference).bind(8, n.previous_digest);
    s.bind(9, static_cast<int64_t>(n.generation)).bind(10, n.assigned_at);
    s.bind(11, static_cast<int64_t>(n.rollback_generation));
    return s.step() == SQLITE_DONE ? ok_status() : s.error("put rollout node");
  }

 public:

  Result<std::vector<RolloutNodeRecord>> rollout_nodes(const std::string& id) override {
    std::lock_guard lock(mu_);
    Stmt s(db_,
           "SELECT rollout_id, node, batch, state, reason, gate_values, previous_reference, previous_digest, "
           "generation, assigned_at, rollback_generation FROM rollout_nodes WHERE rollout_id = ? ORDER BY batch, node");
    s.bind(1, id);
    std::vector<RolloutNodeRecord> out;
    int rc;
    while ((rc = s.step()) == SQLITE_ROW) {
      RolloutNodeRecord n;
      n.rollout_id = s.text(0);
      n.node = s.text(1);
      n.batch = s.i64(2);
      n.state = s.text(3);
      n.reason = s.text(4);
      n.gate_values_json = s.text(5);
      n.previous_reference = s.text(6);
      n.previous_digest = s.text(7);
      n.generation = static_cast<uint64_t>(s.i64(8));
      n.assigned_at = s.i64(9);
      n.rollback_generation = static_cast<uint64_t>(s.i64(10));
      out.push_back(std::move(n));
    }
    if (rc != SQLITE_DONE) return s.error("rollout nodes");
    return out;
  }

  Result<std::vector<DesiredRow>> all_desired() override {
    std::lock_guard lock(mu_);
    Stmt s(db_, "SELECT node, generation, envelope FROM desired ORDER BY node");
    std::vector<DesiredRow> out;
    int rc;
    while ((rc = s.step()) == SQLITE_ROW) out.push_back({s.text(0), static_cast<uint64_t>(s.i64(1)), s.text(2)});
    if (rc != SQLITE_DONE) return s.error("desired states");
    return out;
  }

  Result<bool> note_event(const std::string& node, uint64_t seq) override {
    if (seq > static_cast<uint64_t>(INT64_MAX))
      return make_error(ErrorCode::kInvalidArgument, "fleet database: event seq {} out of range", seq);
    std::lock_guard lock(mu_);
    return note_event_locked(node, seq);
  }

 private:
  Result<bool> note_event_locked(const std::string& node, uint64_t seq) {
    const auto s64 = static_cast<int64_t>(seq);
    Stmt ins(db_, "INSERT OR IGNORE INTO node_events (node, seq) VALUES (?, ?)");
    ins.bind(1, node).bind(2, s64);
    if (ins.step() != SQLITE_DONE) return ins.error("node_events");
    const bool fresh = sqlite3_changes(db_) > 0;
    if (fresh && s64 > 100000) {
      Stmt del(db_, "DELETE FROM node_events WHERE node = ? AND seq < ?");
      del.bind(1, node).bind(2, s64 - 100000);
      if (del.step() != SQLITE_DONE) return del.error("node_events");
    }
    return fresh;
  }

 public:

  Status audit(const AuditRecord& a) override {
    std::lock_guard lock(mu_);
    return audit_locked(a);
  }

  Result<std::vector<AuditRecord>> audit_log(const std::string& subject, size_t limit) override {
    std::lock_guard lock(mu_);
    Stmt s(db_,
           subject.empty()
               ? "SELECT id, time, actor, action, subject, detail FROM audit ORDER BY id LIMIT ?"
               : "SELECT id, time, actor, action, subject, detail FROM audit WHERE subject = ? ORDER BY id LIMIT ?");
    if (subject.empty()) {
      s.bind(1, static_cast<int64_t>(limit));
    } else {
      s.bind(1, subject).bind(2, static_cast<int64_t>(limit));
    }
    std::vector<AuditRecord> out;
    int rc;
    while ((rc = s.step()) == SQLITE_ROW)
      out.push_back({s.i64(0), s.i64(1), s.text(2), s.text(3), s.text(4), s.text(5)});
    if (rc != SQLITE_DONE) return s.error("audit log");
    return out;
  }

  Result<std::vector<AuditRecord>> audit_recent(int64_t after_id, size_t limit) override {
    std::lock_guard lock(mu_);
    Stmt s(db_, "SELECT id, time, actor, action, subject, detail FROM audit WHERE id > ? ORDER BY id DESC LIMIT ?");
    s.bind(1, after_id).bind(2, static_cast<int64_t>(std::min<size_t>(limit, INT64_MAX)));
    std::vector<AuditRecord> out;
    int rc;
    while ((rc = s.step()) == SQLITE_ROW)
      out.push_back({s.i64(0), s.i64(1), s.text(2), s.text(3), s.text(4), s.text(5)});
    if (rc != SQLITE_DONE) return s.error("audit log");
    std::reverse(out.begin(), out.end());
    return out;
  }

  Status add_telemetry(const std::vector<TelemetryBucket>& rows) override {
    if (rows.empty()) return ok_status();
    std::lock_guard lock(mu_);
    if (auto st = exec("BEGIN IMMEDIATE"); !st.ok()) return st;
    for (const auto& r : rows) {
      Stmt s(db_,
             "INSERT INTO telemetry_history (node, resolution, bucket, samples, decode_tok_s, prefill_tok_s, "
             "ttft_p50_ms, ttft_p95_ms, requests, errors) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
             "ON CONFLICT (node, resolution, bucket) DO UPDATE SET samples = telemetry_history.samples + "
             "excluded.samples, decode_tok_s = telemetry_history.decode_tok_s + excluded.decode_tok_s, "
             "prefill_tok_s = telemetry_history.prefill_tok_s + excluded.prefill_tok_s, ttft_p50_ms = "
             "telemetry_history.ttft_p50_ms + excluded.ttft_p50_ms, ttft_p95_ms = telemetry_history.ttft_p95_ms + "
             "excluded.ttft_p95_ms, requests = telemetry_history.requests + excluded.requests, errors = "
             "telemetry_history.errors + excluded.errors");
      s.bind(1, r.node).bind(2, r.resolution).bind(3, r.bucket).bind(4, r.samples).bind(5, r.decode_tok_s);
      s.bind(6, r.prefill_tok_s).bind(7, r.ttft_p50_ms).bind(8, r.ttft_p95_ms).bind(9, r.requests).bind(10, r.errors);
      if (s.step() != SQLITE_DONE) {
        Status st = s.error("telemetry history");
        (void)exec("ROLLBACK");
        return st;
      }
    }
    if (auto st = exec("COMMIT"); !st.ok()) {
      (void)exec("ROLLBACK");
      return st;
    }
    return ok_status();
  }

  Result<std::vector<TelemetryBucket>> telemetry(const std::string& node, int64_t resolution, int64_t from) override {
    std::lock_guard lock(mu_);
    Stmt s(db_,
           "SELECT node, resolution, bucket, samples, decode_tok_s, prefill_tok_s, ttft_p50_ms, ttft_p95_ms, "
           "requests, errors FROM telemetry_history WHERE node = ? AND resolution = ? AND bucket >= ? ORDER BY bucket");
    s.bind(1, node).bind(2, resolution).bind(3, from);
    std::vector<TelemetryBucket> out;
    int rc;
    while ((rc = s.step()) == SQLITE_ROW) {
      TelemetryBucket b;
      b.node = s.text(0);
      b.resolution = s.i64(1);
      b.bucket = s.i64(2);
      b.samples = s.i64(3);
      b.decode_tok_s = s.f64(4);
      b.prefill_tok_s = s.f64(5);
      b.ttft_p50_ms = s.f64(6);
      b.ttft_p95_ms = s.f64(7);
      b.requests = s.i64(8);
      b.errors = s.i64(9);
      out.push_back(std::move(b));
    }
    if (rc != SQLITE_DONE) return s.error("telemetry history");
    return out;
  }

  Status prune_telemetry(int64_t resolution, int64_t before) override {
    std::lock_guard lock(mu_);
    Stmt s(db_, "DELETE FROM telemetry_history WHERE resolution = ? AND bucket < ?");
    s.bind(1, resolution).bind(2, before);
    return s.step() == SQLITE_DONE ? ok_status() : s.error("telemetry history");
  }

 private:
  // (the caller holds mu_)
  Status put_rollout_locked(const RolloutRecord& r) {
    Stmt s(db_,
           "INSERT INTO rollouts (id, created, state, spec, current_batch, batch_done_at, reason) VALUES "
           "(?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET state = excluded.state, spec = excluded.spec, "
           "current_batch = excluded.current_batch, batch_done_at = excluded.batch_done_at, reason = excluded.reason");
    s.bind(1, r.id).bind(2, r.created).bind(3, r.state).bind(4, r.spec_json).bind(5, r.current_batch);
    s.bind(6, r.batch_done_at).bind(7, r.reason);
    return s.step() == SQLITE_DONE ? ok_status() : s.error("put rollout");
  }
  Status audit_locked(const AuditRecord& a) {
    Stmt s(db_, "INSERT INTO audit (time, actor, action, subject, detail) VALUES (?, ?, ?, ?, ?)");
    s.bind(1, a.time).bind(2, a.actor).bind(3, a.action).bind(4, a.subject).bind(5, a.detail);
    return s.step() == SQLITE_DONE ? ok_status() : s.error("audit");
  }

  Status exec(const char* sql) {
    // (callers hold mu_, or run before the object is shared)
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : "unknown error";
      sqlite3_free(err);
      return make_error(ErrorCode::kIo, "fleet database: {}", msg);
    }
    return ok_status();
  }

  Result<std::vector<RolloutRecord>> query_rollouts(const char* where, const std::string& arg) {
    std::lock_guard lock(mu_);
    std::string sql =
        std::string("SELECT id, created, state, spec, current_batch, batch_done_at, reason FROM rollouts ") + where +
        " ORDER BY created, id";
    Stmt s(db_, sql.c_str());
    if (*where) s.bind(1, arg);
    std::vector<RolloutRecord> out;
    int rc;
    while ((rc = s.step()) == SQLITE_ROW)
      out.push_back({s.text(0), s.i64(1), s.text(2), s.text(3), s.i64(4), s.i64(5), s.text(6)});
    if (rc != SQLITE_DONE) return s.error("rollouts");
    return out;
  }

  Result<std::vector<NodeRecord>> query_nodes(const char* where, const std::string& arg) {
    std::lock_guard lock(mu_);
    std::string sql =
        std::string(
            "SELECT id, labels, enrolled_at, cert_sha256, online, last_seen, state, reason, "
            "serving_reference, serving_digest, reported_generation, gate_values, reported_seq, telemetry, "
            "declared_labels FROM nodes ") +
        where + " ORDER BY id";
    Stmt s(db_, sql.c_str());
    if (*where) s.bind(1, arg);
    std::vector<NodeRecord> out;
    int rc;
    while ((rc = s.step()) == SQLITE_ROW) {
      NodeRecord n;
      n.id = s.text(0);
      auto labels = parse_labels(s.text(1));
      if (labels.ok()) n.labels = *labels;
      n.enrolled_at = s.i64(2);
      n.cert_sha256 = s.text(3);
      n.online = s.i64(4) != 0;
      n.last_seen = s.i64(5);
      n.state = s.text(6);
      n.reason = s.text(7);
      n.serving_reference = s.text(8);
      n.serving_digest = s.text(9);
      n.reported_generation = static_cast<uint64_t>(s.i64(10));
      n.gate_values_json = s.text(11);
      n.reported_seq = static_cast<uint64_t>(s.i64(12));
      n.telemetry_json = s.text(13);
      if (auto declared = parse_labels(s.text(14)); declared.ok()) n.declared_labels = *declared;
      out.push_back(std::move(n));
    }
    if (rc != SQLITE_DONE) return s.error("nodes");
    return out;
  }

  sqlite3* db_;
  std::mutex mu_;
  std::string recorded_holder_;
};

}  // namespace

// A backend without the dashboard's methods (see fleet_db.h).
Result<std::vector<AuditRecord>> FleetDb::audit_recent(int64_t after_id, size_t limit) {
  // From the whole log (a backend should override this with a query of its own).
  auto all = audit_log("", size_t{10000000});
  if (!all.ok()) return all.status();
  std::vector<AuditRecord> out;
  for (auto& a : *all)
    if (a.id > after_id) out.push_back(std::move(a));
  if (out.size() > limit) out.erase(out.begin(), out.end() - static_cast<std::ptrdiff_t>(limit));
  return out;
}
Status FleetDb::add_telemetry(const std::vector<TelemetryBucket>&) {
  return make_error(ErrorCode::kUnimplemented, "this fleet database keeps no telemetry history");
}
Result<std::vector<TelemetryBucket>> FleetDb::telemetry(const std::string&, int64_t, int64_t) {
  return make_error(ErrorCode::kUnimplemented, "this fleet database keeps no telemetry history");
}
Status FleetDb::prune_telemetry(int64_t, int64_t) {
  return make_error(ErrorCode::kUnimplemented, "this fleet database keeps no telemetry history");
}

Status FleetDb::put_desired(const std::string& node, uint64_t generation, const std::string& envelope,
                            const AuditRecord& audit) {
  FleetWrites w;
  w.desired.push_back({node, generation, envelope});
  w.audit.push_back(audit);
  return write(w);
}

Result<std::unique_ptr<FleetDb>> FleetDb::open(const std::string& url) {
  if (url.rfind("postgresql://", 0) == 0 || url.rfind("postgres://", 0) == 0) return open_postgres_fleet_db(url);
  std::string path = url;
  if (path.rfind("sqlite:", 0) == 0)
    path = path.substr(7);
  else if (path.find("://") != std::string::npos)
    return make_error(ErrorCode::kInvalidArgument, "--db: '{}' is not sqlite:PATH or postgresql://USER@HOST:PORT/DB",
                      url.substr(0, url.find("://")) + "://...");
  if (path.empty()) return make_error(ErrorCode::kInvalidArgument, "--db: no path (expected sqlite:PATH)");
  sqlite3* db = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return make_error(ErrorCode::kIo, "fleet database {}: {}", path, msg);
  }
  auto out = std::make_unique<SqliteFleetDb>(db);
  if (auto st = out->init(); !st.ok()) return st.with_context(path);
  return std::unique_ptr<FleetDb>(std::move(out));
}

}  // namespace hearth::fleet
