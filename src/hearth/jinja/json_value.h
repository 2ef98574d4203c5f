// The JSON adapter: the one file of the module that sees nlohmann::json. It turns parsed JSON
// (key order kept) into Values for a render Context.
#pragma once

#include <string_view>

#include <nlohmann/json.hpp>

#include "hearth/core/status.h"
#include "hearth/jinja/value.h"

namespace hearth::jinja {

// Objects become dicts in their key order; integers stay ints, other numbers floats.
Value value_from_json(const nlohmann::ordered_json& j);

// Parses JSON text. Errors: invalid_argument naming the byte offset.
Result<Value> parse_json_value(std::string_view text);

}  // namespace hearth::jinja
