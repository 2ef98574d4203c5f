// Filters, tests and global functions: jinja2 3.1's builtins as chat templates use them, plus
// transformers' globals (raise_exception, strftime_now) and its tojson.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <ctime>

#include "hearth/jinja/error.h"
#include "hearth/jinja/interpreter.h"

namespace hearth::jinja {
namespace {

const Value& arg(const CallArgs& a, size_t i, const char* name, const Value& fallback) {
  if (i < a.positional.size()) return a.positional[i];
  for (const auto& [k, v] : a.keyword) {
    if (k == name) return v;
  }
  return fallback;
}

const Value kNoneV = Value::none();
const Value kUndefV;
const Value kFalseV = Value::boolean(false);

// The positional arguments from index `from` on (for filters and tests that pass them along).
CallArgs tail(const CallArgs& a, size_t from) {
  CallArgs t;
  for (size_t i = from; i < a.positional.size(); ++i) t.positional.push_back(a.positional[i]);
  t.keyword = a.keyword;
  return t;
}

// Compares for sort/min/max/dictsort: case-insensitive on strings unless asked.
bool sort_less(const Value& a, const Value& b, bool case_sensitive, int line) {
  if (!case_sensitive && a.is_string() && b.is_string()) return ascii_lower(a.str()) < ascii_lower(b.str());
  bool ok = true;
  const bool r = value_less(a, b, ok);
  if (!ok) {
    fail(line, "TypeError: '<' not supported between instances of '" + std::string(a.type_name()) + "' and '" +
                   std::string(b.type_name()) + "'");
  }
  return r;
}

// jinja2's make_attrgetter: "a.b.0" looks up a, then b, then item 0 (digits are indices).
Value attribute_path(Interpreter& in, const Value& item, const Value& attribute, int line) {
  if (!attribute.is_string()) return in.get_item(item, attribute, line);
  const std::string& path = attribute.str();
  Value cur = item;
  size_t p = 0;
  for (;;) {
    const size_t d = path.find('.', p);
    const std::string part = path.substr(p, d == std::string::npos ? std::string::npos : d - p);
    const bool digits = !part.empty() && part.size() < 18 &&
                        std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
    cur = in.get_item(cur, digits ? Value::integer(std::atoll(part.c_str())) : Value::string(part), line);
    if (d == std::string::npos) return cur;
    p = d + 1;
  }
}

std::string indent_text(const std::string& s, const Value& width, bool first, bool blank) {
  const std::string ind = width.is_string() ? width.str() : std::string(static_cast<size_t>(std::clamp<int64_t>(width.as_int(), 0, 1024)), ' ');
  std::string text = s + "\n";
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\n' || text[i] == '\r') {
      lines.push_back(text.substr(start, i - start));
      if (text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      start = i + 1;
    }
  }
  if (start < text.size()) lines.push_back(text.substr(start));
  std::string rv;
  if (blank) {
    for (size_t i = 0; i < lines.size(); ++i) {
      if (i) rv += "\n" + ind;
      rv += lines[i];
    }
  } else {
    rv = lines.empty() ? "" : lines[0];
    if (lines.size() > 1) {
      rv += "\n";
      for (size_t i = 1; i < lines.size(); ++i) {
        if (i > 1) rv += "\n";
        if (!lines[i].empty()) rv += ind;
        rv += lines[i];
      }
    }
  }
  if (first) rv = ind + rv;
  return rv;
}

}  // namespace

