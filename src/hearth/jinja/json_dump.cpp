// tojson: Python's json.dumps over Values, as transformers' tojson filter calls it
// (ensure_ascii, indent, separators, sort_keys), byte for byte: float repr, escapes, layout.
#include <algorithm>
#include <cstdio>

#include "hearth/jinja/error.h"
#include "hearth/jinja/interpreter.h"

namespace hearth::jinja {
namespace {

struct JsonWriter {
  std::string indent;
  bool pretty = false;
  bool ensure_ascii = false;
  bool sort_keys = false;
  std::string item_sep;
  std::string key_sep;
  int line = 0;
  size_t limit = 0;
  std::string out;

  void string(std::string_view s) {
    out += '"';
    size_t i = 0;
    while (i < s.size()) {
      const auto c = static_cast<unsigned char>(s[i]);
      switch (c) {
        case '"': out += "\\\""; ++i; continue;
        case '\\': out += "\\\\"; ++i; continue;
        case '\n': out += "\\n"; ++i; continue;
        case '\r': out += "\\r"; ++i; continue;
        case '\t': out += "\\t"; ++i; continue;
        case '\b': out += "\\b"; ++i; continue;
        case '\f': out += "\\f"; ++i; continue;
        default: break;
      }
      if (c < 0x20) {
        char b[8];
        std::snprintf(b, sizeof b, "\\u%04x", c);
        out += b;
        ++i;
        continue;
      }
      if (c < 0x80 || !ensure_ascii) {
        out += static_cast<char>(c);
        ++i;
        continue;
      }
      // ensure_ascii: \uXXXX (surrogate pairs above the BMP), lower-case hex as Python writes.
      uint32_t cp = 0xFFFD;
      size_t n = 1;
      if ((c >> 5) == 6 && i + 1 < s.size()) {
        cp = ((c & 0x1Fu) << 6) | (static_cast<unsigned char>(s[i + 1]) & 0x3Fu);
        n = 2;
      } else if ((c >> 4) == 14 && i + 2 < s.size()) {
        cp = ((c & 0x0Fu) << 12) | ((static_cast<unsigned char>(s[i + 1]) & 0x3Fu) << 6) |
             (static_cast<unsigned char>(s[i + 2]) & 0x3Fu);
        n = 3;
      } else if ((c >> 3) == 30 && i + 3 < s.size()) {
        cp = ((c & 0x07u) << 18) | ((static_cast<unsigned char>(s[i + 1]) & 0x3Fu) << 12) |
             ((static_cast<unsigned char>(s[i + 2]) & 0x3Fu) << 6) | (static_cast<unsigned char>(s[i + 3]) & 0x3Fu);
        n = 4;
      }
      char b[16];
      if (cp >= 0x10000) {
        const uint32_t v = cp - 0x10000;
        std::snprintf(b, sizeof b, "\\u%04x\\u%04x", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF));
      } else {
        std::snprintf(b, sizeof b, "\\u%04x", cp);
      }
      out += b;
      i += n;
    }
    out += '"';
  }

  void newline(int depth) {
    out += '\n';
    for (int i = 0; i < depth; ++i) out += indent;
  }

  void value(const Value& v, int depth) {
    if (depth > 200) fail(line, "ValueError: JSON nesting too deep");
    if (out.size() > limit) throw TemplateError{line, "tojson output exceeds the size limit", ErrorKind::kResource};
    switch (v.kind()) {
      case Kind::kNone:
        out += "null";
        return;
      case Kind::kBool:
        out += v.as_bool() ? "true" : "false";
        return;
      case Kind::kInt:
        out += std::to_string(v.as_int());
        return;
      case Kind::kFloat: {
        const double f = v.as_float();
        if (f != f) {
          out += "NaN";
        } else if (f > 1.7976931348623157e308) {
          out += "Infinity";
        } else if (f < -1.7976931348623157e308) {
          out += "-Infinity";
        } else {
          out += format_python_float(f);
        }
        return;
      }
      case Kind::kString:
        string(v.str());
        return;
      case Kind::kList: {
        if (v.is_generator()) fail(line, "TypeError: Object of type generator is not JSON serializable");
        const List& items = v.items();
        if (items.empty()) {
          out += "[]";
          return;
        }
        out += '[';
        for (size_t i = 0; i < items.size(); ++i) {
          if (i) out += item_sep;
          if (pretty) newline(depth + 1);
          value(items[i], depth + 1);
        }
        if (pretty) newline(depth);
        out += ']';
        return;
      }
      case Kind::kDict: {
        // Python's json turns int, float, bool and None keys into strings.
        std::vector<std::pair<std::string, const Value*>> entries;
        for (const auto& [k, x] : v.entries().entries) {
          std::string key;
          switch (k.kind()) {
            case Kind::kString: key = k.str(); break;
            case Kind::kBool: key = k.as_bool() ? "true" : "false"; break;
            case Kind::kNone: key = "null"; break;
            case Kind::kInt:
            case Kind::kFloat: key = k.repr(); break;
            default: fail(line, "TypeError: keys must be str, int, float, bool or None, not " + std::string(k.type_name()));
          }
          entries.emplace_back(std::move(key), &x);
        }
        if (entries.empty()) {
          out += "{}";
          return;
        }
        if (sort_keys) {
          std::stable_sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
        }
        out += '{';
        for (size_t i = 0; i < entries.size(); ++i) {
          if (i) out += item_sep;
          if (pretty) newline(depth + 1);
          string(entries[i].first);
          out += key_sep;
          value(*entries[i].second, depth + 1);
        }
        if (pretty) newline(depth);
        out += '}';
        return;
      }
      default:
        fail(line, "TypeError: Object of type " + std::string(v.type_name()) + " is not JSON serializable");
    }
  }
};

}  // namespace

std::string to_json(const Value& v, const Value& indent, bool ensure_ascii, bool sort_keys, const std::string& item_sep,
                    const std::string& key_sep, int line, size_t limit) {
  JsonWriter w;
  w.limit = limit;
  w.ensure_ascii = ensure_ascii;
  w.sort_keys = sort_keys;
  w.item_sep = item_sep;
  w.key_sep = key_sep;
  w.line = line;
  if (indent.is_string()) {
    w.pretty = true;
    w.indent = indent.str();
  } else if (indent.kind() == Kind::kInt) {
    w.pretty = true;
    w.indent = std::string(static_cast<size_t>(std::clamp<int64_t>(indent.as_int(), 0, 64)), ' ');
  } else if (!indent.is_none() && !indent.is_undefined()) {
    fail(line, "TypeError: tojson indent must be an integer or a string");
  }
  w.value(v, 0);
  return std::move(w.out);
}

}  // namespace hearth::jinja
