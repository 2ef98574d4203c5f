#include "hearth/jinja/interpreter.h"

#include <cmath>
#include <limits>
#include <optional>

#include "hearth/jinja/error.h"

namespace hearth::jinja {
namespace {

const Value* lookup(const Frame& frame, const std::string& name) {
  for (const Frame* f = &frame; f; f = f->parent) {
    auto it = f->vars.find(name);
    if (it != f->vars.end()) return &it->second;
  }
  return nullptr;
}

// Python's slice indices for a sequence of length n.
std::vector<size_t> slice_indices(int64_t n, const Value& start_v, const Value& stop_v, const Value& step_v, int line) {
  auto as_index = [&](const Value& v, const char* what) -> std::optional<int64_t> {
    if (v.is_none() || v.is_undefined()) return std::nullopt;
    if (v.kind() != Kind::kInt && v.kind() != Kind::kBool) fail(line, std::string("slice ") + what + " must be an integer");
    return v.as_int();
  };
  const int64_t step = as_index(step_v, "step").value_or(1);
  if (step == 0) fail(line, "slice step cannot be zero");
  auto clamp = [&](std::optional<int64_t> x, int64_t def_pos, int64_t def_neg) {
    if (!x) return step > 0 ? def_pos : def_neg;
    int64_t v = *x;
    if (v < 0) {
      v = v < -n ? (step > 0 ? 0 : -1) : v + n;
    } else if (v >= n) {
      v = step > 0 ? n : n - 1;
    }
    return v;
  };
  const int64_t start = clamp(as_index(start_v, "start"), 0, n - 1);
  const int64_t stop = clamp(as_index(stop_v, "stop"), n, -1);
  std::vector<size_t> out;
  if (step > 0) {
    for (int64_t i = start; i < stop;) {
      out.push_back(static_cast<size_t>(i));
      if (__builtin_add_overflow(i, step, &i)) break;
    }
  } else {
    for (int64_t i = start; i > stop;) {
      out.push_back(static_cast<size_t>(i));
      if (__builtin_add_overflow(i, step, &i)) break;
    }
  }
  return out;
}

}  // namespace

[[noreturn]] void fail_undefined(int line, std::string_view what) {
  fail(line, "UndefinedError: " + std::string(what));
}

Interpreter::Interpreter(const Context& ctx) : ctx_(ctx), limits_(ctx.limits) {
  for (const auto& [k, v] : ctx.extra) root_.vars[k] = v;
  root_.vars["messages"] = ctx.messages;
  root_.vars["tools"] = ctx.tools;
  root_.vars["documents"] = ctx.documents;
  root_.vars["add_generation_prompt"] = Value::boolean(ctx.add_generation_prompt);
  root_.vars["bos_token"] = Value::string(ctx.bos_token);
  root_.vars["eos_token"] = Value::string(ctx.eos_token);
  install_globals();
}

std::string Interpreter::run(const Body& body) {
  std::string out;
  out_ = &out;
  exec_body(body, root_);
  return out;
}

void Interpreter::step(int line) {
  if (++steps_ > limits_.max_steps) {
    throw TemplateError{line, "template exceeded the evaluation limit (" + std::to_string(limits_.max_steps) + " steps)",
                        ErrorKind::kResource};
  }
}

void Interpreter::charge(uint64_t n, int line) {
  steps_ += n;
  step(line);
}

void Interpreter::check_size(size_t bytes, int line) const {
  if (bytes > limits_.max_output_bytes) {
    throw TemplateError{line, "template output exceeded the size limit (" + std::to_string(limits_.max_output_bytes) + " bytes)",
                        ErrorKind::kResource};
  }
}

void Interpreter::emit(std::string_view s, int line) {
  check_size(out_->size() + s.size(), line);
  out_->append(s);
}

std::string Interpreter::render_captured(const Body& body, Frame& frame) {
  std::string buf;
  std::string* saved = out_;
  out_ = &buf;
  try {
    exec_body(body, frame);
  } catch (...) {
    out_ = saved;
    throw;
  }
  out_ = saved;
  return buf;
}

Flow Interpreter::exec_body(const Body& body, Frame& frame) {
  for (const auto& s : body) {
    Flow f = exec(*s, frame);
    if (f != Flow::kNormal) return f;
  }
  return Flow::kNormal;
}

namespace {

// Bounds the evaluator's recursion (the native stack) across statements, expressions and calls.
struct EvalDepth {
  EvalDepth(int& depth, int limit, int line) : depth_(depth) {
    if (++depth_ > limit) {
      --depth_;
      throw TemplateError{line, "template evaluation nested too deeply (limit " + std::to_string(limit) + ")",
                          ErrorKind::kResource};
    }
  }
  ~EvalDepth() { --depth_; }
  int& depth_;
};

}  // namespace

Flow Interpreter::exec(const Stmt& s, Frame& frame) {
  step(s.line);
  EvalDepth guard(eval_depth_, limits_.max_eval_depth, s.line);
  switch (s.kind) {
    case StmtKind::kText:
      emit(s.text, s.line);
      return Flow::kNormal;
    case StmtKind::kOutput: {
      Value v = eval(*s.expr, frame);
      emit(v.to_str(), s.line);
      return Flow::kNormal;
    }
    case StmtKind::kIf:
      for (const auto& [cond, body] : s.branches) {
        if (eval(*cond, frame).truthy()) return exec_body(body, frame);
      }
      return exec_body(s.else_body, frame);
    case StmtKind::kFor:
      return exec_for(s, frame);
    case StmtKind::kSet:
      exec_set(s, frame);
      return Flow::kNormal;
    case StmtKind::kSetBlock: {
      Value v = Value::string(render_captured(s.body, frame));
      if (s.filter) {
        // The filter chain's innermost subject is the captured body.
        std::vector<const Expr*> chain;
        for (const Expr* f = s.filter.get(); f; f = f->args[0].get()) chain.push_back(f);
        for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
          v = apply_filter((*it)->name, v, eval_args(**it, 1, frame), (*it)->line);
        }
      }
      frame.vars[s.targets[0]] = std::move(v);
      return Flow::kNormal;
    }
    case StmtKind::kMacro:
      frame.vars[s.targets[0]] = define_macro(s);
      return Flow::kNormal;
    case StmtKind::kCallBlock: {
      // The macro gets `caller`, which renders the block's body in the calling frame.
      const Stmt* stmt = &s;
      Frame* at = &frame;
      auto fn = std::make_shared<Callable>();
      fn->name = "caller";
      fn->call = [this, stmt, at](const CallArgs&, int) { return Value::string(render_captured(stmt->body, *at)); };
      Value callee = eval(*s.expr->args[0], frame);
      CallArgs args = eval_args(*s.expr, 1, frame);
      args.keyword.emplace_back("caller", Value::callable(fn));
      emit(call_value(callee, args, s.line).to_str(), s.line);
      return Flow::kNormal;
    }
    case StmtKind::kFilterBlock: {
      Value v = Value::string(render_captured(s.body, frame));
      std::vector<const Expr*> chain;
      for (const Expr* f = s.filter.get(); f; f = f->args[0].get()) chain.push_back(f);
      for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
        v = apply_filter((*it)->name, v, eval_args(**it, 1, frame), (*it)->line);
      }
      emit(v.to_str(), s.line);
      return Flow::kNormal;
    }
    case StmtKind::kBreak:
      return Flow::kBreak;
    case StmtKind::kContinue:
      return Flow::kContinue;
    case StmtKind::kGeneration:
      return exec_body(s.body, frame);
  }
  return Flow::kNormal;
}

