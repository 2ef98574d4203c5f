// Minimal POSIX ustar archives for OCI image-layout bundles: a writer of regular files and
// directories, and a streaming reader that refuses anything else (links, devices, bad
// checksums, sizes past the end). Entry names are returned as stored; callers validate them.
// Sizes of 8 GiB and more do not fit ustar's 11 octal digits: they use the base-256 encoding
// (GNU tar, star and libarchive read it: the field's first byte has its high bit set, the
// rest is a big-endian number), so a large model never exports with a wrapped size.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "hearth/core/atomic_file.h"
#include "hearth/core/status.h"

namespace hearth::registry {

// The 512-byte header of one entry (type '0' file, '5' directory); a pure function, so the
// size encodings can be tested without writing the content.
Result<std::string> tar_header(const std::string& name, uint64_t size, char type);

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
// Content the callback leaves unread is skipped with lseek, not read.
Status read_tar(const std::string& path, const std::function<Status(const TarEntry&, TarChunkReader&)>& on_entry);
// The header parser, on one 512-byte block (fuzzed directly). nullopt-like: an all-zero block
// gives an entry with an empty name and `end` set.
struct TarHeader {
  TarEntry entry;
  bool end = false;  // an all-zero block: the end of the archive
};
Result<TarHeader> parse_tar_header(std::string_view block);

}  // namespace hearth::registry