void Interpreter::install_globals() {
  auto add = [this](const std::string& name, std::function<Value(const CallArgs&, int)> fn) {
    auto c = std::make_shared<Callable>();
    c->name = name;
    c->call = std::move(fn);
    root_.vars[name] = Value::callable(c);
  };
  add("raise_exception", [](const CallArgs& a, int line) -> Value {
    const std::string msg = a.positional.empty() ? std::string() : a.positional[0].to_str();
    throw TemplateError{line, msg, ErrorKind::kRaised};
  });
  add("namespace", [this](const CallArgs& a, int line) {
    Dict d;
    for (const Value& p : a.positional) {
      if (!p.is_dict()) fail(line, "TypeError: namespace() takes a mapping");
      for (const auto& [k, v] : p.entries().entries) {
        charge(d.entries.size() / 16, line);  // each set searches the keys so far
        d.set(k, v);
      }
    }
    for (const auto& [k, v] : a.keyword) d.set(k, v);
    return Value::new_namespace(std::move(d));
  });
  add("dict", [](const CallArgs& a, int) {
    Dict d;
    for (const auto& [k, v] : a.keyword) d.set(k, v);
    return Value::dict(std::move(d));
  });
  add("range", [this](const CallArgs& a, int line) {
    int64_t start = 0, stop = 0, stp = 1;
    for (const Value& v : a.positional) {
      if (v.kind() != Kind::kInt && v.kind() != Kind::kBool) fail(line, "TypeError: range() takes integers");
    }
    if (a.positional.size() == 1) {
      stop = a.positional[0].as_int();
    } else if (a.positional.size() >= 2) {
      start = a.positional[0].as_int();
      stop = a.positional[1].as_int();
      if (a.positional.size() >= 3) stp = a.positional[2].as_int();
    } else {
      fail(line, "TypeError: range expected at least 1 argument");
    }
    if (stp == 0) fail(line, "ValueError: range() arg 3 must not be zero");
    List out;
    for (int64_t i = start; stp > 0 ? i < stop : i > stop;) {
      out.push_back(Value::integer(i));
      if (out.size() > limits_.max_list_items) {
        throw TemplateError{line, "range() exceeds the list size limit", ErrorKind::kResource};
      }
      step(line);
      if (__builtin_add_overflow(i, stp, &i)) break;
    }
    return Value::list(std::move(out));
  });
  add("strftime_now", [this](const CallArgs& a, int line) {
    const std::string fmt = a.positional.empty() ? std::string() : a.positional[0].to_str();
    std::tm tm{};
    if (ctx_.now) {
      tm = *ctx_.now;
    } else {
      const std::time_t t = std::time(nullptr);
      localtime_r(&t, &tm);
    }
    if (fmt.empty()) return Value::string("");
    if (fmt.size() > 4096) fail(line, "strftime_now: format too long");
    std::string buf(fmt.size() * 64 + 64, '\0');
    const size_t n = std::strftime(buf.data(), buf.size(), fmt.c_str(), &tm);
    buf.resize(n);
    return Value::string(buf);
  });
}

bool Interpreter::apply_test(const std::string& name, const Value& v, const CallArgs& a, int line) {
  const Value& x = arg(a, 0, "value", kUndefV);
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.is_none();
  if (name == "string") return v.is_string();
  if (name == "mapping") return v.is_dict();
  if (name == "iterable") return v.is_undefined() || v.is_string() || v.is_list() || v.is_dict();
  if (name == "sequence") return v.is_undefined() || v.is_string() || (v.is_list() && !v.is_generator()) || v.is_dict();
  if (name == "number") return v.is_number();
  if (name == "integer") return v.kind() == Kind::kInt;
  if (name == "float") return v.kind() == Kind::kFloat;
  if (name == "boolean") return v.kind() == Kind::kBool;
  if (name == "true") return v.kind() == Kind::kBool && v.as_bool();
  if (name == "false") return v.kind() == Kind::kBool && !v.as_bool();
  if (name == "callable") return v.kind() == Kind::kCallable;
  if (name == "lower") return v.is_string() && ascii_lower(v.str()) == v.str();
  if (name == "upper") return v.is_string() && ascii_upper(v.str()) == v.str();
  if (name == "escaped") return false;
  if (name == "eq" || name == "equalto" || name == "==") return values_equal(v, x);
  if (name == "ne" || name == "!=") return !values_equal(v, x);
  if (name == "sameas") return values_equal(v, x) && v.kind() == x.kind();
  if (name == "in") return contains(x, v, line);
  if (name == "lt" || name == "lessthan" || name == "<" || name == "gt" || name == "greaterthan" || name == ">" ||
      name == "le" || name == "<=" || name == "ge" || name == ">=") {
    if (v.is_undefined() || x.is_undefined()) fail_undefined(line, "comparison with an undefined value");
    bool ok = true;
    bool r;
    if (name == "lt" || name == "lessthan" || name == "<") {
      r = value_less(v, x, ok);
    } else if (name == "gt" || name == "greaterthan" || name == ">") {
      r = value_less(x, v, ok);
    } else if (name == "le" || name == "<=") {
      r = !value_less(x, v, ok);
    } else {
      r = !value_less(v, x, ok);
    }
    if (!ok) fail(line, "TypeError: comparison between '" + std::string(v.type_name()) + "' and '" + std::string(x.type_name()) + "'");
    return r;
  }
  if (name == "odd" || name == "even" || name == "divisibleby") {
    if (v.is_undefined()) fail_undefined(line, "test of an undefined value");
    if (!v.is_number()) fail(line, "TypeError: test '" + name + "' needs a number");
    if (name == "divisibleby") {
      if (!x.is_number() || x.as_int() == 0) fail(line, "ZeroDivisionError: divisibleby 0");
      return x.as_int() == -1 || v.as_int() % x.as_int() == 0;
    }
    return (v.as_int() % 2 != 0) == (name == "odd");
  }
  if (name == "filter" || name == "test") return v.is_string();
  fail(line, "TemplateRuntimeError: no test named '" + name + "'");
}

