// Methods called on values, as Python has them: str.strip/split/startswith/..., dict.get/items/
// keys/values, list.index/count. The mutating ones (list.append, dict.update, ...) are refused,
// as jinja2's ImmutableSandboxedEnvironment refuses them.
#include <algorithm>

#include "hearth/jinja/error.h"
#include "hearth/jinja/interpreter.h"

namespace hearth::jinja {
namespace {

bool is_py_space(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f); }

// Python's str.isspace beyond ASCII: U+0085, U+00A0, U+1680, U+2000..U+200A, U+2028, U+2029,
// U+202F, U+205F, U+3000. Returns the byte length of the whitespace character at s[i], or 0.
size_t space_at(std::string_view s, size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) return is_py_space(c) ? 1 : 0;
  auto b = [&](size_t k) { return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0; };
  if (c == 0xC2 && (b(1) == 0x85 || b(1) == 0xA0)) return 2;
  if (c == 0xE1 && b(1) == 0x9A && b(2) == 0x80) return 3;
  if (c == 0xE2 && b(1) == 0x80 && ((b(2) >= 0x80 && b(2) <= 0x8A) || b(2) == 0xA8 || b(2) == 0xA9 || b(2) == 0xAF)) return 3;
  if (c == 0xE2 && b(1) == 0x81 && b(2) == 0x9F) return 3;
  if (c == 0xE3 && b(1) == 0x80 && b(2) == 0x80) return 3;
  return 0;
}

// The byte length of a whitespace character ending at s[e - 1], or 0.
size_t space_before(std::string_view s, size_t e) {
  for (size_t n = 1; n <= 3 && n <= e; ++n) {
    if (space_at(s, e - n) == n) return n;
  }
  return 0;
}

const Value& arg(const CallArgs& a, size_t i, const char* name, const Value& fallback) {
  if (i < a.positional.size()) return a.positional[i];
  for (const auto& [k, v] : a.keyword) {
    if (k == name) return v;
  }
  return fallback;
}

std::string need_str(const Value& v, const std::string& method, int line) {
  if (!v.is_string()) {
    fail(line, "TypeError: " + method + "() argument must be str, not " + std::string(v.type_name()));
  }
  return v.str();
}

bool starts_or_ends(const std::string& s, const Value& what, bool start, const std::string& method, int line) {
  auto test = [&](const std::string& p) {
    if (p.size() > s.size()) return false;
    return start ? s.compare(0, p.size(), p) == 0 : s.compare(s.size() - p.size(), p.size(), p) == 0;
  };
  if (what.is_list() && what.is_tuple()) {
    for (const Value& p : what.items()) {
      if (test(need_str(p, method, line))) return true;
    }
    return false;
  }
  return test(need_str(what, method, line));
}

std::vector<std::string> py_split(const std::string& s, const Value& sep, int64_t maxsplit, int line) {
  std::vector<std::string> out;
  if (sep.is_none() || sep.is_undefined()) {
    size_t i = 0;
    while (i < s.size()) {
      while (i < s.size() && space_at(s, i)) i += space_at(s, i);
      if (i >= s.size()) break;
      if (maxsplit >= 0 && static_cast<int64_t>(out.size()) >= maxsplit) {
        size_t e = s.size();
        while (e > i && space_before(s, e)) e -= space_before(s, e);
        out.push_back(s.substr(i, e - i));
        return out;
      }
      size_t j = i;
      while (j < s.size() && !space_at(s, j)) ++j;
      out.push_back(s.substr(i, j - i));
      i = j;
    }
    return out;
  }
  const std::string d = need_str(sep, "split", line);
  if (d.empty()) fail(line, "ValueError: empty separator");
  size_t start = 0;
  for (;;) {
    if (maxsplit >= 0 && static_cast<int64_t>(out.size()) >= maxsplit) break;
    const size_t p = s.find(d, start);
    if (p == std::string::npos) break;
    out.push_back(s.substr(start, p - start));
    start = p + d.size();
  }
  out.push_back(s.substr(start));
  return out;
}

std::string py_replace(const std::string& s, const std::string& from, const std::string& to, int64_t count, int line,
                       const Limits& limits) {
  std::string out;
  if (from.empty()) {
    // Python inserts `to` between every character (and at both ends).
    const std::vector<uint32_t> off = utf8_offsets(s);
    int64_t done = 0;
    for (size_t i = 0; i < off.size(); ++i) {
      if (count < 0 || done < count) {
        out += to;
        ++done;
      }
      if (i + 1 < off.size()) out.append(s, off[i], off[i + 1] - off[i]);
      if (out.size() > limits.max_output_bytes) throw TemplateError{line, "string exceeds the size limit", ErrorKind::kResource};
    }
    return out;
  }
  size_t start = 0;
  int64_t done = 0;
  for (;;) {
    const size_t p = count >= 0 && done >= count ? std::string::npos : s.find(from, start);
    if (p == std::string::npos) break;
    out.append(s, start, p - start);
    out += to;
    if (out.size() > limits.max_output_bytes) throw TemplateError{line, "string exceeds the size limit", ErrorKind::kResource};
    start = p + from.size();
    ++done;
  }
  out.append(s, start, std::string::npos);
  return out;
}

