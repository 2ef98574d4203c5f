// Tool calls in a model's reply: parsing them from each family's syntax (after generation, or
// as a stream that holds back what may be a call), and the constraint that forces a call when a
// request says tool_choice "required" or names a function.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "hearth/engine/chat_template.h"
#include "hearth/server/api_error.h"
#include "hearth/server/openai_request.h"

namespace hearth::server {

struct ToolCall {
  std::string name;
  std::string arguments;  // compact JSON text of an object (the OpenAI wire form)
};

struct ParsedReply {
  std::string content;  // the text outside the calls (trailing whitespace trimmed when there are calls)
  std::vector<ToolCall> calls;
};

// Finds the tool calls in `text` written in `syntax` (see engine::ToolCallSyntax). A reply with
// no well-formed call is all content: a call whose JSON does not parse, or that has no name,
// leaves the text as it was. At most kMaxToolCallsPerMessage calls are taken.
ParsedReply parse_tool_calls(std::string_view text, engine::ToolCallSyntax syntax);

// Streams a reply's content while holding back what may be a tool call: from the first call
// marker on (or, for the JSON syntaxes, a reply that opens with '{' or '['), nothing more is
// sent as content until finish() parses the whole reply.
class ToolCallStream {
 public:
  // `forced_prefix`: text the prompt ended with to force a call (see ForcedToolCall); it is part
  // of the reply for parsing but was never generated, so the reply is held from the start.
  explicit ToolCallStream(engine::ToolCallSyntax syntax, std::string forced_prefix = "");
  // Adds generated text; returns the content that is safe to send now.
  std::string feed(std::string_view delta);
  // The reply is complete: the content not yet sent, and the calls.
  ParsedReply finish();

 private:
  engine::ToolCallSyntax syntax_;
  std::string prefix_;
  std::string text_;
  size_t sent_ = 0;
  bool held_ = false;
};

// How a call is forced (tool_choice "required" or a named function): `prompt_suffix` is
// appended to the rendered prompt (the syntax's opener, e.g. "<tool_call>\n"), and the reply is
// constrained to `schema_json`: the call's JSON, with the name among the allowed ones and the
// arguments matching the function's parameters.
struct ForcedToolCall {
  std::string prompt_suffix;
  std::string schema_json;
};
ForcedToolCall forced_tool_call(const CompletionRequest& r, engine::ToolCallSyntax syntax);

}  // namespace hearth::server
