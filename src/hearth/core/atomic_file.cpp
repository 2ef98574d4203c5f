#include "hearth/core/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <vector>

namespace hearth {
namespace {

Status errno_status(int e, std::string_view what, const std::string& path) {
  ErrorCode code = ErrorCode::kIo;
  if (e == ENOSPC || e == EDQUOT) code = ErrorCode::kResourceExhausted;
  if (e == ENOENT) code = ErrorCode::kNotFound;
  if (e == EACCES || e == EPERM || e == EROFS) code = ErrorCode::kPermissionDenied;
  return make_error(code, "{}: {}: {}{}", path, what, std::strerror(e),
                    e == ENOSPC ? " (free some disk space and retry)" : "");
}

std::string parent_dir(const std::string& path) {
  std::filesystem::path p(path);
  auto parent = p.parent_path();
  return parent.empty() ? std::string(".") : parent.string();
}

}  // namespace

AtomicFileWriter::~AtomicFileWriter() { discard(); }

AtomicFileWriter::AtomicFileWriter(AtomicFileWriter&& o) noexcept
    : fd_(o.fd_), target_(std::move(o.target_)), temp_(std::move(o.temp_)), written_(o.written_) {
  o.fd_ = -1;
  o.temp_.clear();
}

AtomicFileWriter& AtomicFileWriter::operator=(AtomicFileWriter&& o) noexcept {
  if (this != &o) {
    discard();
    fd_ = o.fd_;
    target_ = std::move(o.target_);
    temp_ = std::move(o.temp_);
    written_ = o.written_;
    o.fd_ = -1;
    o.temp_.clear();
  }
  return *this;
}

Result<AtomicFileWriter> AtomicFileWriter::create(const std::string& target) {
  std::filesystem::path p(target);
  std::string dir = parent_dir(target);
  std::string tmpl = dir + "/." + p.filename().string() + ".tmp-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  int fd = mkostemp(buf.data(), O_CLOEXEC);
  if (fd < 0) return errno_status(errno, "cannot create temp file", target);
  // mkostemp creates 0600; give the final file the mode a plain create would (0666 & ~umask).
  const mode_t mask = umask(0);
  umask(mask);
  if (fchmod(fd, 0666 & ~mask) != 0) {
    int e = errno;
    ::close(fd);
    ::unlink(buf.data());
    return errno_status(e, "cannot set the mode of the temp file", target);
  }
  AtomicFileWriter w;
  w.fd_ = fd;
  w.target_ = target;
  w.temp_ = buf.data();
  return w;
}

Status AtomicFileWriter::write(std::span<const std::byte> data) {
  if (fd_ < 0) return make_error(ErrorCode::kFailedPrecondition, "{}: writer is closed", target_);
  const std::byte* p = data.data();
  size_t left = data.size();
  while (left > 0) {
    ssize_t n = ::write(fd_, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_status(errno, "write failed", target_);
    }
    if (n == 0) return errno_status(ENOSPC, "write failed", target_);
    p += n;
    left -= static_cast<size_t>(n);
    written_ += static_cast<uint64_t>(n);
  }
  return ok_status();
}

Status AtomicFileWriter::write(std::string_view data) {
  return write(std::as_bytes(std::span<const char>(data.data(), data.size())));
}

Status AtomicFileWriter::commit() {
  if (fd_ < 0) return make_error(ErrorCode::kFailedPrecondition, "{}: writer is closed", target_);
  if (::fsync(fd_) != 0) return errno_status(errno, "fsync failed", target_);
  if (::close(fd_) != 0) {
    fd_ = -1;
    return errno_status(errno, "close failed", target_);
  }
  fd_ = -1;
  if (::rename(temp_.c_str(), target_.c_str()) != 0) return errno_status(errno, "rename failed", target_);
  temp_.clear();
  return fsync_dir(parent_dir(target_));
}

void AtomicFileWriter::discard() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  if (!temp_.empty()) {
    ::unlink(temp_.c_str());
    temp_.clear();
  }
}

Status write_file_atomic(const std::string& path, std::span<const std::byte> data) {
  HEARTH_ASSIGN_OR_RETURN(AtomicFileWriter w, AtomicFileWriter::create(path));
  HEARTH_TRY(w.write(data));
  return w.commit();
}

Status write_file_atomic(const std::string& path, std::string_view data) {
  return write_file_atomic(path, std::as_bytes(std::span<const char>(data.data(), data.size())));
}

Result<std::string> read_file(const std::string& path, uint64_t max_bytes) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno_status(errno, "cannot open", path);
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      return errno_status(e, "read failed", path);
    }
    if (n == 0) break;
    if (out.size() + static_cast<size_t>(n) > max_bytes) {
      ::close(fd);
      return make_error(ErrorCode::kResourceExhausted, "{}: file is larger than the limit of {} bytes", path,
                        max_bytes);
    }
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

Status fsync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno_status(errno, "cannot open directory", dir);
  int rc = ::fsync(fd);
  int e = errno;
  ::close(fd);
  if (rc != 0 && e != EINVAL) return errno_status(e, "directory fsync failed", dir);
  return ok_status();
}

}  // namespace hearth
