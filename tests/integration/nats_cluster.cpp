#include "nats_cluster.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "mosquitto_process.h"
#include "registry_process.h"

namespace hearth::testing {

std::unique_ptr<NatsCluster> NatsCluster::start(const fleet::FleetInfo& fleet, const std::vector<int>& mqtt_ports,
                                                const std::vector<std::string>& node_ids, const std::string& dir,
                                                std::string* why) {
  if (access(kBinary, X_OK) != 0) {
    *why = "nats-server is not installed (apt-get install nats-server; scripts/setup.sh does it)";
    return nullptr;
  }
  std::unique_ptr<NatsCluster> c(new NatsCluster());
  c->fleet_ = fleet;
  std::vector<int> cluster_ports;
  for (size_t i = 0; i < mqtt_ports.size(); ++i) cluster_ports.push_back(free_port());
  for (size_t i = 0; i < mqtt_ports.size(); ++i) {
    Server s;
    s.options.name = "n" + std::to_string(i + 1);
    s.options.mqtt_port = mqtt_ports[i];
    s.options.cluster_port = cluster_ports[i];
    s.options.monitor_port = free_port();
    for (size_t j = 0; j < mqtt_ports.size(); ++j)
      if (j != i) s.options.routes.push_back("127.0.0.1:" + std::to_string(cluster_ports[j]));
    s.options.store_dir = dir + "/" + s.options.name + "/js";
    s.options.replicas = static_cast<int>(std::min<size_t>(3, mqtt_ports.size()));
    std::filesystem::create_directories(s.options.store_dir);
    s.conf = dir + "/" + s.options.name + ".conf";
    s.log = dir + "/" + s.options.name + ".log";
    c->servers_.push_back(std::move(s));
  }
  if (!c->write_configs(node_ids)) {
    *why = "cannot write the nats-server configurations in " + dir;
    return nullptr;
  }
  for (auto& s : c->servers_) {
    pid_t pid = fork();
    if (pid == 0) {
      int fd = open(s.log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      dup2(fd, 1);
      dup2(fd, 2);
      execl(kBinary, kBinary, "-c", s.conf.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    s.pid = pid;
  }
  // Healthy: every server's MQTT port open and JetStream (meta leader elected) ready.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(45);
  for (size_t i = 0; i < c->servers_.size(); ++i) {
    for (;;) {
      std::string h = c->monitor(i, "/healthz");
      if (h.find("\"ok\"") != std::string::npos && wait_tcp(c->mqtt_port(i), 1)) break;
      if (std::chrono::steady_clock::now() > deadline) {
        *why = "nats-server " + c->servers_[i].options.name + " is not healthy after 45 s (last /healthz: '" + h +
               "'; log: " + c->servers_[i].log + ")";
        return nullptr;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }
  return c;
}

bool NatsCluster::write_configs(const std::vector<std::string>& node_ids) {
  for (const auto& s : servers_) {
    std::ofstream f(s.conf + ".tmp");
    f << fleet::nats_server_conf(fleet_, s.options, node_ids);
    f.close();
    if (!f || std::rename((s.conf + ".tmp").c_str(), s.conf.c_str()) != 0) return false;
  }
  return true;
}

bool NatsCluster::allow_nodes(const std::vector<std::string>& node_ids) {
  if (!write_configs(node_ids)) return false;
  for (const auto& s : servers_)
    if (s.pid > 0) ::kill(s.pid, SIGHUP);
  return true;
}

std::string NatsCluster::monitor(size_t i, const std::string& path) const {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return {};
  timeval tv{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(servers_[i].options.monitor_port));
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  std::string out;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    std::string req = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
      char buf[4096];
      ssize_t n;
      while ((n = recv(fd, buf, sizeof buf, 0)) > 0 && out.size() < (4u << 20)) out.append(buf, static_cast<size_t>(n));
    }
  }
  close(fd);
  size_t body = out.find("\r\n\r\n");
  return body == std::string::npos ? std::string() : out.substr(body + 4);
}

void NatsCluster::kill_hard(size_t i) {
  Server& s = servers_[i];
  if (s.pid <= 0) return;
  ::kill(s.pid, SIGKILL);
  waitpid(s.pid, nullptr, 0);
  s.pid = -1;
}

NatsCluster::~NatsCluster() {
  for (auto& s : servers_)
    if (s.pid > 0) ::kill(s.pid, SIGTERM);
  for (auto& s : servers_) {
    if (s.pid <= 0) continue;
    bool gone = false;
    for (int k = 0; k < 100 && !gone; ++k) {
      gone = waitpid(s.pid, nullptr, WNOHANG) == s.pid;
      if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (!gone) {
      ::kill(s.pid, SIGKILL);
      waitpid(s.pid, nullptr, 0);
    }
    s.pid = -1;
  }
}

}  // namespace hearth::testing
