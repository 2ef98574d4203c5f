#include "hearth/store/digest.h"

namespace hearth::store {
namespace {

constexpr std::string_view kPrefix = "sha256:";

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

std::string printable(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 80)) {
    unsigned char u = static_cast<unsigned char>(c);
    out += (u >= 0x20 && u < 0x7f) ? c : '?';
  }
  if (s.size() > 80) out += "...";
  return out;
}

}  // namespace

Result<Digest> Digest::parse(std::string_view text) {
  if (text.size() != kPrefix.size() + 64 || text.substr(0, kPrefix.size()) != kPrefix) {
    return make_error(ErrorCode::kInvalidArgument,
                      "bad digest '{}': expected 'sha256:' followed by 64 lowercase hex characters", printable(text));
  }
  for (char c : text.substr(kPrefix.size())) {
    if (hex_value(c) < 0) {
      return make_error(ErrorCode::kInvalidArgument,
                        "bad digest '{}': expected 'sha256:' followed by 64 lowercase hex characters", printable(text));
    }
  }
  Digest d;
  d.text_ = std::string(text);
  return d;
}

Digest Digest::from_raw(const std::array<uint8_t, 32>& raw) {
  Digest d;
  d.text_ = std::string(kPrefix) + to_hex(raw);
  return d;
}

std::array<uint8_t, 32> Digest::raw() const {
  std::array<uint8_t, 32> out{};
  if (!valid()) return out;
  std::string_view h = hex();
  for (size_t i = 0; i < 32; ++i) {
    out[i] = static_cast<uint8_t>(hex_value(h[2 * i]) * 16 + hex_value(h[2 * i + 1]));
  }
  return out;
}

Digest sha256_of(std::span<const std::byte> data) { return Digest::from_raw(hearth::sha256(data)); }

Digest sha256_of(std::string_view data) {
  return sha256_of(std::as_bytes(std::span<const char>(data.data(), data.size())));
}

Result<Digest> sha256_file(const std::string& path, uint64_t* size_out) {
  HEARTH_ASSIGN_OR_RETURN(Sha256Bytes raw, hearth::sha256_file(path, size_out));
  return Digest::from_raw(raw);
}

}  // namespace hearth::store
