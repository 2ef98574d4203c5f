// Two controllers on one PostgreSQL database (a real server on loopback, run as a non-root
// user), one Mosquitto, and six nodes. The first controller leads; the second is a standby that
// serves reads and answers writes with 503 and the leader's URL. A four-batch rollout starts;
// after its first batch the leader is killed with SIGKILL. The standby must lead within seconds,
// finish the rollout, and every node must have been sent exactly one desired generation (its
// first, generation 1): one desired_published audit entry per node, one batch_done per batch,
// one rollout_succeeded.
//
// The nodes are simulated here with the fleet's own protocol code: each connects with the
// certificate it enrolled for (hearth agent enroll), verifies every desired state with the
// controller's pinned key, and reports "serving" the desired model for each new generation.
#include <gtest/gtest.h>

#include <fstream>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "fleet_fixture.h"
#include "hearth/fleet/fleet_db.h"
#include "hearth/fleet/mqtt_client.h"
#include "hearth/fleet/protocol.h"
#include "hearth/trust/signing_key.h"
#include "mosquitto_process.h"
#include "postgres_process.h"
#include "registry_process.h"

namespace hearth::fleet_test {
namespace {

constexpr int kNodes = 6;
const std::string kDigest = "sha256:" + std::string(64, 'd');
const std::string kReference = "127.0.0.1:9/models/m@" + kDigest;

// A node without an engine: it takes each new desired generation and reports serving it.
class SimNode {
 public:
  SimNode(std::string id, const std::string& home, const std::string& fleet, int broker_port)
      : id_(std::move(id)), fleet_(fleet) {
    const std::string dir = home + "/agent";
    auto key = trust::PublicKey::load(dir + "/controller-desired.pub");
    EXPECT_TRUE(key.ok()) << key.status().to_string();
    if (key.ok()) key_ = std::make_unique<trust::PublicKey>(*key);
    fleet::MqttOptions o;
    o.port = broker_port;
    o.client_id = id_;
    o.ca_file = dir + "/ca.crt";
    o.cert_file = dir + "/node.crt";
    o.key_file = dir + "/node.key";
    o.clean_session = false;
    o.will_topic = fleet::node_topic(fleet_, id_, fleet::NodeTopic::kPresence);
    o.will_payload = fleet::presence_to_json({id_, false});
    auto c = fleet::MqttClient::create(o, fleet::kMaxPayloadBytes);
    EXPECT_TRUE(c.ok()) << c.status().to_string();
    client_ = std::move(*c);
    client_->on_message([this](const fleet::MqttMessage& m) { on_desired(m); });
    client_->on_connection([this](bool up, const std::string&) {
      if (!up) return;
      (void)client_->subscribe(fleet::node_topic(fleet_, id_, fleet::NodeTopic::kDesired), 1, 0);
      (void)client_->publish(fleet::node_topic(fleet_, id_, fleet::NodeTopic::kPresence),
                             fleet::presence_to_json({id_, true}), 1, true, 0);
    });
    auto st = client_->connect(10);
    EXPECT_TRUE(st.ok()) << st.to_string();
  }
  ~SimNode() {
    if (client_) client_->disconnect();
  }

  // The distinct desired generations taken, in order; and how many deliveries repeated one.
  std::vector<uint64_t> generations() {
    std::lock_guard lock(mu_);
    return taken_;
  }
  int bad_envelopes() {
    std::lock_guard lock(mu_);
    return bad_;
  }

 private:
  void on_desired(const fleet::MqttMessage& m) {
    std::lock_guard lock(mu_);
    if (!key_) {
      ++bad_;
      return;
    }
    auto d = fleet::verify_desired(m.payload, *key_);
    if (!d.ok() || d->node != id_) {
      ++bad_;
      return;
    }
    if (!taken_.empty() && d->generation <= taken_.back()) return;  // retained again, or resent
    taken_.push_back(d->generation);
    fleet::ReportedState r;
    r.node = id_;
    r.generation = d->generation;
    r.seq = ++seq_;
    r.state = fleet::NodeState::kServing;
    r.serving = d->model;
    r.time = 1;
    (void)client_->publish(fleet::node_topic(fleet_, id_, fleet::NodeTopic::kReported), fleet::reported_to_json(r), 1,
                           true, 0);
  }