Value Interpreter::apply_filter(const std::string& name, const Value& v, const CallArgs& a, int line) {
  step(line);
  if (name == "tojson") {
    const Value& ensure_ascii = arg(a, 0, "ensure_ascii", kFalseV);
    const Value& indent = arg(a, 1, "indent", kNoneV);
    const Value& separators = arg(a, 2, "separators", kNoneV);
    const Value& sort_keys = arg(a, 3, "sort_keys", kFalseV);
    const bool pretty = !indent.is_none() && !indent.is_undefined();
    std::string item_sep = pretty ? "," : ", ", key_sep = ": ";
    if (separators.is_list() && separators.items().size() == 2) {
      item_sep = separators.items()[0].to_str();
      key_sep = separators.items()[1].to_str();
    }
    std::string s = to_json(v, indent, ensure_ascii.truthy(), sort_keys.truthy(), item_sep, key_sep, line, limits_.max_output_bytes);
    check_size(s.size(), line);
    return Value::string(std::move(s));
  }
  if (name == "length" || name == "count") return Value::integer(static_cast<int64_t>(python_len(v, line)));
  if (name == "string") return v.is_string() ? v : Value::string(v.to_str());
  if (name == "safe" || name == "e" || name == "escape" || name == "forceescape") {
    if (name == "safe" || v.is_markup()) return Value::markup(v.to_str());
    return Value::markup(html_escape(v.to_str()));
  }
  if (name == "trim") return Value::string(py_strip(v.to_str(), arg(a, 0, "chars", kNoneV), true, true));
  if (name == "upper") return Value::string(ascii_upper(v.to_str()));
  if (name == "lower") return Value::string(ascii_lower(v.to_str()));
  if (name == "capitalize") {
    std::string s = ascii_lower(v.to_str());
    if (!s.empty() && s[0] >= 'a' && s[0] <= 'z') s[0] = static_cast<char>(s[0] - 'a' + 'A');
    return Value::string(s);
  }
  if (name == "title") {
    // jinja2's do_title (not str.title): words begin after runs of '-', whitespace, '(', '{',
    // '[' or '<'; each word's first character goes upper case and the rest lower case.
    const std::string s = v.to_str();
    std::string out;
    bool at_start = true;
    for (char c : s) {
      const bool sep = c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || c == ' ' || (c >= '\t' && c <= '\r');
      if (sep) {
        out += c;
        at_start = true;
      } else {
        const std::string one(1, c);
        out += at_start ? ascii_upper(one) : ascii_lower(one);
        at_start = false;
      }
    }
    return Value::string(std::move(out));
  }
  if (name == "replace") {
    CallArgs m;
    m.positional = {arg(a, 0, "old", kNoneV), arg(a, 1, "new", kNoneV)};
    const Value& count = arg(a, 2, "count", kNoneV);
    if (!count.is_none()) m.positional.push_back(count);
    bool found = false;
    return call_method(Value::string(v.to_str()), "replace", m, line, found);
  }
  if (name == "default" || name == "d") {
    const bool boolean = arg(a, 1, "boolean", kFalseV).truthy();
    if (v.is_undefined() || (boolean && !v.truthy())) {
      const Value& def = arg(a, 0, "default_value", kUndefV);
      return def.is_undefined() ? Value::string("") : def;
    }
    return v;
  }
  if (name == "join") {
    const Value& attribute = arg(a, 1, "attribute", kNoneV);
    const std::string sep = arg(a, 0, "d", kUndefV).to_str();
    std::string out;
    bool first = true;
    for (const Value& item : iterate(v, line)) {
      if (!first) out += sep;
      first = false;
      out += (attribute.is_none() ? item : attribute_path(*this, item, attribute, line)).to_str();
      check_size(out.size(), line);
    }
    return Value::string(std::move(out));
  }
  if (name == "list") return Value::list(iterate(v, line));
  if (name == "first") {
    std::vector<Value> items = iterate(v, line);
    return items.empty() ? Value() : items.front();
  }
  if (name == "last") {
    if (v.is_generator()) return Value();
    std::vector<Value> items = iterate(v, line);
    return items.empty() ? Value() : items.back();
  }
  if (name == "reverse") {
    if (v.is_string()) {
      const std::string& s = v.str();
      const std::vector<uint32_t> off = utf8_offsets(s);
      std::string out;
      for (size_t i = off.size() - 1; i > 0; --i) out.append(s, off[i - 1], off[i] - off[i - 1]);
      return Value::string(out);
    }
    std::vector<Value> items = iterate(v, line);
    std::reverse(items.begin(), items.end());
    return Value::list(std::move(items), false, true);
  }
  if (name == "items") {
    if (v.is_undefined()) return Value::list({}, false, true);
    if (!v.is_dict()) fail(line, "TypeError: can only get item pairs from a mapping");
    List out;
    for (const auto& [k, x] : v.entries().entries) out.push_back(Value::list({k, x}, true));
    return Value::list(std::move(out), false, true);
  }
  if (name == "dictsort") {
    if (!v.is_dict()) fail(line, "TypeError: dictsort needs a mapping");
    const bool cs = arg(a, 0, "case_sensitive", kFalseV).truthy();
    const Value& by = arg(a, 1, "by", kUndefV);
    const bool by_value = by.is_string() && by.str() == "value";
    const bool rev = arg(a, 2, "reverse", kFalseV).truthy();
    List out;
    for (const auto& [k, x] : v.entries().entries) out.push_back(Value::list({k, x}, true));
    std::stable_sort(out.begin(), out.end(), [&](const Value& p, const Value& q) {
      const size_t i = by_value ? 1 : 0;
      return rev ? sort_less(q.items()[i], p.items()[i], cs, line) : sort_less(p.items()[i], q.items()[i], cs, line);
    });
    return Value::list(std::move(out));
  }
  if (name == "sort" || name == "unique" || name == "min" || name == "max") {
    const bool cs = arg(a, name == "sort" ? 1 : 0, "case_sensitive", kFalseV).truthy();
    const Value& attribute = arg(a, name == "sort" ? 2 : 1, "attribute", kNoneV);
    const bool rev = name == "sort" && arg(a, 0, "reverse", kFalseV).truthy();
    std::vector<std::string> attrs;
    if (attribute.is_string()) {
      std::string s = attribute.str();
      size_t p = 0;
      for (;;) {
        const size_t c = s.find(',', p);
        attrs.push_back(s.substr(p, c == std::string::npos ? std::string::npos : c - p));
        if (c == std::string::npos) break;
        p = c + 1;
      }
    } else if (attribute.kind() == Kind::kInt) {
      attrs.push_back(attribute.to_str());
    }
    auto key = [&](const Value& item, const std::string& path) { return attribute_path(*this, item, Value::string(path), line); };
    std::vector<Value> items = iterate(v, line);
    auto less = [&](const Value& p, const Value& q) {
      if (attrs.empty()) return sort_less(p, q, cs, line);
      for (const auto& at : attrs) {
        Value kp = key(p, at), kq = key(q, at);
        if (sort_less(kp, kq, cs, line)) return true;
        if (sort_less(kq, kp, cs, line)) return false;
      }
      return false;
    };
    charge(items.size() * 32, line);
    if (name == "sort") {
      std::stable_sort(items.begin(), items.end(), [&](const Value& p, const Value& q) { return rev ? less(q, p) : less(p, q); });
      return Value::list(std::move(items));
    }
    if (name == "unique") {
      List out;
      std::vector<Value> seen;
      for (const Value& item : items) {
        Value k = attrs.empty() ? item : key(item, attrs[0]);
        if (!cs && k.is_string()) k = Value::string(ascii_lower(k.str()));
        bool dup = false;
        charge(seen.size(), line);
        for (const Value& s : seen) dup = dup || values_equal(s, k);
        if (!dup) {
          seen.push_back(k);
          out.push_back(item);
        }
      }
      return Value::list(std::move(out), false, true);
    }
    if (items.empty()) return Value();
    Value best = items[0];
    for (size_t i = 1; i < items.size(); ++i) {
      if (name == "min" ? less(items[i], best) : less(best, items[i])) best = items[i];
    }
    return best;
  }
  if (name == "map" || name == "select" || name == "reject" || name == "selectattr" || name == "rejectattr") {
    // jinja2 iterates only a truthy value here, so None gives an empty result.
    std::vector<Value> items = v.truthy() ? iterate(v, line) : std::vector<Value>{};
    List out;
    if (name == "map") {
      const Value* attribute = nullptr;
      for (const auto& [k, x] : a.keyword) {
        if (k == "attribute") attribute = &x;
      }
      if (attribute) {
        // map(attribute='a.b', default=x): keyword arguments only.
        const Value* def = nullptr;
        for (const auto& [k, x] : a.keyword) {
          if (k == "default") def = &x;
        }
        for (const Value& item : items) {
          Value r = attribute_path(*this, item, *attribute, line);
          out.push_back(r.is_undefined() && def ? *def : r);
        }
      } else {
        if (a.positional.empty() || !a.positional[0].is_string()) fail(line, "TypeError: map() needs a filter name");
        CallArgs rest = tail(a, 1);
        for (const Value& item : items) out.push_back(apply_filter(a.positional[0].str(), item, rest, line));
      }
      return Value::list(std::move(out), false, true);
    }
    const bool by_attr = name == "selectattr" || name == "rejectattr";
    const bool keep_when = name == "select" || name == "selectattr";
    size_t off = 0;
    Value attribute;
    if (by_attr) {
      if (a.positional.empty()) fail(line, "TypeError: " + name + "() needs an attribute");
      attribute = a.positional[0];
      off = 1;
    }
    const bool has_test = a.positional.size() > off;
    CallArgs test_args = tail(a, off + 1);
    for (const Value& item : items) {
      step(line);
      Value subject = by_attr ? attribute_path(*this, item, attribute, line) : item;
      const bool r = has_test ? apply_test(a.positional[off].to_str(), subject, test_args, line) : subject.truthy();
      if (r == keep_when) out.push_back(item);
    }
    return Value::list(std::move(out), false, true);
  }
  if (name == "indent") {
    static const Value kFour = Value::integer(4);
    const std::string text = v.to_str();
    const Value& width = arg(a, 0, "width", kFour);
    const size_t per_line = width.is_string() ? width.str().size() : static_cast<size_t>(std::clamp<int64_t>(width.as_int(), 0, 1024));
    const size_t lines = static_cast<size_t>(std::count_if(text.begin(), text.end(), [](char c) { return c == '\n' || c == '\r'; })) + 1;
    check_size(text.size() + lines * per_line, line);  // before building it
    return Value::string(indent_text(text, width, arg(a, 1, "first", kFalseV).truthy(),
                                     arg(a, 2, "blank", kFalseV).truthy()));
  }
  if (name == "int") {
    const Value& def = arg(a, 0, "default", Value::integer(0));
    if (v.kind() == Kind::kInt || v.kind() == Kind::kBool) return Value::integer(v.as_int());
    if (v.kind() == Kind::kFloat) return std::isfinite(v.as_float()) ? Value::integer(v.as_int()) : def;
    if (v.is_string()) {
      const std::string s = py_strip(v.str(), kNoneV, true, true);
      char* end = nullptr;
      const long long n = std::strtoll(s.c_str(), &end, 10);
      if (!s.empty() && end && *end == '\0') return Value::integer(n);
      const double f = std::strtod(s.c_str(), &end);
      if (!s.empty() && end && *end == '\0' && std::isfinite(f) && std::fabs(f) < 9e18) return Value::integer(static_cast<int64_t>(f));
    }
    return def;
  }
  if (name == "float") {
    const Value& def = arg(a, 0, "default", Value::floating(0));
    if (v.is_number()) return Value::floating(v.as_float());
    if (v.is_string()) {
      const std::string s = py_strip(v.str(), kNoneV, true, true);
      char* end = nullptr;
      const double f = std::strtod(s.c_str(), &end);
      if (!s.empty() && end && *end == '\0') return Value::floating(f);
    }
    return def;
  }
  if (name == "abs") {
    if (v.kind() == Kind::kFloat) return Value::floating(std::fabs(v.as_float()));
    if (v.is_number() && v.as_int() != INT64_MIN) return Value::integer(v.as_int() < 0 ? -v.as_int() : v.as_int());
    fail(line, "TypeError: bad operand type for abs()");
  }
  if (name == "round") {
    if (!v.is_number()) fail(line, "TypeError: round() needs a number");
    const int64_t precision = std::clamp<int64_t>(arg(a, 0, "precision", Value::integer(0)).as_int(), -20, 20);
    const std::string method = arg(a, 1, "method", Value::string("common")).to_str();
    const double scale = std::pow(10.0, static_cast<double>(precision));
    double x = v.as_float() * scale;
    x = method == "ceil" ? std::ceil(x) : method == "floor" ? std::floor(x) : std::nearbyint(x);
    return Value::floating(x / scale);
  }
  if (name == "sum") {
    Value total = arg(a, 1, "start", Value::integer(0));
    const Value& attribute = arg(a, 0, "attribute", kNoneV);
    for (const Value& item : iterate(v, line)) {
      total = binary_op("+", total, attribute.is_none() ? item : attribute_path(*this, item, attribute, line), line, limits_);
    }
    return total;
  }
  if (name == "wordcount") {
    bool found = false;
    return Value::integer(static_cast<int64_t>(call_method(Value::string(v.to_str()), "split", {}, line, found).items().size()));
  }
  if (name == "format") {
    // jinja2: value % (kwargs or args)
    if (!a.positional.empty() && !a.keyword.empty()) fail(line, "FilterArgumentError: can't handle positional and keyword arguments at the same time");
    Value args;
    if (!a.keyword.empty()) {
      Dict d;
      for (const auto& [k, x] : a.keyword) d.set(k, x);
      args = Value::dict(std::move(d));
    } else {
      args = Value::list(a.positional, /*tuple=*/true);
    }
    std::string out = printf_format(v.to_str(), args, line, limits_.max_output_bytes);
    check_size(out.size(), line);
    return Value::string(std::move(out));
  }
  if (name == "attr") return get_attr(v, arg(a, 0, "name", kNoneV).to_str(), line);
  if (name == "batch" || name == "slice") fail(line, "filter '" + name + "' is not supported");
  fail(line, "TemplateRuntimeError: no filter named '" + name + "'");
}

}  // namespace hearth::jinja
