#include "mosquitto_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

namespace hearth::testing {

bool wait_tcp(int port, int seconds, const std::string& host) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
      close(fd);
      return false;
    }
    addr.sin_port = htons(static_cast<uint16_t>(port));
    bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    close(fd);
    if (ok) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

std::unique_ptr<MosquittoBroker> MosquittoBroker::start(const std::string& config, int port, const std::string& log,
                                                        std::string* why, const std::string& host) {
  const char* binary = "/usr/sbin/mosquitto";
  if (access(binary, X_OK) != 0) {
    *why = "mosquitto is not installed (apt-get install mosquitto; scripts/setup.sh does it)";
    return nullptr;
  }
  std::unique_ptr<MosquittoBroker> b(new MosquittoBroker());
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    execl(binary, binary, "-c", config.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  b->pid_ = pid;
  if (!wait_tcp(port, 15, host)) {
    *why = "mosquitto did not open " + host + ":" + std::to_string(port) + " (log: " + log + ")";
    return nullptr;
  }
  return b;
}

void MosquittoBroker::stop() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  int status = 0;
  for (int i = 0; i < 100; ++i) {
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill_hard();
}

void MosquittoBroker::kill_hard() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

MosquittoBroker::~MosquittoBroker() { stop(); }

}  // namespace hearth::testing
