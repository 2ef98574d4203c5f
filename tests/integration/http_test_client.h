// Test support for the HTTP limit tests: a real `hearth serve` child process (stderr kept in a
// file: the access log), raw loopback sockets with bounded waits, and the server's peak RSS.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "shared_data.h"

namespace hearth::http_test {

using Clock = std::chrono::steady_clock;

inline std::string read_text(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

// A connected TCP socket to 127.0.0.1:port, from `source` (another loopback address stands for
// another client); -1 on failure.
inline int connect_to(int port, const char* source = nullptr) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (source != nullptr) {
    sockaddr_in src{};
    src.sin_family = AF_INET;
    inet_pton(AF_INET, source, &src.sin_addr);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0) {
      ::close(fd);
      return -1;
    }
  }
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

inline bool send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// True when `fd` has something to read (data, end of stream or an error) within `ms`.
inline bool readable(int fd, int ms) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, ms) > 0;
}

// Reads until the peer closes, `until` appears (after it, the rest of what is already there),
// or `seconds` pass.
inline std::string recv_for(int fd, double seconds, const std::string& until = "") {
  std::string out;
  const auto deadline =
      Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  char buf[65536];
  while (Clock::now() < deadline) {
    const int left =
        static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count());
    if (!readable(fd, std::max(left, 1))) break;
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (!until.empty() && out.find(until) != std::string::npos) break;
  }
  return out;
}

// Sends a whole request on a new connection and reads the response (the server closes it, or
// the body is complete per Content-Length) for up to `seconds`.
inline std::string exchange(int port, const std::string& request, double seconds = 10) {
  int fd = connect_to(port);
  if (fd < 0) return "";
  std::string out;
  if (send_all(fd, request)) {
    const auto deadline =
        Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
    while (Clock::now() < deadline) {
      out += recv_for(fd, 0.2);
      const size_t head_end = out.find("\r\n\r\n");
      if (head_end != std::string::npos) {
        std::smatch m;
        const std::string head = out.substr(0, head_end);
        if (std::regex_search(head, m, std::regex("[Cc]ontent-[Ll]ength: (\\d+)")) &&
            out.size() >= head_end + 4 + std::stoull(m[1].str())) {
          break;
        }
      }
      char c;
      if (readable(fd, 0) && ::recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) <= 0) break;  // closed by the server
    }
  }
  ::close(fd);
  return out;
}

// "HTTP/1.1 200 OK..." -> 200; 0 when there is no status line.
inline int status_of(const std::string& response) {
  std::smatch m;
  if (!std::regex_search(response, m, std::regex("^HTTP/1\\.[01] (\\d{3})"))) return 0;
  return std::stoi(m[1].str());
}

// VmHWM (peak resident set) of `pid` in MiB; -1 if unreadable.
inline long peak_rss_mib(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6)) / 1024;
  }
  return -1;
}

// `hearth serve` as a child process on a free port (--port 0, read back from the log).
class ServeProcess {
 public:
  // Starts `hearth serve MODEL --port 0 ARGS...`; ok() is false (and log() says why) if it
  // does not serve /health within 60 s.
  // With `tls`, readiness is the "listening on https" line alone (no client TLS here).
  ServeProcess(const std::filesystem::path& model, const std::vector<std::string>& args, bool tls = false) {
    dir_ = hearth::testing::make_temp_dir("hearth-http-test");
    log_path_ = dir_ / "serve.log";
    std::vector<std::string> argv = {HEARTH_CLI_PATH, "serve", model.string(), "--port", "0", "-c", "256"};
    argv.insert(argv.end(), args.begin(), args.end());
    pid_ = spawn(argv, log_path_);
    const auto deadline = Clock::now() + std::chrono::seconds(60);
    std::regex listening("listening on https?://[^\\s]+:(\\d+)");
    while (Clock::now() < deadline && port_ == 0) {
      std::smatch m;
      const std::string text = log();
      if (std::regex_search(text, m, listening)) port_ = std::stoi(m[1].str());
      if (port_ == 0 && exited()) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (tls) {
      healthy_ = port_ != 0 && log().find("model '") != std::string::npos;
      while (port_ != 0 && !healthy_ && Clock::now() < deadline && !exited()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        healthy_ = log().find("model '") != std::string::npos;  // "model '...' loaded"
      }
      return;
    }
    while (Clock::now() < deadline && !healthy_) {
      healthy_ = status_of(exchange(port_, "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 2)) == 200;
      if (!healthy_) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  ~ServeProcess() {
    stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  ServeProcess(const ServeProcess&) = delete;
  ServeProcess& operator=(const ServeProcess&) = delete;

  bool ok() const { return healthy_; }
  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  std::string log() const { return read_text(log_path_); }
  long peak_rss_mib() const { return http_test::peak_rss_mib(pid_); }
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    if (!wait_exit(10)) {
      ::kill(pid_, SIGKILL);
      wait_exit(10);
    }
  }

  // Runs `argv` with stderr (and stdout) into `log`.
  static pid_t spawn(const std::vector<std::string>& argv, const std::filesystem::path& log) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      ::setenv("HEARTH_LOG", "info", 1);
      std::vector<char*> a;
      for (const auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
      a.push_back(nullptr);
      ::execv(a[0], a.data());
      ::_exit(127);
    }
    return pid;
  }
  // Waits up to `seconds` for `pid` to exit; its exit code, or -1 (still running, killed).
  static int wait_exit_code(pid_t pid, int seconds) {
    const auto deadline = Clock::now() + std::chrono::seconds(seconds);
    while (Clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid, &status, WNOHANG) == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return -1;
  }

 private:
  bool exited() {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return true;
    }
    return false;
  }
  bool wait_exit(int seconds) {
    const auto deadline = Clock::now() + std::chrono::seconds(seconds);
    while (Clock::now() < deadline) {
      if (exited()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  std::filesystem::path dir_, log_path_;
  pid_t pid_ = -1;
  int port_ = 0;
  bool healthy_ = false;
};

}  // namespace hearth::http_test
