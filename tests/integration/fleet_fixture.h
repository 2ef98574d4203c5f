// Test support for the fleet's process-level tests: the hearth CLI as a subprocess, background
// hearth processes (controller, agents), and a fixture with a fleet directory, Mosquitto
// started with its configuration, and a running controller.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "hearth/fleet/fleet_dir.h"
#include "hearth/fleet/mqtt_client.h"
#include "hearth/fleet/protocol.h"
#include "hearth/trust/signing_key.h"
#include "mosquitto_process.h"
#include "registry_process.h"
#include "run_command.h"
#include "shared_data.h"

namespace hearth::fleet_test {

using json = nlohmann::json;
using namespace std::chrono_literals;

struct Out {
  int code = -1;
  std::string out;  // stdout and stderr
};

// Runs the CLI with `env` (e.g. "HEARTH_HOME=/x") and `args`.
inline Out cli(const std::string& env, const std::string& args) {
  auto r = hearth::testing::run_command(env + " " HEARTH_CLI_PATH " " + args + " 2>&1");
  return {r.exit_code, std::move(r.out)};
}

// A background hearth process, killed (SIGKILL) by the destructor.
class Proc {
 public:
  // netns: the name of a network namespace (`ip netns add`) to run in; empty: this one.
  Proc(const std::string& home, std::vector<std::string> args, const std::string& log, const std::string& netns = "") {
    pid_ = fork();
    if (pid_ == 0) {
      if (!netns.empty()) {
        const int fd = open(("/var/run/netns/" + netns).c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) _exit(126);
        close(fd);
      }
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

inline bool poll_until(const std::function<bool()>& pred, std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(200ms);
  }
  return pred();
}

// A fleet "plant" with Mosquitto and a controller on free loopback ports.
// Requests sent in the background until stop() or the end of the scope, each answer counted
// (200: ok, anything else: failed). One thread per request function; `gap` is the wait between
// two requests of a thread; `around` runs each thread's loop (e.g. inside a network namespace).
class BackgroundLoad {
 public:
  using Around = std::function<void(const std::function<void()>&)>;
  explicit BackgroundLoad(std::vector<std::function<long()>> requests, std::chrono::milliseconds gap = 0ms,
                          Around around = nullptr) {
    for (auto& request : requests)
      threads_.emplace_back([this, request = std::move(request), gap, around] {
        const std::function<void()> loop = [&] {
          while (!stop_.load()) {
            if (!paused_.load()) (request() == 200 ? ok_ : failed_).fetch_add(1);
            if (gap.count() > 0) std::this_thread::sleep_for(gap);
          }
        };
        if (around) {
          around(loop);
        } else {
          loop();
        }
      });
  }
  ~BackgroundLoad() { stop(); }
  BackgroundLoad(const BackgroundLoad&) = delete;
  BackgroundLoad& operator=(const BackgroundLoad&) = delete;
  void stop() {
    stop_.store(true);
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }
  // While paused no request is sent (a node being killed and restarted).
  void pause(bool paused) { paused_.store(paused); }
  int ok() const { return ok_.load(); }
  int failed() const { return failed_.load(); }

 private:
  std::atomic<bool> stop_{false}, paused_{false};
  std::atomic<int> ok_{0}, failed_{0};
  std::vector<std::thread> threads_;
};

class FleetFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    tmp_ = hearth::testing::make_temp_dir("hearth-fleet");
    chmod(tmp_.c_str(), 0711);  // Mosquitto started as root drops to its own user
    bport_ = hearth::testing::free_port();
    cport_ = hearth::testing::free_port();
    dir_ = (tmp_ / "fleet").string();
    auto init =
        cli("", "fleet init " + dir_ + " --name plant --controller-url https://127.0.0.1:" + std::to_string(cport_) +
                    " --broker-url mqtts://" + broker_host_ + ":" + std::to_string(bport_) + " --json");
    ASSERT_EQ(init.code, 0) << init.out;
    ca_sha_ = json::parse(init.out).value("ca_sha256", "");
    ASSERT_EQ(ca_sha_.size(), 64u);
    start_broker();
    if (IsSkipped() || HasFatalFailure()) return;
    start_controller();
  }
  // The broker's address (set before SetUp to put it on another interface).
  std::string broker_host_ = "127.0.0.1";

  void TearDown() override {
    controller_.reset();
    broker_.reset();
    std::error_code ec;
    if (!HasFailure()) std::filesystem::remove_all(tmp_, ec);
  }

  void start_broker() {
    std::string why;
    broker_ = hearth::testing::MosquittoBroker::start(dir_ + "/broker/mosquitto.conf", bport_,
                                                      (tmp_ / "mosquitto.log").string(), &why, broker_host_);
    if (!broker_) {
      if (hearth::testing::running_in_ci()) FAIL() << why;
      GTEST_SKIP() << why;
    }
  }
  void start_controller() {
    controller_ = std::make_unique<Proc>("", std::vector<std::string>{"controller", "--fleet", dir_},
                                         (tmp_ / "controller.log").string());
    ASSERT_TRUE(hearth::testing::wait_tcp(cport_, 15)) << "the controller did not listen";
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
  bool wait_node(const std::string& node, const std::function<bool(const json&)>& pred,
                 std::chrono::milliseconds limit) {
    return poll_until(
        [&] {
          json n = node_json(node);
          return !n.is_null() && pred(n);
        },
        limit);
  }
  // How many of the node's audit entries have `action`.
  int history_count(const std::string& node, const std::string& action) {
    auto r = cli("", "fleet --fleet " + dir_ + " history --node " + node + " --json");
    json j = json::parse(r.out, nullptr, false);
    int n = 0;
    if (j.is_object())
      for (const auto& a : j["audit"])
        if (a.value("action", "") == action) ++n;
    return n;
  }
  bool has_history(const std::string& node, const std::string& action) { return history_count(node, action) > 0; }
  bool wait_history(const std::string& node, const std::string& action, std::chrono::milliseconds limit) {
    return poll_until([&] { return has_history(node, action); }, limit);
  }
  // Publishes (retained) on a node's desired topic with the controller's MQTT identity.
  void publish_desired(const std::string& node, const std::string& payload) {
    fleet::FleetInfo f = *fleet::load_fleet(dir_);
    fleet::MqttOptions o;
    o.host = broker_host_;
    o.port = bport_;
    o.client_id = "test-publisher";
    o.ca_file = f.ca_cert_path();
    o.cert_file = f.controller_cert_path();
    o.key_file = f.controller_key_path();
    auto c = fleet::MqttClient::create(o, fleet::kMaxPayloadBytes);
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE((*c)->connect(10).ok());
    ASSERT_TRUE((*c)->publish(fleet::node_topic("plant", node, fleet::NodeTopic::kDesired), payload, 1, true, 5).ok());
    (*c)->disconnect();
  }
  // A desired state signed with the key at `key_path` (the controller's: DIR/controller/desired-signing.key).
  std::string sign(const fleet::DesiredState& d, const std::string& key_path) {
    auto key = trust::PrivateKey::load(key_path);
    EXPECT_TRUE(key.ok());
    return *fleet::sign_desired(d, *key);
  }
  std::string controller_key() const { return dir_ + "/controller/desired-signing.key"; }

  std::filesystem::path tmp_;
  std::string dir_, ca_sha_;
  int bport_ = 0, cport_ = 0;
  std::unique_ptr<hearth::testing::MosquittoBroker> broker_;
  std::unique_ptr<Proc> controller_;
};

}  // namespace hearth::fleet_test
