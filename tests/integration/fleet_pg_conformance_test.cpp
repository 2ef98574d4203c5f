// FleetDb conformance: the same assertions against SQLite (a temporary file) and PostgreSQL (a
// real server on loopback, run as a non-root user; a fresh database per test). Expected values
// come from the FleetDb contract in fleet_db.h, not from either backend's output. Then the
// PostgreSQL-only parts: one-use tokens under concurrent enrollment, concurrent first opens
// (one schema), and leadership (one leader; the next takes over when its session ends).
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "hearth/fleet/fleet_db.h"
#include "postgres_process.h"
#include "shared_data.h"

namespace hearth::fleet {
namespace {

using namespace std::chrono_literals;

hearth::testing::PostgresServer* g_pg = nullptr;
std::string g_pg_why;

class PgEnvironment : public ::testing::Environment {
 public:
  void SetUp() override { server_ = hearth::testing::PostgresServer::start(&g_pg_why), g_pg = server_.get(); }
  void TearDown() override {
    g_pg = nullptr;
    server_.reset();
  }

 private:
  std::unique_ptr<hearth::testing::PostgresServer> server_;
};
const auto* const g_env = ::testing::AddGlobalTestEnvironment(new PgEnvironment);

// Skips (fails under CI=true) when there is no PostgreSQL server.
#define REQUIRE_PG()                                                                         \
  do {                                                                                       \
    if (g_pg == nullptr) {                                                                   \
      if (::hearth::testing::running_in_ci()) FAIL() << g_pg_why;                            \
      GTEST_SKIP() << "no PostgreSQL server for this test: " << g_pg_why;                     \
    }                                                                                        \
  } while (0)

// A fresh PostgreSQL database's URL.
std::string fresh_pg_database() {
  static std::atomic<int> n{0};
  const std::string name = "t" + std::to_string(getpid()) + "_" + std::to_string(n.fetch_add(1));
  std::string why;
  EXPECT_TRUE(g_pg->create_database(name, &why)) << why;
  return g_pg->url(name);
}

class Conformance : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "postgresql") {
      REQUIRE_PG();
      url_ = fresh_pg_database();
    } else {
      dir_ = hearth::testing::make_temp_dir("hearth-fleetdb-conf");
      url_ = "sqlite:" + (dir_ / "fleet.db").string();
    }
    auto db = FleetDb::open(url_);
    ASSERT_TRUE(db.ok()) << db.status().to_string();
    db_ = std::move(*db);
  }
  void TearDown() override {
    db_.reset();
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }
  std::unique_ptr<FleetDb> open_again() {
    auto db = FleetDb::open(url_);
    EXPECT_TRUE(db.ok()) << db.status().to_string();
    return db.ok() ? std::move(*db) : nullptr;
  }
  int count_actions(const std::string& subject, const std::string& action) {
    auto log = db_->audit_log(subject, 1000);
    EXPECT_TRUE(log.ok());
    int n = 0;
    for (const auto& a : *log) n += a.action == action;
    return n;
  }

  std::filesystem::path dir_;
  std::string url_;
  std::unique_ptr<FleetDb> db_;
};

INSTANTIATE_TEST_SUITE_P(Backends, Conformance, ::testing::Values("sqlite", "postgresql"),
                         [](const auto& p) { return p.param; });

TEST_P(Conformance, ReopeningKeepsTheSchemaAndTheRows) {
  ASSERT_TRUE(db_->add_token("aa", {{"site", "north"}}, 1000).ok());
  db_.reset();
  db_ = open_again();  // the migrations are already applied: nothing to do, nothing lost
  ASSERT_TRUE(db_);
  auto labels = db_->consume_token("aa", "edge-1", 10);
  ASSERT_TRUE(labels.ok()) << labels.status().to_string();
  EXPECT_EQ(labels->at("site"), "north");
}

