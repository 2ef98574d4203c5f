// hearth's Jinja2-subset interpreter for Hugging Face chat templates.
//
// It renders `tokenizer.chat_template` strings the way transformers' apply_chat_template does
// (jinja2's ImmutableSandboxedEnvironment with trim_blocks, lstrip_blocks, loopcontrols and
// the `generation` block; globals raise_exception, strftime_now, namespace, range). Templates
// come from strangers, so parsing and rendering are pure functions with bounded work: nesting
// depth, loop iterations, call depth, evaluation steps and output size are all capped, there is
// no file or network access, and every error is a Status naming the template line.
//
//   auto t = Template::parse(source);            // Result<Template>
//   Context ctx;
//   ctx.messages = ...;                          // a list Value (see json_value.h)
//   auto prompt = t->render(ctx);                // Result<std::string>
#pragma once

#include <cstdint>
#include <ctime>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hearth/core/status.h"
#include "hearth/jinja/value.h"

namespace hearth::jinja {

struct Stmt;

// Work bounds for one render; the defaults are far above what real chat templates need.
struct Limits {
  size_t max_output_bytes = 16u << 20;   // the rendered text, and any one string built
  size_t max_list_items = 1u << 20;       // any one list built
  uint64_t max_steps = 5'000'000;         // evaluations (and data scanned): about a second of work
  int max_call_depth = 64;                // nested macro calls
  int max_eval_depth = 1000;              // nested evaluation (statements, expressions, calls)
  uint32_t max_value_depth = 128;         // nesting of a list/dict a template assigns
};

struct Context {
  Value messages = Value::list({});
  Value tools = Value::none();      // None when the request has no tools (defined but none)
  Value documents = Value::none();
  bool add_generation_prompt = false;
  std::string bos_token;
  std::string eos_token;
  std::optional<std::tm> now;       // strftime_now's time; the local clock when absent
  std::map<std::string, Value> extra;  // further variables (enable_thinking, ...)
  Limits limits;
};

// The largest template source accepted (real ones are under 40 KiB); it bounds the parser's
// memory, whose token list and tree are a few tens of times the source.
inline constexpr size_t kMaxTemplateBytes = 4u << 20;

class Template {
 public:
  // Errors: invalid_argument "line N: ..." for a syntax error; resource_exhausted for a source
  // over kMaxTemplateBytes.
  static Result<Template> parse(std::string_view source);

  // Errors: failed_precondition "line N: <message>" when the template calls raise_exception
  // (the message is the template's own), invalid_argument "line N: ..." for any other error
  // (type errors, undefined attributes, forbidden methods), resource_exhausted for a bound.
  Result<std::string> render(const Context& ctx) const;

 private:
  std::shared_ptr<const std::vector<std::unique_ptr<Stmt>>> body_;
};

// The message of a render error without its "line N: " prefix (a raise_exception text as the
// template wrote it).
std::string_view error_message_text(const Status& status);

}  // namespace hearth::jinja
