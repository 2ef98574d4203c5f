#include "hearth/jinja/parser.h"

#include <charconv>
#include <cstdlib>
#include <algorithm>
#include <initializer_list>

#include "hearth/jinja/error.h"

namespace hearth::jinja {
namespace {

ExprPtr make_expr(ExprKind kind, int line) {
  auto e = std::make_unique<Expr>();
  e->kind = kind;
  e->line = line;
  return e;
}


// Every node records its height; a left-deep chain (`a + a + ...`, `x|f|f...`) is built by
// loops rather than recursion, so the parse depth alone does not bound it.
void note_child(Expr& parent, const Expr* child) {
  if (!child) return;
  parent.height = std::max(parent.height, child->height + 1);
  if (parent.height > kMaxExprHeight) fail(parent.line, "expression nested too deeply (limit 256)");
}

void add_arg(Expr& parent, ExprPtr child) {
  note_child(parent, child.get());
  parent.args.push_back(std::move(child));
}

void add_key(Expr& parent, ExprPtr child) {
  note_child(parent, child.get());
  parent.keys.push_back(std::move(child));
}

void add_kwarg(Expr& parent, std::string key, ExprPtr child) {
  note_child(parent, child.get());
  parent.kwargs.emplace_back(std::move(key), std::move(child));
}

class Parser {
 public:
  explicit Parser(const std::vector<Token>& tokens) : t_(tokens) {}

  Body parse_all() {
    Body body = parse_body({});
    if (cur().type != TokenType::kEof) fail(cur().line, "unexpected '" + cur().value + "'");
    return body;
  }

 private:
  // RAII guard for the nesting bound.
  struct Depth {
    explicit Depth(Parser& p) : p_(p) {
      if (++p_.depth_ > kMaxParseDepth) fail(p_.cur().line, "template nested too deeply (limit 500)");
    }
    ~Depth() { --p_.depth_; }
    Parser& p_;
  };

  const Token& cur() const { return t_[i_]; }
  const Token& peek(size_t n = 1) const { return t_[std::min(i_ + n, t_.size() - 1)]; }
  void next() {
    if (i_ + 1 < t_.size()) ++i_;
  }
  bool is_op(std::string_view op) const { return cur().type == TokenType::kOp && cur().value == op; }
  bool is_name(std::string_view n) const { return cur().type == TokenType::kName && cur().value == n; }
  bool accept_op(std::string_view op) {
    if (!is_op(op)) return false;
    next();
    return true;
  }
  bool accept_name(std::string_view n) {
    if (!is_name(n)) return false;
    next();
    return true;
  }
  std::string describe(const Token& tok) const {
    switch (tok.type) {
      case TokenType::kEof: return "end of template";
      case TokenType::kBlockEnd: return "'%}'";
      case TokenType::kVarEnd: return "'}}'";
      case TokenType::kText: return "text";
      case TokenType::kString: return "a string";
      default: return "'" + tok.value + "'";
    }
  }
  void expect_op(std::string_view op) {
    if (!accept_op(op)) fail(cur().line, "expected '" + std::string(op) + "', found " + describe(cur()));
  }
  std::string expect_name() {
    if (cur().type != TokenType::kName) fail(cur().line, "expected a name, found " + describe(cur()));
    std::string n = cur().value;
    next();
    return n;
  }
  void expect_block_end() {
    if (cur().type != TokenType::kBlockEnd) fail(cur().line, "expected '%}', found " + describe(cur()));
    next();
  }

