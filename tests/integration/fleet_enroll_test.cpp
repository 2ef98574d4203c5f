// The fleet from the operator's CLI, with real processes: `fleet init`, Mosquitto with its
// configuration, `hearth controller`, join tokens, `hearth agent enroll` and `agent run`.
// Checks one-time and expiring tokens, the CA pin, presence, and that a node acts only on
// desired states signed by the controller's key and survives hostile payloads.
#include <fstream>

#include "fleet_fixture.h"

namespace hearth::fleet_test {
namespace {

using FleetEnroll = FleetFixture;

fleet::DesiredState desired(const std::string& node, uint64_t generation) {
  fleet::DesiredState d;
  d.fleet = "plant";
  d.node = node;
  d.generation = generation;
  d.issued_at = 1796000000;
  d.model = {"models/tiny:v1", "sha256:" + std::string(64, '1')};
  return d;
}

TEST_F(FleetEnroll, TokensAreOneTimeExpireAndTheCaIsPinned) {
  std::string t1 = token("--labels site=north,line=3");
  ASSERT_EQ(t1.size(), 48u);
  // A wrong pin: nothing is enrolled, and the token is not spent.
  auto wrong = enroll("node-1", t1, std::string(64, '0'));
  EXPECT_NE(wrong.code, 0);
  EXPECT_NE(wrong.out.find("not the pinned"), std::string::npos) << wrong.out;
  auto ok = enroll("node-1", t1, ca_sha_);
  ASSERT_EQ(ok.code, 0) << ok.out;
  EXPECT_TRUE(std::filesystem::exists(home("node-1") + "/agent/node.key"));
  struct stat st {};
  ASSERT_EQ(stat((home("node-1") + "/agent/node.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto reused = enroll("node-2", t1, ca_sha_);
  EXPECT_NE(reused.code, 0);
  EXPECT_NE(reused.out.find("already used"), std::string::npos) << reused.out;
  std::string short_lived = token("--ttl 1s");
  std::this_thread::sleep_for(2100ms);
  auto expired = enroll("node-3", short_lived, ca_sha_);
  EXPECT_NE(expired.code, 0);
  EXPECT_NE(expired.out.find("expired"), std::string::npos) << expired.out;
  auto bogus = enroll("node-4", std::string(48, 'f'), ca_sha_);
  EXPECT_NE(bogus.code, 0);
  EXPECT_NE(bogus.out.find("not known"), std::string::npos) << bogus.out;

  json n1 = node_json("node-1");
  ASSERT_FALSE(n1.is_null());
  EXPECT_EQ(n1["labels"].value("site", ""), "north");
  EXPECT_EQ(n1["labels"].value("line", ""), "3");
  EXPECT_TRUE(node_json("node-2").is_null());
  EXPECT_TRUE(wait_history("node-2", "enroll_refused", 5s));

  auto status = cli("HEARTH_HOME=" + home("node-1"), "agent status --json");
  ASSERT_EQ(status.code, 0) << status.out;
  EXPECT_EQ(json::parse(status.out).value("ca_sha256", ""), ca_sha_);

  // Labels change through the API, and selectors filter on them.
  ASSERT_EQ(cli("", "fleet --fleet " + dir_ + " label node-1 site=south").code, 0);
  auto sel = cli("", "fleet --fleet " + dir_ + " nodes --selector site=south --json");
  EXPECT_EQ(json::parse(sel.out)["nodes"].size(), 1u);
  sel = cli("", "fleet --fleet " + dir_ + " nodes --selector site=north --json");
  EXPECT_EQ(json::parse(sel.out)["nodes"].size(), 0u);
}

TEST_F(FleetEnroll, AnAgentFollowsOnlyTheControllersSignatureAndSurvivesGarbage) {
  ASSERT_EQ(enroll("node-1", token(), ca_sha_).code, 0);
  Proc agent(home("node-1"), {"agent", "run", "--serve", "127.0.0.1:0"}, (tmp_ / "agent-1.log").string());
  ASSERT_TRUE(wait_node(
      "node-1", [](const json& n) { return n.value("presence", "") == "online"; }, 20s))
      << "node-1 never came online";
  ASSERT_TRUE(wait_node(
      "node-1", [](const json& n) { return n.value("state", "") == "pending"; }, 10s));

  // Forged (another key), then garbage of several kinds: each refused, the agent stays up.
  auto intruder = trust::PrivateKey::generate(trust::KeyAlgorithm::kEcdsaP256);
  std::string intruder_path = (tmp_ / "intruder.key").string();
  std::ofstream(intruder_path) << intruder->private_pem();
  publish_desired("node-1", sign(desired("node-1", 5), intruder_path));
  EXPECT_TRUE(wait_history("node-1", "node_event:refused", 10s));
  for (const std::string& junk : {std::string("{not json"), std::string(200 << 10, '['), std::string("\xff\xfe\x00", 3),
                                  std::string(R"({"payloadType":"x","payload":"","signatures":[]})")})
    publish_desired("node-1", junk);
  std::this_thread::sleep_for(500ms);
  EXPECT_TRUE(agent.alive());
  auto st = cli("HEARTH_HOME=" + home("node-1"), "agent status --json");
  EXPECT_EQ(json::parse(st.out).value("desired_generation", 99), 0) << "a refused desired state moved the generation";

  // The controller's own signature is accepted, and the generation is recorded.
  publish_desired("node-1", sign(desired("node-1", 1), controller_key()));
  EXPECT_TRUE(wait_history("node-1", "node_event:desired_accepted", 10s));
  st = cli("HEARTH_HOME=" + home("node-1"), "agent status --json");
  EXPECT_EQ(json::parse(st.out).value("desired_generation", 0), 1);

  // kill -9: the broker publishes the node's last will.
  agent.kill(SIGKILL);
  EXPECT_TRUE(wait_node(
      "node-1", [](const json& n) { return n.value("presence", "") == "offline"; }, 20s))
      << "node-1 still online after kill -9";
}

}  // namespace
}  // namespace hearth::fleet_test