TEST_P(Conformance, AJoinTokenWorksOnceAndNotAfterItExpires) {
  ASSERT_TRUE(db_->add_token("t1", {{"site", "north"}, {"tier", "edge"}}, 100).ok());
  ASSERT_TRUE(db_->add_token("t2", {}, 100).ok());
  EXPECT_FALSE(db_->add_token("t1", {}, 100).ok());  // a token's hash is its key
  auto first = db_->consume_token("t1", "edge-1", 50);
  ASSERT_TRUE(first.ok()) << first.status().to_string();
  EXPECT_EQ(*first, (Labels{{"site", "north"}, {"tier", "edge"}}));
  auto again = db_->consume_token("t1", "edge-2", 51);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), ErrorCode::kPermissionDenied);
  EXPECT_NE(again.status().message().find("already used"), std::string::npos) << again.status().message();
  auto expired = db_->consume_token("t2", "edge-3", 100);  // at expires_at it has expired
  ASSERT_FALSE(expired.ok());
  EXPECT_NE(expired.status().message().find("expired"), std::string::npos) << expired.status().message();
  auto unknown = db_->consume_token("nope", "edge-4", 1);
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("not known"), std::string::npos) << unknown.status().message();
}

TEST_P(Conformance, NodesTheirLabelsPresenceAndReports) {
  NodeRecord a;
  a.id = "edge-a";
  a.labels = {{"site", "north"}};
  a.enrolled_at = 5;
  a.cert_sha256 = "c1";
  ASSERT_TRUE(db_->upsert_node(a).ok());
  NodeRecord b = a;
  b.id = "edge-b";
  b.labels = {{"site", "south"}};
  ASSERT_TRUE(db_->upsert_node(b).ok());
  EXPECT_FALSE(db_->node("edge-z")->has_value());
  auto n = db_->node("edge-a");
  ASSERT_TRUE(n.ok() && n->has_value());
  EXPECT_EQ((*n)->cert_sha256, "c1");
  EXPECT_EQ((*n)->enrolled_at, 5);
  EXPECT_FALSE((*n)->online);
  EXPECT_EQ((*n)->state, "");
  EXPECT_EQ((*n)->reported_seq, 0u);

  // A report: every field, with values that need quoting in SQL.
  NodeRecord r = a;
  r.state = "serving";
  r.reason = "it's \"fine\"; DROP TABLE nodes; --";
  r.serving_reference = "reg.local/m:v2";
  r.serving_digest = "sha256:" + std::string(64, 'a');
  r.reported_generation = 7;
  r.reported_seq = 9000000000ULL;  // beyond 32 bits
  r.gate_values_json = R"({"eval_ppl":12.5})";
  r.declared_labels = {{"gpu", "none"}, {"site", "ignored"}};
  r.last_seen = 77;
  ASSERT_TRUE(db_->set_reported(r).ok());
  n = db_->node("edge-a");
  ASSERT_TRUE(n.ok() && n->has_value());
  EXPECT_EQ((*n)->state, "serving");
  EXPECT_EQ((*n)->reason, r.reason);
  EXPECT_EQ((*n)->serving_reference, r.serving_reference);
  EXPECT_EQ((*n)->serving_digest, r.serving_digest);
  EXPECT_EQ((*n)->reported_generation, 7u);
  EXPECT_EQ((*n)->reported_seq, 9000000000ULL);
  EXPECT_EQ((*n)->gate_values_json, r.gate_values_json);
  EXPECT_EQ((*n)->last_seen, 77);
  EXPECT_EQ((*n)->declared_labels, r.declared_labels);
  // The operator's label wins a key; the node's own labels count for selectors too.
  EXPECT_EQ((*n)->effective_labels(), (Labels{{"gpu", "none"}, {"site", "north"}}));

  auto north = db_->nodes({{"site", "north"}});
  ASSERT_TRUE(north.ok());
  ASSERT_EQ(north->size(), 1u);
  EXPECT_EQ(north->front().id, "edge-a");
  EXPECT_EQ(db_->nodes({{"gpu", "none"}})->size(), 1u);
  auto all = db_->nodes({});
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].id, "edge-a");  // ordered by id
  EXPECT_EQ((*all)[1].id, "edge-b");

  ASSERT_TRUE(db_->set_labels("edge-b", {{"site", "east"}}).ok());
  EXPECT_EQ(db_->node("edge-b")->value().labels, (Labels{{"site", "east"}}));
  auto missing = db_->set_labels("edge-z", {});
  EXPECT_EQ(missing.code(), ErrorCode::kNotFound);

  ASSERT_TRUE(db_->set_presence("edge-b", true, 123).ok());
  EXPECT_TRUE(db_->node("edge-b")->value().online);
  EXPECT_EQ(db_->node("edge-b")->value().last_seen, 123);
  ASSERT_TRUE(db_->set_presence("edge-b", false, 124).ok());
  EXPECT_FALSE(db_->node("edge-b")->value().online);
  ASSERT_TRUE(db_->set_telemetry("edge-b", R"({"requests":3})", 130).ok());
  EXPECT_EQ(db_->node("edge-b")->value().telemetry_json, R"({"requests":3})");
  EXPECT_TRUE(db_->node("edge-b")->value().online);  // telemetry marks it online

  // Re-enrollment replaces the certificate, keeps the history, restarts the report order.
  a.cert_sha256 = "c2";
  ASSERT_TRUE(db_->upsert_node(a).ok());
  n = db_->node("edge-a");
  EXPECT_EQ((*n)->cert_sha256, "c2");
  EXPECT_EQ((*n)->state, "serving");
  EXPECT_EQ((*n)->reported_seq, 0u);
}

