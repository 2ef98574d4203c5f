// libFuzzer target: any request body through the OpenAI request parsers (chat, completions,
// embeddings, tokenize, detokenize) must give a request or a 4xx error, never a crash, a hang
// or deep recursion; a schema that parses must compile into a matcher, and so must the forced
// tool call's schema of a request with tools. The same bytes, read as a model's reply, go
// through every tool-call syntax's parser, whole and streamed in pieces (the stream must send
// only text that is content, and end with the same calls).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>

#include "hearth/engine/json_constraint.h"
#include "hearth/server/openai_request.h"
#include "hearth/server/tool_calls.h"

namespace {

using namespace hearth::server;

template <typename T>
void check(const ApiResult<T>& r) {
  if (const auto* e = std::get_if<ApiError>(&r)) {
    if (e->status < 400 || e->status > 499 || e->message.empty()) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  RequestLimits limits;
  limits.max_tokens = 512;
  for (bool chat : {true, false}) {
    auto r = parse_completion_request(body, chat, limits);
    check(r);
    if (const auto* req = std::get_if<CompletionRequest>(&r)) {
      if (req->gen.stop.size() > kMaxStopStrings) std::abort();
      for (const auto& s : req->gen.stop) {
        if (s.size() > kMaxStopBytes) std::abort();
      }
      if (chat && !req->tools.empty()) {
        for (auto syntax : {hearth::engine::ToolCallSyntax::kHermes, hearth::engine::ToolCallSyntax::kMistral}) {
          auto schema = parse_json_schema(forced_tool_call(*req, syntax).schema_json, /*best_effort=*/true);
          check(schema);
        }
      }
      if (req->gen.json_schema) {
        auto c = hearth::engine::JsonConstraint::create(req->gen.json_schema);
        if (!c.ok()) std::abort();  // parse_json_schema already ran create()
        (void)c->advance(R"({"a": [1, "x", null]})");
      }
    }
  }
  using hearth::engine::ToolCallSyntax;
  for (auto syntax : {ToolCallSyntax::kJson, ToolCallSyntax::kHermes, ToolCallSyntax::kLlama3, ToolCallSyntax::kMistral}) {
    const ParsedReply whole = parse_tool_calls(body, syntax);
    if (whole.calls.size() > kMaxToolCallsPerMessage) std::abort();
    ToolCallStream stream(syntax);
    std::string sent;
    for (size_t i = 0; i < body.size(); i += 7) sent += stream.feed(body.substr(i, 7));
    const ParsedReply end = stream.finish();
    if (end.calls.size() != whole.calls.size()) std::abort();
    // Everything sent, plus the rest, is the reply's content (up to the whitespace trimmed
    // before the calls).
    auto trimmed = [](std::string t) {
      while (!t.empty() && (t.back() == ' ' || t.back() == '\n' || t.back() == '\t' || t.back() == '\r')) t.pop_back();
      return t;
    };
    if (end.calls.empty() ? sent + end.content != body : trimmed(sent + end.content) != whole.content) std::abort();
  }
  check(parse_embedding_request(body));
  check(parse_tokenize_request(body));
  check(parse_detokenize_request(body));
  return 0;
}