namespace {

void bind_targets(Frame& frame, const std::vector<std::string>& targets, const Value& v, int line) {
  if (targets.size() == 1) {
    frame.vars[targets[0]] = v;
    return;
  }
  std::vector<Value> parts = iterate(v, line);
  if (parts.size() != targets.size()) {
    fail(line, "ValueError: cannot unpack " + std::to_string(parts.size()) + " values into " +
                   std::to_string(targets.size()) + " names");
  }
  for (size_t i = 0; i < targets.size(); ++i) frame.vars[targets[i]] = parts[i];
}

}  // namespace

Flow Interpreter::exec_for(const Stmt& s, Frame& frame) {
  Value seq = eval(*s.expr, frame);
  std::vector<Value> items = iterate(seq, s.line);
  if (s.filter) {
    std::vector<Value> kept;
    for (const Value& item : items) {
      step(s.line);
      Frame f;
      f.parent = &frame;
      bind_targets(f, s.targets, item, s.line);
      if (eval(*s.filter, f).truthy()) kept.push_back(item);
    }
    items = std::move(kept);
  }
  if (items.empty()) return exec_body(s.else_body, frame);
  const int64_t n = static_cast<int64_t>(items.size());
  for (int64_t i = 0; i < n; ++i) {
    step(s.line);
    Frame f;
    f.parent = &frame;
    bind_targets(f, s.targets, items[static_cast<size_t>(i)], s.line);
    if (!s.uses_loop) {
      if (exec_body(s.body, f) == Flow::kBreak) break;
      continue;
    }
    Dict loop;
    loop.set("index", Value::integer(i + 1));
    loop.set("index0", Value::integer(i));
    loop.set("revindex", Value::integer(n - i));
    loop.set("revindex0", Value::integer(n - i - 1));
    loop.set("first", Value::boolean(i == 0));
    loop.set("last", Value::boolean(i == n - 1));
    loop.set("length", Value::integer(n));
    loop.set("depth", Value::integer(1));
    loop.set("depth0", Value::integer(0));
    if (i > 0) loop.set("previtem", items[static_cast<size_t>(i - 1)]);
    if (i + 1 < n) loop.set("nextitem", items[static_cast<size_t>(i + 1)]);
    auto cycle = std::make_shared<Callable>();
    cycle->name = "loop.cycle";
    cycle->call = [i](const CallArgs& a, int line) {
      if (a.positional.empty()) fail(line, "TypeError: no items for cycling given");
      return a.positional[static_cast<size_t>(i) % a.positional.size()];
    };
    loop.set("cycle", Value::callable(cycle));
    f.vars["loop"] = Value::dict(std::move(loop));
    Flow flow = exec_body(s.body, f);
    if (flow == Flow::kBreak) break;
  }
  return Flow::kNormal;
}

