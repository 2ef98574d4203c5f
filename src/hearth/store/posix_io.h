// Small POSIX I/O helpers for the store: errno to Status (ENOSPC → ResourceExhausted with a
// hint), write-all loops, durable renames.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "hearth/core/status.h"

namespace hearth::store {

Status errno_status(int err, std::string_view what, const std::string& path);
// Writes all bytes (retrying short writes and EINTR).
Status write_all(int fd, const void* data, size_t size, const std::string& path);
// chmod 0444, fsync(fd), rename(from, to), fsync(dir of to): how a blob becomes visible.
Status durable_rename(int fd, const std::string& from, const std::string& to);
// Creates a unique temp file "<dir>/<prefix>XXXXXX"; returns its fd and fills `path`.
Result<int> make_temp_file(const std::string& dir, std::string_view prefix, std::string* path);

}  // namespace hearth::store
