// FleetDb in PostgreSQL (libpq is seen only here and in fleet_db_pg_schema.*, the schema,
// migrations and connection helpers): the same tables as the SQLite backend
// (BIGINT for INTEGER, an identity column for the audit ids), every value sent as a query
// parameter, and leadership as a session advisory lock held on a connection of its own.
//
// Two connections: `conn_` for the data (one statement at a time under mu_, reset when the
// server dropped it; never inside a transaction, which then fails as a whole) and `lock_conn_`
// for the leader lock. The lock lives exactly as long as that session: when a leader is killed
// its socket closes and the server releases the lock at once; TCP keepalives (5 s idle, 2 s
// interval, 3 probes, set on both sides) end the session of a host that vanished.
#include <libpq-fe.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "hearth/core/status.h"
#include "hearth/fleet/fleet_db.h"
#include "hearth/fleet/fleet_db_pg_schema.h"

namespace hearth::fleet {
namespace {

using namespace pg;

constexpr int kSchemaVersion = 6;

using ResultPtr = std::unique_ptr<PGresult, decltype(&PQclear)>;

class PgFleetDb final : public FleetDb {
 public:
  PgFleetDb(std::string url, PGconn* conn) : url_(std::move(url)), conn_(conn) {}
  ~PgFleetDb() override {
    PQfinish(conn_);
    if (lock_conn_) PQfinish(lock_conn_);
  }

  Status init() {
    std::lock_guard lock(mu_);
    // Quiet NOTICEs ("relation already exists, skipping").
    if (auto r = run("SET client_min_messages = warning", {}, "session", true); !r.ok()) return r.status();
    if (auto st = exec_plain("BEGIN"); !st.ok()) return st;
    auto rollback = [&](Status st) {
      (void)exec_plain("ROLLBACK");
      return st;
    };
    // One controller at a time makes or upgrades the schema; the others wait here.
    if (auto r = run("SELECT pg_advisory_xact_lock($1)", {std::to_string(kMigrationLockKey)}, "schema lock", false);
        !r.ok())
      return rollback(r.status());
    if (auto r = run("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)", {}, "schema", false);
        !r.ok())
      return rollback(r.status());
    auto v = run("SELECT version FROM schema_version", {}, "schema_version", false);
    if (!v.ok()) return rollback(v.status());
    int64_t version = 0;
    if (PQntuples(v->get()) == 0) {  // a new database: the baseline tables
      if (auto st = exec_plain(kSchema); !st.ok()) return rollback(st.with_context("creating the schema"));
      if (auto r = run("INSERT INTO schema_version (version) VALUES (4)", {}, "schema_version", false); !r.ok())
        return rollback(r.status());
      version = 4;
    } else {
      version = to_i64(PQgetvalue(v->get(), 0, 0));
    }
    if (version < 4 || version > kSchemaVersion)
      return rollback(make_error(ErrorCode::kFailedPrecondition,
                                 "fleet database: schema version {} is not the {} this hearth knows (nor one it "
                                 "upgrades)",
                                 version, kSchemaVersion));
    for (const auto& m : migrations()) {
      if (m.to <= version) continue;
      if (auto st = exec_plain(m.sql); !st.ok())
        return rollback(st.with_context(
            fmt::format("fleet database: upgrading the schema from version {} to {}", m.to - 1, m.to)));
      if (auto r = run("UPDATE schema_version SET version = $1", {std::to_string(m.to)}, "schema_version", false);
          !r.ok())
        return rollback(r.status());
      version = m.to;
    }
    if (auto st = exec_plain("COMMIT"); !st.ok()) return rollback(st);
    return ok_status();
  }

  Status add_token(const std::string& hash, const Labels& labels, int64_t expires_at) override {
    std::lock_guard lock(mu_);
    return run("INSERT INTO join_tokens (token_sha256, labels, expires_at) VALUES ($1, $2, $3)",
               {hash, labels_to_string(labels), std::to_string(expires_at)}, "add token")
        .status();
  }

  // One conditional UPDATE: of two enrollments racing with one token, PostgreSQL's row lock
  // makes the second re-check `used_at IS NULL` after the first commits, and it matches nothing.
  Result<Labels> consume_token(const std::string& hash, const std::string& node, int64_t now) override {
    std::lock_guard lock(mu_);
    auto u = run(
        "UPDATE join_tokens SET used_at = $1, used_by = $2 WHERE token_sha256 = $3 AND used_at IS NULL AND "
        "expires_at > $1 RETURNING labels",
        {std::to_string(now), node, hash}, "use token");
    if (!u.ok()) return u.status();
    if (PQntuples(u->get()) == 1) return parse_labels(PQgetvalue(u->get(), 0, 0));
    auto q = run("SELECT used_at FROM join_tokens WHERE token_sha256 = $1", {hash}, "use token");
    if (!q.ok()) return q.status();
    if (PQntuples(q->get()) == 0)
      return make_error(ErrorCode::kPermissionDenied, "the join token is not known to this controller");
    if (!PQgetisnull(q->get(), 0, 0))
      return make_error(ErrorCode::kPermissionDenied, "the join token was already used");
    return make_error(ErrorCode::kPermissionDenied, "the join token has expired");
  }