void Interpreter::exec_set(const Stmt& s, Frame& frame) {
  Value v = eval(*s.expr, frame);
  if (v.depth() > limits_.max_value_depth) {
    throw TemplateError{s.line, "value nested too deeply (limit " + std::to_string(limits_.max_value_depth) + ")",
                        ErrorKind::kResource};
  }
  if (!s.attr.empty()) {
    const Value* ns = lookup(frame, s.targets[0]);
    if (!ns || ns->kind() != Kind::kNamespace) {
      fail(s.line, "cannot assign attribute '" + s.attr + "' on '" + s.targets[0] + "': not a namespace");
    }
    if (v.holds_namespace()) fail(s.line, "a namespace cannot be stored in a namespace");
    ns->namespace_entries().set(s.attr, std::move(v));
    return;
  }
  bind_targets(frame, s.targets, v, s.line);
}

Value Interpreter::define_macro(const Stmt& s) {
  const Stmt* stmt = &s;
  auto fn = std::make_shared<Callable>();
  fn->name = s.targets[0];
  fn->call = [this, stmt](const CallArgs& args, int line) {
    if (call_depth_ >= limits_.max_call_depth) {
      throw TemplateError{line, "macro calls nested too deeply (limit " + std::to_string(limits_.max_call_depth) + ")",
                          ErrorKind::kResource};
    }
    if (args.positional.size() > stmt->params.size()) {
      fail(line, "TypeError: macro '" + stmt->targets[0] + "' takes not more than " + std::to_string(stmt->params.size()) +
                     " argument(s)");
    }
    Frame f;
    f.parent = &root_;
    for (size_t i = 0; i < stmt->params.size(); ++i) {
      const auto& [name, def] = stmt->params[i];
      const Value* kw = nullptr;
      for (const auto& [k, v] : args.keyword) {
        if (k == name) kw = &v;
      }
      if (i < args.positional.size()) {
        f.vars[name] = args.positional[i];
      } else if (kw) {
        f.vars[name] = *kw;
      } else if (def) {
        f.vars[name] = eval(*def, f);
      } else {
        f.vars[name] = Value();
      }
    }
    for (const auto& [k, v] : args.keyword) {
      if (k == "caller") {
        f.vars["caller"] = v;
        continue;
      }
      bool known = false;
      for (const auto& p : stmt->params) known = known || p.first == k;
      if (!known) fail(line, "TypeError: macro '" + stmt->targets[0] + "' takes no keyword argument '" + k + "'");
    }
    ++call_depth_;
    std::string text;
    try {
      text = render_captured(stmt->body, f);
    } catch (...) {
      --call_depth_;
      throw;
    }
    --call_depth_;
    return Value::string(std::move(text));
  };
  return Value::callable(fn);
}

