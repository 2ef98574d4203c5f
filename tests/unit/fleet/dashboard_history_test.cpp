// The dashboard's history in the SQLite FleetDb: telemetry buckets add up when the same bucket
// is written again, are read back per node/resolution/start, and are deleted by the retention
// call only below its bound; audit_recent returns the newest records after an id, in id order.
// Expected values are sums worked out by hand from the rows written.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "hearth/fleet/fleet_db.h"
#include "shared_data.h"

namespace hearth::fleet {
namespace {

TelemetryBucket row(const std::string& node, int64_t res, int64_t bucket, double tok, int64_t req, int64_t err) {
  TelemetryBucket b;
  b.node = node;
  b.resolution = res;
  b.bucket = bucket;
  b.samples = 1;
  b.decode_tok_s = tok;
  b.prefill_tok_s = 2 * tok;
  b.ttft_p50_ms = 40;
  b.ttft_p95_ms = 60;
  b.requests = req;
  b.errors = err;
  return b;
}

TEST(DashboardHistory, BucketsAddUpAndRetentionDeletesOnlyOldOnes) {
  const auto dir = hearth::testing::make_temp_dir("hearth-dash-db");
  auto db = FleetDb::open("sqlite:" + (dir / "fleet.db").string());
  ASSERT_TRUE(db.ok()) << db.status().message();
  FleetDb& d = **db;
  ASSERT_TRUE(d.add_telemetry({row("a", 60, 600, 10, 5, 1), row("a", 60, 660, 20, 3, 0), row("b", 60, 600, 7, 0, 0),
                               row("a", 3600, 0, 10, 5, 1)})
                  .ok());
  // The same (node, resolution, bucket) again: its sums grow.
  ASSERT_TRUE(d.add_telemetry({row("a", 60, 600, 14, 4, 2), row("a", 3600, 0, 20, 3, 0)}).ok());
  ASSERT_TRUE(d.add_telemetry({}).ok());

  auto minutes = d.telemetry("a", 60, 0);
  ASSERT_TRUE(minutes.ok()) << minutes.status().message();
  ASSERT_EQ(minutes->size(), 2u);
  EXPECT_EQ((*minutes)[0].bucket, 600);
  EXPECT_EQ((*minutes)[0].samples, 2);
  EXPECT_DOUBLE_EQ((*minutes)[0].decode_tok_s, 24.0);  // 10 + 14
  EXPECT_DOUBLE_EQ((*minutes)[0].prefill_tok_s, 48.0);
  EXPECT_DOUBLE_EQ((*minutes)[0].ttft_p95_ms, 120.0);
  EXPECT_EQ((*minutes)[0].requests, 9);  // 5 + 4
  EXPECT_EQ((*minutes)[0].errors, 3);    // 1 + 2
  EXPECT_EQ((*minutes)[1].bucket, 660);
  EXPECT_EQ((*minutes)[1].samples, 1);

  auto from = d.telemetry("a", 60, 601);  // starts at or after 601
  ASSERT_TRUE(from.ok());
  ASSERT_EQ(from->size(), 1u);
  EXPECT_EQ((*from)[0].bucket, 660);

  auto hours = d.telemetry("a", 3600, 0);
  ASSERT_TRUE(hours.ok());
  ASSERT_EQ(hours->size(), 1u);
  EXPECT_EQ(hours->front().samples, 2);
  EXPECT_EQ(hours->front().requests, 8);
  EXPECT_TRUE(d.telemetry("nobody", 60, 0)->empty());

  ASSERT_TRUE(d.prune_telemetry(60, 660).ok());  // minute buckets before 660 go; hours stay
  EXPECT_EQ(d.telemetry("a", 60, 0)->size(), 1u);
  EXPECT_TRUE(d.telemetry("b", 60, 0)->empty());
  EXPECT_EQ(d.telemetry("a", 3600, 0)->size(), 1u);
  std::filesystem::remove_all(dir);
}

TEST(DashboardHistory, AuditRecentIsTheNewestAfterAnIdInOrder) {
  const auto dir = hearth::testing::make_temp_dir("hearth-dash-db");
  auto db = FleetDb::open("sqlite:" + (dir / "fleet.db").string());
  ASSERT_TRUE(db.ok()) << db.status().message();
  for (int i = 1; i <= 10; ++i)
    ASSERT_TRUE((*db)->audit({0, 100 + i, "admin", "a" + std::to_string(i), "s", ""}).ok());
  auto last3 = (*db)->audit_recent(0, 3);
  ASSERT_TRUE(last3.ok());
  std::vector<std::string> actions;
  for (const auto& a : *last3) actions.push_back(a.action);
  EXPECT_EQ(actions, (std::vector<std::string>{"a8", "a9", "a10"}));
  auto after = (*db)->audit_recent(8, 500);
  ASSERT_TRUE(after.ok());
  ASSERT_EQ(after->size(), 2u);
  EXPECT_EQ(after->front().id, 9);
  EXPECT_TRUE((*db)->audit_recent(10, 500)->empty());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace hearth::fleet