TEST_P(Conformance, DesiredGenerationsOnlyGrowAndComeWithTheirAuditEntry) {
  EXPECT_EQ(*db_->desired_generation("edge-a"), 0u);
  EXPECT_FALSE(db_->desired("edge-a")->has_value());
  auto audit = [](uint64_t g, const std::string& node = "edge-a") {
    return AuditRecord{0, 10, "controller", "desired_published", node, "generation " + std::to_string(g)};
  };
  ASSERT_TRUE(db_->put_desired("edge-a", 1, "env-1", audit(1)).ok());
  ASSERT_TRUE(db_->put_desired("edge-b", 4, "env-b4", audit(4, "edge-b")).ok());
  // The same generation again (a second controller, a retry): refused, and no audit entry.
  auto dup = db_->put_desired("edge-a", 1, "env-1-other", audit(1));
  EXPECT_EQ(dup.code(), ErrorCode::kAlreadyExists) << dup.to_string();
  EXPECT_EQ(db_->put_desired("edge-a", 0, "x", audit(0)).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(db_->desired("edge-a")->value().envelope, "env-1");
  ASSERT_TRUE(db_->put_desired("edge-a", 2, "env-2", audit(2)).ok());
  EXPECT_EQ(*db_->desired_generation("edge-a"), 2u);
  auto row = db_->desired("edge-a");
  ASSERT_TRUE(row.ok() && row->has_value());
  EXPECT_EQ((*row)->generation, 2u);
  EXPECT_EQ((*row)->envelope, "env-2");
  auto all = db_->all_desired();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].node, "edge-a");
  EXPECT_EQ((*all)[1].node, "edge-b");
  EXPECT_EQ((*all)[1].generation, 4u);
  EXPECT_EQ((*all)[1].envelope, "env-b4");
  EXPECT_EQ(count_actions("edge-a", "desired_published"), 2);
}

