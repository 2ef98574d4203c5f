// SHA-256 of buffers and files: the one hashing adapter (OpenSSL is seen only by sha256.cpp).
// The store wraps it into its "sha256:<hex>" Digest; provenance statements use the hex form.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "hearth/core/status.h"

namespace hearth {

using Sha256Bytes = std::array<uint8_t, 32>;

// Streaming SHA-256. finish() returns the digest and resets the hasher for reuse.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(std::span<const std::byte> data);
  void update(std::string_view data);
  Sha256Bytes finish();

 private:
  void* ctx_ = nullptr;  // EVP_MD_CTX
};

Sha256Bytes sha256(std::span<const std::byte> data);
// Streams a whole file; `size_out` (optional) receives its length.
Result<Sha256Bytes> sha256_file(const std::string& path, uint64_t* size_out = nullptr);

// Lowercase hex.
std::string to_hex(std::span<const uint8_t> bytes);
// 64 lowercase hex characters.
std::string sha256_hex(std::span<const std::byte> data);
Result<std::string> sha256_file_hex(const std::string& path, uint64_t* size_out = nullptr);

}  // namespace hearth
