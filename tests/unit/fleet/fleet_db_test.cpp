// The controller's SQLite state: a database made by the previous schema (version 2, before
// the nodes' telemetry column) opens, is upgraded in place, and keeps its rows; a version this
// hearth does not know is refused with the numbers named.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <string>

#include "hearth/fleet/fleet_db.h"
#include "shared_data.h"

namespace hearth::fleet {
namespace {

void run_sql(const std::string& path, const char* sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  const int rc = sqlite3_exec(db, sql, nullptr, nullptr, &err);
  EXPECT_EQ(rc, SQLITE_OK) << (err ? err : "");
  sqlite3_free(err);
  sqlite3_close(db);
}

// The version-2 nodes table, as hearth wrote it before telemetry was stored.
constexpr const char* kVersion2 = R"sql(
CREATE TABLE schema_version (version INTEGER NOT NULL);
INSERT INTO schema_version (version) VALUES (2);
CREATE TABLE nodes (
  id TEXT PRIMARY KEY, labels TEXT NOT NULL, enrolled_at INTEGER NOT NULL, cert_sha256 TEXT NOT NULL,
  online INTEGER NOT NULL DEFAULT 0, last_seen INTEGER NOT NULL DEFAULT 0, state TEXT NOT NULL DEFAULT '',
  reason TEXT NOT NULL DEFAULT '', serving_reference TEXT NOT NULL DEFAULT '',
  serving_digest TEXT NOT NULL DEFAULT '', reported_generation INTEGER NOT NULL DEFAULT 0,
  reported_seq INTEGER NOT NULL DEFAULT 0, gate_values TEXT NOT NULL DEFAULT '{}');
INSERT INTO nodes (id, labels, enrolled_at, cert_sha256, state) VALUES ('edge-1', 'site=north', 17, 'ab', 'serving');
)sql";

TEST(FleetDb, AVersion2DatabaseIsUpgradedAndKeepsItsNodes) {
  const auto dir = hearth::testing::make_temp_dir("hearth-fleetdb");
  const std::string path = (dir / "fleet.db").string();
  run_sql(path, kVersion2);
  auto db = FleetDb::open(path);
  ASSERT_TRUE(db.ok()) << db.status().to_string();
  auto n = (*db)->node("edge-1");
  ASSERT_TRUE(n.ok() && n->has_value()) << n.status().to_string();
  EXPECT_EQ((*n)->state, "serving");
  EXPECT_EQ((*n)->labels.at("site"), "north");
  EXPECT_EQ((*n)->telemetry_json, "{}");
  ASSERT_TRUE((*db)->set_telemetry("edge-1", R"({"requests":3})", 99).ok());
  db->reset();
  // Opened again: already the current version, and the telemetry is there.
  auto again = FleetDb::open(path);
  ASSERT_TRUE(again.ok()) << again.status().to_string();
  auto m = (*again)->node("edge-1");
  ASSERT_TRUE(m.ok() && m->has_value());
  EXPECT_EQ((*m)->telemetry_json, R"({"requests":3})");
  EXPECT_TRUE((*m)->online);
  EXPECT_EQ((*m)->last_seen, 99);
  std::filesystem::remove_all(dir);
}

TEST(FleetDb, AnEventResentByItsNodeIsNotedOnce) {
  const auto dir = hearth::testing::make_temp_dir("hearth-fleetdb");
  auto db = FleetDb::open((dir / "fleet.db").string());
  ASSERT_TRUE(db.ok()) << db.status().to_string();
  for (uint64_t seq : {1u, 2u, 5u}) {
    auto fresh = (*db)->note_event("edge-1", seq);
    ASSERT_TRUE(fresh.ok()) << fresh.status().to_string();
    EXPECT_TRUE(*fresh) << seq;
  }
  // Resent after a lost PUBACK, or out of order: each (node, seq) counts once.
  EXPECT_FALSE(*(*db)->note_event("edge-1", 2));
  EXPECT_FALSE(*(*db)->note_event("edge-1", 5));
  EXPECT_TRUE(*(*db)->note_event("edge-1", 3));
  EXPECT_TRUE(*(*db)->note_event("edge-2", 2));  // another node's seqs are its own
  // Only the most recent 100000 per node are remembered: a far newer seq forgets seq 1.
  EXPECT_TRUE(*(*db)->note_event("edge-1", 200000));
  EXPECT_TRUE(*(*db)->note_event("edge-1", 1));
  EXPECT_FALSE(*(*db)->note_event("edge-1", 200000));
  EXPECT_FALSE((*db)->note_event("edge-1", UINT64_MAX).ok());
  std::filesystem::remove_all(dir);
}

TEST(FleetDb, AnUnknownSchemaVersionIsRefused) {
  const auto dir = hearth::testing::make_temp_dir("hearth-fleetdb");
  const std::string path = (dir / "fleet.db").string();
  run_sql(path, "CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (9);");
  auto db = FleetDb::open(path);
  ASSERT_FALSE(db.ok());
  EXPECT_NE(db.status().message().find("schema version 9 is not the "), std::string::npos) << db.status().to_string();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace hearth::fleet
