// JsonConstraint: an incremental matcher that accepts exactly the byte strings that are a
// prefix of a JSON text valid under a JsonSchema. Constrained decoding asks it, for each
// candidate token, whether the token's bytes keep the output a valid prefix, and masks the
// token otherwise.
//
// The state is a small set of pushdown stacks (several while anyOf / union alternatives are
// still ambiguous), advanced one byte at a time. Whitespace between tokens is limited to
// kMaxWhitespace bytes in a row and numbers to kMaxDigits digits per part, so that every
// generation can still finish.
//
// Work is bounded three ways. At creation, every anyOf / $ref chain is flattened once into at
// most kMaxAlternatives concrete alternatives (cycles contribute nothing; a union that flattens
// to nothing is refused). While matching, at most kMaxPaths stacks are kept. And every matcher
// step is counted against a budget (WorkBudget): the caller resets the per-token count before
// masking a token, and a request that spends its budget gets over_budget() instead of
// stalling the scheduler.
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
  static constexpr size_t kMaxAlternatives = 64;

  using WorkBudget = JsonWorkBudget;

  // Validates node indices and flattens the alternatives (errors: kInvalidArgument, naming the
  // budget that was exceeded). The schema is shared (read-only) between copies; its `budget`
  // bounds the matcher's work.
  static Result<JsonConstraint> create(std::shared_ptr<const JsonSchema> schema);

  // Starts counting the work of the next token.
  void reset_token_work() { token_work_ = 0; }
  // The budget ran out: accepts() and advance() return false from then on.
  bool over_budget() const { return token_work_ > budget_.per_token || total_work_ > budget_.total; }
  uint64_t token_work() const { return token_work_; }
  uint64_t total_work() const { return total_work_; }
  const WorkBudget& budget() const { return budget_; }

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
  void charge(uint64_t units) const {
    token_work_ += units;
    total_work_ += units;
  }

  std::shared_ptr<const JsonSchema> schema_;
  // alternatives_[i]: the concrete (non-union) nodes node i stands for.
  std::shared_ptr<const std::vector<std::vector<int>>> alternatives_;
  std::vector<Path> paths_;
  WorkBudget budget_;
  // Counters, not state: accepts() is logically const but its work is charged.
  mutable uint64_t token_work_ = 0;
  mutable uint64_t total_work_ = 0;
};

// One level of the pushdown stack. Public so that the matcher's helpers can be free functions.
struct JsonConstraint::Frame {
  enum class Kind : uint8_t { kTop, kValue, kObject, kArray, kString, kNumber, kLiteral };
  enum class Phase : uint8_t {
    kStart,       // object: after '{'  array: after '['
    kKey,         // object: reading a key
    kColon,       // object: after a key
    kAfterValue,  // object/array: after a member
    kNeedKey,     // object: after ','
    kDone,        // top: the value is complete
  };
  Kind kind = Kind::kValue;
  Phase phase = Phase::kStart;
  int node = 0;
  uint8_t ws = 0;  // whitespace bytes in a row
  // string: escape state (0 none, 1 after '\', 2..5 reading \u hex digits)
  // number: grammar state; literal: bytes matched
  int32_t sub = 0;
  int64_t count = 0;            // string: code points; array: items; number: digits in this part
  std::vector<uint8_t> used;    // object: which properties have appeared
  std::string key;              // object: the key being read
  std::vector<int> candidates;  // literal: indices of literals still matching (or -1..-3: true/false/null)
  bool integer_only = false;    // number
};

}  // namespace hearth::engine