  Status upsert_node(const NodeRecord& n) override {
    std::lock_guard lock(mu_);
    return run("INSERT INTO nodes (id, labels, enrolled_at, cert_sha256) VALUES ($1, $2, $3, $4) "
               "ON CONFLICT (id) DO UPDATE SET labels = EXCLUDED.labels, enrolled_at = EXCLUDED.enrolled_at, "
               "cert_sha256 = EXCLUDED.cert_sha256, reported_seq = 0",
               {n.id, labels_to_string(n.labels), std::to_string(n.enrolled_at), n.cert_sha256}, "upsert node")
        .status();
  }

  Result<std::optional<NodeRecord>> node(const std::string& id) override {
    auto all = query_nodes(true, id);
    if (!all.ok()) return all.status();
    if (all->empty()) return std::optional<NodeRecord>();
    return std::optional<NodeRecord>(std::move(all->front()));
  }

  Result<std::vector<NodeRecord>> nodes(const Labels& selector) override {
    auto all = query_nodes(false, "");
    if (!all.ok()) return all.status();
    std::vector<NodeRecord> out;
    for (auto& n : *all)
      if (labels_match(n.effective_labels(), selector)) out.push_back(std::move(n));
    return out;
  }

  Status set_labels(const std::string& id, const Labels& labels) override {
    std::lock_guard lock(mu_);
    auto r = run("UPDATE nodes SET labels = $1 WHERE id = $2", {labels_to_string(labels), id}, "set labels");
    if (!r.ok()) return r.status();
    if (affected(*r) == 0) return make_error(ErrorCode::kNotFound, "no node '{}' in this fleet", id);
    return ok_status();
  }

  Status set_presence(const std::string& id, bool online, int64_t now) override {
    std::lock_guard lock(mu_);
    return set_presence_locked(id, online, now, true);
  }

  Status set_telemetry(const std::string& id, const std::string& telemetry_json, int64_t now) override {
    std::lock_guard lock(mu_);
    return set_telemetry_locked(id, telemetry_json, now, true);
  }

  Status set_reported(const NodeRecord& r) override {
    std::lock_guard lock(mu_);
    return set_reported_locked(r, true);
  }

  Status write(const FleetWrites& w) override {
    if (w.empty()) return ok_status();
    for (const auto& d : w.desired)
      if (d.generation == 0 || d.generation > static_cast<uint64_t>(INT64_MAX))
        return make_error(ErrorCode::kInvalidArgument, "fleet database: desired generation {} out of range",
                          d.generation);
    for (const auto& e : w.events)
      if (e.seq > static_cast<uint64_t>(INT64_MAX))
        return make_error(ErrorCode::kInvalidArgument, "fleet database: event seq {} out of range", e.seq);
    // The statements in order, sent pipelined (libpq pipeline mode) inside one transaction.
    std::vector<Statement> stmts;
    stmts.reserve(w.desired.size() + w.node_updates.size() + 2 * w.events.size() + w.rollout_nodes.size() + 1 +
                  w.audit.size());
    for (const auto& d : w.desired) stmts.push_back(desired_stmt(d.node, d.generation, d.envelope));
    for (const auto& u : w.node_updates) {
      switch (u.kind) {
        case FleetWrites::NodeUpdate::kPresence: stmts.push_back(presence_stmt(u.node, u.online, u.now)); break;
        case FleetWrites::NodeUpdate::kTelemetry:
          stmts.push_back(telemetry_stmt(u.node, u.telemetry_json, u.now));
          break;
        case FleetWrites::NodeUpdate::kReported: stmts.push_back(reported_stmt(u.reported)); break;
      }
    }
    for (const auto& e : w.events) {
      // Noted, and audited only when new, in one statement (its result is not needed here).
      const auto& a = e.audit;
      stmts.push_back({"WITH fresh AS (INSERT INTO node_events (node, seq) VALUES ($1, $2) ON CONFLICT DO NOTHING "
                       "RETURNING seq) INSERT INTO audit (time, actor, action, subject, detail) SELECT $3::bigint, "
                       "$4::text, $5::text, $6::text, $7::text FROM fresh",
                       {e.node, std::to_string(static_cast<int64_t>(e.seq)), std::to_string(a.time), a.actor, a.action,
                        a.subject, a.detail},
                       "node_events"});
      if (e.seq > 100000)
        stmts.push_back({"DELETE FROM node_events WHERE node = $1 AND seq < $2",
                         {e.node, std::to_string(static_cast<int64_t>(e.seq) - 100000)}, "node_events"});
    }
    for (const auto& n : w.rollout_nodes) stmts.push_back(rollout_node_stmt(n));
    if (w.rollout) stmts.push_back(rollout_stmt(*w.rollout));
    for (const auto& a : w.audit) stmts.push_back(audit_stmt(a));
    std::lock_guard lock(mu_);
    if (auto st = exec_plain("BEGIN"); !st.ok()) return st;
    Status st = run_pipelined(stmts);
    if (st.ok()) st = exec_plain("COMMIT");
    if (!st.ok()) (void)exec_plain("ROLLBACK");
    return st;
  }

