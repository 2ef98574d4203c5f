// Crash-safe file writes: data goes to a temp file in the target's directory, is fsynced,
// renamed over the target, and the directory is fsynced. A crash leaves the old file or the
// new one, never a mix.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "hearth/core/status.h"

namespace hearth {

class AtomicFileWriter {
 public:
  AtomicFileWriter() = default;
  ~AtomicFileWriter();  // discards (unlinks) the temp file unless commit() succeeded
  AtomicFileWriter(AtomicFileWriter&& other) noexcept;
  AtomicFileWriter& operator=(AtomicFileWriter&& other) noexcept;
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  // Creates "<dir>/.<name>.tmp-XXXXXX" beside `target`.
  static Result<AtomicFileWriter> create(const std::string& target);

  Status write(std::span<const std::byte> data);
  Status write(std::string_view data);
  uint64_t bytes_written() const { return written_; }
  // fsync, rename over the target, fsync the directory.
  Status commit();
  // Drops the temp file.
  void discard();

  const std::string& target() const { return target_; }
  const std::string& temp_path() const { return temp_; }

 private:
  int fd_ = -1;
  std::string target_;
  std::string temp_;
  uint64_t written_ = 0;
};

// One-shot helpers.
Status write_file_atomic(const std::string& path, std::span<const std::byte> data);
Status write_file_atomic(const std::string& path, std::string_view data);
Result<std::string> read_file(const std::string& path, uint64_t max_bytes = UINT64_MAX);
// fsync a directory so that a rename or create inside it is durable.
Status fsync_dir(const std::string& dir);

}  // namespace hearth
