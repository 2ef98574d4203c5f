// Test support: a real docker-registry (Debian package docker-registry, distribution 2.8) on
// 127.0.0.1 with a temp config and filesystem storage, stopped by the destructor.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <memory>
#include <string>

namespace hearth::testing {

class DockerRegistry {
 public:
  // nullptr (with `why` set) when the binary is missing or does not come up.
  static std::unique_ptr<DockerRegistry> start(std::string* why);
  ~DockerRegistry();
  const std::string& url() const { return url_; }

 private:
  DockerRegistry() = default;
  pid_t pid_ = -1;
  std::filesystem::path dir_;
  std::string url_;
};

// A free TCP port on 127.0.0.1 (bind to 0, read it back, close).
int free_port();
// Waits until GET url + "/v2/" answers (any HTTP status), up to `seconds`.
bool wait_http(const std::string& url, int seconds);

}  // namespace hearth::testing