 private:
  // (the caller holds mu_; may_reset only outside a transaction)
  // One statement of a write: its SQL, parameters, and (must_change) the error when it changed
  // no row.
  struct Statement {
    const char* sql;
    std::vector<std::string> params;
    const char* what;
    std::optional<std::string> unchanged_error = std::nullopt;
  };

  static Statement presence_stmt(const std::string& id, bool online, int64_t now) {
    return {"UPDATE nodes SET online = $1, last_seen = $2 WHERE id = $3", {online ? "1" : "0", std::to_string(now), id},
            "set presence"};
  }
  static Statement telemetry_stmt(const std::string& id, const std::string& telemetry_json, int64_t now) {
    return {"UPDATE nodes SET telemetry = $1, online = 1, last_seen = $2 WHERE id = $3",
            {telemetry_json, std::to_string(now), id}, "set telemetry"};
  }
  static Statement reported_stmt(const NodeRecord& r) {
    return {"UPDATE nodes SET state = $1, reason = $2, serving_reference = $3, serving_digest = $4, "
            "reported_generation = $5, gate_values = $6, last_seen = $7, reported_seq = $8, declared_labels = $9 "
            "WHERE id = $10",
            {r.state, r.reason, r.serving_reference, r.serving_digest,
             std::to_string(static_cast<int64_t>(r.reported_generation)), r.gate_values_json,
             std::to_string(r.last_seen), std::to_string(static_cast<int64_t>(r.reported_seq)),
             labels_to_string(r.declared_labels), r.id},
            "set reported"};
  }
  // Only a newer generation replaces the stored one (kAlreadyExists otherwise).
  static Statement desired_stmt(const std::string& node, uint64_t generation, const std::string& envelope) {
    return {"INSERT INTO desired (node, generation, envelope) VALUES ($1, $2, $3) ON CONFLICT (node) DO UPDATE "
            "SET generation = EXCLUDED.generation, envelope = EXCLUDED.envelope WHERE desired.generation < "
            "EXCLUDED.generation",
            {node, std::to_string(static_cast<int64_t>(generation)), envelope}, "put desired",
            fmt::format("fleet database: desired generation {} for {} is not newer than the stored one", generation,
                        node)};
  }
  static Statement rollout_node_stmt(const RolloutNodeRecord& n) {
    return {"INSERT INTO rollout_nodes (rollout_id, node, batch, state, reason, gate_values, previous_reference, "
            "previous_digest, generation, assigned_at, rollback_generation) VALUES ($1, $2, $3, $4, $5, $6, $7, "
            "$8, $9, $10, $11) ON CONFLICT (rollout_id, node) DO UPDATE SET batch = EXCLUDED.batch, state = "
            "EXCLUDED.state, reason = EXCLUDED.reason, gate_values = EXCLUDED.gate_values, previous_reference = "
            "EXCLUDED.previous_reference, previous_digest = EXCLUDED.previous_digest, generation = "
            "EXCLUDED.generation, assigned_at = EXCLUDED.assigned_at, rollback_generation = "
            "EXCLUDED.rollback_generation",
            {n.rollout_id, n.node, std::to_string(n.batch), n.state, n.reason, n.gate_values_json,
             n.previous_reference, n.previous_digest, std::to_string(static_cast<int64_t>(n.generation)),
             std::to_string(n.assigned_at), std::to_string(static_cast<int64_t>(n.rollback_generation))},
            "put rollout node"};
  }
  static Statement rollout_stmt(const RolloutRecord& r) {
    return {"INSERT INTO rollouts (id, created, state, spec, current_batch, batch_done_at, reason) VALUES "
            "($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO UPDATE SET state = EXCLUDED.state, spec = "
            "EXCLUDED.spec, current_batch = EXCLUDED.current_batch, batch_done_at = EXCLUDED.batch_done_at, "
            "reason = EXCLUDED.reason",
            {r.id, std::to_string(r.created), r.state, r.spec_json, std::to_string(r.current_batch),
             std::to_string(r.batch_done_at), r.reason},
            "put rollout"};
  }
  static Statement audit_stmt(const AuditRecord& a) {
    return {"INSERT INTO audit (time, actor, action, subject, detail) VALUES ($1, $2, $3, $4, $5)",
            {std::to_string(a.time), a.actor, a.action, a.subject, a.detail}, "audit"};
  }