TEST_P(Conformance, RolloutsAndTheirNodesRoundTrip) {
  RolloutRecord r{"r-000000000001", 50, "running", R"({"model":{}})", 0, 0, ""};
  RolloutRecord s{"r-000000000002", 40, "paused", "{}", 1, 44, "why"};
  ASSERT_TRUE(db_->put_rollout(r).ok());
  ASSERT_TRUE(db_->put_rollout(s).ok());
  r.state = "succeeded";
  r.current_batch = 3;
  r.batch_done_at = 99;
  r.reason = "done";
  ASSERT_TRUE(db_->put_rollout(r).ok());  // replaces
  auto got = db_->rollout(r.id);
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->state, "succeeded");
  EXPECT_EQ((*got)->current_batch, 3);
  EXPECT_EQ((*got)->batch_done_at, 99);
  EXPECT_EQ((*got)->reason, "done");
  EXPECT_EQ((*got)->created, 50);
  EXPECT_EQ((*got)->spec_json, r.spec_json);
  EXPECT_FALSE(db_->rollout("r-ffffffffffff")->has_value());
  auto all = db_->rollouts();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].id, s.id);  // ordered by creation time
  EXPECT_EQ((*all)[1].id, r.id);

  RolloutNodeRecord n1;
  n1.rollout_id = r.id;
  n1.node = "edge-b";
  n1.batch = 1;
  RolloutNodeRecord n2 = n1;
  n2.node = "edge-a";
  n2.batch = 1;
  RolloutNodeRecord n0 = n1;
  n0.node = "edge-z";
  n0.batch = 0;
  n0.state = "serving";
  n0.reason = "ok";
  n0.gate_values_json = R"({"decode_tok_s":31})";
  n0.previous_reference = "reg/m:v1";
  n0.previous_digest = "sha256:" + std::string(64, 'b');
  n0.generation = 5;
  n0.assigned_at = 60;
  n0.rollback_generation = 6;
  for (const auto& n : {n1, n2, n0}) ASSERT_TRUE(db_->put_rollout_node(n).ok());
  n1.state = "failed";
  ASSERT_TRUE(db_->put_rollout_node(n1).ok());
  RolloutNodeRecord other = n1;
  other.rollout_id = s.id;
  ASSERT_TRUE(db_->put_rollout_node(other).ok());
  auto nodes = db_->rollout_nodes(r.id);
  ASSERT_TRUE(nodes.ok());
  ASSERT_EQ(nodes->size(), 3u);
  EXPECT_EQ((*nodes)[0].node, "edge-z");  // by batch, then node
  EXPECT_EQ((*nodes)[1].node, "edge-a");
  EXPECT_EQ((*nodes)[2].node, "edge-b");
  EXPECT_EQ((*nodes)[2].state, "failed");
  const auto& z = (*nodes)[0];
  EXPECT_EQ(z.state, "serving");
  EXPECT_EQ(z.reason, "ok");
  EXPECT_EQ(z.gate_values_json, n0.gate_values_json);
  EXPECT_EQ(z.previous_reference, "reg/m:v1");
  EXPECT_EQ(z.previous_digest, n0.previous_digest);
  EXPECT_EQ(z.generation, 5u);
  EXPECT_EQ(z.assigned_at, 60);
  EXPECT_EQ(z.rollback_generation, 6u);
  EXPECT_EQ(db_->rollout_nodes(s.id)->size(), 1u);
}

TEST_P(Conformance, ARolloutStepAndItsAuditEntriesAreWrittenTogether) {
  RolloutRecord r{"r-00000000000a", 1, "running", "{}", 0, 0, ""};
  ASSERT_TRUE(db_->put_rollout(r).ok());
  r.current_batch = 1;
  ASSERT_TRUE(db_->put_rollout_audited(r, {{0, 2, "controller", "batch_done", r.id, "batch 1 of 2"},
                                           {0, 2, "controller", "rollout_succeeded", r.id, "m"}})
                  .ok());
  EXPECT_EQ(db_->rollout(r.id)->value().current_batch, 1);
  EXPECT_EQ(count_actions(r.id, "batch_done"), 1);
  EXPECT_EQ(count_actions(r.id, "rollout_succeeded"), 1);
}

