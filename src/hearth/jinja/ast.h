// The syntax tree of a parsed template: expressions and statements, each with its source line.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "hearth/jinja/value.h"

namespace hearth::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

enum class ExprKind {
  kLiteral,   // literal
  kName,      // name
  kGetAttr,   // a.name
  kGetItem,   // a[b]
  kSlice,     // a[b:c:d] (args: start, stop, step; null when absent)
  kCall,      // a(args, kwargs)
  kFilter,    // a | name(args, kwargs); a is null inside {% filter %}
  kTest,      // a is [not] name(args)
  kUnary,     // op a: "-", "+", "not"
  kBinary,    // a op b: + - * / // % ** ~ and or
  kCompare,   // a op1 b op2 c ...: ops and args
  kCondition, // args[0] if args[1] else args[2] (args[2] null: undefined)
  kList,      // [args]
  kTuple,     // (args)
  kDict,      // {keys[i]: args[i]}
};

struct Expr {
  ExprKind kind;
  int line = 0;
  int height = 1;  // of the subtree, bounded by kMaxExprHeight
  Value literal;
  std::string name;                // variable, attribute, filter, test or operator
  bool negated = false;            // `is not`
  std::vector<ExprPtr> args;       // operands / call arguments / elements
  std::vector<std::string> ops;    // kCompare operators
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  std::vector<ExprPtr> keys;       // kDict
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

enum class StmtKind {
  kText,        // text
  kOutput,      // {{ expr }}
  kIf,          // branches (cond, body) ..., else_body
  kFor,         // for targets in expr [if filter] body [else else_body]
  kSet,         // set targets = expr, or set ns.attr = expr (attr not empty)
  kSetBlock,    // set name %}body{% endset
  kMacro,       // macro name(params) body
  kCallBlock,   // call macro(...) body
  kFilterBlock, // filter f %}body{% endfilter
  kBreak,
  kContinue,
  kGeneration,  // generation %}body{% endgeneration: renders body
};

struct Stmt {
  StmtKind kind;
  int line = 0;
  std::string text;                    // kText
  ExprPtr expr;                        // output / for iterable / set value / call / filter
  ExprPtr filter;                      // for ... if filter
  std::vector<std::string> targets;    // for / set names; macro name in targets[0]
  std::string attr;                    // set ns.attr
  bool uses_loop = false;              // kFor: the body names `loop` (else it is not built)
  std::vector<std::pair<ExprPtr, Body>> branches;  // kIf
  Body body;
  Body else_body;
  std::vector<std::pair<std::string, ExprPtr>> params;  // macro parameters (default may be null)
};

}  // namespace hearth::jinja
