// JsonConstraint: an incremental matcher that accepts exactly the byte strings that are a
// prefix of a JSON text valid under a JsonSchema. Constrained decoding asks it, for each
// candidate token, whether the token's bytes keep the output a valid prefix, and masks the
// token otherwise.
//
// The state is a small set of pushdown stacks (several while anyOf / union alternatives are
// still ambiguous), advanced one byte at a time. Whitespace between tokens is limited to
// kMaxWhitespace bytes in a row and numbers to kMaxDigits digits per part, so that every
// generation can still finish.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "hearth/core/status.h"
#include "hearth/engine/json_schema.h"

namespace hearth::engine {

class JsonConstraint {
 public:
  static constexpr int kMaxWhitespace = 2;
  static constexpr int kMaxDigits = 15;
  static constexpr int kMaxKeyLength = 64;
  static constexpr size_t kMaxPaths = 32;

  // Validates node indices. The schema is shared (read-only) between copies.
  static Result<JsonConstraint> create(std::shared_ptr<const JsonSchema> schema);

  // Whether appending `bytes` keeps the text a valid prefix (the state is not changed).
  bool accepts(std::string_view bytes) const;
  // Appends bytes; false (and the state unchanged) if they would make the text invalid.
  bool advance(std::string_view bytes);

  // The text so far is a complete JSON value (generation may stop here).
  bool can_end() const;
  // The value is complete and nothing but whitespace could follow (generation must stop).
  bool must_end() const;
  // No valid continuation exists (never true after only successful advances).
  bool dead() const { return paths_.empty(); }

  struct Frame;
  using Path = std::vector<Frame>;

 private:
  JsonConstraint() = default;
  bool step(const Path& path, unsigned char c, std::vector<Path>& out) const;
  bool feed_all(std::vector<Path>& paths, std::string_view bytes) const;

  std::shared_ptr<const JsonSchema> schema_;
  std::vector<Path> paths_;
};

// One level of the pushdown stack. Public so that the matcher's helpers can be free functions.
struct JsonConstraint::Frame {
  enum class Kind : uint8_t { kTop, kValue, kObject, kArray, kString, kNumber, kLiteral };
  enum class Phase : uint8_t {
    kStart,      // object: after '{'  array: after '['
    kKey,        // object: reading a key
    kColon,      // object: after a key
    kAfterValue, // object/array: after a member
    kNeedKey,    // object: after ','
    kDone,       // top: the value is complete
  };
  Kind kind = Kind::kValue;
  Phase phase = Phase::kStart;
  int node = 0;
  uint8_t ws = 0;             // whitespace bytes in a row
  // string: escape state (0 none, 1 after '\', 2..5 reading \u hex digits)
  // number: grammar state; literal: bytes matched
  int32_t sub = 0;
  int64_t count = 0;          // string: code points; array: items; number: digits in this part
  std::vector<uint8_t> used;  // object: which properties have appeared
  std::string key;            // object: the key being read
  std::vector<int> candidates;// literal: indices of literals still matching (or -1..-3: true/false/null)
  bool integer_only = false;  // number
};

}  // namespace hearth::engine