// FleetDb::write: a rollout step's desired states, rollout rows and audit entries, or a burst of
// reports, in one transaction; a desired generation that is not newer fails the whole of it.
TEST_P(Conformance, ABatchOfWritesIsCommittedWholeOrNotAtAll) {
  for (const char* id : {"edge-a", "edge-b"}) {
    NodeRecord n;
    n.id = id;
    n.enrolled_at = 1;
    ASSERT_TRUE(db_->upsert_node(n).ok());
  }
  ASSERT_TRUE(db_->put_desired("edge-b", 3, "env-b3", {0, 1, "controller", "desired_published", "edge-b", "g3"}).ok());
  RolloutRecord r{"r-0000000000b1", 5, "running", "{}", 0, 0, ""};
  auto rollout_node = [&](const std::string& node, uint64_t generation) {
    RolloutNodeRecord n;
    n.rollout_id = r.id;
    n.node = node;
    n.generation = generation;
    n.assigned_at = 7;
    return n;
  };

  // edge-b's generation 3 is not newer than the stored 3: nothing of the batch is written.
  FleetWrites bad;
  bad.desired = {{"edge-a", 1, "env-a1"}, {"edge-b", 3, "env-b3-other"}};
  bad.rollout_nodes = {rollout_node("edge-a", 1), rollout_node("edge-b", 3)};
  bad.rollout = r;
  bad.audit = {{0, 7, "controller", "desired_published", "edge-a", "g1"},
               {0, 7, "controller", "desired_published", "edge-b", "g3"}};
  auto st = db_->write(bad);
  EXPECT_EQ(st.code(), ErrorCode::kAlreadyExists) << st.to_string();
  EXPECT_FALSE(db_->desired("edge-a")->has_value());
  EXPECT_EQ(db_->desired("edge-b")->value().envelope, "env-b3");
  EXPECT_FALSE(db_->rollout(r.id)->has_value());
  EXPECT_TRUE(db_->rollout_nodes(r.id)->empty());
  EXPECT_EQ(count_actions("edge-a", "desired_published"), 0);
  // A generation of 0 is refused before anything is tried.
  FleetWrites zero;
  zero.desired = {{"edge-a", 0, "x"}};
  EXPECT_EQ(db_->write(zero).code(), ErrorCode::kInvalidArgument);

  FleetWrites good = bad;
  good.desired[1].generation = 4;
  good.desired[1].envelope = "env-b4";
  good.rollout_nodes[1].generation = 4;
  ASSERT_TRUE(db_->write(good).ok());
  EXPECT_EQ(db_->desired("edge-a")->value().generation, 1u);
  EXPECT_EQ(db_->desired("edge-b")->value().envelope, "env-b4");
  ASSERT_EQ(db_->rollout_nodes(r.id)->size(), 2u);
  EXPECT_EQ(db_->rollout_nodes(r.id)->at(1).generation, 4u);
  EXPECT_EQ(db_->rollout(r.id)->value().state, "running");
  EXPECT_EQ(count_actions("edge-b", "desired_published"), 2);
  EXPECT_TRUE(db_->write(FleetWrites{}).ok());

  // A burst of messages, applied in order: edge-a goes offline, then sends telemetry (online
  // again) and a report; edge-b reports twice and the later report wins.
  using U = FleetWrites::NodeUpdate;
  NodeRecord rep_a;
  rep_a.id = "edge-a";
  rep_a.state = "pulling";
  rep_a.reported_generation = 1;
  rep_a.reported_seq = 8;
  rep_a.last_seen = 30;
  NodeRecord rep_b1 = rep_a, rep_b2 = rep_a;
  rep_b1.id = rep_b2.id = "edge-b";
  rep_b1.state = "gating";
  rep_b2.state = "serving";
  rep_b2.serving_digest = "sha256:" + std::string(64, 'c');
  rep_b2.reported_seq = 9;
  FleetWrites burst;
  burst.node_updates = {U{U::kPresence, "edge-a", false, 20, "", {}}, U{U::kTelemetry, "edge-a", false, 25, "{\"t\":1}", {}},
                        U{U::kReported, "edge-a", false, 0, "", rep_a}, U{U::kReported, "edge-b", false, 0, "", rep_b1},
                        U{U::kReported, "edge-b", false, 0, "", rep_b2}, U{U::kPresence, "edge-b", false, 31, "", {}}};
  ASSERT_TRUE(db_->write(burst).ok());
  auto a = db_->node("edge-a")->value();
  EXPECT_TRUE(a.online);
  EXPECT_EQ(a.telemetry_json, "{\"t\":1}");
  EXPECT_EQ(a.state, "pulling");
  EXPECT_EQ(a.reported_seq, 8u);
  EXPECT_EQ(a.last_seen, 30);
  auto b = db_->node("edge-b")->value();
  EXPECT_FALSE(b.online);
  EXPECT_EQ(b.last_seen, 31);
  EXPECT_EQ(b.state, "serving");
  EXPECT_EQ(b.serving_digest, rep_b2.serving_digest);
  EXPECT_EQ(b.reported_seq, 9u);

  // Events: each audited once, though sent again in the same burst and in a later one.
  auto event = [](uint64_t seq) {
    return FleetWrites::NodeEvent{"edge-a", seq, {0, 40, "edge-a", "node_event:failed", "edge-a", "e" + std::to_string(seq)}};
  };
  FleetWrites events;
  events.events = {event(3), event(3), event(4)};
  ASSERT_TRUE(db_->write(events).ok());
  events.events = {event(4), event(5)};
  ASSERT_TRUE(db_->write(events).ok());
  EXPECT_EQ(count_actions("edge-a", "node_event:failed"), 3);
  EXPECT_FALSE(*db_->note_event("edge-a", 5));
  EXPECT_TRUE(*db_->note_event("edge-a", 6));
}

