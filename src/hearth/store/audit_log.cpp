#include "hearth/store/audit_log.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <ctime>
#include <nlohmann/json.hpp>

#include "hearth/store/posix_io.h"

namespace hearth::store {
namespace {

std::string utc_now() {
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

}  // namespace

std::string audit_log_path(const std::string& home) { return home + "/audit.log"; }

Status append_audit(const std::string& home, const AuditEvent& e) {
  nlohmann::json j;
  j["time"] = utc_now();
  j["event"] = e.event;
  j["outcome"] = e.outcome;
  if (!e.ref.empty()) j["ref"] = e.ref;
  if (!e.digest.empty()) j["digest"] = e.digest;
  if (!e.publisher.empty()) j["publisher"] = e.publisher;
  if (!e.detail.empty()) j["detail"] = e.detail;
  j["pid"] = static_cast<int>(::getpid());
  std::string line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  std::string path = audit_log_path(home);
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return errno_status(errno, "cannot open audit log", path);
  ::flock(fd, LOCK_EX);
  Status st = write_all(fd, line.data(), line.size(), path);
  if (st.ok() && ::fsync(fd) != 0) st = errno_status(errno, "fsync failed", path);
  ::flock(fd, LOCK_UN);
  ::close(fd);
  return st;
}

}  // namespace hearth::store
