// Content digests: "sha256:" plus 64 lowercase hex characters. Every digest that comes from
// outside (a registry, a manifest, a file name, a command line) is parsed here before it may
// reach a path, so a digest can never name anything but a blob. The hashing is core's
// (hearth/core/sha256.h).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "hearth/core/sha256.h"
#include "hearth/core/status.h"

namespace hearth::store {

class Digest {
 public:
  Digest() = default;  // empty: not a valid digest (valid() is false)

  // Strict: "sha256:" + exactly 64 characters of [0-9a-f]. Anything else is InvalidArgument.
  static Result<Digest> parse(std::string_view text);
  static Digest from_raw(const std::array<uint8_t, 32>& raw);

  bool valid() const { return !text_.empty(); }
  const std::string& str() const { return text_; }
  std::string_view hex() const { return std::string_view(text_).substr(7); }
  std::array<uint8_t, 32> raw() const;

  friend bool operator==(const Digest& a, const Digest& b) { return a.text_ == b.text_; }
  friend bool operator<(const Digest& a, const Digest& b) { return a.text_ < b.text_; }

 private:
  std::string text_;
};

// Streaming SHA-256 that finishes into a Digest.
class Sha256 {
 public:
  void update(std::span<const std::byte> data) { h_.update(data); }
  void update(std::string_view data) { h_.update(data); }
  Digest finish() { return Digest::from_raw(h_.finish()); }

 private:
  hearth::Sha256 h_;
};

Digest sha256_of(std::span<const std::byte> data);
Digest sha256_of(std::string_view data);

// Hashes a whole file; `size_out` (optional) receives its length.
Result<Digest> sha256_file(const std::string& path, uint64_t* size_out = nullptr);

}  // namespace hearth::store