  // Parses statements until a {% name %} tag whose name is in `ends` (left unconsumed: the
  // current token is then that name) or the end of input.
  Body parse_body(std::initializer_list<std::string_view> ends) {
    Depth d(*this);
    if (++block_depth_ > kMaxBlockDepth) fail(cur().line, "statements nested too deeply (limit 100)");
    struct Leave {
      int& depth;
      ~Leave() { --depth; }
    } leave{block_depth_};
    Body body;
    for (;;) {
      const Token& tok = cur();
      if (tok.type == TokenType::kEof) {
        if (ends.size()) fail(tok.line, "unexpected end of template: missing {% " + std::string(*ends.begin()) + " %}");
        return body;
      }
      if (tok.type == TokenType::kText) {
        auto s = std::make_unique<Stmt>();
        s->kind = StmtKind::kText;
        s->line = tok.line;
        s->text = tok.value;
        body.push_back(std::move(s));
        next();
      } else if (tok.type == TokenType::kVarBegin) {
        next();
        auto s = std::make_unique<Stmt>();
        s->kind = StmtKind::kOutput;
        s->line = tok.line;
        s->expr = parse_tuple_or_expr();
        if (cur().type != TokenType::kVarEnd) fail(cur().line, "expected '}}', found " + describe(cur()));
        next();
        body.push_back(std::move(s));
      } else if (tok.type == TokenType::kBlockBegin) {
        const Token& name = peek();
        if (name.type != TokenType::kName) fail(name.line, "expected a statement name after '{%'");
        for (std::string_view e : ends) {
          if (name.value == e) {
            next();
            return body;
          }
        }
        next();
        body.push_back(parse_statement());
      } else {
        fail(tok.line, "unexpected " + describe(tok));
      }
    }
  }

  StmtPtr new_stmt(StmtKind kind, int line) {
    auto s = std::make_unique<Stmt>();
    s->kind = kind;
    s->line = line;
    return s;
  }

  StmtPtr parse_statement() {
    const int line = cur().line;
    const std::string name = expect_name();
    if (name == "if") return parse_if(line);
    if (name == "for") return parse_for(line);
    if (name == "set") return parse_set(line);
    if (name == "macro") return parse_macro(line);
    if (name == "call") return parse_call_block(line);
    if (name == "filter") return parse_filter_block(line);
    if (name == "generation") {
      auto s = new_stmt(StmtKind::kGeneration, line);
      expect_block_end();
      s->body = parse_body({"endgeneration"});
      next();
      expect_block_end();
      return s;
    }
    if (name == "break" || name == "continue") {
      if (loop_depth_ == 0) fail(line, "'" + name + "' outside of a loop");
      auto s = new_stmt(name == "break" ? StmtKind::kBreak : StmtKind::kContinue, line);
      expect_block_end();
      return s;
    }
    if (name == "include" || name == "import" || name == "from" || name == "extends" || name == "block") {
      fail(line, "'" + name + "' is not supported: templates cannot load other templates");
    }
    fail(line, "unknown statement '" + name + "'");
  }

  StmtPtr parse_if(int line) {
    auto s = new_stmt(StmtKind::kIf, line);
    for (;;) {
      ExprPtr cond = parse_tuple_or_expr();
      expect_block_end();
      Body body = parse_body({"elif", "else", "endif"});
      s->branches.emplace_back(std::move(cond), std::move(body));
      const std::string tag = cur().value;
      next();
      if (tag == "elif") continue;
      if (tag == "else") {
        expect_block_end();
        s->else_body = parse_body({"endif"});
        next();
      }
      expect_block_end();
      return s;
    }
  }

  std::vector<std::string> parse_targets() {
    std::vector<std::string> names;
    const bool paren = accept_op("(");
    names.push_back(expect_name());
    while (accept_op(",")) {
      if (is_name("in") || is_op("=") || is_op(")")) break;
      names.push_back(expect_name());
    }
    if (paren) expect_op(")");
    return names;
  }

