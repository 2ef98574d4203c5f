// The agent's event outbox: events survive a restart (a new Outbox over the same directory),
// come back in seq order, go when acknowledged, and the outbox stays bounded; files that are
// not its own (an interrupted write's temp file, stray names) are ignored.
#include "hearth/fleet/outbox.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "shared_data.h"

namespace hearth::fleet {
namespace {

TEST(Outbox, EventsSurviveAReopenInSeqOrderUntilAcknowledged) {
  const auto dir = hearth::testing::make_temp_dir("hearth-outbox");
  const std::string box = (dir / "outbox").string();
  {
    auto o = Outbox::open(box);
    ASSERT_TRUE(o.ok()) << o.status().to_string();
    ASSERT_TRUE(o->add(12, R"({"seq":12})").ok());
    ASSERT_TRUE(o->add(3, R"({"seq":3})").ok());
    ASSERT_TRUE(o->add(7, R"({"seq":7})").ok());
  }
  // Stray files: a temp file of a write cut by a crash, a name that is not 20 digits.
  std::ofstream(box + "/.00000000000000000009.json.tmp-abc123") << "{";
  std::ofstream(box + "/9.json") << "{}";
  std::ofstream(box + "/0000000000000000000x.json") << "{}";
  auto o = Outbox::open(box);
  ASSERT_TRUE(o.ok());
  auto p = o->pending();
  ASSERT_EQ(p.size(), 3u);
  EXPECT_EQ(p[0].first, 3u);
  EXPECT_EQ(p[0].second, R"({"seq":3})");
  EXPECT_EQ(p[1].first, 7u);
  EXPECT_EQ(p[2].first, 12u);
  o->remove(7);
  o->remove(7);   // acknowledged twice: fine
  o->remove(99);  // never there: fine
  p = o->pending();
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0].first, 3u);
  EXPECT_EQ(p[1].first, 12u);
  std::filesystem::remove_all(dir);
}

TEST(Outbox, IsBoundedAndDropsTheOldest) {
  const auto dir = hearth::testing::make_temp_dir("hearth-outbox");
  auto o = Outbox::open((dir / "outbox").string(), /*max_entries=*/4);
  ASSERT_TRUE(o.ok());
  for (uint64_t seq = 1; seq <= 6; ++seq) ASSERT_TRUE(o->add(seq, "{}").ok());
  auto p = o->pending();
  ASSERT_EQ(p.size(), 4u);
  EXPECT_EQ(p.front().first, 3u);
  EXPECT_EQ(p.back().first, 6u);
  EXPECT_EQ(o->dropped(), 2u);
  std::filesystem::remove_all(dir);
}

TEST(Outbox, RefusesAnOversizedEventAndSkipsAnEmptyOrHugeFile) {
  const auto dir = hearth::testing::make_temp_dir("hearth-outbox");
  const std::string box = (dir / "outbox").string();
  auto o = Outbox::open(box);
  ASSERT_TRUE(o.ok());
  auto st = o->add(1, std::string(Outbox::kMaxPayloadBytes + 1, 'x'));
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("limit"), std::string::npos) << st.to_string();
  // Files planted with the right names but bad contents are dropped, not sent.
  std::ofstream(box + "/00000000000000000002.json");  // empty
  std::ofstream(box + "/00000000000000000003.json") << std::string(Outbox::kMaxPayloadBytes + 10, 'y');
  ASSERT_TRUE(o->add(4, "{}").ok());
  auto p = o->pending();
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].first, 4u);
  EXPECT_FALSE(std::filesystem::exists(box + "/00000000000000000003.json"));
  EXPECT_FALSE(Outbox::open(box, 0).ok());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace hearth::fleet