std::string title_case(const std::string& s) {
  std::string out = s;
  bool prev_cased = false;
  for (char& c : out) {
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (alpha) {
      c = prev_cased ? static_cast<char>(std::tolower(static_cast<unsigned char>(c)))
                     : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    prev_cased = alpha;
  }
  return out;
}

}  // namespace

std::string html_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string ascii_upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return out;
}

std::string py_strip(std::string_view s, const Value& chars, bool left, bool right) {
  if (chars.is_none() || chars.is_undefined()) {
    size_t b = 0, e = s.size();
    if (left) {
      while (b < e && space_at(s, b)) b += space_at(s, b);
    }
    if (right) {
      while (e > b && space_before(s, e)) e -= space_before(s, e);
    }
    return std::string(s.substr(b, e - b));
  }
  const std::string set_text = chars.to_str();
  const std::vector<uint32_t> set_off = utf8_offsets(set_text);
  const std::vector<uint32_t> off = utf8_offsets(s);
  auto in_set = [&](size_t i) {
    const std::string_view c = s.substr(off[i], off[i + 1] - off[i]);
    for (size_t k = 0; k + 1 < set_off.size(); ++k) {
      if (std::string_view(set_text).substr(set_off[k], set_off[k + 1] - set_off[k]) == c) return true;
    }
    return false;
  };
  size_t b = 0, e = off.size() - 1;
  if (left) {
    while (b < e && in_set(b)) ++b;
  }
  if (right) {
    while (e > b && in_set(e - 1)) --e;
  }
  return std::string(s.substr(off[b], off[e] - off[b]));
}