  StmtPtr parse_for(int line) {
    auto s = new_stmt(StmtKind::kFor, line);
    s->targets = parse_targets();
    if (!accept_name("in")) fail(cur().line, "expected 'in' in a for loop, found " + describe(cur()));
    s->expr = parse_tuple_or_expr(/*allow_cond=*/false);
    if (accept_name("if")) s->filter = parse_expr();
    if (accept_name("recursive")) fail(line, "recursive loops are not supported");
    expect_block_end();
    ++loop_depth_;
    const int refs_before = loop_refs_;
    s->body = parse_body({"endfor", "else"});
    s->uses_loop = loop_refs_ != refs_before;
    --loop_depth_;
    if (cur().value == "else") {
      next();
      expect_block_end();
      const int saved = loop_depth_;
      loop_depth_ = 0;
      s->else_body = parse_body({"endfor"});
      loop_depth_ = saved;
    }
    next();
    expect_block_end();
    return s;
  }

  StmtPtr parse_set(int line) {
    if (cur().type == TokenType::kName && peek().type == TokenType::kOp && peek().value == ".") {
      auto s = new_stmt(StmtKind::kSet, line);
      s->targets.push_back(expect_name());
      next();
      s->attr = expect_name();
      expect_op("=");
      s->expr = parse_tuple_or_expr();
      expect_block_end();
      return s;
    }
    std::vector<std::string> targets = parse_targets();
    if (accept_op("=")) {
      auto s = new_stmt(StmtKind::kSet, line);
      s->targets = std::move(targets);
      s->expr = parse_tuple_or_expr();
      expect_block_end();
      return s;
    }
    if (targets.size() != 1) fail(line, "a block set takes one name");
    auto s = new_stmt(StmtKind::kSetBlock, line);
    s->targets = std::move(targets);
    if (is_op("|")) s->filter = parse_filters(nullptr);
    expect_block_end();
    s->body = parse_body({"endset"});
    next();
    expect_block_end();
    return s;
  }

  StmtPtr parse_macro(int line) {
    auto s = new_stmt(StmtKind::kMacro, line);
    s->targets.push_back(expect_name());
    expect_op("(");
    while (!is_op(")")) {
      if (!s->params.empty()) expect_op(",");
      if (is_op(")")) break;
      std::string p = expect_name();
      ExprPtr def;
      if (accept_op("=")) def = parse_expr();
      s->params.emplace_back(std::move(p), std::move(def));
    }
    next();
    expect_block_end();
    const int saved = loop_depth_;
    loop_depth_ = 0;
    s->body = parse_body({"endmacro"});
    loop_depth_ = saved;
    next();
    if (cur().type == TokenType::kName) next();  // {% endmacro name %}
    expect_block_end();
    return s;
  }

  StmtPtr parse_call_block(int line) {
    auto s = new_stmt(StmtKind::kCallBlock, line);
    if (is_op("(")) fail(line, "call blocks with caller arguments are not supported");
    s->expr = parse_expr();
    if (s->expr->kind != ExprKind::kCall) fail(line, "expected a macro call after 'call'");
    expect_block_end();
    s->body = parse_body({"endcall"});
    next();
    expect_block_end();
    return s;
  }

  StmtPtr parse_filter_block(int line) {
    auto s = new_stmt(StmtKind::kFilterBlock, line);
    // `{% filter upper | trim %}`: a chain applied to the body's output.
    ExprPtr chain;
    do {
      auto f = make_expr(ExprKind::kFilter, cur().line);
      f->name = expect_name();
      if (chain) add_arg(*f, std::move(chain));
      else add_arg(*f, nullptr);
      if (is_op("(")) parse_call_args(*f);
      chain = std::move(f);
    } while (accept_op("|"));
    s->filter = std::move(chain);
    expect_block_end();
    s->body = parse_body({"endfilter"});
    next();
    expect_block_end();
    return s;
  }

  // ---- expressions ----

  ExprPtr parse_tuple_or_expr(bool allow_cond = true) {
    const int line = cur().line;
    ExprPtr first = allow_cond ? parse_expr() : parse_or();
    if (!is_op(",")) return first;
    auto t = make_expr(ExprKind::kTuple, line);
    add_arg(*t, std::move(first));
    while (accept_op(",")) {
      if (cur().type == TokenType::kBlockEnd || cur().type == TokenType::kVarEnd || is_op("=")) break;
      if (!allow_cond && is_name("if")) break;
      add_arg(*t, allow_cond ? parse_expr() : parse_or());
    }
    return t;
  }

