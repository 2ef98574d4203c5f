// The tree-walking evaluator behind Template::render (template.h). Internal to the module:
// statements and expressions (interpreter.cpp), filters/tests/globals (builtins.cpp), methods
// of str/dict/list (methods.cpp) and tojson (json_dump.cpp).
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "hearth/jinja/ast.h"
#include "hearth/jinja/template.h"
#include "hearth/jinja/value.h"

namespace hearth::jinja {

struct Frame {
  std::unordered_map<std::string, Value> vars;
  const Frame* parent = nullptr;
};

enum class Flow { kNormal, kBreak, kContinue };

class Interpreter {
 public:
  explicit Interpreter(const Context& ctx);
  std::string run(const Body& body);

  // Bounds, shared by the builtins.
  void step(int line);
  void charge(uint64_t steps, int line);  // work proportional to data size
  void check_size(size_t bytes, int line) const;
  const Limits& limits() const { return limits_; }

  Value call_value(const Value& callee, const CallArgs& args, int line);
  Value apply_filter(const std::string& name, const Value& subject, const CallArgs& args, int line);
  bool apply_test(const std::string& name, const Value& subject, const CallArgs& args, int line);
  Value call_method(const Value& obj, const std::string& name, const CallArgs& args, int line, bool& found);
  // jinja2's environment.getattr / getitem.
  Value get_attr(const Value& obj, const std::string& name, int line);
  Value get_item(const Value& obj, const Value& key, int line);

 private:
  Flow exec_body(const Body& body, Frame& frame);
  Flow exec(const Stmt& s, Frame& frame);
  Flow exec_for(const Stmt& s, Frame& frame);
  void exec_set(const Stmt& s, Frame& frame);
  Value define_macro(const Stmt& s);
  Value eval(const Expr& e, Frame& frame);
  Value eval_node(const Expr& e, Frame& frame);
  Value eval_binary(const Expr& e, Frame& frame);
  Value eval_compare(const Expr& e, Frame& frame);
  Value eval_call(const Expr& e, Frame& frame);
  CallArgs eval_args(const Expr& e, size_t first, Frame& frame);
  std::string render_captured(const Body& body, Frame& frame);
  void emit(std::string_view s, int line);
  void install_globals();

  const Context& ctx_;
  Limits limits_;
  Frame root_;
  std::string* out_ = nullptr;
  uint64_t steps_ = 0;
  int call_depth_ = 0;
  int eval_depth_ = 0;
};

// Helpers shared by the builtins.
[[noreturn]] void fail_undefined(int line, std::string_view what);
std::vector<Value> iterate(const Value& v, int line);      // Python iter(): list items, dict keys, chars
size_t python_len(const Value& v, int line);
Value binary_op(const std::string& op, const Value& a, const Value& b, int line, const Limits& limits);
bool contains(const Value& container, const Value& item, int line);
std::string to_json(const Value& v, const Value& indent, bool ensure_ascii, bool sort_keys,
                    const std::string& item_sep, const std::string& key_sep, int line, size_t limit);
// Byte offsets of the code points of s (a malformed byte counts as one), plus s.size() at the
// end: code point i is s.substr(off[i], off[i + 1] - off[i]). Python indexes str by code point.
std::vector<uint32_t> utf8_offsets(std::string_view s);
size_t utf8_count(std::string_view s);
std::string py_strip(std::string_view s, const Value& chars, bool left, bool right);
std::string ascii_lower(std::string_view s);
// Steps charged for searching a needle in a haystack (a naive search is O(n*m)).
inline uint64_t search_cost(size_t haystack, size_t needle) { return (haystack / 256 + 1) * (needle / 4 + 1); }
// Python's `fmt % args` and fmt.format(*args, **kwargs) (format.cpp).
// The result is refused (resource error) once it passes `limit` bytes.
std::string printf_format(const std::string& fmt, const Value& args, int line, size_t limit);
std::string str_format(const std::string& fmt, const CallArgs& args, int line, size_t limit);
std::string html_escape(std::string_view s);  // MarkupSafe's escape: & < > " '

std::string ascii_upper(std::string_view s);

}  // namespace hearth::jinja
