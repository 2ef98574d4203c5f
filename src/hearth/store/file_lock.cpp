#include "hearth/store/file_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "hearth/core/log.h"

namespace hearth::store {
namespace {

Result<int> open_lock_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return make_error(ErrorCode::kIo, "{}: cannot open lock file: {}", path, std::strerror(errno));
  return fd;
}

int flock_op(FileLock::Mode mode) { return mode == FileLock::Mode::kShared ? LOCK_SH : LOCK_EX; }

}  // namespace

FileLock::~FileLock() { release(); }

FileLock::FileLock(FileLock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }

FileLock& FileLock::operator=(FileLock&& o) noexcept {
  if (this != &o) {
    release();
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}

void FileLock::release() {
  if (fd_ >= 0) {
    ::flock(fd_, LOCK_UN);
    ::close(fd_);
    fd_ = -1;
  }
}

Result<FileLock> FileLock::acquire(const std::string& path, Mode mode, const char* waiting_note) {
  HEARTH_ASSIGN_OR_RETURN(int fd, open_lock_file(path));
  if (::flock(fd, flock_op(mode) | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK) {
      int e = errno;
      ::close(fd);
      return make_error(ErrorCode::kIo, "{}: flock failed: {}", path, std::strerror(e));
    }
    if (waiting_note != nullptr) log::warn("{}", waiting_note);
    while (::flock(fd, flock_op(mode)) != 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      return make_error(ErrorCode::kIo, "{}: flock failed: {}", path, std::strerror(e));
    }
  }
  FileLock lock;
  lock.fd_ = fd;
  return lock;
}

Result<FileLock> FileLock::try_acquire(const std::string& path, Mode mode) {
  HEARTH_ASSIGN_OR_RETURN(int fd, open_lock_file(path));
  if (::flock(fd, flock_op(mode) | LOCK_NB) != 0) {
    int e = errno;
    ::close(fd);
    if (e == EWOULDBLOCK) {
      return make_error(ErrorCode::kFailedPrecondition, "{}: held by another hearth process", path);
    }
    return make_error(ErrorCode::kIo, "{}: flock failed: {}", path, std::strerror(e));
  }
  FileLock lock;
  lock.fd_ = fd;
  return lock;
}

}  // namespace hearth::store
