// The fleet from the operator's CLI, with real processes: `fleet init`, Mosquitto with its
// configuration, `hearth controller`, join tokens, `hearth agent enroll` and `agent run`.
// Checks one-time and expiring tokens, the CA pin, presence, and that a node acts only on
// desired states signed by the controller's key and survives hostile payloads.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "hearth/fleet/fleet_dir.h"
#include "hearth/fleet/mqtt_client.h"
#include "hearth/fleet/protocol.h"
#include "hearth/trust/signing_key.h"
#include "mosquitto_process.h"
#include "registry_process.h"
#include "shared_data.h"

namespace hearth::fleet {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

struct Out {
  int code = -1;
  std::string out;
};

// Runs the CLI with `env` (e.g. "HEARTH_HOME=/x") and `args`; stderr goes to stdout.
Out cli(const std::string& env, const std::string& args) {
  std::string cmd = env + " " HEARTH_CLI_PATH " " + args + " 2>&1";
  Out o;
  FILE* p = popen(cmd.c_str(), "r");
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) o.out.append(buf, n);
  int st = pclose(p);
  o.code = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
  return o;
}

// A background hearth process (controller or agent), killed by the destructor.
class Proc {
 public:
  Proc(const std::string& home, std::vector<std::string> args, const std::string& log) {
    pid_ = fork();
    if (pid_ == 0) {
      if (!home.empty()) setenv("HEARTH_HOME", home.c_str(), 1);
      FILE* f = std::fopen(log.c_str(), "a");
      dup2(fileno(f), 1);
      dup2(fileno(f), 2);
      std::vector<char*> argv;
      std::string bin = HEARTH_CLI_PATH;
      argv.push_back(bin.data());
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(bin.c_str(), argv.data());
      _exit(127);
    }
  }
  ~Proc() { kill(SIGKILL); }
  bool alive() { return pid_ > 0 && waitpid(pid_, nullptr, WNOHANG) == 0; }
  void kill(int sig) {
    if (pid_ <= 0) return;
    ::kill(pid_, sig);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
};

class FleetEnroll : public ::testing::Test {
 protected:
  void SetUp() override {
    tmp_ = hearth::testing::make_temp_dir("hearth-fleet-enroll");
    chmod(tmp_.c_str(), 0711);
    bport_ = hearth::testing::free_port();
    cport_ = hearth::testing::free_port();
    dir_ = (tmp_ / "fleet").string();
    auto init =
        cli("", "fleet init " + dir_ + " --name plant --controller-url https://127.0.0.1:" + std::to_string(cport_) +
                    " --broker-url mqtts://127.0.0.1:" + std::to_string(bport_) + " --json");
    ASSERT_EQ(init.code, 0) << init.out;
    json j = json::parse(init.out);
    ca_sha_ = j.value("ca_sha256", "");
    ASSERT_EQ(ca_sha_.size(), 64u);
    std::string why;
    broker_ = hearth::testing::MosquittoBroker::start(dir_ + "/broker/mosquitto.conf", bport_,
                                                      (tmp_ / "mosquitto.log").string(), &why);
    if (!broker_) {
      if (hearth::testing::running_in_ci()) FAIL() << why;
      GTEST_SKIP() << why;
    }
    controller_ = std::make_unique<Proc>("", std::vector<std::string>{"controller", "--fleet", dir_},
                                         (tmp_ / "controller.log").string());
    ASSERT_TRUE(hearth::testing::wait_tcp(cport_, 15)) << "the controller did not listen";
  }
  void TearDown() override {
    controller_.reset();
    broker_.reset();
    std::error_code ec;
    if (!HasFailure()) std::filesystem::remove_all(tmp_, ec);
  }