TEST_P(Conformance, AnEventIsNotedOnceAndOnlyRecentOnesAreRemembered) {
  for (uint64_t seq : {1u, 2u, 5u}) EXPECT_TRUE(*db_->note_event("edge-1", seq)) << seq;
  EXPECT_FALSE(*db_->note_event("edge-1", 2));
  EXPECT_TRUE(*db_->note_event("edge-1", 3));
  EXPECT_TRUE(*db_->note_event("edge-2", 2));
  EXPECT_TRUE(*db_->note_event("edge-1", 200000));  // forgets the seqs below 100000
  EXPECT_TRUE(*db_->note_event("edge-1", 1));
  EXPECT_FALSE(*db_->note_event("edge-1", 200000));
  EXPECT_FALSE(db_->note_event("edge-1", UINT64_MAX).ok());
}

TEST_P(Conformance, TheAuditLogKeepsOrderFiltersAndLimits) {
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE(db_->audit({0, 100 + i, "admin", "act" + std::to_string(i), i % 2 ? "odd" : "even",
                            "detail with 'quotes' and ünïcode " + std::to_string(i)})
                    .ok());
  auto all = db_->audit_log("", 100);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 5u);
  for (size_t i = 1; i < all->size(); ++i) EXPECT_LT((*all)[i - 1].id, (*all)[i].id);
  EXPECT_EQ((*all)[4].detail, "detail with 'quotes' and ünïcode 4");
  EXPECT_EQ((*all)[4].time, 104);
  EXPECT_EQ((*all)[4].actor, "admin");
  auto even = db_->audit_log("even", 100);
  ASSERT_EQ(even->size(), 3u);
  EXPECT_EQ((*even)[1].action, "act2");
  EXPECT_EQ(db_->audit_log("", 2)->size(), 2u);
  EXPECT_EQ(db_->audit_log("", 2)->back().action, "act1");  // the oldest first
}

