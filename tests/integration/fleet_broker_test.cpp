// The fleet's security on a real broker: Mosquitto runs with exactly the configuration and ACL
// that `fleet init` writes, and clients connect with certificates of the fleet CA (nodes get
// theirs through the CSR path that enrollment uses).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include "hearth/core/atomic_file.h"
#include "hearth/fleet/fleet_dir.h"
#include "hearth/fleet/mqtt_client.h"
#include "hearth/fleet/pki.h"
#include "hearth/fleet/protocol.h"
#include "hearth/trust/signing_key.h"
#include "mosquitto_process.h"
#include "registry_process.h"
#include "shared_data.h"

namespace hearth::fleet {
namespace {

using namespace std::chrono_literals;

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// Collects what a client receives.
struct Inbox {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<MqttMessage> messages;

  void attach(MqttClient& c) {
    c.on_message([this](const MqttMessage& m) {
      std::lock_guard lock(mu);
      messages.push_back(m);
      cv.notify_all();
    });
  }
  // Waits until a message on `topic` has arrived; returns its payload.
  std::optional<std::string> wait_for(const std::string& topic, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu);
    std::optional<std::string> found;
    cv.wait_for(lock, timeout, [&] {
      for (const auto& m : messages)
        if (m.topic == topic) found = m.payload;
      return found.has_value();
    });
    return found;
  }
  size_t count_on(const std::string& topic) {
    std::lock_guard lock(mu);
    size_t n = 0;
    for (const auto& m : messages) n += m.topic == topic;
    return n;
  }
};

class FleetBroker : public ::testing::Test {
 protected:
  void SetUp() override {
    tmp_ = hearth::testing::make_temp_dir("hearth-fleet-broker");
    // Mosquitto started as root drops to the mosquitto user, which must reach DIR/broker.
    chmod(tmp_.c_str(), 0711);
    port_ = hearth::testing::free_port();
    FleetInitOptions o;
    o.name = "plant";
    o.broker_url = "mqtts://127.0.0.1:" + std::to_string(port_);
    auto f = init_fleet((tmp_ / "fleet").string(), o);
    ASSERT_TRUE(f.ok()) << f.status().to_string();
    fleet_ = *f;
    std::string why;
    broker_ = hearth::testing::MosquittoBroker::start(fleet_.mosquitto_conf_path(), port_,
                                                      (tmp_ / "mosquitto.log").string(), &why);
    if (!broker_) {
      if (hearth::testing::running_in_ci()) FAIL() << why;
      GTEST_SKIP() << why;
    }
    ca_ = {slurp(fleet_.ca_cert_path()), slurp(fleet_.ca_key_path())};
  }
  void TearDown() override {
    broker_.reset();
    std::error_code ec;
    if (!HasFailure()) std::filesystem::remove_all(tmp_, ec);
  }

  // Enrolls `node` the way an agent does: key and CSR made here, certificate from the CA.
  std::pair<std::string, std::string> node_identity(const std::string& node, const CertAndKey* ca = nullptr) {
    auto kc = make_key_and_csr(node);
    EXPECT_TRUE(kc.ok());
    auto cert = issue_from_csr(ca ? *ca : ca_, kc->csr_pem, node, 30);
    EXPECT_TRUE(cert.ok()) << cert.status().to_string();
    std::string cert_path = (tmp_ / (node + ".crt")).string(), key_path = (tmp_ / (node + ".key")).string();
    EXPECT_TRUE(write_file_atomic(cert_path, *cert).ok());
    EXPECT_TRUE(write_file_atomic(key_path, kc->key_pem).ok());
    return {cert_path, key_path};
  }

  MqttOptions options(const std::string& client_id, const std::string& cert, const std::string& key) {
    MqttOptions o;
    o.port = port_;
    o.client_id = client_id;
    o.ca_file = fleet_.ca_cert_path();
    o.cert_file = cert;
    o.key_file = key;
    o.keepalive_s = 5;
    return o;
  }

