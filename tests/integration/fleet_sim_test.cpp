// `hearth fleet sim` against a real Mosquitto and a real `hearth controller`: 20 simulated nodes
// enroll through the API, connect with their own certificates, and take two staged rollouts.
// The first tolerates failures and succeeds with the failing share of the nodes failed; the
// second tolerates none, aborts in its canary batch, and the nodes of that batch that had switched
// get their previous model back. Which nodes fail is derived here from the rule that
// `--fail-rate` documents (sha256 of "SEED/NODE/DIGEST", its first 52 bits as a fraction below
// the rate), not taken from the sim. GET /metrics is checked against the rollout's own status.
#include <map>
#include <set>

#include "fleet_fixture.h"
#include "hearth/core/atomic_file.h"
#include "hearth/core/sha256.h"
#include "hearth/registry/http_client.h"

namespace hearth::fleet_test {
namespace {

using FleetSim = FleetFixture;

constexpr int kNodes = 20;
constexpr int kSeed = 7;
constexpr double kFailRate = 0.25;

bool expect_fail(const std::string& node, const std::string& digest) {
  const std::string key = std::to_string(kSeed) + "/" + node + "/" + digest;
  const std::string h = sha256_hex(std::as_bytes(std::span(key.data(), key.size())));
  return static_cast<double>(std::stoull(h.substr(0, 13), nullptr, 16)) / 4503599627370496.0 < kFailRate;
}

std::string node_id(int i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "sim-%05d", i);
  return buf;
}

TEST_F(FleetSim, RolloutOverSimulatedNodesSucceedsThenAbortsAndRollsBack) {
  Proc sim("", {"fleet", "sim", "--fleet", dir_, "--nodes", std::to_string(kNodes), "--fail-rate", "0.25", "--seed",
                std::to_string(kSeed), "--gate", "decode_tok_s=42", "--labels", "site=sim", "--telemetry-interval",
                "1", "--step-ms", "20", "--threads", "2"},
           (tmp_ / "sim.log").string());
  auto online = [&] {
    auto r = cli("", "fleet --fleet " + dir_ + " nodes --json --selector site=sim");
    json j = json::parse(r.out, nullptr, false);
    if (!j.is_object()) return 0;
    int n = 0;
    for (const auto& x : j["nodes"]) n += x.value("presence", "") == "online" && x.value("state", "") != "";
    return n;
  };
  ASSERT_TRUE(poll_until([&] { return online() == kNodes; }, 20s)) << online() << " online";

  const std::string v1 = "sha256:" + std::string(64, 'a'), v2 = "sha256:" + std::string(64, 'b');
  std::set<std::string> fail_v1;
  for (int i = 0; i < kNodes; ++i)
    if (expect_fail(node_id(i), v1)) fail_v1.insert(node_id(i));
  ASSERT_GT(fail_v1.size(), 0u);
  ASSERT_LT(fail_v1.size(), static_cast<size_t>(kNodes));

  // v1: three batches, failures tolerated. No registry: the digest is pinned and sim nodes do not pull.
  auto start = cli("", "fleet --fleet " + dir_ + " rollout start acme/m@" + v1 +
                           " --selector site=sim --batches 1,50%,100% --gate 'decode_tok_s > 5' --bake 0s "
                           "--max-failures 100% --mirror http://127.0.0.1:9");
  ASSERT_EQ(start.code, 0) << start.out;
  std::string r1 = start.out.substr(0, start.out.find('\n'));
  auto st1 = cli("", "fleet --fleet " + dir_ + " rollout status " + r1 + " --wait --timeout 25s --json");
  ASSERT_EQ(st1.code, 0) << st1.out;
  json s1 = json::parse(st1.out);
  EXPECT_EQ(s1.value("state", ""), "succeeded") << st1.out;
  ASSERT_EQ(s1["batches"].size(), 3u);
  std::set<std::string> failed_v1;
  for (const auto& b : s1["batches"])
    for (const auto& n : b["nodes"]) {
      const std::string id = n.value("node", "");
      const double v = n["gate_values"].value("decode_tok_s", -1.0);
      if (n.value("state", "") == "failed") {
        failed_v1.insert(id);
        EXPECT_LE(v, 5) << id;  // a value that fails 'decode_tok_s > 5'
        EXPECT_NE(n.value("reason", "").find("gate 'decode_tok_s > 5' failed"), std::string::npos) << n.dump();
      } else {
        EXPECT_EQ(n.value("state", ""), "serving") << n.dump();
        EXPECT_EQ(v, 42) << id;  // what --gate decode_tok_s=42 says every node measures
      }
    }
  EXPECT_EQ(failed_v1, fail_v1);

  // The metrics endpoint: the admin token is required; the node counts match the nodes' states.
  {
    registry::HttpClient http;
    registry::HttpRequest req;
    req.url = "https://127.0.0.1:" + std::to_string(cport_) + "/metrics";
    req.ca_file = dir_ + "/ca/ca.crt";
    auto anon = http.send(req);
    ASSERT_TRUE(anon.ok());
    EXPECT_EQ(anon->status, 401);
    std::string token = *read_file(dir_ + "/controller/admin.token", 4096);
    while (!token.empty() && token.back() == '\n') token.pop_back();
    req.headers = {"Authorization: Bearer " + token};
    auto m = http.send(req);
    ASSERT_TRUE(m.ok());
    ASSERT_EQ(m->status, 200) << m->body;
    const std::string serving = "hearth_fleet_nodes{presence=\"online\",state=\"serving\"} " +
                                std::to_string(kNodes - fail_v1.size()) + "\n";
    const std::string failed = "hearth_fleet_nodes{presence=\"online\",state=\"failed\"} " +
                               std::to_string(fail_v1.size()) + "\n";
    EXPECT_NE(m->body.find(serving), std::string::npos) << m->body;
    EXPECT_NE(m->body.find(failed), std::string::npos) << m->body;
    EXPECT_NE(m->body.find("hearth_fleet_rollout_nodes{rollout=\"" + r1 + "\",state=\"failed\"} " +
                           std::to_string(fail_v1.size()) + "\n"),
              std::string::npos)
        << m->body;
    EXPECT_NE(m->body.find("hearth_fleet_rollouts{state=\"succeeded\"} 1\n"), std::string::npos) << m->body;
    EXPECT_EQ(m->body.find("hearth_fleet_node_online"), std::string::npos) << "per-node series are off by default";
  }

  // v2: no failure tolerated; the canary half has a node that fails v2, so the rollout aborts.
  auto start2 = cli("", "fleet --fleet " + dir_ + " rollout start acme/m@" + v2 +
                            " --selector site=sim --batches 50%,100% --gate 'decode_tok_s > 5' --bake 0s "
                            "--max-failures 0 --mirror http://127.0.0.1:9");
  ASSERT_EQ(start2.code, 0) << start2.out;
  std::string r2 = start2.out.substr(0, start2.out.find('\n'));
  auto st2 = cli("", "fleet --fleet " + dir_ + " rollout status " + r2 + " --wait --timeout 25s --json");
  ASSERT_EQ(st2.code, 0) << st2.out;
  json s2 = json::parse(st2.out);
  ASSERT_EQ(s2["batches"].size(), 2u);
  bool canary_fails = false;
  for (const auto& n : s2["batches"][0]["nodes"]) canary_fails |= expect_fail(n.value("node", ""), v2);
  ASSERT_TRUE(canary_fails) << "the seed must make a canary node fail v2: " << st2.out;
  EXPECT_EQ(s2.value("state", ""), "aborted") << st2.out;
  // Every canary node that served v1 (and so had something to go back to) is rolled back and
  // ends up serving v1 again; the second batch never hears of v2.
  for (const auto& n : s2["batches"][0]["nodes"]) {
    const std::string id = n.value("node", "");
    if (fail_v1.count(id)) continue;
    EXPECT_EQ(n.value("state", ""), "rolled_back") << n.dump();
    EXPECT_TRUE(wait_node(
        id, [&](const json& j) { return j["serving"].is_object() && j["serving"].value("digest", "") == v1; }, 10s))
        << id << ": " << node_json(id).dump();
  }
  for (const auto& n : s2["batches"][1]["nodes"]) {
    EXPECT_EQ(n.value("state", ""), "pending") << n.dump();
    json j = node_json(n.value("node", ""));
    if (!fail_v1.count(n.value("node", ""))) {
      EXPECT_EQ(j["serving"].value("digest", ""), v1) << j.dump();
    }
  }
  // The sim stops on SIGTERM; its nodes' identities stay for the next run.
  sim.kill(SIGTERM);
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/sim/identities.jsonl"));
}

}  // namespace
}  // namespace hearth::fleet_test
