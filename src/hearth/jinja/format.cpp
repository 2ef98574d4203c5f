// Python's string formatting: `fmt % args` (printf style, also jinja2's |format filter) and
// str.format(). Conversions: s r d i u f F e E g G x X o c and %%; format specs with fill,
// alignment, sign, zero padding, width and precision.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "hearth/jinja/error.h"
#include "hearth/jinja/interpreter.h"

namespace hearth::jinja {
namespace {

struct Spec {
  char fill = ' ';
  char align = 0;  // '<', '>', '^', '=' or 0 (default: left for text, right for numbers)
  char sign = '-';
  bool alt = false;
  bool zero = false;
  int64_t width = -1;
  int64_t precision = -1;
  char type = 0;
};

std::string pad(std::string s, const Spec& sp, bool numeric) {
  const int64_t len = static_cast<int64_t>(utf8_count(s));
  if (sp.width <= len) return s;
  const auto n = static_cast<size_t>(std::min<int64_t>(sp.width - len, 1 << 20));
  char align = sp.align ? sp.align : numeric ? '>' : '<';
  char fill = sp.fill;
  if (sp.zero && !sp.align && numeric) {
    align = '=';
    fill = '0';
  }
  if (align == '<') return s + std::string(n, fill);
  if (align == '^') return std::string(n / 2, fill) + s + std::string(n - n / 2, fill);
  if (align == '=' && !s.empty() && (s[0] == '-' || s[0] == '+' || s[0] == ' ')) {
    return s.substr(0, 1) + std::string(n, fill) + s.substr(1);
  }
  return std::string(n, fill) + s;
}

std::string format_number(const Value& v, const Spec& sp, int line) {
  if (!v.is_number()) {
    fail(line, "TypeError: a number is required for format '" + std::string(1, sp.type) + "', not " + std::string(v.type_name()));
  }
  char buf[512];
  const int prec = static_cast<int>(std::clamp<int64_t>(sp.precision < 0 ? 6 : sp.precision, 0, 100));
  std::string out;
  switch (sp.type) {
    case 'd':
    case 'i':
    case 'u': {
      const int64_t x = v.as_int();
      out = std::to_string(x);
      break;
    }
    case 'x':
    case 'X':
    case 'o': {
      const int64_t x = v.as_int();
      const uint64_t mag = x < 0 ? 0 - static_cast<uint64_t>(x) : static_cast<uint64_t>(x);
      std::snprintf(buf, sizeof buf, sp.type == 'x' ? "%llx" : sp.type == 'X' ? "%llX" : "%llo",
                    static_cast<unsigned long long>(mag));
      out = std::string(x < 0 ? "-" : "") + (sp.alt ? (sp.type == 'o' ? "0o" : sp.type == 'x' ? "0x" : "0X") : "") + buf;
      break;
    }
    case 'c': {
      const int64_t x = v.as_int();
      out = x >= 0 && x < 128 ? std::string(1, static_cast<char>(x)) : std::string();
      break;
    }
    default: {  // f F e E g G
      const char f[] = {'%', '.', '*', sp.type, '\0'};
      std::snprintf(buf, sizeof buf, f, prec, v.as_float());
      out = buf;
    }
  }
  if (sp.sign != '-' && !out.empty() && out[0] != '-') out = std::string(1, sp.sign) + out;
  return out;
}

std::string format_one(const Value& v, Spec sp, int line) {
  if (sp.type == 0 || sp.type == 's' || sp.type == 'r' || sp.type == 'a') {
    if (sp.type == 0 && v.is_number() && v.kind() != Kind::kBool && sp.precision >= 0) {
      sp.type = 'g';
      return pad(format_number(v, sp, line), sp, true);
    }
    std::string s = sp.type == 'r' || sp.type == 'a' ? v.repr() : v.to_str();
    if (sp.precision >= 0) {
      const std::vector<uint32_t> off = utf8_offsets(s);
      if (static_cast<size_t>(sp.precision) + 1 < off.size()) s.resize(off[static_cast<size_t>(sp.precision)]);
    }
    return pad(std::move(s), sp, v.is_number() && sp.type == 0);
  }
  return pad(format_number(v, sp, line), sp, true);
}

int64_t read_int(std::string_view s, size_t& i) {
  int64_t n = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
    n = std::min<int64_t>(n * 10 + (s[i] - '0'), 1 << 20);
    ++i;
  }
  return n;
}

void check_limit(const std::string& out, size_t limit, int line) {
  if (out.size() > limit) throw TemplateError{line, "formatted string exceeds the size limit", ErrorKind::kResource};
}

}  // namespace