  Status exec_stmt(const Statement& st, bool may_reset) {
    auto r = run(st.sql, st.params, st.what, may_reset);
    if (!r.ok()) return r.status();
    if (st.unchanged_error && affected(*r) == 0) return make_error(ErrorCode::kAlreadyExists, "{}", *st.unchanged_error);
    return ok_status();
  }

  // In a transaction: the statements sent without waiting for each result (libpq pipeline
  // mode), in chunks, so that the results the server writes never fill the socket while this
  // side is still sending. Stops at the first error.
  Status run_pipelined(const std::vector<Statement>& stmts) {
    constexpr size_t kChunk = 256;
    if (PQenterPipelineMode(conn_) != 1)
      return make_error(ErrorCode::kIo, "fleet database (PostgreSQL): pipeline mode: {}", conn_error(conn_));
    Status first = ok_status();
    for (size_t at = 0; at < stmts.size() && first.ok(); at += kChunk) {
      const size_t end = std::min(stmts.size(), at + kChunk);
      size_t sent = at;
      for (; sent < end; ++sent) {
        const Statement& st = stmts[sent];
        std::vector<const char*> values;
        values.reserve(st.params.size());
        for (const auto& p : st.params) values.push_back(p.c_str());
        if (PQsendQueryParams(conn_, st.sql, static_cast<int>(values.size()), nullptr, values.data(), nullptr, nullptr,
                              0) != 1) {
          first = make_error(ErrorCode::kIo, "fleet database (PostgreSQL): {}: {}", st.what, conn_error(conn_));
          break;
        }
      }
      if (PQpipelineSync(conn_) != 1 && first.ok())
        first = make_error(ErrorCode::kIo, "fleet database (PostgreSQL): pipeline sync: {}", conn_error(conn_));
      // Each statement's result (then a null), then the sync's.
      for (size_t i = at; i < sent; ++i) {
        ResultPtr r(PQgetResult(conn_), PQclear);
        if (!r) {
          if (first.ok()) first = make_error(ErrorCode::kIo, "fleet database (PostgreSQL): {}: no result", stmts[i].what);
          break;
        }
        while (PGresult* extra = PQgetResult(conn_)) PQclear(extra);
        const auto status = PQresultStatus(r.get());
        if (!first.ok()) continue;  // (after an error the rest are aborted)
        if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
          std::string msg = PQresultErrorMessage(r.get());
          while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
          first = make_error(ErrorCode::kIo, "fleet database (PostgreSQL): {}: {}", stmts[i].what, msg);
        } else if (stmts[i].unchanged_error && affected(r) == 0) {
          first = make_error(ErrorCode::kAlreadyExists, "{}", *stmts[i].unchanged_error);
        }
      }
      for (int nulls = 0; nulls < 64;) {  // up to and including the sync
        ResultPtr r(PQgetResult(conn_), PQclear);
        if (r && PQresultStatus(r.get()) == PGRES_PIPELINE_SYNC) break;
        if (r) {
          nulls = 0;
        } else if (++nulls == 64 || PQstatus(conn_) != CONNECTION_OK) {
          if (first.ok()) first = make_error(ErrorCode::kIo, "fleet database (PostgreSQL): {}", conn_error(conn_));
          break;
        }
      }
    }
    if (PQexitPipelineMode(conn_) != 1 && first.ok())
      first = make_error(ErrorCode::kIo, "fleet database (PostgreSQL): leaving pipeline mode: {}", conn_error(conn_));
    return first;
  }

  Status set_presence_locked(const std::string& id, bool online, int64_t now, bool may_reset) {
    return exec_stmt(presence_stmt(id, online, now), may_reset);
  }
  Status set_telemetry_locked(const std::string& id, const std::string& telemetry_json, int64_t now, bool may_reset) {
    return exec_stmt(telemetry_stmt(id, telemetry_json, now), may_reset);
  }
  Status set_reported_locked(const NodeRecord& r, bool may_reset) { return exec_stmt(reported_stmt(r), may_reset); }

