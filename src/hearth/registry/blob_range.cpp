#include "hearth/registry/blob_range.h"

namespace hearth::registry {
namespace {

// Decimal digits only, no sign, no overflow.
std::optional<uint64_t> parse_u64(std::string_view s) {
  if (s.empty() || s.size() > 19) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

}  // namespace

std::optional<ByteRange> parse_byte_range(std::string_view header, uint64_t size) {
  constexpr std::string_view kUnit = "bytes=";
  if (header.size() > 64 || header.substr(0, kUnit.size()) != kUnit || size == 0) return std::nullopt;
  std::string_view spec = header.substr(kUnit.size());
  while (!spec.empty() && spec.front() == ' ') spec.remove_prefix(1);
  while (!spec.empty() && spec.back() == ' ') spec.remove_suffix(1);
  const size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  const std::string_view a = spec.substr(0, dash), b = spec.substr(dash + 1);
  if (a.empty()) {  // suffix: the last n bytes
    const auto n = parse_u64(b);
    if (!n || *n == 0) return std::nullopt;
    return ByteRange{*n >= size ? 0 : size - *n, size - 1};
  }
  const auto first = parse_u64(a);
  if (!first || *first >= size) return std::nullopt;
  if (b.empty()) return ByteRange{*first, size - 1};
  const auto last = parse_u64(b);
  if (!last || *last < *first) return std::nullopt;
  return ByteRange{*first, *last >= size ? size - 1 : *last};
}

}  // namespace hearth::registry
