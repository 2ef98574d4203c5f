// The one HTTP Range form the registry server serves: a single `bytes=` range, checked against
// the blob's size (RFC 9110 section 14.1.2). Pure, so the hostile cases are unit-testable.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace hearth::registry {

struct ByteRange {
  uint64_t first = 0;
  uint64_t last = 0;  // inclusive; first <= last < size
};

// `bytes=a-b` (b past the end is cut to the end), `bytes=a-` or `bytes=-n` (the last n bytes).
// nullopt, answered with 416, for anything else: several ranges, another unit, a malformed or
// overlong header, a start at or past the end, an empty suffix, any range of an empty blob.
std::optional<ByteRange> parse_byte_range(std::string_view header, uint64_t size);

}  // namespace hearth::registry