 public:
  Result<uint64_t> desired_generation(const std::string& node) override {
    auto row = desired(node);
    if (!row.ok()) return row.status();
    return row->has_value() ? (*row)->generation : uint64_t{0};
  }

  Result<std::optional<DesiredRow>> desired(const std::string& node) override {
    std::lock_guard lock(mu_);
    auto r = run("SELECT node, generation, envelope FROM desired WHERE node = $1", {node}, "desired");
    if (!r.ok()) return r.status();
    if (PQntuples(r->get()) == 0) return std::optional<DesiredRow>();
    return std::optional<DesiredRow>(DesiredRow{text(*r, 0, 0), u64(*r, 0, 1), text(*r, 0, 2)});
  }

  Result<std::vector<DesiredRow>> all_desired() override {
    std::lock_guard lock(mu_);
    auto r = run("SELECT node, generation, envelope FROM desired ORDER BY node", {}, "desired states");
    if (!r.ok()) return r.status();
    std::vector<DesiredRow> out;
    for (int i = 0; i < PQntuples(r->get()); ++i) out.push_back({text(*r, i, 0), u64(*r, i, 1), text(*r, i, 2)});
    return out;
  }

  Status put_rollout(const RolloutRecord& r) override {
    std::lock_guard lock(mu_);
    return upsert_rollout(r, true);
  }

  Status put_rollout_audited(const RolloutRecord& r, const std::vector<AuditRecord>& audit) override {
    std::lock_guard lock(mu_);
    if (auto st = exec_plain("BEGIN"); !st.ok()) return st;
    Status st = upsert_rollout(r, false);
    for (const auto& a : audit)
      if (st.ok()) st = insert_audit(a, false);
    if (st.ok()) st = exec_plain("COMMIT");
    if (!st.ok()) (void)exec_plain("ROLLBACK");
    return st;
  }

  Result<std::optional<RolloutRecord>> rollout(const std::string& id) override {
    auto all = query_rollouts(true, id);
    if (!all.ok()) return all.status();
    if (all->empty()) return std::optional<RolloutRecord>();
    return std::optional<RolloutRecord>(std::move(all->front()));
  }

  Result<std::vector<RolloutRecord>> rollouts() override { return query_rollouts(false, ""); }

  Status put_rollout_node(const RolloutNodeRecord& n) override {
    std::lock_guard lock(mu_);
    return put_rollout_node_locked(n, true);
  }

 private:
  Status put_rollout_node_locked(const RolloutNodeRecord& n, bool may_reset) {
    return exec_stmt(rollout_node_stmt(n), may_reset);
  }

 public:

  Result<std::vector<RolloutNodeRecord>> rollout_nodes(const std::string& id) override {
    std::lock_guard lock(mu_);
    auto r = run("SELECT rollout_id, node, batch, state, reason, gate_values, previous_reference, previous_digest, "
                 "generation, assigned_at, rollback_generation FROM rollout_nodes WHERE rollout_id = $1 ORDER BY "
                 "batch, node",
                 {id}, "rollout nodes");
    if (!r.ok()) return r.status();
    std::vector<RolloutNodeRecord> out;
    for (int i = 0; i < PQntuples(r->get()); ++i) {
      RolloutNodeRecord n;
      n.rollout_id = text(*r, i, 0);
      n.node = text(*r, i, 1);
      n.batch = i64(*r, i, 2);
      n.state = text(*r, i, 3);
      n.reason = text(*r, i, 4);
      n.gate_values_json = text(*r, i, 5);
      n.previous_reference = text(*r, i, 6);
      n.previous_digest = text(*r, i, 7);
      n.generation = u64(*r, i, 8);
      n.assigned_at = i64(*r, i, 9);
      n.rollback_generation = u64(*r, i, 10);
      out.push_back(std::move(n));
    }
    return out;
  }

  Result<bool> note_event(const std::string& node, uint64_t seq) override {
    if (seq > static_cast<uint64_t>(INT64_MAX))
      return make_error(ErrorCode::kInvalidArgument, "fleet database: event seq {} out of range", seq);
    std::lock_guard lock(mu_);
    return note_event_locked(node, seq, true);
  }

