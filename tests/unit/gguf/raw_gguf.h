// RawGguf: a raw little-endian byte writer for handcrafting GGUF files, valid or corrupt, in tests.
// It writes exactly what it is told (no validation), so tests can build any malformation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

namespace hearth::gguf::testing {

class RawGguf {
 public:
  template <typename T>
  RawGguf& put(T v) {
    const auto* p = reinterpret_cast<const std::byte*>(&v);
    bytes_.insert(bytes_.end(), p, p + sizeof(T));
    return *this;
  }
  RawGguf& u8(uint8_t v) { return put(v); }
  RawGguf& u32(uint32_t v) { return put(v); }
  RawGguf& u64(uint64_t v) { return put(v); }
  RawGguf& raw(std::string_view s) {
    for (char c : s) bytes_.push_back(static_cast<std::byte>(c));
    return *this;
  }
  // A GGUF string: u64 length, then the bytes.
  RawGguf& str(std::string_view s) { return u64(s.size()).raw(s); }
  RawGguf& zeros(uint64_t n) {
    bytes_.resize(bytes_.size() + n, std::byte{0});
    return *this;
  }
  // Zero padding up to a multiple of `align`.
  RawGguf& pad(uint64_t align) {
    while (bytes_.size() % align != 0) bytes_.push_back(std::byte{0});
    return *this;
  }

  // "GGUF", version, n_tensors, n_kv.
  RawGguf& header(uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    return raw("GGUF").u32(version).u64(n_tensors).u64(n_kv);
  }
  // Key and value type id; the caller writes the value.
  RawGguf& key(std::string_view k, uint32_t type) { return str(k).u32(type); }
  RawGguf& kv_u32(std::string_view k, uint32_t v) { return key(k, 4).u32(v); }
  RawGguf& kv_str(std::string_view k, std::string_view v) { return key(k, 8).str(v); }
  // A tensor info: name, n_dims, ne[], type id, offset.
  RawGguf& tensor(std::string_view name, std::vector<uint64_t> ne, uint32_t type, uint64_t offset) {
    str(name).u32(static_cast<uint32_t>(ne.size()));
    for (uint64_t d : ne) u64(d);
    return u32(type).u64(offset);
  }

  size_t size() const { return bytes_.size(); }
  RawGguf& truncate(size_t n) {
    bytes_.resize(n);
    return *this;
  }
  std::vector<std::byte> bytes() const { return bytes_; }

 private:
  std::vector<std::byte> bytes_;
};

}  // namespace hearth::gguf::testing
