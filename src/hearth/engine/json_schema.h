// JsonSchema: the subset of JSON Schema that constrained decoding enforces, as plain data.
// The server converts a request's schema (JSON text) into this form; the engine never parses
// JSON itself. Supported: type (one or several), enum / const, properties, required,
// additionalProperties (true/false/schema), items, minItems / maxItems, minLength / maxLength,
// anyOf / oneOf. The server refuses keywords outside this subset (or skips them when a request
// opts in to best effort), so nothing here is weakened silently.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace hearth::engine {

namespace json_type {
inline constexpr uint32_t kNull = 1u << 0;
inline constexpr uint32_t kBoolean = 1u << 1;
inline constexpr uint32_t kInteger = 1u << 2;
inline constexpr uint32_t kNumber = 1u << 3;  // implies integer
inline constexpr uint32_t kString = 1u << 4;
inline constexpr uint32_t kArray = 1u << 5;
inline constexpr uint32_t kObject = 1u << 6;
inline constexpr uint32_t kAny = 0x7f;
}  // namespace json_type

struct JsonSchemaNode {
  uint32_t types = json_type::kAny;
  std::vector<std::string> literals;  // enum/const values as compact JSON text; non-empty: only these
  std::vector<int> any_of;            // alternatives (node indices); non-empty: the node is their union
  // Objects. When properties are listed and additionalProperties is absent or false, only the
  // listed keys may appear (keys are matched as written, without escapes).
  std::vector<std::pair<std::string, int>> properties;  // key -> node index
  std::vector<std::string> required;
  bool additional_properties = true;
  int additional_schema = 0;  // node for extra keys' values (0: any)
  // Arrays.
  int items = 0;  // node index (0: any)
  int64_t min_items = 0, max_items = -1;
  // Strings (length in code points; an escape counts as one).
  int64_t min_length = 0, max_length = -1;
};

// The matcher's work budget, in units of one step, one alternative tried or one enum literal
// compared (see JsonConstraint). The per-token part bounds how long one token's mask can stall
// the scheduler; the total bounds a whole generation.
struct JsonWorkBudget {
  uint64_t per_token = uint64_t{1} << 22;  // between two JsonConstraint::reset_token_work() calls
  uint64_t total = uint64_t{1} << 28;      // over the whole generation
};

struct JsonSchema {
  // nodes[0] is always the unconstrained "any value" node.
  std::vector<JsonSchemaNode> nodes{JsonSchemaNode{}};
  int root = 0;
  JsonWorkBudget budget;  // the server keeps the defaults; tests lower them

  // A schema for `response_format: json_object`: any JSON object.
  static JsonSchema any_object() {
    JsonSchema s;
    JsonSchemaNode n;
    n.types = json_type::kObject;
    s.nodes.push_back(n);
    s.root = 1;
    return s;
  }
};

}  // namespace hearth::engine