CallArgs Interpreter::eval_args(const Expr& e, size_t first, Frame& frame) {
  CallArgs a;
  for (size_t i = first; i < e.args.size(); ++i) a.positional.push_back(eval(*e.args[i], frame));
  for (const auto& [k, v] : e.kwargs) a.keyword.emplace_back(k, eval(*v, frame));
  return a;
}

Value Interpreter::get_attr(const Value& obj, const std::string& name, int line) {
  switch (obj.kind()) {
    case Kind::kUndefined:
      fail_undefined(line, "'" + name + "' of an undefined value");
    case Kind::kDict:
    case Kind::kNamespace: {
      const Dict& d = obj.kind() == Kind::kDict ? obj.entries() : obj.namespace_entries();
      charge(d.entries.size() / 16, line);  // a key lookup scans the entries
      const Value* v = d.find(name);
      return v ? *v : Value();
    }
    default:
      return Value();
  }
}

Value Interpreter::get_item(const Value& obj, const Value& key, int line) {
  switch (obj.kind()) {
    case Kind::kUndefined:
      fail_undefined(line, "item " + key.repr() + " of an undefined value");
    case Kind::kDict:
    case Kind::kNamespace:
      if (key.is_string()) return get_attr(obj, key.str(), line);
      if (obj.is_dict()) {
        charge(obj.entries().entries.size() / 16, line);
        const Value* v = obj.entries().find(key);
        return v ? *v : Value();
      }
      return Value();
    case Kind::kList: {
      if (obj.is_generator() || (key.kind() != Kind::kInt && key.kind() != Kind::kBool)) return Value();
      const int64_t n = static_cast<int64_t>(obj.items().size());
      int64_t i = key.as_int();
      if (i < 0) i += n;
      if (i < 0 || i >= n) return Value();
      return obj.items()[static_cast<size_t>(i)];
    }
    case Kind::kString: {
      if (key.kind() != Kind::kInt && key.kind() != Kind::kBool) return Value();
      charge(obj.str().size() / 256, line);
      const std::vector<uint32_t> off = utf8_offsets(obj.str());
      const int64_t n = static_cast<int64_t>(off.size()) - 1;
      int64_t i = key.as_int();
      if (i < 0) i += n;
      if (i < 0 || i >= n) return Value();
      const auto at = static_cast<size_t>(i);
      return Value::string(obj.str().substr(off[at], off[at + 1] - off[at]));
    }
    default:
      return Value();
  }
}

