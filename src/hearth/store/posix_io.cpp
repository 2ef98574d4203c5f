#include "hearth/store/posix_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <vector>

#include "hearth/core/atomic_file.h"

namespace hearth::store {

Status errno_status(int e, std::string_view what, const std::string& path) {
  const bool full = e == ENOSPC || e == EDQUOT || e == EFBIG;
  ErrorCode code = full ? ErrorCode::kResourceExhausted : ErrorCode::kIo;
  if (e == ENOENT) code = ErrorCode::kNotFound;
  if (e == EACCES || e == EPERM || e == EROFS) code = ErrorCode::kPermissionDenied;
  return make_error(
      code, "{}: {}: {}{}", path, what, std::strerror(e),
      full ? " (the disk or file-size limit is full: free space and retry; the store stays consistent)" : "");
}

Status write_all(int fd, const void* data, size_t size, const std::string& path) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::write(fd, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_status(errno, "write failed", path);
    }
    if (n == 0) return errno_status(ENOSPC, "write made no progress", path);
    p += n;
    size -= static_cast<size_t>(n);
  }
  return ok_status();
}

Status durable_rename(int fd, const std::string& from, const std::string& to) {
  // Blobs are immutable: read-only for everyone, so nothing writes through a mapping by mistake.
  ::fchmod(fd, 0444);
  if (::fsync(fd) != 0) return errno_status(errno, "fsync failed", from);
  if (::rename(from.c_str(), to.c_str()) != 0) return errno_status(errno, "rename failed", to);
  std::string dir = std::filesystem::path(to).parent_path().string();
  return fsync_dir(dir.empty() ? "." : dir);
}

Result<int> make_temp_file(const std::string& dir, std::string_view prefix, std::string* path) {
  std::string tmpl = dir + "/" + std::string(prefix) + "XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  int fd = ::mkostemp(buf.data(), O_CLOEXEC);
  if (fd < 0) return errno_status(errno, "cannot create temp file", tmpl);
  *path = buf.data();
  return fd;
}

}  // namespace hearth::store