TEST_P(Conformance, TelemetryHistoryAddsIntoBucketsAndPrunes) {
  TelemetryBucket a{"edge-a", 60, 120, 1, 30.5, 400.25, 12.0, 20.0, 10, 1};
  TelemetryBucket b{"edge-a", 60, 180, 2, 61.0, 800.5, 24.0, 40.0, 20, 0};
  TelemetryBucket h{"edge-a", 3600, 0, 3, 91.5, 1200.75, 36.0, 60.0, 30, 1};
  ASSERT_TRUE(db_->add_telemetry({a, b, h}).ok());
  ASSERT_TRUE(db_->add_telemetry({a}).ok());  // the same bucket again: its sums grow
  auto minutes = db_->telemetry("edge-a", 60, 0);
  ASSERT_TRUE(minutes.ok()) << minutes.status().to_string();
  ASSERT_EQ(minutes->size(), 2u);
  const auto& m0 = (*minutes)[0];
  EXPECT_EQ(m0.bucket, 120);
  EXPECT_EQ(m0.samples, 2);
  EXPECT_DOUBLE_EQ(m0.decode_tok_s, 61.0);
  EXPECT_DOUBLE_EQ(m0.prefill_tok_s, 800.5);
  EXPECT_DOUBLE_EQ(m0.ttft_p50_ms, 24.0);
  EXPECT_DOUBLE_EQ(m0.ttft_p95_ms, 40.0);
  EXPECT_EQ(m0.requests, 20);
  EXPECT_EQ(m0.errors, 2);
  EXPECT_EQ((*minutes)[1].bucket, 180);
  EXPECT_EQ(db_->telemetry("edge-a", 60, 150)->size(), 1u);
  EXPECT_EQ(db_->telemetry("edge-a", 3600, 0)->size(), 1u);
  EXPECT_TRUE(db_->telemetry("edge-b", 60, 0)->empty());
  ASSERT_TRUE(db_->prune_telemetry(60, 180).ok());
  minutes = db_->telemetry("edge-a", 60, 0);
  ASSERT_EQ(minutes->size(), 1u);
  EXPECT_EQ((*minutes)[0].bucket, 180);
  EXPECT_EQ(db_->telemetry("edge-a", 3600, 0)->size(), 1u);  // other resolutions untouched

  for (int i = 0; i < 5; ++i) ASSERT_TRUE(db_->audit({0, i, "admin", "a" + std::to_string(i), "s", ""}).ok());
  auto all = db_->audit_log("", 100);
  auto recent = db_->audit_recent((*all)[1].id, 2);  // the newest 2 after the second, oldest first
  ASSERT_TRUE(recent.ok());
  ASSERT_EQ(recent->size(), 2u);
  EXPECT_EQ((*recent)[0].action, "a3");
  EXPECT_EQ((*recent)[1].action, "a4");
  EXPECT_EQ(db_->audit_recent((*all)[1].id, 100)->size(), 3u);
}

TEST_P(Conformance, OneControllerLeadsAndSaysWhere) {
  EXPECT_EQ(*db_->leader(), "");
  auto lead = db_->lead("https://127.0.0.1:1001");
  ASSERT_TRUE(lead.ok()) << lead.status().to_string();
  EXPECT_TRUE(*lead);
  EXPECT_TRUE(*db_->lead("https://127.0.0.1:1001"));  // and stays leader
  EXPECT_EQ(*db_->leader(), "https://127.0.0.1:1001");
}

// PostgreSQL only: what a shared database adds.
class PgOnly : public ::testing::Test {
 protected:
  void SetUp() override { REQUIRE_PG(); }
};