std::string printf_format(const std::string& fmt, const Value& args, int line, size_t limit) {
  std::vector<Value> positional;
  const Value* mapping = nullptr;
  if (args.is_list() && args.is_tuple()) {
    positional = args.items();
  } else {
    if (args.is_dict()) mapping = &args;
    positional.push_back(args);
  }
  size_t next = 0;
  std::string out;
  for (size_t i = 0; i < fmt.size(); ++i) {
    if (fmt[i] != '%') {
      out += fmt[i];
      continue;
    }
    if (++i >= fmt.size()) fail(line, "ValueError: incomplete format");
    if (fmt[i] == '%') {
      out += '%';
      continue;
    }
    const Value* arg = nullptr;
    Value keyed;
    if (fmt[i] == '(') {
      const size_t close = fmt.find(')', i);
      if (close == std::string::npos || !mapping) fail(line, "TypeError: format requires a mapping");
      const Value* v = mapping->entries().find(std::string_view(fmt).substr(i + 1, close - i - 1));
      if (!v) fail(line, "KeyError: '" + fmt.substr(i + 1, close - i - 1) + "'");
      keyed = *v;
      arg = &keyed;
      i = close + 1;
    }
    Spec sp;
    for (; i < fmt.size(); ++i) {
      const char c = fmt[i];
      if (c == '-') sp.align = '<';
      else if (c == '+') sp.sign = '+';
      else if (c == ' ') sp.sign = sp.sign == '+' ? '+' : ' ';
      else if (c == '0') sp.zero = true;
      else if (c == '#') sp.alt = true;
      else break;
    }
    if (i < fmt.size() && fmt[i] >= '1' && fmt[i] <= '9') sp.width = read_int(fmt, i);
    if (i < fmt.size() && fmt[i] == '.') {
      ++i;
      sp.precision = read_int(fmt, i);
    }
    if (i >= fmt.size()) fail(line, "ValueError: incomplete format");
    sp.type = fmt[i];
    if (std::string_view("sradiufFeEgGxXoc").find(sp.type) == std::string_view::npos) {
      fail(line, "ValueError: unsupported format character '" + std::string(1, sp.type) + "'");
    }
    if (!arg) {
      if (next >= positional.size()) fail(line, "TypeError: not enough arguments for format string");
      arg = &positional[next++];
    }
    if (sp.align == '<') sp.zero = false;
    out += format_one(*arg, sp, line);
    check_limit(out, limit, line);
  }
  if (!mapping && next < positional.size()) fail(line, "TypeError: not all arguments converted during string formatting");
  return out;
}

std::string str_format(const std::string& fmt, const CallArgs& args, int line, size_t limit) {
  std::string out;
  size_t auto_index = 0;
  for (size_t i = 0; i < fmt.size(); ++i) {
    const char c = fmt[i];
    if (c == '}') {
      if (i + 1 < fmt.size() && fmt[i + 1] == '}') ++i;
      else fail(line, "ValueError: Single '}' encountered in format string");
      out += '}';
      continue;
    }
    if (c != '{') {
      out += c;
      continue;
    }
    if (i + 1 < fmt.size() && fmt[i + 1] == '{') {
      out += '{';
      ++i;
      continue;
    }
    const size_t close = fmt.find('}', i);
    if (close == std::string::npos) fail(line, "ValueError: Single '{' encountered in format string");
    std::string field = fmt.substr(i + 1, close - i - 1);
    i = close;
    std::string spec_text;
    char conv = 0;
    if (const size_t colon = field.find(':'); colon != std::string::npos) {
      spec_text = field.substr(colon + 1);
      field.resize(colon);
    }
    if (const size_t bang = field.find('!'); bang != std::string::npos) {
      conv = bang + 1 < field.size() ? field[bang + 1] : 0;
      field.resize(bang);
    }
    const Value* v = nullptr;
    if (field.empty()) {
      if (auto_index >= args.positional.size()) fail(line, "IndexError: Replacement index out of range");
      v = &args.positional[auto_index++];
    } else if (field.find_first_not_of("0123456789") == std::string::npos) {
      const size_t k = std::stoul(field.substr(0, 7));
      if (k >= args.positional.size()) fail(line, "IndexError: Replacement index out of range");
      v = &args.positional[k];
    } else {
      for (const auto& [name, x] : args.keyword) {
        if (name == field) v = &x;
      }
      if (!v) fail(line, "KeyError: '" + field + "'");
    }
    Spec sp;
    size_t k = 0;
    const std::string_view s = spec_text;
    auto is_align = [](char a) { return a == '<' || a == '>' || a == '^' || a == '='; };
    if (s.size() >= 2 && is_align(s[1])) {
      sp.fill = s[0];
      sp.align = s[1];
      k = 2;
    } else if (!s.empty() && is_align(s[0])) {
      sp.align = s[0];
      k = 1;
    }
    if (k < s.size() && (s[k] == '+' || s[k] == '-' || s[k] == ' ')) sp.sign = s[k++];
    if (k < s.size() && s[k] == '#') {
      sp.alt = true;
      ++k;
    }
    if (k < s.size() && s[k] == '0') {
      sp.zero = true;
      ++k;
    }
    if (k < s.size() && s[k] >= '1' && s[k] <= '9') sp.width = read_int(s, k);
    if (k < s.size() && s[k] == '.') {
      ++k;
      sp.precision = read_int(s, k);
    }
    if (k < s.size()) sp.type = s[k++];
    if (k != s.size()) fail(line, "ValueError: Invalid format specifier '" + spec_text + "'");
    if (sp.type && std::string_view("sdfFeEgGxXoc%").find(sp.type) == std::string_view::npos) {
      fail(line, "ValueError: Unknown format code '" + std::string(1, sp.type) + "'");
    }
    if (conv == 'r') {
      out += pad(v->repr(), sp, false);
    } else if (sp.type == '%') {
      Spec pct = sp;
      pct.type = 'f';
      out += pad(format_number(Value::floating(v->as_float() * 100), pct, line) + "%", sp, true);
    } else {
      out += format_one(*v, sp, line);
    }
    check_limit(out, limit, line);
  }
  return out;
}

}  // namespace hearth::jinja
