// Test support: a real PostgreSQL server (Debian's postgresql package) on a free loopback port,
// made with initdb in a temporary directory and run as a non-root user: when the tests run as
// root, the data directory is given to the `postgres` user (made by the package; else `nobody`)
// and initdb and postgres run as that user (setgid/setuid in the child). Trust authentication
// on 127.0.0.1 only, fsync off (a test server). Stopped (SIGINT: fast shutdown, then SIGKILL)
// and its directory removed by the destructor.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

namespace hearth::testing {

class PostgresServer {
 public:
  // nullptr (with `why` set) when the binaries are missing or the server does not start.
  static std::unique_ptr<PostgresServer> start(std::string* why);
  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  int port() const { return port_; }
  // postgresql://hearth@127.0.0.1:PORT/DB
  std::string url(const std::string& db) const;
  // CREATE DATABASE `name` (letters, digits and _ only); false with `why` set on failure.
  bool create_database(const std::string& name, std::string* why) const;
  const std::string& log_path() const { return log_; }
  const std::string& run_as() const { return user_; }  // "" when not switched (not root)

 private:
  PostgresServer() = default;
  void stop();
  pid_t pid_ = -1;
  int port_ = 0;
  std::string dir_, log_, user_;
};

}  // namespace hearth::testing