  ExprPtr parse_expr() {
    Depth d(*this);
    const int line = cur().line;
    ExprPtr e = parse_or();
    while (accept_name("if")) {
      auto c = make_expr(ExprKind::kCondition, line);
      add_arg(*c, std::move(e));
      add_arg(*c, parse_or());
      add_arg(*c, accept_name("else") ? parse_expr() : nullptr);
      e = std::move(c);
    }
    return e;
  }

  ExprPtr binary(const char* op, ExprPtr a, ExprPtr b, int line) {
    auto e = make_expr(ExprKind::kBinary, line);
    e->name = op;
    add_arg(*e, std::move(a));
    add_arg(*e, std::move(b));
    return e;
  }

  ExprPtr parse_or() {
    ExprPtr e = parse_and();
    while (is_name("or")) {
      const int line = cur().line;
      next();
      e = binary("or", std::move(e), parse_and(), line);
    }
    return e;
  }

  ExprPtr parse_and() {
    ExprPtr e = parse_not();
    while (is_name("and")) {
      const int line = cur().line;
      next();
      e = binary("and", std::move(e), parse_not(), line);
    }
    return e;
  }

  ExprPtr parse_not() {
    if (is_name("not")) {
      Depth d(*this);
      auto e = make_expr(ExprKind::kUnary, cur().line);
      next();
      e->name = "not";
      add_arg(*e, parse_not());
      return e;
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    const int line = cur().line;
    ExprPtr first = parse_math1();
    ExprPtr cmp;
    for (;;) {
      std::string op;
      if (cur().type == TokenType::kOp &&
          (cur().value == "==" || cur().value == "!=" || cur().value == "<" || cur().value == "<=" ||
           cur().value == ">" || cur().value == ">=")) {
        op = cur().value;
        next();
      } else if (is_name("in")) {
        op = "in";
        next();
      } else if (is_name("not") && peek().type == TokenType::kName && peek().value == "in") {
        op = "notin";
        next();
        next();
      } else {
        break;
      }
      if (!cmp) {
        cmp = make_expr(ExprKind::kCompare, line);
        add_arg(*cmp, std::move(first));
      }
      cmp->ops.push_back(op);
      add_arg(*cmp, parse_math1());
    }
    return cmp ? std::move(cmp) : std::move(first);
  }

  ExprPtr parse_math1() {
    ExprPtr e = parse_concat();
    while (is_op("+") || is_op("-")) {
      const int line = cur().line;
      const char* op = cur().value == "+" ? "+" : "-";
      next();
      e = binary(op, std::move(e), parse_concat(), line);
    }
    return e;
  }

  ExprPtr parse_concat() {
    ExprPtr e = parse_math2();
    while (is_op("~")) {
      const int line = cur().line;
      next();
      e = binary("~", std::move(e), parse_math2(), line);
    }
    return e;
  }

  ExprPtr parse_math2() {
    ExprPtr e = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const int line = cur().line;
      const std::string op = cur().value;
      next();
      e = binary(op == "*" ? "*" : op == "/" ? "/" : op == "//" ? "//" : "%", std::move(e), parse_pow(), line);
    }
    return e;
  }

  ExprPtr parse_pow() {
    ExprPtr e = parse_unary(true);
    while (is_op("**")) {
      const int line = cur().line;
      next();
      e = binary("**", std::move(e), parse_unary(true), line);
    }
    return e;
  }

