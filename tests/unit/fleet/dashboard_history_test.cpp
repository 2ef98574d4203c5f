// The dashboard's history in the SQLite FleetDb: telemetry buckets add up when the same bucket
// is written again, are read back per node/resolution/start, and are deleted by the retention
// call only below its bound; audit_recent returns the newest records after an id, in id order.
// Expected values are sums worked out by hand from the rows written.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "hearth/fleet/dashboard.h"
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

// The live stream sends changed nodes in pages: with a page of 2 and 5 nodes changed, the
// updates carry 2, 2 and 1 of them, the first two flagged "more", and every node exactly once.
TEST(DashboardStream, AnUpdateCarriesAtMostAPageOfChangedNodes) {
  const auto dir = hearth::testing::make_temp_dir("hearth-dash-stream");
  auto db = FleetDb::open("sqlite:" + (dir / "fleet.db").string());
  ASSERT_TRUE(db.ok()) << db.status().message();
  for (int i = 0; i < 5; ++i) {
    NodeRecord n;
    n.id = "n" + std::to_string(i);
    n.enrolled_at = 1;
    ASSERT_TRUE((*db)->upsert_node(n).ok());
  }
  DashboardOptions opt;
  opt.poll_interval_ms = 100;
  opt.max_nodes_per_update = 2;
  Dashboard dash(
      db->get(), [](const http::HttpRequest&) { return true; },
      [](const NodeRecord& n) { return nlohmann::json{{"id", n.id}, {"state", n.state}}.dump(); }, opt);
  http::HttpServerOptions h;
  h.port = 0;
  auto server = http::HttpServer::create(h);
  ASSERT_TRUE(server.ok()) << server.status().message();
  dash.register_routes(**server);
  ASSERT_TRUE((*server)->bind().ok());
  std::thread serving([&] { (void)(*server)->serve(); });

  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>((*server)->port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  timeval tv{0, 200000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  const std::string req = "GET /v1/dashboard/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n\r\n";
  ASSERT_EQ(send(fd, req.data(), req.size(), 0), static_cast<ssize_t>(req.size()));
  std::string got;
  auto read_until = [&](auto done, std::chrono::seconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    char buf[4096];
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n > 0) got.append(buf, static_cast<size_t>(n));
    }
    return done();
  };
  // The first look after the stream opened is the baseline ("resync"); changes come after it.
  ASSERT_TRUE(read_until([&] { return got.find("event: resync") != std::string::npos; }, std::chrono::seconds(10)))
      << got;
  FleetWrites w;  // all five change at once (one transaction): no look sees only some
  for (int i = 0; i < 5; ++i) {
    FleetWrites::NodeUpdate u;
    u.kind = FleetWrites::NodeUpdate::kReported;
    u.node = u.reported.id = "n" + std::to_string(i);
    u.reported.state = "serving";
    u.reported.reported_seq = 1;
    w.node_updates.push_back(u);
  }
  ASSERT_TRUE((*db)->write(w).ok());
  // The updates' data lines (each event is written whole, so a data line is never split).
  auto updates = [&] {
    std::vector<nlohmann::json> out;
    for (size_t at = got.find("event: update\ndata: "); at != std::string::npos;
         at = got.find("event: update\ndata: ", at + 1)) {
      const size_t begin = at + 20, end = got.find('\n', begin);
      if (end == std::string::npos) break;
      out.push_back(nlohmann::json::parse(got.substr(begin, end - begin), nullptr, false));
    }
    return out;
  };
  auto seen = [&] {
    size_t n = 0;
    for (const auto& u : updates()) n += u.is_object() ? u["nodes"].size() : 0;
    return n;
  };
  EXPECT_TRUE(read_until([&] { return seen() >= 5; }, std::chrono::seconds(10))) << got;
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // nothing more comes
  read_until([] { return false; }, std::chrono::seconds(0));
  auto all = updates();
  std::vector<size_t> sizes;
  std::vector<bool> more;
  std::map<std::string, int> count;
  for (const auto& u : all) {
    ASSERT_TRUE(u.is_object());
    sizes.push_back(u["nodes"].size());
    more.push_back(u["more"].get<bool>());
    for (const auto& n : u["nodes"]) {
      ++count[n["id"].get<std::string>()];
      EXPECT_EQ(n["state"], "serving");
    }
  }
  EXPECT_EQ(sizes, (std::vector<size_t>{2, 2, 1}));
  EXPECT_EQ(more, (std::vector<bool>{true, true, false}));
  EXPECT_EQ(count.size(), 5u);
  for (const auto& [id, c] : count) EXPECT_EQ(c, 1) << id;

  close(fd);
  dash.stop();
  (*server)->stop();
  serving.join();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace hearth::fleet