Value Interpreter::call_value(const Value& callee, const CallArgs& args, int line) {
  if (callee.is_undefined()) fail_undefined(line, "call of an undefined value");
  if (callee.kind() != Kind::kCallable) fail(line, "TypeError: '" + std::string(callee.type_name()) + "' object is not callable");
  return callee.fn().call(args, line);
}

Value Interpreter::eval_call(const Expr& e, Frame& frame) {
  const Expr& callee = *e.args[0];
  if (callee.kind == ExprKind::kGetAttr) {
    Value obj = eval(*callee.args[0], frame);
    if (obj.is_undefined()) fail_undefined(e.line, "'" + callee.name + "' of an undefined value");
    CallArgs args = eval_args(e, 1, frame);
    bool found = false;
    Value r = call_method(obj, callee.name, args, e.line, found);
    if (found) return r;
    return call_value(get_attr(obj, callee.name, e.line), args, e.line);
  }
  Value fn = eval(callee, frame);
  return call_value(fn, eval_args(e, 1, frame), e.line);
}

Value Interpreter::eval(const Expr& e, Frame& frame) {
  step(e.line);
  EvalDepth guard(eval_depth_, limits_.max_eval_depth, e.line);
  Value v = eval_node(e, frame);
  // Work that copies or scans data costs in proportion to its size: one step per 256 bytes of
  // a string and per 16 items of a list.
  if (v.is_string()) {
    charge(v.str().size() / 256, e.line);
  } else if (v.is_list()) {
    charge(v.items().size() / 16, e.line);
  }
  return v;
}

Value Interpreter::eval_node(const Expr& e, Frame& frame) {
  switch (e.kind) {
    case ExprKind::kLiteral:
      return e.literal;
    case ExprKind::kName: {
      const Value* v = lookup(frame, e.name);
      return v ? *v : Value();
    }
    case ExprKind::kGetAttr:
      return get_attr(eval(*e.args[0], frame), e.name, e.line);
    case ExprKind::kGetItem: {
      Value obj = eval(*e.args[0], frame);
      return get_item(obj, eval(*e.args[1], frame), e.line);
    }
    case ExprKind::kSlice: {
      Value obj = eval(*e.args[0], frame);
      Value start = e.args[1] ? eval(*e.args[1], frame) : Value::none();
      Value stop = e.args[2] ? eval(*e.args[2], frame) : Value::none();
      Value stp = e.args[3] ? eval(*e.args[3], frame) : Value::none();
      if (obj.is_undefined()) fail_undefined(e.line, "slice of an undefined value");
      if (obj.is_string()) {
        charge(obj.str().size() / 256, e.line);
        const std::string& s = obj.str();
        const std::vector<uint32_t> off = utf8_offsets(s);
        std::string out;
        for (size_t i : slice_indices(static_cast<int64_t>(off.size()) - 1, start, stop, stp, e.line)) {
          out.append(s, off[i], off[i + 1] - off[i]);
        }
        return Value::string(std::move(out));
      }
      if (obj.is_list() && !obj.is_generator()) {
        List out;
        for (size_t i : slice_indices(static_cast<int64_t>(obj.items().size()), start, stop, stp, e.line)) {
          out.push_back(obj.items()[i]);
        }
        return Value::list(std::move(out), obj.is_tuple());
      }
      return Value();
    }
    case ExprKind::kCall:
      return eval_call(e, frame);
    case ExprKind::kFilter: {
      Value subject = eval(*e.args[0], frame);
      return apply_filter(e.name, subject, eval_args(e, 1, frame), e.line);
    }
    case ExprKind::kTest: {
      Value subject = eval(*e.args[0], frame);
      const bool r = apply_test(e.name, subject, eval_args(e, 1, frame), e.line);
      return Value::boolean(e.negated ? !r : r);
    }
    case ExprKind::kUnary: {
      Value a = eval(*e.args[0], frame);
      if (e.name == "not") return Value::boolean(!a.truthy());
      if (a.is_undefined()) fail_undefined(e.line, "unary " + e.name + " on an undefined value");
      if (!a.is_number()) fail(e.line, "TypeError: bad operand type for unary " + e.name + ": '" + std::string(a.type_name()) + "'");
      if (e.name == "+") return a.kind() == Kind::kBool ? Value::integer(a.as_int()) : a;
      if (a.kind() == Kind::kFloat) return Value::floating(-a.as_float());
      if (a.as_int() == std::numeric_limits<int64_t>::min()) fail(e.line, "integer overflow");
      return Value::integer(-a.as_int());
    }
    case ExprKind::kBinary:
      return eval_binary(e, frame);
    case ExprKind::kCompare:
      return eval_compare(e, frame);
    case ExprKind::kCondition:
      if (eval(*e.args[1], frame).truthy()) return eval(*e.args[0], frame);
      return e.args[2] ? eval(*e.args[2], frame) : Value();
    case ExprKind::kList:
    case ExprKind::kTuple: {
      List items;
      for (const auto& a : e.args) items.push_back(eval(*a, frame));
      return Value::list(std::move(items), e.kind == ExprKind::kTuple);
    }
    case ExprKind::kDict: {
      Dict d;
      for (size_t i = 0; i < e.args.size(); ++i) {
        Value k = eval(*e.keys[i], frame);
        charge(d.entries.size() / 16, e.line);  // each set searches the keys so far
        d.set(std::move(k), eval(*e.args[i], frame));
      }
      return Value::dict(std::move(d));
    }
  }
  return Value();
}