 private:
  Result<bool> note_event_locked(const std::string& node, uint64_t seq, bool may_reset) {
    const auto s64 = static_cast<int64_t>(seq);
    auto ins = run("INSERT INTO node_events (node, seq) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                   {node, std::to_string(s64)}, "node_events", may_reset);
    if (!ins.ok()) return ins.status();
    const bool fresh = affected(*ins) > 0;
    if (fresh && s64 > 100000) {
      auto del = run("DELETE FROM node_events WHERE node = $1 AND seq < $2", {node, std::to_string(s64 - 100000)},
                     "node_events", may_reset);
      if (!del.ok()) return del.status();
    }
    return fresh;
  }

 public:

  Status audit(const AuditRecord& a) override {
    std::lock_guard lock(mu_);
    return insert_audit(a, true);
  }

  Result<std::vector<AuditRecord>> audit_log(const std::string& subject, size_t limit) override {
    std::lock_guard lock(mu_);
    const std::string lim = std::to_string(std::min<uint64_t>(limit, static_cast<uint64_t>(INT64_MAX)));
    auto r = subject.empty()
                 ? run("SELECT id, time, actor, action, subject, detail FROM audit ORDER BY id LIMIT $1", {lim},
                       "audit log")
                 : run("SELECT id, time, actor, action, subject, detail FROM audit WHERE subject = $1 ORDER BY id "
                       "LIMIT $2",
                       {subject, lim}, "audit log");
    if (!r.ok()) return r.status();
    std::vector<AuditRecord> out;
    for (int i = 0; i < PQntuples(r->get()); ++i)
      out.push_back({i64(*r, i, 0), i64(*r, i, 1), text(*r, i, 2), text(*r, i, 3), text(*r, i, 4), text(*r, i, 5)});
    return out;
  }

  Result<std::vector<AuditRecord>> audit_recent(int64_t after_id, size_t limit) override {
    std::lock_guard lock(mu_);
    auto r = run("SELECT id, time, actor, action, subject, detail FROM audit WHERE id > $1 ORDER BY id DESC LIMIT $2",
                 {std::to_string(after_id), std::to_string(std::min<uint64_t>(limit, static_cast<uint64_t>(INT64_MAX)))},
                 "audit log");
    if (!r.ok()) return r.status();
    std::vector<AuditRecord> out;
    for (int i = PQntuples(r->get()) - 1; i >= 0; --i)  // oldest first
      out.push_back({i64(*r, i, 0), i64(*r, i, 1), text(*r, i, 2), text(*r, i, 3), text(*r, i, 4), text(*r, i, 5)});
    return out;
  }

  Status add_telemetry(const std::vector<TelemetryBucket>& rows) override {
    if (rows.empty()) return ok_status();
    std::lock_guard lock(mu_);
    if (auto st = exec_plain("BEGIN"); !st.ok()) return st;
    auto num = [](double v) { return fmt::format("{}", v); };  // the shortest text that reads back exactly
    for (const auto& b : rows) {
      auto r = run("INSERT INTO telemetry_history (node, resolution, bucket, samples, decode_tok_s, prefill_tok_s, "
                   "ttft_p50_ms, ttft_p95_ms, requests, errors) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
                   "ON CONFLICT (node, resolution, bucket) DO UPDATE SET samples = telemetry_history.samples + "
                   "EXCLUDED.samples, decode_tok_s = telemetry_history.decode_tok_s + EXCLUDED.decode_tok_s, "
                   "prefill_tok_s = telemetry_history.prefill_tok_s + EXCLUDED.prefill_tok_s, ttft_p50_ms = "
                   "telemetry_history.ttft_p50_ms + EXCLUDED.ttft_p50_ms, ttft_p95_ms = telemetry_history.ttft_p95_ms "
                   "+ EXCLUDED.ttft_p95_ms, requests = telemetry_history.requests + EXCLUDED.requests, errors = "
                   "telemetry_history.errors + EXCLUDED.errors",
                   {b.node, std::to_string(b.resolution), std::to_string(b.bucket), std::to_string(b.samples),
                    num(b.decode_tok_s), num(b.prefill_tok_s), num(b.ttft_p50_ms), num(b.ttft_p95_ms),
                    std::to_string(b.requests), std::to_string(b.errors)},
                   "telemetry history", false);
      if (!r.ok()) {
        (void)exec_plain("ROLLBACK");
        return r.status();
      }
    }
    if (auto st = exec_plain("COMMIT"); !st.ok()) {
      (void)exec_plain("ROLLBACK");
      return st;
    }
    return ok_status();
  }

  Result<std::vector<TelemetryBucket>> telemetry(const std::string& node, int64_t resolution, int64_t from) override {
    std::lock_guard lock(mu_);
    auto r = run("SELECT node, resolution, bucket, samples, decode_tok_s, prefill_tok_s, ttft_p50_ms, ttft_p95_ms, "
                 "requests, errors FROM telemetry_history WHERE node = $1 AND resolution = $2 AND bucket >= $3 "
                 "ORDER BY bucket",
                 {node, std::to_string(resolution), std::to_string(from)}, "telemetry history");
    if (!r.ok()) return r.status();
    auto f64 = [&](int row, int col) { return std::strtod(PQgetvalue(r->get(), row, col), nullptr); };
    std::vector<TelemetryBucket> out;
    for (int i = 0; i < PQntuples(r->get()); ++i) {
      TelemetryBucket b;
      b.node = text(*r, i, 0);
      b.resolution = i64(*r, i, 1);
      b.bucket = i64(*r, i, 2);
      b.samples = i64(*r, i, 3);
      b.decode_tok_s = f64(i, 4);
      b.prefill_tok_s = f64(i, 5);
      b.ttft_p50_ms = f64(i, 6);
      b.ttft_p95_ms = f64(i, 7);
      b.requests = i64(*r, i, 8);
      b.errors = i64(*r, i, 9);
      out.push_back(std::move(b));
    }
    return out;
  }

  Status prune_telemetry(int64_t resolution, int64_t before) override {
    std::lock_guard lock(mu_);
    return run("DELETE FROM telemetry_history WHERE resolution = $1 AND bucket < $2",
               {std::to_string(resolution), std::to_string(before)}, "telemetry history")
        .status();
  }

  Result<bool> lead(const std::string& holder) override {
    std::lock_guard lock(lead_mu_);
    if (lost_) return false;
    auto lose = [&](Status st) -> Result<bool> {
      if (leading_) lost_ = true;
      if (lock_conn_) PQfinish(lock_conn_);
      lock_conn_ = nullptr;
      return st;
    };
    if (lock_conn_ == nullptr) {
      if (leading_) return lose(make_error(ErrorCode::kUnavailable, "the leader's database session is gone"));
      auto c = connect(url_, "hearth-controller-leader");
      if (!c.ok()) return c.status();
      lock_conn_ = *c;
    }
    if (leading_) {
      // The lock is the session's: while a round trip on it works, this controller leads.
      ResultPtr r(PQexec(lock_conn_, "SELECT 1"), PQclear);
      if (!r || PQresultStatus(r.get()) != PGRES_TUPLES_OK)
        return lose(make_error(ErrorCode::kUnavailable, "the leader's database session ended: {}",
                               conn_error(lock_conn_)));
    } else {
      const std::string key = std::to_string(kLeaderLockKey);
      const char* values[] = {key.c_str()};
      ResultPtr r(PQexecParams(lock_conn_, "SELECT pg_try_advisory_lock($1)", 1, nullptr, values, nullptr, nullptr, 0),
                  PQclear);
      if (!r || PQresultStatus(r.get()) != PGRES_TUPLES_OK)
        return lose(make_error(ErrorCode::kUnavailable, "fleet database: the leader lock: {}", conn_error(lock_conn_)));
      if (std::string(PQgetvalue(r.get(), 0, 0)) != "t") return false;
      leading_ = true;
    }
    if (recorded_holder_ != holder) {
      std::lock_guard data(mu_);
      auto r = run("INSERT INTO leader (id, holder, since) VALUES (1, $1, extract(epoch from now())::bigint) "
                   "ON CONFLICT (id) DO UPDATE SET holder = EXCLUDED.holder, since = EXCLUDED.since",
                   {holder}, "leader");
      if (r.ok()) recorded_holder_ = holder;  // else: tried again on the next call; this one still leads
    }
    return true;
  }

  Result<std::string> leader() override {
    std::lock_guard lock(mu_);
    auto r = run("SELECT holder FROM leader WHERE id = 1", {}, "leader");
    if (!r.ok()) return r.status();
    return PQntuples(r->get()) == 0 ? std::string() : text(*r, 0, 0);
  }

 private:
  // One statement with its parameters (text), under mu_. `may_reset`: outside a transaction a
  // dropped connection is re-established first; inside one the statement fails instead (the
  // transaction went with the connection).
  Result<ResultPtr> run(const char* sql, const std::vector<std::string>& params, std::string_view what,
                        bool may_reset = true) {
    if (PQstatus(conn_) != CONNECTION_OK && may_reset) PQreset(conn_);
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const auto& p : params) values.push_back(p.c_str());
    ResultPtr r(PQexecParams(conn_, sql, static_cast<int>(values.size()), nullptr, values.data(), nullptr, nullptr, 0),
                PQclear);
    const auto st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return r;
    std::string msg = r ? PQresultErrorMessage(r.get()) : "";
    if (msg.empty()) msg = conn_error(conn_);
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    return make_error(ErrorCode::kIo, "fleet database (PostgreSQL): {}: {}", what, msg);
  }