Value Interpreter::call_method(const Value& obj, const std::string& name, const CallArgs& a, int line, bool& found) {
  found = true;
  static const Value kNone = Value::none();
  static const Value kUndef;
  if (obj.is_string()) {
    const std::string& s = obj.str();
    if (!a.positional.empty() && a.positional[0].is_string()) charge(search_cost(s.size(), a.positional[0].str().size()), line);
    if (name == "strip" || name == "lstrip" || name == "rstrip") {
      return Value::string(py_strip(s, arg(a, 0, "chars", kNone), name != "rstrip", name != "lstrip"));
    }
    if (name == "split" || name == "rsplit") {
      const Value& ms = arg(a, 1, "maxsplit", kUndef);
      const int64_t maxsplit = ms.is_number() ? ms.as_int() : -1;
      std::vector<std::string> parts;
      if (name == "rsplit" && maxsplit >= 0) {
        // rsplit with a limit: split from the right.
        const Value& sep = arg(a, 0, "sep", kNone);
        if (sep.is_string() && !sep.str().empty()) {
          std::string rest = s;
          std::vector<std::string> rev;
          while (static_cast<int64_t>(rev.size()) < maxsplit) {
            const size_t p = rest.rfind(sep.str());
            if (p == std::string::npos) break;
            rev.push_back(rest.substr(p + sep.str().size()));
            rest.resize(p);
          }
          parts.push_back(rest);
          parts.insert(parts.end(), rev.rbegin(), rev.rend());
        } else {
          parts = py_split(s, sep, -1, line);
        }
      } else {
        parts = py_split(s, arg(a, 0, "sep", kNone), maxsplit, line);
      }
      if (parts.size() > limits_.max_list_items) {
        throw TemplateError{line, "split() result exceeds the list size limit", ErrorKind::kResource};
      }
      List out;
      for (auto& p : parts) out.push_back(Value::string(std::move(p)));
      return Value::list(std::move(out));
    }
    if (name == "startswith" || name == "endswith") {
      return Value::boolean(starts_or_ends(s, arg(a, 0, "prefix", kNone), name == "startswith", name, line));
    }
    if (name == "format") {
      std::string out = str_format(s, a, line, limits_.max_output_bytes);
      check_size(out.size(), line);
      return Value::string(std::move(out));
    }
    if (name == "lower") return Value::string(ascii_lower(s));
    if (name == "upper") return Value::string(ascii_upper(s));
    if (name == "title") return Value::string(title_case(s));
    if (name == "capitalize") {
      std::string out = ascii_lower(s);
      if (!out.empty() && out[0] >= 'a' && out[0] <= 'z') out[0] = static_cast<char>(out[0] - 'a' + 'A');
      return Value::string(out);
    }
    if (name == "replace") {
      const Value& c = arg(a, 2, "count", kUndef);
      return Value::string(py_replace(s, need_str(arg(a, 0, "old", kNone), name, line),
                                      need_str(arg(a, 1, "new", kNone), name, line), c.is_number() ? c.as_int() : -1,
                                      line, limits_));
    }
    if (name == "find" || name == "count" || name == "index") {
      const std::string sub = need_str(arg(a, 0, "sub", kNone), name, line);
      if (name == "count") {
        if (sub.empty()) return Value::integer(static_cast<int64_t>(utf8_count(s)) + 1);
        int64_t n = 0;
        for (size_t p = s.find(sub); p != std::string::npos; p = s.find(sub, p + sub.size())) ++n;
        return Value::integer(n);
      }
      const size_t p = s.find(sub);
      if (p == std::string::npos) {
        if (name == "index") fail(line, "ValueError: substring not found");
        return Value::integer(-1);
      }
      return Value::integer(static_cast<int64_t>(utf8_count(std::string_view(s).substr(0, p))));
    }
    if (name == "join") {
      std::string out;
      bool first = true;
      for (const Value& v : iterate(arg(a, 0, "iterable", kNone), line)) {
        if (!first) out += s;
        first = false;
        out += need_str(v, "join", line);
        check_size(out.size(), line);
      }
      return Value::string(std::move(out));
    }
    if (name == "isdigit" || name == "isalpha" || name == "isspace" || name == "isalnum") {
      if (s.empty()) return Value::boolean(false);
      for (char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        const bool digit = c >= '0' && c <= '9';
        const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        const bool ok = name == "isdigit" ? digit : name == "isalpha" ? alpha : name == "isspace" ? is_py_space(c) : digit || alpha;
        if (!ok) return Value::boolean(false);
      }
      return Value::boolean(true);
    }
    if (name == "islower" || name == "isupper") {
      bool cased = false;
      for (char c : s) {
        if (c >= 'a' && c <= 'z') {
          if (name == "isupper") return Value::boolean(false);
          cased = true;
        } else if (c >= 'A' && c <= 'Z') {
          if (name == "islower") return Value::boolean(false);
          cased = true;
        }
      }
      return Value::boolean(cased);
    }
  } else if (obj.is_dict()) {
    const Dict& d = obj.entries();
    if (name == "get") {
      const Value& key = arg(a, 0, "key", kNone);
      const Value* v = d.find(key);
      return v ? *v : arg(a, 1, "default", kNone);
    }
    if (name == "items" || name == "keys" || name == "values") {
      List out;
      for (const auto& [k, v] : d.entries) {
        if (name == "items") {
          out.push_back(Value::list({k, v}, /*tuple=*/true));
        } else {
          out.push_back(name == "keys" ? k : v);
        }
      }
      return Value::list(std::move(out));
    }
    if (name == "copy") return obj;
    if (name == "update" || name == "pop" || name == "popitem" || name == "setdefault" || name == "clear") {
      fail(line, "SecurityError: access to attribute '" + name + "' of 'dict' object is unsafe");
    }
    if (d.find(name)) {
      found = false;  // a key holding a callable
      return Value();
    }
  } else if (obj.is_list() && !obj.is_generator()) {
    if (name == "index" || name == "count") {
      const Value& x = arg(a, 0, "value", kNone);
      int64_t n = 0;
      for (size_t i = 0; i < obj.items().size(); ++i) {
        if (values_equal(obj.items()[i], x)) {
          if (name == "index") return Value::integer(static_cast<int64_t>(i));
          ++n;
        }
      }
      if (name == "index") fail(line, "ValueError: " + x.repr() + " is not in list");
      return Value::integer(n);
    }
    if (name == "copy") return Value::list(obj.items());
    if (name == "append" || name == "pop" || name == "extend" || name == "insert" || name == "remove" ||
        name == "clear" || name == "sort" || name == "reverse") {
      fail(line, "SecurityError: access to attribute '" + name + "' of '" + std::string(obj.type_name()) +
                     "' object is unsafe");
    }
  } else if (obj.kind() == Kind::kNamespace) {
    found = false;
    return Value();
  }
  if (obj.is_none() || obj.is_number() || obj.is_list() || obj.is_string() || obj.is_dict()) {
    // jinja2 gives an undefined for a missing attribute, and calling it fails.
    fail_undefined(line, "'" + std::string(obj.type_name()) + "' object has no attribute '" + name + "'");
  }
  found = false;
  return Value();
}

}  // namespace hearth::jinja
