#include "registry_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "hearth/registry/http_client.h"
#include "shared_data.h"

namespace hearth::testing {

int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int port = ntohs(addr.sin_port);
  close(fd);
  return port;
}

bool wait_http(const std::string& url, int seconds) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  registry::HttpClient http;
  while (std::chrono::steady_clock::now() < deadline) {
    registry::HttpRequest req;
    req.url = url + "/v2/";
    req.connect_timeout_seconds = 1;
    if (auto r = http.send(req); r.ok() && r->status > 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

std::unique_ptr<DockerRegistry> DockerRegistry::start(std::string* why) {
  const char* binary = "/usr/bin/docker-registry";
  if (access(binary, X_OK) != 0) {
    *why = "docker-registry is not installed (apt-get install docker-registry; scripts/setup.sh does it)";
    return nullptr;
  }
  std::unique_ptr<DockerRegistry> r(new DockerRegistry());
  r->dir_ = make_temp_dir("hearth-docker-registry");
  int port = free_port();
  r->url_ = "http://127.0.0.1:" + std::to_string(port);
  std::string config = (r->dir_ / "config.yml").string();
  {
    std::ofstream f(config);
    f << "version: 0.1\n"
      << "log:\n  level: error\n  accesslog:\n    disabled: true\n"
      << "storage:\n  filesystem:\n    rootdirectory: " << (r->dir_ / "data").string() << "\n"
      << "  delete:\n    enabled: true\n"
      << "http:\n  addr: 127.0.0.1:" << port << "\n";
  }
  std::string log = (r->dir_ / "registry.log").string();
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    execl(binary, binary, "serve", config.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  r->pid_ = pid;
  if (!wait_http(r->url_, 15)) {
    *why = "docker-registry did not answer on " + r->url_ + " (log: " + log + ")";
    return nullptr;
  }
  return r;
}

DockerRegistry::~DockerRegistry() {
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    int status = 0;
    for (int i = 0; i < 50; ++i) {
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
    }
  }
  std::error_code ec;
  if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
}

}  // namespace hearth::testing
