#include "hearth/jinja/json_value.h"

namespace hearth::jinja {
namespace {

Value convert(const nlohmann::ordered_json& j, int depth) {
  if (depth > 256) return Value::none();
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null:
      return Value::none();
    case nlohmann::ordered_json::value_t::boolean:
      return Value::boolean(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer:
      return Value::integer(j.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned: {
      const uint64_t u = j.get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) return Value::floating(static_cast<double>(u));
      return Value::integer(static_cast<int64_t>(u));
    }
    case nlohmann::ordered_json::value_t::number_float:
      return Value::floating(j.get<double>());
    case nlohmann::ordered_json::value_t::string:
      return Value::string(j.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      List items;
      for (const auto& x : j) items.push_back(convert(x, depth + 1));
      return Value::list(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      Dict d;
      // The parser already made the keys unique, so entries are appended without a search
      // (Dict::set's search would make a large object quadratic).
      d.entries.reserve(j.size());
      for (auto it = j.begin(); it != j.end(); ++it) d.entries.emplace_back(Value::string(it.key()), convert(it.value(), depth + 1));
      return Value::dict(std::move(d));
    }
    default:
      return Value::none();
  }
}

}  // namespace

Value value_from_json(const nlohmann::ordered_json& j) { return convert(j, 0); }

namespace {

// Builds Values straight from the parser's events: linear in the input, where ordered_json's
// object insert searches its keys (quadratic in an object's size).
class ValueBuilder {
 public:
  using json = nlohmann::json;
  bool null() { return put(Value::none()); }
  bool boolean(bool b) { return put(Value::boolean(b)); }
  bool number_integer(json::number_integer_t i) { return put(Value::integer(i)); }
  bool number_unsigned(json::number_unsigned_t u) {
    return put(u > static_cast<uint64_t>(INT64_MAX) ? Value::floating(static_cast<double>(u))
                                                    : Value::integer(static_cast<int64_t>(u)));
  }
  bool number_float(json::number_float_t f, const json::string_t&) { return put(Value::floating(f)); }
  bool string(json::string_t& s) { return put(Value::string(std::move(s))); }
  bool binary(json::binary_t&) { return false; }
  bool start_object(std::size_t) { return open(true); }
  bool key(json::string_t& k) {
    stack_.back().key = std::move(k);
    return true;
  }
  bool end_object() { return close(); }
  bool start_array(std::size_t) { return open(false); }
  bool end_array() { return close(); }
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& e) {
    error_ = make_error(ErrorCode::kInvalidArgument, "invalid JSON at byte {}: {}", position, e.what());
    return false;
  }

  Result<Value> result() {
    if (!error_.ok()) return error_;
    if (!done_) return make_error(ErrorCode::kInvalidArgument, "invalid JSON: nested deeper than 256 levels");
    return std::move(root_);
  }

 private:
  struct Level {
    bool object = false;
    List items;
    Dict dict;
    std::string key;
  };

  bool put(Value v) {
    if (stack_.empty()) {
      root_ = std::move(v);
      done_ = true;
      return true;
    }
    Level& top = stack_.back();
    if (top.object) {
      // Duplicate keys are appended (the first one wins on lookup); no search, so it stays linear.
      top.dict.entries.emplace_back(Value::string(std::move(top.key)), std::move(v));
    } else {
      top.items.push_back(std::move(v));
    }
    return true;
  }
  bool open(bool object) {
    if (stack_.size() >= 256) return false;
    stack_.emplace_back();
    stack_.back().object = object;
    return true;
  }
  bool close() {
    Level top = std::move(stack_.back());
    stack_.pop_back();
    return put(top.object ? Value::dict(std::move(top.dict)) : Value::list(std::move(top.items)));
  }

  std::vector<Level> stack_;
  Value root_;
  bool done_ = false;
  Status error_;
};

}  // namespace

Result<Value> parse_json_value(std::string_view text) {
  ValueBuilder builder;
  try {
    nlohmann::json::sax_parse(text, &builder);
  } catch (const nlohmann::json::exception& e) {
    return make_error(ErrorCode::kInvalidArgument, "invalid JSON: {}", e.what());
  }
  return builder.result();
}

}  // namespace hearth::jinja
