// MappedFile: a read-only RAII memory mapping of a whole file. Parsers take its bytes() span.
#pragma once

#include <cstddef>
#include <span>
#include <string>

#include "hearth/core/status.h"

namespace hearth {

class MappedFile {
 public:
  MappedFile() = default;
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  // Maps `path` read-only (MAP_PRIVATE). An empty file maps to an empty span.
  static Result<MappedFile> open(const std::string& path);

  std::span<const std::byte> bytes() const { return {static_cast<const std::byte*>(data_), size_}; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // Read-ahead hints for a whole-file scan (hashing), then back to the default for random use.
  void advise_sequential() const;
  void advise_normal() const;

 private:
  void reset();
  void* data_ = nullptr;
  size_t size_ = 0;
  std::string path_;
};

}  // namespace hearth
