// Test support: a real Mosquitto broker started with the configuration that `hearth fleet
// init` wrote, stopped (SIGTERM, then SIGKILL) by the destructor or by stop().
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

namespace hearth::testing {

class MosquittoBroker {
 public:
  // nullptr (with `why` set) when the binary is missing or the port does not open within 15 s.
  // `host`: the IPv4 address the configuration listens on.
  static std::unique_ptr<MosquittoBroker> start(const std::string& config, int port, const std::string& log,
                                                std::string* why, const std::string& host = "127.0.0.1");
  ~MosquittoBroker();
  void stop();
  // SIGKILL: the broker vanishes without sending anything, as in a crash or power loss.
  void kill_hard();
  bool running() const { return pid_ > 0; }

 private:
  MosquittoBroker() = default;
  pid_t pid_ = -1;
};

// True once host:port (IPv4) accepts a TCP connection (up to `seconds`).
bool wait_tcp(int port, int seconds, const std::string& host = "127.0.0.1");

}  // namespace hearth::testing
