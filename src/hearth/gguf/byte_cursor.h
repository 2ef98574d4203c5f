// ByteCursor: bounds-checked little-endian reads over an untrusted byte span (GGUF internals).
// Every read checks the bytes remaining first and reports failure instead of reading past the end.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>

namespace hearth::gguf {

static_assert(std::endian::native == std::endian::little, "hearth reads GGUF on little-endian hosts");

class ByteCursor {
 public:
  explicit ByteCursor(std::span<const std::byte> bytes) : bytes_(bytes) {}

  uint64_t pos() const { return pos_; }
  uint64_t size() const { return bytes_.size(); }
  uint64_t remaining() const { return bytes_.size() - pos_; }

  // Reads a trivially copyable value; false (cursor unchanged) when too few bytes remain.
  template <typename T>
  bool read(T& out) {
    static_assert(std::is_trivially_copyable_v<T>);
    if (remaining() < sizeof(T)) return false;
    std::memcpy(&out, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }

  // Takes the next n bytes as a view; false when fewer than n remain.
  bool take(uint64_t n, std::span<const std::byte>& out) {
    if (n > remaining()) return false;
    out = bytes_.subspan(static_cast<size_t>(pos_), static_cast<size_t>(n));
    pos_ += n;
    return true;
  }

  // A view of bytes [from, pos()), for spans of already-validated input.
  std::span<const std::byte> since(uint64_t from) const {
    return bytes_.subspan(static_cast<size_t>(from), static_cast<size_t>(pos_ - from));
  }

 private:
  std::span<const std::byte> bytes_;
  uint64_t pos_ = 0;
};

}  // namespace hearth::gguf
