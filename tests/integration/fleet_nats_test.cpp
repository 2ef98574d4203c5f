// The fleet through a 3-server NATS cluster (Debian's nats-server 2.9: MQTT listeners, sessions
// and retained messages in JetStream replicated on all three), with hearth's one MQTT client and
// the configuration that fleet_dir's nats_server_conf writes.
//
// 1. What hearth's protocol needs from the broker, checked member by member across the cluster:
//    mutual TLS with the certificate's subject as the identity, per-node permissions, retained
//    desired states, QoS 1 with a persistent session, and the last will.
// 2. A 3-batch rollout to real agents while the server the controller is connected to is killed
//    (SIGKILL): the controller and its nodes move to the other servers, and the rollout completes
//    with each desired state published once.
#include <sys/wait.h>

#include <fstream>
#include <regex>
#include <set>

#include "fleet_fixture.h"
#include "hearth/core/atomic_file.h"
#include "hearth/fleet/pki.h"
#include "nats_cluster.h"

namespace hearth::fleet_test {
namespace {

using hearth::testing::NatsCluster;

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// What a client receives.
struct Inbox {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<fleet::MqttMessage> messages;
  void attach(fleet::MqttClient& c) {
    c.on_message([this](const fleet::MqttMessage& m) {
      std::lock_guard lock(mu);
      messages.push_back(m);
      cv.notify_all();
    });
  }
  std::optional<fleet::MqttMessage> wait_for(const std::string& topic, const std::string& payload,
                                             std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu);
    std::optional<fleet::MqttMessage> found;
    cv.wait_for(lock, timeout, [&] {
      for (const auto& m : messages)
        if (m.topic == topic && m.payload == payload) found = m;
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

std::unique_ptr<NatsCluster> start_cluster(const fleet::FleetInfo& f, const std::vector<int>& ports,
                                           const std::vector<std::string>& nodes, const std::string& dir) {
  std::string why;
  auto c = NatsCluster::start(f, ports, nodes, dir, &why);
  if (!c) {
    if (hearth::testing::running_in_ci()) ADD_FAILURE() << why;
    std::printf("skipping: %s\n", why.c_str());
  }
  return c;
}

class NatsBroker : public ::testing::Test {
 protected:
  void SetUp() override {
    tmp_ = hearth::testing::make_temp_dir("hearth-fleet-nats");
    std::string urls;
    for (int i = 0; i < 3; ++i) {
      ports_.push_back(hearth::testing::free_port());
      urls += (i ? "," : "") + std::string("mqtts://127.0.0.1:") + std::to_string(ports_.back());
    }
    fleet::FleetInitOptions o;
    o.name = "plant";
    o.broker_url = urls;
    auto f = fleet::init_fleet((tmp_ / "fleet").string(), o);
    ASSERT_TRUE(f.ok()) << f.status().to_string();
    fleet_ = *f;
    ASSERT_EQ(fleet_.brokers.size(), 3u);
    ASSERT_EQ(fleet::load_fleet(fleet_.dir)->broker_urls(), urls);
    cluster_ = start_cluster(fleet_, ports_, {"node-a", "node-b"}, (tmp_ / "nats").string());
    if (!cluster_) {
      if (!HasFailure()) GTEST_SKIP() << "nats-server is not installed";
      return;
    }
    ca_ = {slurp(fleet_.ca_cert_path()), slurp(fleet_.ca_key_path())};
  }
  void TearDown() override {
    cluster_.reset();
    std::error_code ec;
    if (!HasFailure()) std::filesystem::remove_all(tmp_, ec);
  }

  std::pair<std::string, std::string> node_identity(const std::string& node, const fleet::CertAndKey& ca) {
    auto kc = fleet::make_key_and_csr(node);
    EXPECT_TRUE(kc.ok());
    auto cert = fleet::issue_from_csr(ca, kc->csr_pem, node, 30);
    EXPECT_TRUE(cert.ok()) << cert.status().to_string();
    std::string cert_path = (tmp_ / (node + ".crt")).string(), key_path = (tmp_ / (node + ".key")).string();
    EXPECT_TRUE(write_file_atomic(cert_path, *cert).ok());
    EXPECT_TRUE(write_file_atomic(key_path, kc->key_pem).ok());
    return {cert_path, key_path};
  }
  // A client of server `server` only (no failover), as `identity` (a node id, or the controller).
  fleet::MqttOptions options(size_t server, const std::string& client_id, const std::string& identity) {
    fleet::MqttOptions o;
    o.port = ports_[server];
    o.client_id = client_id;
    o.ca_file = fleet_.ca_cert_path();
    if (identity == fleet::kControllerIdentity) {
      o.cert_file = fleet_.controller_cert_path();
      o.key_file = fleet_.controller_key_path();
    } else {
      auto [cert, key] = node_identity(identity, ca_);
      o.cert_file = cert;
      o.key_file = key;
    }
    o.keepalive_s = 5;
    return o;
  }
  std::unique_ptr<fleet::MqttClient> connect(const fleet::MqttOptions& o, Inbox* inbox) {
    auto c = fleet::MqttClient::create(o, fleet::kMaxPayloadBytes);
    EXPECT_TRUE(c.ok()) << c.status().to_string();
    if (!c.ok()) return nullptr;
    if (inbox) inbox->attach(**c);
    auto st = (*c)->connect(15);
    EXPECT_TRUE(st.ok()) << o.client_id << ": " << st.to_string();
    return st.ok() ? std::move(*c) : nullptr;
  }

  std::filesystem::path tmp_;
  std::vector<int> ports_;
  fleet::FleetInfo fleet_;
  fleet::CertAndKey ca_;
  std::unique_ptr<NatsCluster> cluster_;
};

TEST_F(NatsBroker, CarriesWhatTheFleetProtocolNeedsAcrossTheCluster) {
  const std::string desired_a = fleet::node_topic("plant", "node-a", fleet::NodeTopic::kDesired);
  const std::string desired_b = fleet::node_topic("plant", "node-b", fleet::NodeTopic::kDesired);
  const std::string reported_a = fleet::node_topic("plant", "node-a", fleet::NodeTopic::kReported);
  const std::string reported_b = fleet::node_topic("plant", "node-b", fleet::NodeTopic::kReported);
  const std::string presence_b = fleet::node_topic("plant", "node-b", fleet::NodeTopic::kPresence);

  // node-b, for the last will, is a child process that vanishes without a DISCONNECT. It is
  // forked now, while this process has no threads, and waits for its turn on a pipe.
  auto b_opt = options(2, "node-b", "node-b");
  b_opt.will_topic = presence_b;
  b_opt.will_payload = "offline";
  int go[2];
  ASSERT_EQ(pipe(go), 0);
  pid_t child = fork();
  if (child == 0) {
    close(go[1]);
    char c;
    if (read(go[0], &c, 1) != 1) _exit(1);
    auto b = fleet::MqttClient::create(b_opt, fleet::kMaxPayloadBytes);
    if (!b.ok() || !(*b)->connect(10).ok()) _exit(2);
    if (!(*b)->publish(presence_b, "online", 1, true, 10).ok()) _exit(3);
    _exit(0);  // no DISCONNECT: the socket just closes
  }
  close(go[0]);
  struct Reap {
    pid_t pid;
    int fd;
    ~Reap() {
      if (fd >= 0) close(fd);  // the child ends if it never got its turn
      if (pid > 0) waitpid(pid, nullptr, 0);
    }
  } reap{child, go[1]};

  // The controller (persistent session, as `hearth controller`) on server 1.
  Inbox ctl_inbox;
  auto ctl_opt = options(0, "hearth-controller", std::string(fleet::kControllerIdentity));
  ctl_opt.clean_session = false;
  auto ctl = connect(ctl_opt, &ctl_inbox);
  ASSERT_TRUE(ctl);
  for (auto t : {fleet::NodeTopic::kReported, fleet::NodeTopic::kPresence}) {
    auto granted = ctl->subscribe(fleet::all_nodes_topic("plant", t), 1, 10);
    ASSERT_TRUE(granted.ok()) << granted.status().to_string();
    EXPECT_EQ(*granted, 1);
  }
  // Retained QoS 1 desired states, published on server 1.
  ASSERT_TRUE(ctl->publish(desired_a, "desired-a-1", 1, true, 10).ok());
  ASSERT_TRUE(ctl->publish(desired_b, "desired-b-1", 1, true, 10).ok());

  // node-a on server 2: its certificate's subject is its user; it gets its retained desired state.
  Inbox a_inbox;
  auto a_opt = options(1, "node-a", "node-a");
  a_opt.clean_session = false;
  auto a = connect(a_opt, &a_inbox);
  ASSERT_TRUE(a);
  auto own = a->subscribe(desired_a, 1, 10);
  ASSERT_TRUE(own.ok()) << own.status().to_string();
  EXPECT_EQ(*own, 1);
  auto retained = a_inbox.wait_for(desired_a, "desired-a-1", 10s);
  ASSERT_TRUE(retained) << "the retained desired state did not reach another server's subscriber";
  EXPECT_TRUE(retained->retain);
  EXPECT_EQ(retained->qos, 1);
  // Another node's desired state: NATS refuses the subscription outright (0x80).
  auto other = a->subscribe(desired_b, 1, 10);
  ASSERT_TRUE(other.ok()) << other.status().to_string();
  EXPECT_EQ(*other, 0x80);
  // The subjects JetStream delivers QoS 1 subscriptions on ($MQTT.sub.<id>, which every user may
  // subscribe to) are not reachable from MQTT.
  auto internal = a->subscribe("$MQTT/sub/#", 0, 10);
  ASSERT_TRUE(internal.ok()) << internal.status().to_string();
  EXPECT_EQ(*internal, 0x80);
  // Writing for another node: acknowledged (MQTT 3.1.1 has no way to say no) and dropped.
  ASSERT_TRUE(a->publish(reported_b, "forged", 1, false, 10).ok());
  ASSERT_TRUE(a->publish(reported_a, "genuine", 1, false, 10).ok());
  ASSERT_TRUE(ctl_inbox.wait_for(reported_a, "genuine", 10s));
  EXPECT_EQ(ctl_inbox.count_on(reported_b), 0u);

  // A certificate of the fleet CA whose subject is not a listed user, and one of another CA.
  {
    auto c = fleet::MqttClient::create(options(2, "node-z", "node-z"), fleet::kMaxPayloadBytes);
    ASSERT_TRUE(c.ok());
    auto st = (*c)->connect(10);
    EXPECT_FALSE(st.ok());
    std::printf("unlisted node-z: %s\n", st.to_string().c_str());
    auto other_ca = fleet::make_ca("another CA", 30);
    ASSERT_TRUE(other_ca.ok());
    auto o = options(2, "node-b", "node-b");
    auto [cert, key] = node_identity("node-b-other", *other_ca);
    o.cert_file = cert;
    o.key_file = key;
    auto d = fleet::MqttClient::create(o, fleet::kMaxPayloadBytes);
    ASSERT_TRUE(d.ok());
    EXPECT_FALSE((*d)->connect(5).ok()) << "a certificate of another CA was let in";
  }

  // QoS 1 with a persistent session: while the controller is away, node-a reports on server 3;
  // the controller comes back on server 2 and gets the report without subscribing again.
  ctl->disconnect();
  ctl.reset();
  a->disconnect();
  a.reset();
  {
    auto a3 = connect(options(2, "node-a-3", "node-a"), nullptr);
    ASSERT_TRUE(a3);
    ASSERT_TRUE(a3->publish(reported_a, "while-away", 1, false, 10).ok());
  }
  Inbox ctl2_inbox;
  auto ctl2_opt = ctl_opt;
  ctl2_opt.port = ports_[1];
  auto ctl2 = connect(ctl2_opt, &ctl2_inbox);
  ASSERT_TRUE(ctl2);
  EXPECT_TRUE(ctl2_inbox.wait_for(reported_a, "while-away", 10s)) << "the session's queued QoS 1 message was lost";
  // node-a's session kept its subscription too: a desired state published while it was away.
  ASSERT_TRUE(ctl2->publish(desired_a, "desired-a-2", 1, true, 10).ok());
  {
    Inbox a2_inbox;
    auto a2_opt = a_opt;
    a2_opt.port = ports_[2];
    auto a2 = connect(a2_opt, &a2_inbox);
    ASSERT_TRUE(a2);
    EXPECT_TRUE(a2_inbox.wait_for(desired_a, "desired-a-2", 10s)) << "the node's session lost its subscription";
  }

  // The last will: node-b (server 3) vanishes without a DISCONNECT; the controller (server 2)
  // hears its presence go offline, and the will is retained.
  ASSERT_EQ(write(reap.fd, "x", 1), 1);
  int status = 0;
  waitpid(child, &status, 0);
  reap.pid = -1;
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_TRUE(ctl2_inbox.wait_for(presence_b, "offline", 15s)) << "the last will was not published";
  {
    Inbox w_inbox;
    auto w = connect(options(0, "watcher", std::string(fleet::kControllerIdentity)), &w_inbox);
    ASSERT_TRUE(w);
    ASSERT_TRUE(w->subscribe(presence_b, 1, 10).ok());
    auto m = w_inbox.wait_for(presence_b, "offline", 10s);
    ASSERT_TRUE(m) << "the last will was not retained";
    EXPECT_TRUE(m->retain);
  }
}

// ---------------------------------------------------------------------------------------------

constexpr const char* kEvalText =
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the sun. One day, she saw a "
    "big red ball in the park. She ran to the ball and kicked it very high. Her mom smiled and said, \"Good job, "
    "Lily!\" Lily was very happy. She played with the ball all day long.";

class FleetOnNats : public ::testing::Test {
 protected:
  void SetUp() override {
    HEARTH_REQUIRE_SHARED(shared);
    tmp_ = hearth::testing::make_temp_dir("hearth-fleet-on-nats");
    cport_ = hearth::testing::free_port();
    std::string urls;
    for (int i = 0; i < 3; ++i) {
      ports_.push_back(hearth::testing::free_port());
      urls += (i ? "," : "") + std::string("mqtts://127.0.0.1:") + std::to_string(ports_.back());
    }
    dir_ = (tmp_ / "fleet").string();
    auto init =
        cli("", "fleet init " + dir_ + " --name plant --controller-url https://127.0.0.1:" + std::to_string(cport_) +
                    " --broker-url " + urls + " --json");
    ASSERT_EQ(init.code, 0) << init.out;
    ca_sha_ = json::parse(init.out).value("ca_sha256", "");
    auto f = fleet::load_fleet(dir_);
    ASSERT_TRUE(f.ok()) << f.status().to_string();
    ASSERT_EQ(f->brokers.size(), 3u);
    cluster_ = start_cluster(*f, ports_, node_ids_, (tmp_ / "nats").string());
    if (!cluster_) {
      if (!HasFailure()) GTEST_SKIP() << "nats-server is not installed";
      return;
    }
    std::string why;
    registry_ = hearth::testing::DockerRegistry::start(&why);
    if (!registry_) {
      if (hearth::testing::running_in_ci()) FAIL() << why;
      GTEST_SKIP() << why;
    }
    pub_ = "HEARTH_HOME=" + (tmp_ / "publisher").string();
    ASSERT_EQ(cli(pub_, "keygen --out " + (tmp_ / "acme").string()).code, 0);
    const std::string ref = "models/stories:v1";
    auto imp =
        cli(pub_, "import " + (shared / "models" / "stories260K-f32.gguf").string() + " " + ref + " --model-version 1");
    ASSERT_EQ(imp.code, 0) << imp.out;
    ASSERT_EQ(cli(pub_, "sign " + ref + " --key " + (tmp_ / "acme.key").string()).code, 0);
    auto push = cli(pub_, "push " + ref + " --to " + registry_->url());
    ASSERT_EQ(push.code, 0) << push.out;
    std::smatch m;
    ASSERT_TRUE(std::regex_search(push.out, m, std::regex("manifest (sha256:[0-9a-f]{64})"))) << push.out;
    digest_ = m[1];
    controller_ = std::make_unique<Proc>("", std::vector<std::string>{"controller", "--fleet", dir_}, controller_log());
    ASSERT_TRUE(hearth::testing::wait_tcp(cport_, 15)) << "the controller did not listen";
  }
  void TearDown() override {
    agents_.clear();
    controller_.reset();
    registry_.reset();
    cluster_.reset();
    std::error_code ec;
    if (!HasFailure()) std::filesystem::remove_all(tmp_, ec);
  }

  std::string home(const std::string& node) { return (tmp_ / ("home-" + node)).string(); }
  std::string controller_log() { return (tmp_ / "controller.log").string(); }
  std::string agent_log(const std::string& node) { return (tmp_ / ("agent-" + node + ".log")).string(); }
  json node_json(const std::string& node) {
    json j = json::parse(cli("", "fleet --fleet " + dir_ + " nodes --json").out, nullptr, false);
    if (j.is_object())
      for (const auto& n : j["nodes"])
        if (n.value("id", "") == node) return n;
    return nullptr;
  }
  // The MQTT ports a process's log says it connected to, in order.
  static std::vector<int> connections(const std::string& log) {
    std::vector<int> out;
    std::string text = slurp(log);
    std::regex re("connected to (?:the broker )?127\\.0\\.0\\.1:([0-9]+)");
    for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator(); ++it)
      out.push_back(std::stoi((*it)[1]));
    return out;
  }

  std::filesystem::path tmp_;
  std::string dir_, ca_sha_, pub_, digest_;
  int cport_ = 0;
  std::vector<int> ports_;
  const std::vector<std::string> node_ids_ = {"edge-1", "edge-2", "edge-3"};
  std::unique_ptr<NatsCluster> cluster_;
  std::unique_ptr<hearth::testing::DockerRegistry> registry_;
  std::unique_ptr<Proc> controller_;
  std::vector<std::unique_ptr<Proc>> agents_;
};

TEST_F(FleetOnNats, ARolloutCompletesWhenTheControllersBrokerServerIsKilled) {
  const auto t0 = std::chrono::steady_clock::now();
  for (const auto& id : node_ids_) {
    auto t = cli("", "fleet --fleet " + dir_ + " token create --json --labels site=plant");
    ASSERT_EQ(t.code, 0) << t.out;
    auto e = cli("HEARTH_HOME=" + home(id), "agent enroll --controller https://127.0.0.1:" + std::to_string(cport_) +
                                                " --token " + json::parse(t.out).value("token", "") + " --node-id " +
                                                id + " --ca-sha256 " + ca_sha_);
    ASSERT_EQ(e.code, 0) << e.out;
    auto tr = cli("HEARTH_HOME=" + home(id),
                  "trust add " + (tmp_ / "acme.pub").string() + " --models 'models/*' --name acme");
    ASSERT_EQ(tr.code, 0) << tr.out;
    agents_.push_back(std::make_unique<Proc>(
        home(id),
        std::vector<std::string>{"agent", "run", "--serve", "127.0.0.1:" + std::to_string(hearth::testing::free_port()),
                                 "-t", "1", "--telemetry-interval", "1", "--keepalive", "5"},
        agent_log(id)));
  }
  for (const auto& id : node_ids_)
    ASSERT_TRUE(poll_until(
        [&] {
          json n = node_json(id);
          return !n.is_null() && n.value("presence", "") == "online";
        },
        30s))
        << id << " never came online through the cluster\n"
        << slurp(agent_log(id));

  std::string eval = (tmp_ / "eval.txt").string();
  std::ofstream(eval) << kEvalText;
  auto r = cli("", "fleet --fleet " + dir_ +
                       " rollout start models/stories:v1 --selector site=plant --batches 1,2,3"
                       " --gate 'eval_ppl < 200' --eval-text " +
                       eval + " --bake 2s --max-failures 0 --mirror " + registry_->url() + " --json");
  ASSERT_EQ(r.code, 0) << r.out;
  const std::string id = json::parse(r.out).value("id", "");
  ASSERT_FALSE(id.empty()) << r.out;

  // Mid-rollout (the canary serves v1, the other batches wait): kill -9 the server the
  // controller is connected to.
  ASSERT_TRUE(poll_until(
      [&] {
        json j =
            json::parse(cli("", "fleet --fleet " + dir_ + " rollout status " + id + " --json").out, nullptr, false);
        return j.is_object() && j["batches"].size() == 3 && j["batches"][0]["nodes"][0].value("state", "") == "serving";
      },
      45s))
      << cli("", "fleet --fleet " + dir_ + " rollout status " + id).out;
  auto before = connections(controller_log());
  ASSERT_FALSE(before.empty()) << slurp(controller_log());
  const int killed_port = before.back();
  size_t killed = 0;
  while (killed < cluster_->size() && cluster_->mqtt_port(killed) != killed_port) ++killed;
  ASSERT_LT(killed, cluster_->size());
  json mid = json::parse(cli("", "fleet --fleet " + dir_ + " rollout status " + id + " --json").out, nullptr, false);
  EXPECT_NE(mid.value("state", ""), "succeeded") << "the rollout ended before the kill: " << mid.dump();
  const auto t_kill = std::chrono::steady_clock::now();
  cluster_->kill_hard(killed);
  std::printf("killed nats server n%zu (MQTT port %d), the controller's, %.1f s into the test\n", killed + 1,
              killed_port, std::chrono::duration<double>(t_kill - t0).count());

  auto done = cli("", "fleet --fleet " + dir_ + " rollout status " + id + " --wait --timeout 75s --json");
  json j = json::parse(done.out, nullptr, false);
  const double after_kill = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_kill).count();
  ASSERT_EQ(j.value("state", ""), "succeeded") << done.out << "\ncontroller log:\n"
                                               << slurp(controller_log()) << "\n"
                                               << cli("", "fleet --fleet " + dir_ + " nodes").out;
  std::printf("rollout %s succeeded %.1f s after the kill\n", id.c_str(), after_kill);

  // The controller moved to a live server.
  auto after = connections(controller_log());
  ASSERT_GT(after.size(), before.size()) << slurp(controller_log());
  EXPECT_NE(after.back(), killed_port);
  for (const auto& n : node_ids_) {
    json nj = node_json(n);
    EXPECT_EQ(nj["serving"].value("digest", ""), digest_) << n << ": " << nj.dump();
    auto c = connections(agent_log(n));
    std::string path;
    for (int p : c) path += " " + std::to_string(p);
    std::printf("%s connected to:%s\n", n.c_str(), path.c_str());
    ASSERT_FALSE(c.empty());
    EXPECT_NE(c.back(), killed_port) << n << " is still on the killed server";
  }
  // Nothing repeated, nothing lost: one desired state per node, one batch_done per batch.
  json h = json::parse(cli("", "fleet --fleet " + dir_ + " history --json").out, nullptr, false);
  std::map<std::string, int> sent;
  int batches_done = 0;
  for (const auto& a : h["audit"]) {
    if (a.value("action", "") == "desired_published" && a.value("detail", "").find(digest_) != std::string::npos)
      ++sent[a.value("subject", "")];
    if (a.value("action", "") == "batch_done" && a.value("subject", "") == id) ++batches_done;
  }
  for (const auto& n : node_ids_) EXPECT_EQ(sent[n], 1) << n;
  EXPECT_EQ(batches_done, 3);
}

}  // namespace
}  // namespace hearth::fleet_test