  // Several statements without parameters (schema, BEGIN/COMMIT/ROLLBACK), under mu_.
  Status exec_plain(const char* sql) {
    if (PQstatus(conn_) != CONNECTION_OK && std::string_view(sql) == "BEGIN") PQreset(conn_);
    ResultPtr r(PQexec(conn_, sql), PQclear);
    const auto st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return ok_status();
    std::string msg = r ? PQresultErrorMessage(r.get()) : "";
    if (msg.empty()) msg = conn_error(conn_);
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    return make_error(ErrorCode::kIo, "fleet database (PostgreSQL): {}", msg);
  }

  Status upsert_rollout(const RolloutRecord& r, bool may_reset) { return exec_stmt(rollout_stmt(r), may_reset); }
  Status insert_audit(const AuditRecord& a, bool may_reset) { return exec_stmt(audit_stmt(a), may_reset); }

  static int64_t affected(const ResultPtr& r) { return to_i64(PQcmdTuples(r.get())); }
  static std::string text(const ResultPtr& r, int row, int col) {
    return std::string(PQgetvalue(r.get(), row, col), static_cast<size_t>(PQgetlength(r.get(), row, col)));
  }
  static int64_t i64(const ResultPtr& r, int row, int col) { return to_i64(PQgetvalue(r.get(), row, col)); }
  static uint64_t u64(const ResultPtr& r, int row, int col) { return static_cast<uint64_t>(i64(r, row, col)); }

