// Python's operators and protocols on Values: + - * / // % ** ~, `in`, iter() and len().
#include <cmath>
#include <limits>

#include "hearth/jinja/error.h"
#include "hearth/jinja/interpreter.h"

namespace hearth::jinja {
namespace {

[[noreturn]] void unsupported(const std::string& op, const Value& a, const Value& b, int line) {
  fail(line, "TypeError: unsupported operand type(s) for " + op + ": '" + std::string(a.type_name()) + "' and '" +
                 std::string(b.type_name()) + "'");
}

bool is_intlike(const Value& v) { return v.kind() == Kind::kInt || v.kind() == Kind::kBool; }

Value repeat(const Value& seq, int64_t n, int line, const Limits& limits) {
  const size_t unit = seq.is_string() ? seq.str().size() : seq.items().size();
  if (n <= 0 || unit == 0) return seq.is_string() ? Value::string("") : Value::list({}, seq.is_tuple());
  const size_t cap = seq.is_string() ? limits.max_output_bytes : limits.max_list_items;
  if (unit != 0 && static_cast<uint64_t>(n) > cap / unit) {
    throw TemplateError{line, "repetition result exceeds the size limit", ErrorKind::kResource};
  }
  if (seq.is_string()) {
    std::string out;
    out.reserve(unit * static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) out += seq.str();
    return Value::string(std::move(out));
  }
  List out;
  for (int64_t i = 0; i < n; ++i) out.insert(out.end(), seq.items().begin(), seq.items().end());
  return Value::list(std::move(out), seq.is_tuple());
}

double py_fmod(double a, double b) {
  double m = std::fmod(a, b);
  if (m != 0 && ((m < 0) != (b < 0))) m += b;
  return m;
}

}  // namespace

Value binary_op(const std::string& op, const Value& a, const Value& b, int line, const Limits& limits) {
  if (op == "~") {
    std::string s = a.to_str() + b.to_str();
    if (s.size() > limits.max_output_bytes) throw TemplateError{line, "string exceeds the size limit", ErrorKind::kResource};
    return Value::string(std::move(s));
  }
  if (a.is_undefined() || b.is_undefined()) fail_undefined(line, "operand of '" + op + "' is undefined");
  if (a.is_number() && b.is_number()) {
    const bool ints = is_intlike(a) && is_intlike(b);
    const int64_t x = a.as_int(), y = b.as_int();
    const double fx = a.as_float(), fy = b.as_float();
    int64_t r = 0;
    if (op == "+") {
      if (ints && !__builtin_add_overflow(x, y, &r)) return Value::integer(r);
      if (ints) fail(line, "integer overflow in '+'");
      return Value::floating(fx + fy);
    }
    if (op == "-") {
      if (ints && !__builtin_sub_overflow(x, y, &r)) return Value::integer(r);
      if (ints) fail(line, "integer overflow in '-'");
      return Value::floating(fx - fy);
    }
    if (op == "*") {
      if (ints && !__builtin_mul_overflow(x, y, &r)) return Value::integer(r);
      if (ints) fail(line, "integer overflow in '*'");
      return Value::floating(fx * fy);
    }
    if (op == "/") {
      if (fy == 0) fail(line, "ZeroDivisionError: division by zero");
      return Value::floating(fx / fy);
    }
    if (op == "//" || op == "%") {
      if (fy == 0) fail(line, "ZeroDivisionError: integer division or modulo by zero");
      if (ints) {
        if (x == std::numeric_limits<int64_t>::min() && y == -1) fail(line, "integer overflow in '" + op + "'");
        int64_t q = x / y, m = x % y;
        if (m != 0 && ((m < 0) != (y < 0))) {
          --q;
          m += y;
        }
        return Value::integer(op == "//" ? q : m);
      }
      if (op == "%") return Value::floating(py_fmod(fx, fy));
      return Value::floating(std::floor(fx / fy));
    }
    if (op == "**") {
      if (ints && y >= 0) {
        if (x == 0) return Value::integer(y == 0 ? 1 : 0);
        if (x == 1) return Value::integer(1);
        if (x == -1) return Value::integer(y % 2 ? -1 : 1);
        int64_t acc = 1;
        for (int64_t i = 0; i < y; ++i) {  // |x| >= 2 overflows within 64 rounds
          if (__builtin_mul_overflow(acc, x, &acc)) fail(line, "integer overflow in '**'");
        }
        return Value::integer(acc);
      }
      return Value::floating(std::pow(fx, fy));
    }
  }
  if (op == "+") {
    if (a.is_string() && b.is_string()) {
      if (a.str().size() + b.str().size() > limits.max_output_bytes) {
        throw TemplateError{line, "string exceeds the size limit", ErrorKind::kResource};
      }
      if (a.is_markup() || b.is_markup()) {
        // MarkupSafe: the plain side is HTML-escaped.
        return Value::markup((a.is_markup() ? a.str() : html_escape(a.str())) +
                             (b.is_markup() ? b.str() : html_escape(b.str())));
      }
      return Value::string(a.str() + b.str());
    }
    if (a.is_list() && b.is_list() && !a.is_generator() && !b.is_generator()) {
      if (a.items().size() + b.items().size() > limits.max_list_items) {
        throw TemplateError{line, "list exceeds the size limit", ErrorKind::kResource};
      }
      List out = a.items();
      out.insert(out.end(), b.items().begin(), b.items().end());
      return Value::list(std::move(out), a.is_tuple());
    }
    if (a.is_string()) fail(line, "TypeError: can only concatenate str (not \"" + std::string(b.type_name()) + "\") to str");
    unsupported(op, a, b, line);
  }
  if (op == "*") {
    if ((a.is_string() || (a.is_list() && !a.is_generator())) && is_intlike(b)) return repeat(a, b.as_int(), line, limits);
    if ((b.is_string() || (b.is_list() && !b.is_generator())) && is_intlike(a)) return repeat(b, a.as_int(), line, limits);
  }
  if (op == "%" && a.is_string()) {
    std::string s = printf_format(a.str(), b, line, limits.max_output_bytes);
    if (s.size() > limits.max_output_bytes) throw TemplateError{line, "string exceeds the size limit", ErrorKind::kResource};
    return Value::string(std::move(s));
  }
  unsupported(op, a, b, line);
}

namespace {

size_t utf8_seq_len(std::string_view s, size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
  if (i + n > s.size()) return 1;
  for (size_t k = 1; k < n; ++k) {
    if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return 1;
  }
  return n;
}

}  // namespace

std::vector<uint32_t> utf8_offsets(std::string_view s) {
  std::vector<uint32_t> out;
  size_t i = 0;
  while (i < s.size()) {
    out.push_back(static_cast<uint32_t>(i));
    i += utf8_seq_len(s, i);
  }
  out.push_back(static_cast<uint32_t>(s.size()));
  return out;
}

size_t utf8_count(std::string_view s) {
  size_t n = 0;
  for (size_t i = 0; i < s.size(); i += utf8_seq_len(s, i)) ++n;
  return n;
}

std::vector<Value> iterate(const Value& v, int line) {
  switch (v.kind()) {
    case Kind::kUndefined:
      return {};
    case Kind::kList:
      return v.items();
    case Kind::kDict: {
      std::vector<Value> keys;
      for (const auto& [k, _] : v.entries().entries) keys.push_back(k);
      return keys;
    }
    case Kind::kString: {
      // Each character becomes a Value of its own, so a long string is refused here.
      if (v.str().size() > (1u << 20)) {
        throw TemplateError{line, "iterating a string of more than 1 MiB is not supported", ErrorKind::kResource};
      }
      const std::vector<uint32_t> off = utf8_offsets(v.str());
      std::vector<Value> chars;
      for (size_t i = 0; i + 1 < off.size(); ++i) chars.push_back(Value::string(v.str().substr(off[i], off[i + 1] - off[i])));
      return chars;
    }
    default:
      fail(line, "TypeError: '" + std::string(v.type_name()) + "' object is not iterable");
  }
}

size_t python_len(const Value& v, int line) {
  switch (v.kind()) {
    case Kind::kUndefined:
      return 0;
    case Kind::kString:
      return utf8_count(v.str());
    case Kind::kList:
      if (v.is_generator()) fail(line, "TypeError: object of type 'generator' has no len()");
      return v.items().size();
    case Kind::kDict:
      return v.entries().entries.size();
    default:
      fail(line, "TypeError: object of type '" + std::string(v.type_name()) + "' has no len()");
  }
}

bool contains(const Value& container, const Value& item, int line) {
  switch (container.kind()) {
    case Kind::kUndefined:
      return false;
    case Kind::kString:
      if (item.is_undefined()) fail_undefined(line, "'in' with an undefined value");
      if (!item.is_string()) {
        fail(line, "TypeError: 'in <string>' requires string as left operand, not " + std::string(item.type_name()));
      }
      return container.str().find(item.str()) != std::string::npos;
    case Kind::kList:
      for (const Value& x : container.items()) {
        if (values_equal(x, item)) return true;
      }
      return false;
    case Kind::kDict:
      return container.entries().find(item) != nullptr;
    default:
      fail(line, "TypeError: argument of type '" + std::string(container.type_name()) + "' is not iterable");
  }
}

}  // namespace hearth::jinja