Value Interpreter::eval_binary(const Expr& e, Frame& frame) {
  Value a = eval(*e.args[0], frame);
  if (e.name == "and") return a.truthy() ? eval(*e.args[1], frame) : a;
  if (e.name == "or") return a.truthy() ? a : eval(*e.args[1], frame);
  Value b = eval(*e.args[1], frame);
  return binary_op(e.name, a, b, e.line, limits_);
}

Value Interpreter::eval_compare(const Expr& e, Frame& frame) {
  Value left = eval(*e.args[0], frame);
  auto size_of = [](const Value& v) -> uint64_t {
    if (v.is_dict()) {
      const uint64_t n = v.entries().entries.size();
      return n * n / 16;  // dict equality looks each key up in the other dict
    }
    return v.is_string() ? v.str().size() / 256 : v.is_list() ? v.items().size() : 0;
  };
  for (size_t i = 0; i < e.ops.size(); ++i) {
    Value right = eval(*e.args[i + 1], frame);
    charge(size_of(left) + size_of(right), e.line);  // ==, in and < scan their operands
    if (left.is_string() && right.is_string()) {
      charge(search_cost(right.str().size(), left.str().size()), e.line);  // substring search
    }
    const std::string& op = e.ops[i];
    bool r = false;
    if (op == "==") {
      r = values_equal(left, right);
    } else if (op == "!=") {
      r = !values_equal(left, right);
    } else if (op == "in" || op == "notin") {
      r = contains(right, left, e.line);
      if (op == "notin") r = !r;
    } else {
      if (left.is_undefined() || right.is_undefined()) fail_undefined(e.line, "comparison with an undefined value");
      bool ok = true;
      if (op == "<") {
        r = value_less(left, right, ok);
      } else if (op == ">") {
        r = value_less(right, left, ok);
      } else if (op == "<=") {
        r = !value_less(right, left, ok);
      } else {
        r = !value_less(left, right, ok);
      }
      if (!ok) {
        fail(e.line, "TypeError: '" + op + "' not supported between instances of '" + std::string(left.type_name()) +
                         "' and '" + std::string(right.type_name()) + "'");
      }
    }
    if (!r) return Value::boolean(false);
    left = std::move(right);
  }
  return Value::boolean(true);
}

}  // namespace hearth::jinja