  ExprPtr parse_unary(bool with_filter) {
    Depth d(*this);
    ExprPtr e;
    if (is_op("-") || is_op("+")) {
      auto u = make_expr(ExprKind::kUnary, cur().line);
      u->name = cur().value;
      next();
      add_arg(*u, parse_unary(false));
      e = std::move(u);
    } else {
      e = parse_primary();
    }
    e = parse_postfix(std::move(e));
    if (with_filter) e = parse_filters(std::move(e));
    return e;
  }

  ExprPtr parse_primary() {
    const Token& tok = cur();
    const int line = tok.line;
    switch (tok.type) {
      case TokenType::kName: {
        auto e = make_expr(ExprKind::kLiteral, line);
        if (tok.value == "true" || tok.value == "True") {
          e->literal = Value::boolean(true);
        } else if (tok.value == "false" || tok.value == "False") {
          e->literal = Value::boolean(false);
        } else if (tok.value == "none" || tok.value == "None") {
          e->literal = Value::none();
        } else {
          e->kind = ExprKind::kName;
          e->name = tok.value;
          if (tok.value == "loop") ++loop_refs_;
        }
        next();
        return e;
      }
      case TokenType::kString: {
        std::string s;
        while (cur().type == TokenType::kString) {  // adjacent literals concatenate
          s += cur().value;
          next();
        }
        auto e = make_expr(ExprKind::kLiteral, line);
        e->literal = Value::string(std::move(s));
        return e;
      }
      case TokenType::kInt: {
        auto e = make_expr(ExprKind::kLiteral, line);
        int64_t v = 0;
        auto r = std::from_chars(tok.value.data(), tok.value.data() + tok.value.size(), v);
        if (r.ec != std::errc()) {
          e->literal = Value::floating(std::strtod(tok.value.c_str(), nullptr));
        } else {
          e->literal = Value::integer(v);
        }
        next();
        return e;
      }
      case TokenType::kFloat: {
        auto e = make_expr(ExprKind::kLiteral, line);
        e->literal = Value::floating(std::strtod(tok.value.c_str(), nullptr));
        next();
        return e;
      }
      case TokenType::kOp:
        if (tok.value == "(") {
          next();
          if (accept_op(")")) return make_expr(ExprKind::kTuple, line);
          ExprPtr first = parse_expr();
          if (accept_op(")")) return first;
          auto t = make_expr(ExprKind::kTuple, line);
          add_arg(*t, std::move(first));
          while (accept_op(",")) {
            if (is_op(")")) break;
            add_arg(*t, parse_expr());
          }
          expect_op(")");
          return t;
        }
        if (tok.value == "[") {
          next();
          auto l = make_expr(ExprKind::kList, line);
          while (!is_op("]")) {
            if (!l->args.empty()) expect_op(",");
            if (is_op("]")) break;
            add_arg(*l, parse_expr());
          }
          next();
          return l;
        }
        if (tok.value == "{") {
          next();
          auto d = make_expr(ExprKind::kDict, line);
          while (!is_op("}")) {
            if (!d->args.empty()) expect_op(",");
            if (is_op("}")) break;
            add_key(*d, parse_expr());
            expect_op(":");
            add_arg(*d, parse_expr());
          }
          next();
          return d;
        }
        break;
      default:
        break;
    }
    fail(line, "unexpected " + describe(tok) + " in an expression");
  }

  void parse_call_args(Expr& call) {
    expect_op("(");
    bool first = true;
    while (!is_op(")")) {
      if (!first) expect_op(",");
      first = false;
      if (is_op(")")) break;
      if (is_op("*") || is_op("**")) fail(cur().line, "*args and **kwargs in calls are not supported");
      if (cur().type == TokenType::kName && peek().type == TokenType::kOp && peek().value == "=") {
        std::string key = cur().value;
        next();
        next();
        add_kwarg(call, std::move(key), parse_expr());
      } else {
        if (!call.kwargs.empty()) fail(cur().line, "a positional argument follows a keyword argument");
        add_arg(call, parse_expr());
      }
    }
    next();
  }