TEST_F(PgOnly, ConcurrentEnrollmentsSpendATokenOnce) {
  const std::string url = fresh_pg_database();
  auto db = FleetDb::open(url);
  ASSERT_TRUE(db.ok()) << db.status().to_string();
  ASSERT_TRUE((*db)->add_token("shared", {{"k", "v"}}, INT64_MAX).ok());
  constexpr int kThreads = 8;
  std::vector<std::unique_ptr<FleetDb>> conns;
  for (int i = 0; i < kThreads; ++i) {
    auto c = FleetDb::open(url);
    ASSERT_TRUE(c.ok()) << c.status().to_string();
    conns.push_back(std::move(*c));
  }
  std::atomic<int> ok{0}, refused{0}, ready{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i)
    threads.emplace_back([&, i] {
      ready.fetch_add(1);
      while (ready.load() < kThreads) std::this_thread::yield();
      auto r = conns[i]->consume_token("shared", "edge-" + std::to_string(i), 1);
      (r.ok() ? ok : refused).fetch_add(1);
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 1);
  EXPECT_EQ(refused.load(), kThreads - 1);
}

TEST_F(PgOnly, ControllersStartingTogetherMakeOneSchema) {
  const std::string url = fresh_pg_database();
  std::vector<std::thread> threads;
  std::atomic<int> opened{0};
  for (int i = 0; i < 4; ++i)
    threads.emplace_back([&] {
      auto db = FleetDb::open(url);
      EXPECT_TRUE(db.ok()) << db.status().to_string();
      if (db.ok()) opened.fetch_add(1);
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(opened.load(), 4);
}

TEST_F(PgOnly, OneLeadsTheNextTakesOverWhenItsSessionEnds) {
  const std::string url = fresh_pg_database();
  auto a = FleetDb::open(url);
  auto b = FleetDb::open(url);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_TRUE(*(*a)->lead("https://a:1"));
  EXPECT_FALSE(*(*b)->lead("https://b:2"));
  EXPECT_FALSE(*(*b)->lead("https://b:2"));
  EXPECT_TRUE(*(*a)->lead("https://a:1"));
  EXPECT_EQ(*(*b)->leader(), "https://a:1");
  a->reset();  // the leader's connections close (as when its process is killed)
  auto start = std::chrono::steady_clock::now();
  bool took_over = false;
  while (std::chrono::steady_clock::now() - start < 5s) {
    auto l = (*b)->lead("https://b:2");
    ASSERT_TRUE(l.ok()) << l.status().to_string();
    if (*l) {
      took_over = true;
      break;
    }
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_TRUE(took_over);
  EXPECT_EQ(*(*b)->leader(), "https://b:2");
  // A third contender stays standby.
  auto c = FleetDb::open(url);
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(*(*c)->lead("https://c:3"));
}

TEST_F(PgOnly, ALeaderWhoseSessionIsEndedByTheServerKnowsItLostAndNeverLeadsAgain) {
  const std::string url = fresh_pg_database();
  auto a = FleetDb::open(url);
  auto b = FleetDb::open(url);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE(*(*a)->lead("https://a:1"));
  // The server ends the leader's lock session (an administrator, or a database fail-over).
  PGconn* admin = PQconnectdb(url.c_str());
  ASSERT_EQ(PQstatus(admin), CONNECTION_OK) << PQerrorMessage(admin);
  PGresult* r = PQexec(admin,
                       "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                       "application_name = 'hearth-controller-leader' AND datname = current_database()) t");
  ASSERT_EQ(PQresultStatus(r), PGRES_TUPLES_OK) << PQerrorMessage(admin);
  EXPECT_STREQ(PQgetvalue(r, 0, 0), "1");
  PQclear(r);
  PQfinish(admin);
  auto lost = (*a)->lead("https://a:1");
  EXPECT_TRUE(!lost.ok() || !*lost);
  // The other takes over; the old one never claims it again, even with the lock free once more.
  bool took_over = false;
  for (int i = 0; i < 50 && !took_over; ++i) {
    auto l = (*b)->lead("https://b:2");
    took_over = l.ok() && *l;
    if (!took_over) std::this_thread::sleep_for(50ms);
  }
  EXPECT_TRUE(took_over);
  b->reset();
  std::this_thread::sleep_for(300ms);
  auto again = (*a)->lead("https://a:1");
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
}

}  // namespace
}  // namespace hearth::fleet
