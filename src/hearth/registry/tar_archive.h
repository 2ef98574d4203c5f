// Minimal POSIX ustar archives for OCI image-layout bundles: a writer of regular files and
// directories, and a streaming reader that refuses anything else (links, devices, bad
// checksums, sizes past the end). Entry names are returned as stored; callers validate them.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "hearth/core/atomic_file.h"
#include "hearth/core/status.h"

namespace hearth::registry {

class TarWriter {
 public:
  explicit TarWriter(AtomicFileWriter& out) : out_(out) {}
  Status add_directory(const std::string& name);
  Status add_bytes(const std::string& name, std::string_view bytes);
  Status add_file(const std::string& name, const std::string& path, uint64_t size);
  // Two zero blocks.
  Status finish();

 private:
  Status header(const std::string& name, uint64_t size, char type);
  Status pad(uint64_t size);
  AtomicFileWriter& out_;
};

struct TarEntry {
  std::string name;
  uint64_t size = 0;
  bool is_directory = false;
};

// Calls `on_entry` for each entry with a reader that yields its content in chunks (returns
// an empty view at the end). Unread content is skipped.
using TarChunkReader = std::function<Result<std::string_view>()>;
Status read_tar(const std::string& path, const std::function<Status(const TarEntry&, TarChunkReader&)>& on_entry);

}  // namespace hearth::registry