  std::string id_, fleet_;
  std::unique_ptr<trust::PublicKey> key_;
  std::unique_ptr<fleet::MqttClient> client_;
  std::mutex mu_;
  std::vector<uint64_t> taken_;
  uint64_t seq_ = 0;
  int bad_ = 0;
};

// HTTPS to a controller with curl: {status, body}.
std::pair<int, std::string> https(const std::string& ca, const std::string& token, const std::string& method,
                                  const std::string& url, const std::string& body = "") {
  std::string cmd = "curl -s --max-time 10 --cacert " + ca + " -X " + method + " -H 'Authorization: Bearer " + token +
                    "' -w '\\n%{http_code}' " + (body.empty() ? "" : "-d '" + body + "' ") + url;
  auto r = hearth::testing::run_command(cmd);
  const size_t nl = r.out.rfind('\n');
  if (nl == std::string::npos) return {0, r.out};
  return {std::atoi(r.out.c_str() + nl + 1), r.out.substr(0, nl)};
}

TEST(FleetPgFailover, TheStandbyTakesOverMidRolloutAndNothingIsRepeatedOrLost) {
  std::string why;
  auto pg = hearth::testing::PostgresServer::start(&why);
  if (!pg) {
    if (hearth::testing::running_in_ci()) FAIL() << why;
    GTEST_SKIP() << why;
  }
  ASSERT_TRUE(pg->create_database("fleet", &why)) << why;
  const std::string db_url = pg->url("fleet");

  const auto tmp = hearth::testing::make_temp_dir("hearth-pg-failover");
  chmod(tmp.c_str(), 0711);  // Mosquitto started as root drops to its own user
  const int bport = hearth::testing::free_port(), cport_a = hearth::testing::free_port(),
            cport_b = hearth::testing::free_port();
  const std::string dir = (tmp / "fleet").string();
  auto init = cli("", "fleet init " + dir + " --name plant --controller-url https://127.0.0.1:" +
                          std::to_string(cport_a) + " --broker-url mqtts://127.0.0.1:" + std::to_string(bport) +
                          " --json");
  ASSERT_EQ(init.code, 0) << init.out;
  const std::string pin = json::parse(init.out).value("ca_sha256", "");
  auto broker = hearth::testing::MosquittoBroker::start(dir + "/broker/mosquitto.conf", bport,
                                                        (tmp / "mosquitto.log").string(), &why);
  if (!broker) {
    if (hearth::testing::running_in_ci()) FAIL() << why;
    GTEST_SKIP() << why;
  }
  const std::string ca = dir + "/ca/ca.crt";
  const std::string admin_token = hearth::testing::read_text(dir + "/controller/admin.token");
  std::string token = admin_token;
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
  const std::string url_a = "https://127.0.0.1:" + std::to_string(cport_a);
  const std::string url_b = "https://127.0.0.1:" + std::to_string(cport_b);

  auto db = fleet::FleetDb::open(db_url);  // the test's own view of the shared state
  ASSERT_TRUE(db.ok()) << db.status().to_string();
  auto leader = [&] {
    auto l = (*db)->leader();
    return l.ok() ? *l : std::string();
  };

  // A first: it leads. Then B: a standby.
  auto ctl_a = std::make_unique<Proc>(
      "", std::vector<std::string>{"controller", "--fleet", dir, "--db", db_url, "--listen",
                                   "127.0.0.1:" + std::to_string(cport_a)},
      (tmp / "controller-a.log").string());
  ASSERT_TRUE(hearth::testing::wait_tcp(cport_a, 15)) << "controller A did not listen";
  ASSERT_TRUE(poll_until([&] { return leader() == url_a; }, 10s)) << "A did not lead: '" << leader() << "'";
  auto ctl_b = std::make_unique<Proc>(
      "", std::vector<std::string>{"controller", "--fleet", dir, "--db", db_url, "--listen",
                                   "127.0.0.1:" + std::to_string(cport_b)},
      (tmp / "controller-b.log").string());
  ASSERT_TRUE(hearth::testing::wait_tcp(cport_b, 15)) << "controller B did not listen";
  {
    auto [code, body] = https(ca, token, "GET", url_b + "/v1/leader");
    EXPECT_EQ(code, 200) << body;
    json j = json::parse(body, nullptr, false);
    ASSERT_TRUE(j.is_object()) << body;
    EXPECT_EQ(j.value("leader", ""), url_a) << body;
    EXPECT_FALSE(j.value("leading", true)) << body;
    auto [wcode, wbody] = https(ca, token, "POST", url_b + "/v1/tokens", "{}");
    EXPECT_EQ(wcode, 503) << wbody;
    json w = json::parse(wbody, nullptr, false);
    EXPECT_TRUE(w.is_object() && w.value("leader", "") == url_a) << wbody;
    // The operator's CLI pointed at the standby follows it to the leader: a copy of the fleet
    // directory whose fleet.json names B creates a join token (a write) through A.
    const std::string dir_b = (tmp / "fleet-via-b").string();
    ASSERT_EQ(hearth::testing::run_command("cp -a " + dir + " " + dir_b).exit_code, 0);
    json fj = json::parse(hearth::testing::read_text(dir_b + "/fleet.json"), nullptr, false);
    ASSERT_TRUE(fj.is_object() && fj.contains("controller_url")) << fj.dump();
    fj["controller_url"] = url_b;
    {
      std::ofstream(dir_b + "/fleet.json") << fj.dump(2);
    }
    auto via_b = cli("", "fleet --fleet " + dir_b + " token create --json");
    EXPECT_EQ(via_b.code, 0) << via_b.out;
    json tj = json::parse(via_b.out, nullptr, false);
    EXPECT_TRUE(tj.is_object() && !tj.value("token", "").empty()) << via_b.out;
  }

  // Six nodes enroll (through the leader) and come online.
  std::vector<std::unique_ptr<SimNode>> nodes;
  std::vector<std::string> ids;
  for (int i = 0; i < kNodes; ++i) {
    const std::string id = "edge-" + std::to_string(i);
    auto t = cli("", "fleet --fleet " + dir + " token create --json");
    ASSERT_EQ(t.code, 0) << t.out;
    const std::string home = (tmp / ("home-" + id)).string();
    auto e = cli("HEARTH_HOME=" + home, "agent enroll --controller " + url_a + " --token " +
                                            json::parse(t.out).value("token", "") + " --node-id " + id +
                                            " --ca-sha256 " + pin);
    ASSERT_EQ(e.code, 0) << e.out;
    nodes.push_back(std::make_unique<SimNode>(id, home, "plant", bport));
    ids.push_back(id);
  }
  ASSERT_TRUE(poll_until(
      [&] {
        auto all = (*db)->nodes({});
        if (!all.ok()) return false;
        int online = 0;
        for (const auto& n : *all) online += n.online;
        return online == kNodes;
      },
      15s))
      << "the nodes did not come online";

  // A four-batch rollout (1, 1, 2, 2 nodes), one second of bake each.
  auto start = cli("", "fleet --fleet " + dir + " rollout start " + kReference +
                           " --mirror http://127.0.0.1:9 --batches 1,2,4,100% --bake 1s --json");
  ASSERT_EQ(start.code, 0) << start.out;
  const std::string rid = json::parse(start.out, nullptr, false).value("id", "");
  ASSERT_FALSE(rid.empty()) << start.out;
  auto rollout = [&]() -> fleet::RolloutRecord {
    auto r = (*db)->rollout(rid);
    return r.ok() && r->has_value() ? **r : fleet::RolloutRecord{};
  };
  // Mid-rollout: the first batch is done and the second has its desired state.
  ASSERT_TRUE(poll_until([&] { return rollout().current_batch >= 1; }, 20s)) << "the first batch did not finish";
  EXPECT_EQ(rollout().state, "running");
  ctl_a->kill(SIGKILL);
  const auto killed = std::chrono::steady_clock::now();
  ASSERT_TRUE(poll_until([&] { return leader() == url_b; }, 10s)) << "B did not take over: '" << leader() << "'";
  const double takeover_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - killed).count();
  std::printf("standby took over %.2f s after the leader was killed\n", takeover_s);
  EXPECT_LT(takeover_s, 5.0);
  {
    auto [code, body] = https(ca, token, "GET", url_b + "/v1/leader");
    json j = json::parse(body, nullptr, false);
    EXPECT_TRUE(j.is_object() && j.value("leading", false)) << code << " " << body;
  }