  ExprPtr parse_postfix(ExprPtr e) {
    for (;;) {
      Depth d(*this);
      const int line = cur().line;
      if (is_op(".")) {
        next();
        if (cur().type == TokenType::kInt) {
          auto g = make_expr(ExprKind::kGetItem, line);
          auto idx = make_expr(ExprKind::kLiteral, line);
          int64_t index = 0;
          const std::string& digits = cur().value;
          if (std::from_chars(digits.data(), digits.data() + digits.size(), index).ec != std::errc()) {
            fail(line, "index '" + digits + "' is too large");
          }
          idx->literal = Value::integer(index);
          next();
          add_arg(*g, std::move(e));
          add_arg(*g, std::move(idx));
          e = std::move(g);
          continue;
        }
        auto g = make_expr(ExprKind::kGetAttr, line);
        g->name = expect_name();
        add_arg(*g, std::move(e));
        e = std::move(g);
      } else if (is_op("[")) {
        next();
        e = parse_subscript(std::move(e), line);
      } else if (is_op("(")) {
        auto c = make_expr(ExprKind::kCall, line);
        add_arg(*c, std::move(e));
        parse_call_args(*c);
        e = std::move(c);
      } else {
        return e;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr obj, int line) {
    ExprPtr start, stop, step;
    bool slice = false;
    if (!is_op(":")) start = parse_expr();
    if (accept_op(":")) {
      slice = true;
      if (!is_op("]") && !is_op(":")) stop = parse_expr();
      if (accept_op(":")) {
        if (!is_op("]")) step = parse_expr();
      }
    }
    expect_op("]");
    if (!slice) {
      auto g = make_expr(ExprKind::kGetItem, line);
      add_arg(*g, std::move(obj));
      add_arg(*g, std::move(start));
      return g;
    }
    auto s = make_expr(ExprKind::kSlice, line);
    add_arg(*s, std::move(obj));
    add_arg(*s, std::move(start));
    add_arg(*s, std::move(stop));
    add_arg(*s, std::move(step));
    return s;
  }

  std::string dotted_name() {
    std::string n = expect_name();
    while (is_op(".") && peek().type == TokenType::kName) {
      next();
      n += "." + expect_name();
    }
    return n;
  }

  ExprPtr parse_filters(ExprPtr e) {
    for (;;) {
      Depth d(*this);
      const int line = cur().line;
      if (accept_op("|")) {
        auto f = make_expr(ExprKind::kFilter, line);
        f->name = dotted_name();
        add_arg(*f, std::move(e));
        if (is_op("(")) parse_call_args(*f);
        e = std::move(f);
      } else if (is_name("is")) {
        next();
        auto t = make_expr(ExprKind::kTest, line);
        t->negated = accept_name("not");
        t->name = dotted_name();
        add_arg(*t, std::move(e));
        if (is_op("(")) {
          parse_call_args(*t);
        } else if ((cur().type == TokenType::kName && !is_name("else") && !is_name("or") && !is_name("and")) ||
                   cur().type == TokenType::kString || cur().type == TokenType::kInt ||
                   cur().type == TokenType::kFloat || is_op("[") || is_op("{")) {
          if (cur().type == TokenType::kName && (is_name("if") || is_name("in") || is_name("not") || is_name("is"))) {
            // a keyword ends the test
          } else {
            add_arg(*t, parse_postfix(parse_primary()));
          }
        }
        e = std::move(t);
      } else if (is_op("(")) {
        auto c = make_expr(ExprKind::kCall, line);
        add_arg(*c, std::move(e));
        parse_call_args(*c);
        e = std::move(c);
      } else {
        return e;
      }
    }
  }

  const std::vector<Token>& t_;
  size_t i_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;
  int loop_refs_ = 0;  // names `loop` seen so far
  int block_depth_ = 0;
};

}  // namespace

Body parse_tokens(const std::vector<Token>& tokens) { return Parser(tokens).parse_all(); }

}  // namespace hearth::jinja