  std::string token(const std::string& extra = "") {
    auto t = cli("", "fleet --fleet " + dir_ + " token create --json " + extra);
    EXPECT_EQ(t.code, 0) << t.out;
    return json::parse(t.out, nullptr, false).value("token", "");
  }
  std::string home(const std::string& node) { return (tmp_ / ("home-" + node)).string(); }
  Out enroll(const std::string& node, const std::string& tok, const std::string& pin) {
    return cli("HEARTH_HOME=" + home(node), "agent enroll --controller https://127.0.0.1:" + std::to_string(cport_) +
                                                " --token " + tok + " --node-id " + node +
                                                (pin.empty() ? "" : " --ca-sha256 " + pin));
  }
  json node_json(const std::string& node) {
    auto r = cli("", "fleet --fleet " + dir_ + " nodes --json");
    json j = json::parse(r.out, nullptr, false);
    if (!j.is_object()) return nullptr;
    for (const auto& n : j["nodes"])
      if (n.value("id", "") == node) return n;
    return nullptr;
  }
  // Polls until `pred(node json)` holds.
  bool wait_node(const std::string& node, const std::function<bool(const json&)>& pred, std::chrono::seconds limit) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      json n = node_json(node);
      if (!n.is_null() && pred(n)) return true;
      std::this_thread::sleep_for(200ms);
    }
    return false;
  }
  bool wait_history(const std::string& node, const std::string& action, std::chrono::seconds limit) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      auto r = cli("", "fleet --fleet " + dir_ + " history --node " + node + " --json");
      json j = json::parse(r.out, nullptr, false);
      if (j.is_object())
        for (const auto& a : j["audit"])
          if (a.value("action", "") == action) return true;
      std::this_thread::sleep_for(200ms);
    }
    return false;
  }
  // Publishes on a node's desired topic as the controller identity would.
  void publish_desired(const std::string& node, const std::string& payload) {
    FleetInfo f = *load_fleet(dir_);
    MqttOptions o;
    o.port = bport_;
    o.client_id = "test-publisher";
    o.ca_file = f.ca_cert_path();
    o.cert_file = f.controller_cert_path();
    o.key_file = f.controller_key_path();
    auto c = MqttClient::create(o, kMaxPayloadBytes);
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE((*c)->connect(10).ok());
    ASSERT_TRUE((*c)->publish(node_topic("plant", node, NodeTopic::kDesired), payload, 1, true, 5).ok());
    (*c)->disconnect();
  }
  std::string desired(const std::string& node, uint64_t generation, const std::string& key_path) {
    auto key = trust::PrivateKey::load(key_path);
    EXPECT_TRUE(key.ok());
    DesiredState d;
    d.fleet = "plant";
    d.node = node;
    d.generation = generation;
    d.issued_at = 1796000000;
    d.model = {"127.0.0.1:5000/models/tiny:v1", "sha256:" + std::string(64, '1')};
    return *sign_desired(d, *key);
  }

  std::filesystem::path tmp_;
  std::string dir_, ca_sha_;
  int bport_ = 0, cport_ = 0;
  std::unique_ptr<hearth::testing::MosquittoBroker> broker_;
  std::unique_ptr<Proc> controller_;
};

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
  Proc agent(home("node-1"), {"agent", "run"}, (tmp_ / "agent-1.log").string());
  ASSERT_TRUE(wait_node(
      "node-1", [](const json& n) { return n.value("presence", "") == "online"; }, 20s))
      << "node-1 never came online";
  ASSERT_TRUE(wait_node(
      "node-1", [](const json& n) { return n.value("state", "") == "pending"; }, 10s));

  // Forged (another key), then garbage of several kinds: each refused, the agent stays up.
  auto intruder = trust::PrivateKey::generate(trust::KeyAlgorithm::kEcdsaP256);
  std::string intruder_path = (tmp_ / "intruder.key").string();
  std::ofstream(intruder_path) << intruder->private_pem();
  publish_desired("node-1", desired("node-1", 5, intruder_path));
  EXPECT_TRUE(wait_history("node-1", "node_event:refused", 10s));
  for (const std::string& junk : {std::string("{not json"), std::string(200 << 10, '['), std::string("\xff\xfe\x00", 3),
                                  std::string(R"({"payloadType":"x","payload":"","signatures":[]})")})
    publish_desired("node-1", junk);
  std::this_thread::sleep_for(500ms);
  EXPECT_TRUE(agent.alive());
  auto st = cli("HEARTH_HOME=" + home("node-1"), "agent status --json");
  EXPECT_EQ(json::parse(st.out).value("desired_generation", 99), 0) << "a refused desired state moved the generation";

  // The controller's own signature is accepted, and the generation is recorded.
  publish_desired("node-1", desired("node-1", 1, dir_ + "/controller/desired-signing.key"));
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
}  // namespace hearth::fleet
