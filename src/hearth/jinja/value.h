// Values of hearth's Jinja interpreter: Python's object model cut down to what chat templates
// use (undefined, None, bool, int, float, str, list/tuple, dict with insertion order, namespace,
// callables), with Python's printing (str/repr), truthiness, equality and ordering.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hearth::jinja {

class Value;
struct Dict;
struct Callable;
using List = std::vector<Value>;

enum class Kind : uint8_t { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kDict, kNamespace, kCallable };

class Value {
 public:
  Value() = default;  // undefined
  static Value none();
  static Value boolean(bool b);
  static Value integer(int64_t i);
  static Value floating(double f);
  static Value string(std::string s);
  // MarkupSafe's Markup (from |safe or |escape): `markup + str` escapes the str.
  static Value markup(std::string s);
  // `tuple` prints as (a, b); `generator` marks the lazy results of map/select/... that
  // jinja2 gives as generators (truthy, no len(), not JSON-serializable).
  static Value list(List items, bool tuple = false, bool generator = false);
  static Value dict(Dict d);
  static Value new_namespace(Dict d);
  static Value callable(std::shared_ptr<const Callable> fn);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::kUndefined; }
  bool is_none() const { return kind_ == Kind::kNone; }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_list() const { return kind_ == Kind::kList; }
  bool is_dict() const { return kind_ == Kind::kDict; }
  bool is_number() const { return kind_ == Kind::kInt || kind_ == Kind::kFloat || kind_ == Kind::kBool; }
  bool is_tuple() const { return tuple_; }
  bool is_generator() const { return generator_; }
  bool is_markup() const { return markup_; }
  // Nesting of lists/dicts (a scalar is 0), and whether a namespace is inside: the interpreter
  // refuses to store a too-deep value or a namespace into a namespace (no cycles).
  uint32_t depth() const { return depth_; }
  bool holds_namespace() const { return holds_namespace_; }
  // The object a namespace or callable is (Python's `is`).
  const void* identity() const { return dict_ ? static_cast<const void*>(dict_.get()) : static_cast<const void*>(fn_.get()); }

  bool as_bool() const { return b_; }
  // A float is truncated toward zero, saturating at the int64 range (NaN gives 0).
  int64_t as_int() const { return kind_ == Kind::kFloat ? float_to_int(f_) : i_; }
  double as_float() const { return kind_ == Kind::kFloat ? f_ : static_cast<double>(i_); }
  const std::string& str() const { return *s_; }
  const List& items() const { return *list_; }
  const Dict& entries() const { return *dict_; }
  Dict& namespace_entries() const { return *dict_; }  // a namespace is the one mutable object
  const Callable& fn() const { return *fn_; }

  bool truthy() const;
  static int64_t float_to_int(double f) {
    if (!(f == f)) return 0;
    if (f >= 9223372036854775807.0) return INT64_MAX;
    if (f <= -9223372036854775808.0) return INT64_MIN;
    return static_cast<int64_t>(f);
  }
  // Python's str(): what {{ x }} prints. Undefined prints as "".
  // Printing stops early once the text passes `limit` bytes (a list can share one big string a
  // million times); the caller's size check then fails.
  std::string to_str(size_t limit = kPrintLimit) const;
  // Python's repr(): 'text' quoted, as inside a printed list or dict.
  std::string repr(size_t limit = kPrintLimit) const;
  static constexpr size_t kPrintLimit = 64u << 20;
  // A short type name for error messages ("str", "dict", "NoneType", ...).
  std::string_view type_name() const;

 private:
  Kind kind_ = Kind::kUndefined;
  bool b_ = false;
  bool tuple_ = false;
  bool generator_ = false;
  bool markup_ = false;
  bool holds_namespace_ = false;
  uint32_t depth_ = 0;
  int64_t i_ = 0;
  double f_ = 0;
  std::shared_ptr<const std::string> s_;
  std::shared_ptr<const List> list_;
  std::shared_ptr<Dict> dict_;
  std::shared_ptr<const Callable> fn_;
};

// A dict keeps insertion order. Keys are any hashable Value (JSON objects give strings; a
// template's literal may use ints), compared with Python's ==.
struct Dict {
  std::vector<std::pair<Value, Value>> entries;
  const Value* find(std::string_view key) const;
  const Value* find(const Value& key) const;
  void set(Value key, Value v);  // replaces in place, or appends
  void set(std::string_view key, Value v) { set(Value::string(std::string(key)), std::move(v)); }
};

// The arguments of a call: f(a, b, key=c).
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
};

// A global function or a macro. `call` throws the interpreter's error on failure.
struct Callable {
  std::string name;
  std::function<Value(const CallArgs& args, int line)> call;
};

// Python's ==, and Python's < (false with `ok` cleared when the types do not order).
bool values_equal(const Value& a, const Value& b);
bool value_less(const Value& a, const Value& b, bool& ok);

// Python's repr(float): the shortest text that reads back as the same double.
std::string format_python_float(double f);
// Python's repr(str).
std::string python_repr_string(std::string_view s);

}  // namespace hearth::jinja