  ASSERT_TRUE(poll_until([&] { return rollout().state == "succeeded"; }, 30s))
      << "rollout " << rid << " is " << rollout().state << " at batch " << rollout().current_batch;

  // Every node: one desired generation, the first, sent and taken once.
  auto rnodes = (*db)->rollout_nodes(rid);
  ASSERT_TRUE(rnodes.ok());
  ASSERT_EQ(rnodes->size(), static_cast<size_t>(kNodes));
  std::set<int64_t> batches;
  for (const auto& n : *rnodes) {
    EXPECT_EQ(n.state, "serving") << n.node;
    EXPECT_EQ(n.generation, 1u) << n.node;
    EXPECT_EQ(n.rollback_generation, 0u) << n.node;
    batches.insert(n.batch);
  }
  EXPECT_EQ(batches.size(), 4u);
  for (int i = 0; i < kNodes; ++i) {
    SCOPED_TRACE(ids[i]);
    EXPECT_EQ(*(*db)->desired_generation(ids[i]), 1u);
    EXPECT_EQ(nodes[i]->generations(), std::vector<uint64_t>{1});
    EXPECT_EQ(nodes[i]->bad_envelopes(), 0);
    auto log = (*db)->audit_log(ids[i], 1000);
    ASSERT_TRUE(log.ok());
    int published = 0;
    for (const auto& a : *log)
      if (a.action == "desired_published") {
        ++published;
        EXPECT_NE(a.detail.find("generation 1: " + kReference), std::string::npos) << a.detail;
        EXPECT_NE(a.detail.find("for rollout " + rid), std::string::npos) << a.detail;
      }
    EXPECT_EQ(published, 1);
  }
  auto rlog = (*db)->audit_log(rid, 1000);
  ASSERT_TRUE(rlog.ok());
  std::map<std::string, int> actions;
  std::set<std::string> batch_details;
  for (const auto& a : *rlog) {
    ++actions[a.action];
    if (a.action == "batch_done") batch_details.insert(a.detail.substr(0, a.detail.find(" healthy")));
  }
  EXPECT_EQ(actions["rollout_started"], 1);
  EXPECT_EQ(actions["batch_done"], 4);
  EXPECT_EQ(batch_details, (std::set<std::string>{"batch 1 of 4", "batch 2 of 4", "batch 3 of 4", "batch 4 of 4"}));
  EXPECT_EQ(actions["rollout_succeeded"], 1);
  EXPECT_EQ(actions["rollout_aborted"], 0);
  EXPECT_EQ((*db)->audit_log(url_a, 100)->size(), 1u);  // leader_elected, once each
  auto b_elected = (*db)->audit_log(url_b, 100);
  ASSERT_EQ(b_elected->size(), 1u);
  EXPECT_EQ(b_elected->front().action, "leader_elected");

  // The new leader takes writes.
  auto [code, body] = https(ca, token, "POST", url_b + "/v1/tokens", "{}");
  EXPECT_EQ(code, 200) << body;

  nodes.clear();
  ctl_b.reset();
  broker.reset();
  if (!HasFailure()) {
    std::error_code ec;
    std::filesystem::remove_all(tmp, ec);
  }
}

}  // namespace
}  // namespace hearth::fleet_test