  std::unique_ptr<MqttClient> connect_as(const MqttOptions& o, Inbox* inbox) {
    auto c = MqttClient::create(o, kMaxPayloadBytes);
    EXPECT_TRUE(c.ok()) << c.status().to_string();
    if (!c.ok()) return nullptr;
    if (inbox) inbox->attach(**c);
    auto st = (*c)->connect(10);
    EXPECT_TRUE(st.ok()) << o.client_id << ": " << st.to_string();
    return std::move(*c);
  }

  std::unique_ptr<MqttClient> controller(Inbox* inbox) {
    return connect_as(options("hearth-controller", fleet_.controller_cert_path(), fleet_.controller_key_path()), inbox);
  }

  std::string signed_desired(const std::string& node, uint64_t generation) {
    auto key = trust::PrivateKey::load(fleet_.desired_key_path());
    EXPECT_TRUE(key.ok());
    DesiredState d;
    d.fleet = fleet_.name;
    d.node = node;
    d.generation = generation;
    d.issued_at = 1796000000;
    d.model = {"127.0.0.1:5000/models/tiny:v1", "sha256:" + std::string(64, '1')};
    auto env = sign_desired(d, *key);
    EXPECT_TRUE(env.ok());
    return *env;
  }

  std::filesystem::path tmp_;
  int port_ = 0;
  FleetInfo fleet_;
  CertAndKey ca_;
  std::unique_ptr<hearth::testing::MosquittoBroker> broker_;
};

TEST_F(FleetBroker, ANodeReadsOnlyItsOwnDesiredState) {
  auto ctl = controller(nullptr);
  ASSERT_TRUE(ctl);
  std::string topic_a = node_topic("plant", "node-a", NodeTopic::kDesired);
  std::string topic_b = node_topic("plant", "node-b", NodeTopic::kDesired);
  ASSERT_TRUE(ctl->publish(topic_a, signed_desired("node-a", 1), 1, true, 5).ok());
  ASSERT_TRUE(ctl->publish(topic_b, signed_desired("node-b", 1), 1, true, 5).ok());

  auto [cert, key] = node_identity("node-a");
  Inbox inbox;
  auto a = connect_as(options("node-a", cert, key), &inbox);
  ASSERT_TRUE(a);
  auto own = a->subscribe(topic_a, 1, 5);
  ASSERT_TRUE(own.ok()) << own.status().to_string();
  EXPECT_EQ(*own, 1);
  auto payload = inbox.wait_for(topic_a, 5s);
  ASSERT_TRUE(payload) << "the retained desired state did not arrive";
  auto pub = trust::PublicKey::load(fleet_.desired_pub_path());
  ASSERT_TRUE(pub.ok());
  auto d = verify_desired(*payload, *pub);
  ASSERT_TRUE(d.ok()) << d.status().to_string();
  EXPECT_EQ(d->node, "node-a");

  // Another node's desired topic, and a wildcard over all nodes: Mosquitto 2.0 grants the
  // subscription but its ACL withholds every message that the node may not read.
  ASSERT_TRUE(a->subscribe(topic_b, 1, 5).ok());
  ASSERT_TRUE(a->subscribe(all_nodes_topic("plant", NodeTopic::kDesired), 1, 5).ok());
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(inbox.count_on(topic_b), 0u);
}

TEST_F(FleetBroker, ANodeCannotWriteForAnotherNodeNorItsOwnDesiredState) {
  Inbox ctl_inbox;
  auto ctl = controller(&ctl_inbox);
  ASSERT_TRUE(ctl);
  ASSERT_TRUE(ctl->subscribe(all_nodes_topic("plant", NodeTopic::kReported), 1, 5).ok());
  ASSERT_TRUE(ctl->subscribe(all_nodes_topic("plant", NodeTopic::kDesired), 1, 5).ok());
  std::string desired_a = node_topic("plant", "node-a", NodeTopic::kDesired);
  std::string genuine = signed_desired("node-a", 1);
  ASSERT_TRUE(ctl->publish(desired_a, genuine, 1, true, 5).ok());
  ASSERT_TRUE(ctl_inbox.wait_for(desired_a, 5s));

  auto [cert, key] = node_identity("node-a");
  auto a = connect_as(options("node-a", cert, key), nullptr);
  ASSERT_TRUE(a);
  ReportedState r;
  r.node = "node-b";
  r.state = NodeState::kServing;
  r.time = 1;
  std::string reported_b = node_topic("plant", "node-b", NodeTopic::kReported);
  std::string reported_a = node_topic("plant", "node-a", NodeTopic::kReported);
  // Mosquitto acknowledges a denied QoS 1 publish but does not deliver it.
  ASSERT_TRUE(a->publish(reported_b, reported_to_json(r), 1, true, 5).ok());
  ASSERT_TRUE(a->publish(desired_a, "{\"forged\":true}", 1, true, 5).ok());
  r.node = "node-a";
  ASSERT_TRUE(a->publish(reported_a, reported_to_json(r), 1, true, 5).ok());
  auto own = ctl_inbox.wait_for(reported_a, 5s);
  ASSERT_TRUE(own) << "the node's own report did not arrive";
  EXPECT_TRUE(reported_from_json(*own).ok());
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(ctl_inbox.count_on(reported_b), 0u);
  EXPECT_EQ(ctl_inbox.count_on(desired_a), 1u);  // only the controller's own publish

  // The retained desired state is still the controller's.
  Inbox fresh;
  auto a2 = connect_as(options("node-a-2", cert, key), &fresh);
  ASSERT_TRUE(a2);
  ASSERT_TRUE(a2->subscribe(desired_a, 1, 5).ok());
  auto retained = fresh.wait_for(desired_a, 5s);
  ASSERT_TRUE(retained);
  EXPECT_EQ(*retained, genuine);
}

TEST_F(FleetBroker, ClientsWithoutAFleetCertificateAreRefused) {
  auto other_ca = make_ca("someone else's CA", 30);
  ASSERT_TRUE(other_ca.ok());
  auto [cert, key] = node_identity("node-x", &*other_ca);
  auto c = MqttClient::create(options("node-x", cert, key), kMaxPayloadBytes);
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE((*c)->connect(5).ok());

  auto anon = MqttClient::create(options("anon", "", ""), kMaxPayloadBytes);
  ASSERT_TRUE(anon.ok());
  EXPECT_FALSE((*anon)->connect(5).ok());
}

TEST_F(FleetBroker, OversizedPayloadsNeverReachAHandler) {
  Inbox ctl_inbox;
  auto ctl = controller(&ctl_inbox);
  ASSERT_TRUE(ctl);
  ASSERT_TRUE(ctl->subscribe(all_nodes_topic("plant", NodeTopic::kEvents), 1, 5).ok());
  auto [cert, key] = node_identity("node-a");
  auto a = connect_as(options("node-a", cert, key), nullptr);
  ASSERT_TRUE(a);
  std::string events = node_topic("plant", "node-a", NodeTopic::kEvents);
  // Over hearth's 256 KiB cap but under the broker's packet limit: dropped by the adapter.
  ASSERT_TRUE(a->publish(events, std::string(300 << 10, 'x'), 1, false, 5).ok());
  Event e{"node-a", 1, 1, "test", "after the big one"};
  ASSERT_TRUE(a->publish(events, event_to_json(e), 1, false, 5).ok());
  auto got = ctl_inbox.wait_for(events, 5s);
  ASSERT_TRUE(got);
  EXPECT_TRUE(event_from_json(*got).ok());
  EXPECT_EQ(ctl_inbox.count_on(events), 1u);
  EXPECT_EQ(ctl->dropped_oversize(), 1u);
}

TEST_F(FleetBroker, PresenceGoesOfflineThroughTheLastWill) {
  std::string presence = node_topic("plant", "node-a", NodeTopic::kPresence);
  auto [cert, key] = node_identity("node-a");
  MqttOptions o = options("node-a", cert, key);
  o.will_topic = presence;
  o.will_payload = presence_to_json({"node-a", false});
  o.keepalive_s = 5;
  // The node runs in a child process that is then killed: no DISCONNECT is ever sent. It is
  // forked before this process starts any thread (the controller's client comes after), and
  // its "online" presence is retained, so the controller sees it whenever it subscribes.
  pid_t pid = fork();
  if (pid == 0) {
    auto c = MqttClient::create(o, kMaxPayloadBytes);
    if (!c.ok()) _exit(2);
    if (auto st = (*c)->connect(10); !st.ok()) {
      fprintf(stderr, "child: %s\n", st.to_string().c_str());
      _exit(2);
    }
    if (!(*c)->publish(presence, presence_to_json({"node-a", true}), 1, true, 5).ok()) _exit(3);
    for (;;) pause();
  }
  Inbox ctl_inbox;
  auto ctl = controller(&ctl_inbox);
  ASSERT_TRUE(ctl);
  ASSERT_TRUE(ctl->subscribe(presence, 1, 5).ok());
  auto online = ctl_inbox.wait_for(presence, 10s);  // retained, or live if the child is still connecting
  ASSERT_TRUE(online) << "the node's online presence never arrived";
  EXPECT_TRUE(presence_from_json(*online)->online);
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  auto deadline = std::chrono::steady_clock::now() + 10s;
  bool offline = false;
  while (!offline && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(100ms);
    std::lock_guard lock(ctl_inbox.mu);
    for (const auto& m : ctl_inbox.messages)
      if (m.topic == presence) {
        auto p = presence_from_json(m.payload);
        offline |= p.ok() && !p->online;
      }
  }
  EXPECT_TRUE(offline) << "no offline presence after the node was killed";
}

// A batch's desired states go out pipelined: more messages than the in-flight window, each
// retained and delivered once; with the broker gone, the call ends after its wait and says how
// many are unacknowledged.
TEST_F(FleetBroker, PipelinedPublishesAreAllAcknowledgedThroughASmallWindow) {
  MqttOptions o = options("hearth-controller", fleet_.controller_cert_path(), fleet_.controller_key_path());
  o.max_inflight = 8;
  Inbox inbox;
  auto ctl = connect_as(o, &inbox);
  ASSERT_TRUE(ctl);
  ASSERT_TRUE(ctl->subscribe(all_nodes_topic("plant", NodeTopic::kDesired), 1, 5).ok());
  constexpr int kNodes = 300;
  std::vector<MqttOutgoing> out;
  for (int i = 0; i < kNodes; ++i) {
    const std::string node = "node-" + std::to_string(i);
    out.push_back({node_topic("plant", node, NodeTopic::kDesired), "{\"n\":" + std::to_string(i) + "}"});
  }
  auto st = ctl->publish_many(out, /*retain=*/true, 10);
  ASSERT_TRUE(st.ok()) << st.to_string();
  auto deadline = std::chrono::steady_clock::now() + 10s;
  size_t got = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    got = 0;
    for (const auto& m : out) got += inbox.count_on(m.topic) > 0;
    if (got == out.size()) break;
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(got, out.size());
  for (const auto& m : out) EXPECT_EQ(inbox.count_on(m.topic), 1u) << m.topic;

  // A node that connects later gets its retained one.
  auto [cert, key] = node_identity("node-299");
  Inbox node_inbox;
  auto n = connect_as(options("node-299", cert, key), &node_inbox);
  ASSERT_TRUE(n);
  ASSERT_TRUE(n->subscribe(out.back().topic, 1, 5).ok());
  auto retained = node_inbox.wait_for(out.back().topic, 5s);
  ASSERT_TRUE(retained);
  EXPECT_EQ(*retained, out.back().payload);

  broker_.reset();  // no PUBACK comes now
  const auto t0 = std::chrono::steady_clock::now();
  st = ctl->publish_many(out, /*retain=*/true, 1);
  EXPECT_EQ(st.code(), ErrorCode::kUnavailable) << st.to_string();
  EXPECT_NE(st.message().find("not acknowledged"), std::string::npos) << st.message();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
}

}  // namespace
}  // namespace hearth::fleet