  Result<std::vector<RolloutRecord>> query_rollouts(bool by_id, const std::string& id) {
    std::lock_guard lock(mu_);
    auto r = by_id ? run("SELECT id, created, state, spec, current_batch, batch_done_at, reason FROM rollouts WHERE "
                         "id = $1 ORDER BY created, id",
                         {id}, "rollouts")
                   : run("SELECT id, created, state, spec, current_batch, batch_done_at, reason FROM rollouts ORDER BY "
                         "created, id",
                         {}, "rollouts");
    if (!r.ok()) return r.status();
    std::vector<RolloutRecord> out;
    for (int i = 0; i < PQntuples(r->get()); ++i)
      out.push_back({text(*r, i, 0), i64(*r, i, 1), text(*r, i, 2), text(*r, i, 3), i64(*r, i, 4), i64(*r, i, 5),
                     text(*r, i, 6)});
    return out;
  }

  Result<std::vector<NodeRecord>> query_nodes(bool by_id, const std::string& id) {
    std::lock_guard lock(mu_);
    static constexpr const char* kColumns =
        "SELECT id, labels, enrolled_at, cert_sha256, online, last_seen, state, reason, serving_reference, "
        "serving_digest, reported_generation, gate_values, reported_seq, telemetry, declared_labels FROM nodes ";
    auto r = by_id ? run((std::string(kColumns) + "WHERE id = $1 ORDER BY id").c_str(), {id}, "nodes")
                   : run((std::string(kColumns) + "ORDER BY id").c_str(), {}, "nodes");
    if (!r.ok()) return r.status();
    std::vector<NodeRecord> out;
    for (int i = 0; i < PQntuples(r->get()); ++i) {
      NodeRecord n;
      n.id = text(*r, i, 0);
      if (auto labels = parse_labels(text(*r, i, 1)); labels.ok()) n.labels = *labels;
      n.enrolled_at = i64(*r, i, 2);
      n.cert_sha256 = text(*r, i, 3);
      n.online = i64(*r, i, 4) != 0;
      n.last_seen = i64(*r, i, 5);
      n.state = text(*r, i, 6);
      n.reason = text(*r, i, 7);
      n.serving_reference = text(*r, i, 8);
      n.serving_digest = text(*r, i, 9);
      n.reported_generation = u64(*r, i, 10);
      n.gate_values_json = text(*r, i, 11);
      n.reported_seq = u64(*r, i, 12);
      n.telemetry_json = text(*r, i, 13);
      if (auto declared = parse_labels(text(*r, i, 14)); declared.ok()) n.declared_labels = *declared;
      out.push_back(std::move(n));
    }
    return out;
  }

  const std::string url_;
  PGconn* conn_;
  std::mutex mu_;  // conn_
  std::mutex lead_mu_;
  PGconn* lock_conn_ = nullptr;
  bool leading_ = false, lost_ = false;
  std::string recorded_holder_;
};

}  // namespace

Result<std::unique_ptr<FleetDb>> open_postgres_fleet_db(const std::string& url) {
  auto c = connect(url, "hearth-controller");
  if (!c.ok()) return c.status();
  auto db = std::make_unique<PgFleetDb>(url, *c);
  if (auto st = db->init(); !st.ok()) return st.with_context(redact(url));
  return std::unique_ptr<FleetDb>(std::move(db));
}

}  // namespace hearth::fleet
