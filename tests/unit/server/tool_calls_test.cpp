// Tool calls: the request fields, the parsers of each family's syntax (checked on the calls that
// real templates render, as the reference renderer wrote them in ../shared/chat-templates), the
// streaming hold-back, and the forced-call constraint.
#include "hearth/server/tool_calls.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "hearth/engine/json_constraint.h"
#include "hearth/server/openai_request.h"
#include "shared_data.h"

namespace hearth::server {
namespace {

using engine::ToolCallSyntax;
using nlohmann::json;

const char* kTools = R"([{"type": "function", "function": {"name": "get_weather", "parameters":
  {"type": "object", "properties": {"location": {"type": "string"}, "unit": {"type": "string",
   "enum": ["celsius", "fahrenheit"]}}, "required": ["location"]}}},
  {"type": "function", "function": {"name": "ping"}}])";

CompletionRequest parse_chat(const std::string& extra) {
  const std::string body = R"({"messages": [{"role": "user", "content": "hi"}], "tools": )" + std::string(kTools) +
                           (extra.empty() ? "" : ", " + extra) + "}";
  auto r = parse_completion_request(body, /*chat=*/true, {});
  EXPECT_TRUE(std::holds_alternative<CompletionRequest>(r)) << std::get<ApiError>(r).message;
  return std::get<CompletionRequest>(std::move(r));
}

std::string error_of(const std::string& body) {
  auto r = parse_completion_request(body, /*chat=*/true, {});
  if (auto* e = std::get_if<ApiError>(&r)) return e->param + ": " + e->message;
  return "";
}

TEST(ToolRequest, ParsesToolsChoiceAndHistory) {
  CompletionRequest r = parse_chat("");
  ASSERT_EQ(r.tools.size(), 2u);
  EXPECT_EQ(r.tools[0].name, "get_weather");
  EXPECT_EQ(r.tools[1].parameters_json, "");
  EXPECT_EQ(r.tool_choice, ToolChoice::kAuto);
  EXPECT_TRUE(r.parallel_tool_calls);
  // The template gets the tools as sent, key order kept.
  EXPECT_EQ(json::parse(r.tools_json), json::parse(kTools));
  EXPECT_EQ(parse_chat(R"("tool_choice": "required")").tool_choice, ToolChoice::kRequired);
  EXPECT_EQ(parse_chat(R"("tool_choice": "none")").tool_choice, ToolChoice::kNone);
  CompletionRequest named = parse_chat(R"("tool_choice": {"type": "function", "function": {"name": "ping"}},
                                          "parallel_tool_calls": false)");
  EXPECT_EQ(named.tool_choice, ToolChoice::kNamed);
  EXPECT_EQ(named.tool_choice_name, "ping");
  EXPECT_FALSE(named.parallel_tool_calls);

  // History: an assistant call with string arguments (OpenAI's wire form) reaches the template
  // with object arguments (the transformers convention), and a tool result keeps its id.
  auto h = parse_completion_request(R"({"messages": [
      {"role": "user", "content": "weather?"},
      {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
        "function": {"name": "get_weather", "arguments": "{\"location\": \"Paris\"}"}}]},
      {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}]})",
                                    true, {});
  ASSERT_TRUE(std::holds_alternative<CompletionRequest>(h));
  const auto& msgs = std::get<CompletionRequest>(h).messages;
  ASSERT_EQ(msgs.size(), 3u);
  const json a = json::parse(msgs[1].json);
  EXPECT_TRUE(a["content"].is_null());
  EXPECT_EQ(a["tool_calls"][0]["function"]["arguments"], json::parse(R"({"location": "Paris"})"));
  EXPECT_EQ(a["tool_calls"][0]["id"], "call_1");
  EXPECT_EQ(json::parse(msgs[2].json)["tool_call_id"], "call_1");
  EXPECT_EQ(std::get<CompletionRequest>(h).tool_choice, ToolChoice::kNone);  // no tools
}

TEST(ToolRequest, RefusesBadToolsWithTheirField) {
  const std::string user = R"({"messages": [{"role": "user", "content": "hi"}], )";
  EXPECT_EQ(error_of(user + R"("tools": {}})"), "tools: 'tools' must be an array of function tools");
  EXPECT_NE(error_of(user + R"("tools": [{"type": "retrieval"}]})").find("tools[0].type"), std::string::npos);
  EXPECT_NE(error_of(user + R"("tools": [{"type": "function", "function": {"name": "a b"}}]})").find(
                "tools[0].function.name"),
            std::string::npos);
  EXPECT_NE(error_of(user + R"("tools": [{"type": "function", "function": {"name": "f"}},
                                          {"type": "function", "function": {"name": "f"}}]})")
                .find("declared twice"),
            std::string::npos);
  EXPECT_NE(error_of(user + R"("tools": [{"type": "function", "function": {"name": "f", "parameters": 3}}]})")
                .find("tools[0].function.parameters"),
            std::string::npos);
  EXPECT_NE(error_of(user + R"("tool_choice": "required"})").find("there are no 'tools'"), std::string::npos);
  EXPECT_NE(error_of(user + R"("tools": )" + kTools + R"(, "tool_choice": {"type": "function", "function":
                                {"name": "nope"}}})")
                .find("does not declare"),
            std::string::npos);
  EXPECT_NE(error_of(user + R"("tools": )" + kTools + R"(, "tool_choice": "sometimes"})").find("tool_choice"),
            std::string::npos);
  std::string many = user + R"("tools": [)";
  for (size_t i = 0; i <= kMaxTools; ++i) many += (i ? "," : "") + fmt::format(R"({{"type": "function", "function": {{"name": "f{}"}}}})", i);
  EXPECT_NE(error_of(many + "]}").find("more than"), std::string::npos);
  EXPECT_NE(error_of(R"({"messages": [{"role": "assistant", "content": null, "tool_calls": [{"function": {"name": "f",
                         "arguments": 7}}]}]})")
                .find("messages[0].tool_calls[0].function.arguments"),
            std::string::npos);
}

void expect_call(const ToolCall& c, const std::string& name, const std::string& args) {
  EXPECT_EQ(c.name, name);
  EXPECT_EQ(json::parse(c.arguments), json::parse(args)) << c.arguments;
}

TEST(ToolCallParse, EachFamilysSyntax) {
  auto h = parse_tool_calls("Let me look.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"location\": "
                            "\"Paris\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"ping\", \"arguments\": {}}\n</tool_call>",
                            ToolCallSyntax::kHermes);
  EXPECT_EQ(h.content, "Let me look.");
  ASSERT_EQ(h.calls.size(), 2u);
  expect_call(h.calls[0], "get_weather", R"({"location": "Paris"})");
  expect_call(h.calls[1], "ping", "{}");
  // Arguments sent as a JSON string are unwrapped; a missing closing tag at the end is accepted.
  auto s = parse_tool_calls("<tool_call>{\"name\": \"f\", \"arguments\": \"{\\\"a\\\": 1}\"}", ToolCallSyntax::kHermes);
  ASSERT_EQ(s.calls.size(), 1u);
  expect_call(s.calls[0], "f", R"({"a": 1})");
  // Not a call: bad JSON, no name, text after an unclosed call: all content, unchanged.
  for (const char* text : {"<tool_call>{\"name\": \"f\", \"arguments\": {</tool_call>",
                           "<tool_call>{\"arguments\": {}}</tool_call>", "<tool_call>{\"name\": \"f\"} and more",
                           "plain words"}) {
    auto r = parse_tool_calls(text, ToolCallSyntax::kHermes);
    EXPECT_TRUE(r.calls.empty()) << text;
    EXPECT_EQ(r.content, text);
  }
  // Llama 3.x: the whole reply, parameters, optional python tag, ';' between calls.
  auto l = parse_tool_calls("<|python_tag|>{\"name\": \"f\", \"parameters\": {\"x\": [1, 2]}}; {\"name\": \"g\", "
                            "\"parameters\": {}}",
                            ToolCallSyntax::kLlama3);
  ASSERT_EQ(l.calls.size(), 2u);
  expect_call(l.calls[0], "f", R"({"x": [1, 2]})");
  EXPECT_EQ(l.content, "");
  EXPECT_TRUE(parse_tool_calls("The JSON is {\"name\": \"f\"}", ToolCallSyntax::kLlama3).calls.empty());
  EXPECT_TRUE(parse_tool_calls("{\"not\": \"a call\"}", ToolCallSyntax::kLlama3).calls.empty());
  // Mistral: the JSON list (Nemo) and name[CALL_ID]id[ARGS]{...} (Small 3.2), repeated.
  auto m = parse_tool_calls("[TOOL_CALLS][{\"name\": \"f\", \"arguments\": {\"a\": \"b\"}, \"id\": \"abc123def\"}]",
                            ToolCallSyntax::kMistral);
  ASSERT_EQ(m.calls.size(), 1u);
  expect_call(m.calls[0], "f", R"({"a": "b"})");
  auto m2 = parse_tool_calls("Sure.[TOOL_CALLS]f[ARGS]{\"a\": 1}[TOOL_CALLS]g[CALL_ID]x1[ARGS]{}",
                             ToolCallSyntax::kMistral);
  EXPECT_EQ(m2.content, "Sure.");
  ASSERT_EQ(m2.calls.size(), 2u);
  expect_call(m2.calls[1], "g", "{}");
  // Generic JSON: any of them.
  EXPECT_EQ(parse_tool_calls("[{\"name\": \"f\", \"arguments\": {}}]", ToolCallSyntax::kJson).calls.size(), 1u);
  EXPECT_EQ(parse_tool_calls("x <tool_call>{\"name\": \"f\"}</tool_call>", ToolCallSyntax::kJson).calls.size(), 1u);
  // Deep nesting is refused, not recursed into.
  std::string deep = "<tool_call>{\"name\": \"f\", \"arguments\": " + std::string(200, '[') + std::string(200, ']') + "}";
  EXPECT_TRUE(parse_tool_calls(deep, ToolCallSyntax::kHermes).calls.empty());
}

// The calls that the reference renderer wrote into real templates' prompts parse back to the
// conversation's call (get_weather, Madrid, celsius), with the syntax each template is detected as.
TEST(ToolCallParse, ReadsTheCallsThatRealTemplatesRender) {
  HEARTH_REQUIRE_SHARED(shared);
  const auto ct = shared / "chat-templates";
  struct Case {
    const char* name;
    ToolCallSyntax syntax;
    const char* open;   // the assistant turn starts after this (its first occurrence after the user's question)
    const char* close;  // and ends before this
  };
  const Case cases[] = {
      {"NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use", ToolCallSyntax::kHermes, "<|im_start|>assistant\n",
       "<|im_end|>"},
      {"Qwen-Qwen2.5-7B-Instruct", ToolCallSyntax::kHermes, "<|im_start|>assistant\n", "<|im_end|>"},
      {"mistralai-Mistral-Nemo-Instruct-2407", ToolCallSyntax::kMistral, "[/INST]", "</s>"},
      {"Mistral-Small-3.2-24B-Instruct-2506", ToolCallSyntax::kMistral, "[/INST]", "</s>"},
      {"meta-llama-Llama-3.1-8B-Instruct", ToolCallSyntax::kLlama3, "<|start_header_id|>assistant<|end_header_id|>\n\n",
       "<|eot_id|>"},
  };
  for (const Case& c : cases) {
    auto format = engine::ChatFormat::for_model(testing::read_text(ct / (std::string(c.name) + ".jinja")), "");
    ASSERT_TRUE(format.ok()) << c.name;
    EXPECT_EQ(format->tool_call_syntax(), c.syntax) << c.name;
    const std::string text = testing::read_text(ct / "expected" / (std::string(c.name) + "__tool-call-full-cycle.txt"));
    const size_t q = text.find("Is it warm in Madrid right now?");
    ASSERT_NE(q, std::string::npos) << c.name;
    const size_t open = text.find(c.open, q);
    ASSERT_NE(open, std::string::npos) << c.name;
    const size_t start = open + std::strlen(c.open);
    const size_t end = text.find(c.close, start);
    ASSERT_NE(end, std::string::npos) << c.name;
    const ParsedReply r = parse_tool_calls(std::string_view(text).substr(start, end - start), format->tool_call_syntax());
    ASSERT_EQ(r.calls.size(), 1u) << c.name << ": " << text.substr(start, end - start);
    expect_call(r.calls[0], "get_weather", R"({"location": "Madrid", "unit": "celsius"})");
    EXPECT_EQ(r.content.find("get_weather"), std::string::npos) << c.name;
  }
}

// Streaming: content before a call goes out as it comes; a marker split across deltas is held
// back; what follows the marker is held until the end, which gives the calls.
TEST(ToolCallStream, HoldsBackWhatMayBeACall) {
  ToolCallStream s(ToolCallSyntax::kHermes);
  std::string sent;
  for (const char* d : {"Checking", " now <to", "ol_c", "all>\n{\"name\": \"ping\",", " \"arguments\": {}}\n</tool_call>"}) {
    sent += s.feed(d);
  }
  EXPECT_EQ(sent, "Checking now ");
  ParsedReply r = s.finish();
  EXPECT_EQ(r.content, "");
  ASSERT_EQ(r.calls.size(), 1u);
  EXPECT_EQ(r.calls[0].name, "ping");

  // A '<' that turns out not to be a marker is released.
  ToolCallStream t(ToolCallSyntax::kHermes);
  sent = t.feed("a <");
  EXPECT_EQ(sent, "a ");
  sent += t.feed("b> c");
  EXPECT_EQ(sent, "a <b> c");
  EXPECT_TRUE(t.finish().calls.empty());

  // Llama 3: a reply that opens with '{' is held whole; one that does not streams.
  ToolCallStream l(ToolCallSyntax::kLlama3);
  EXPECT_EQ(l.feed("  "), "");
  EXPECT_EQ(l.feed("{\"name\": \"f\", "), "");
  EXPECT_EQ(l.feed("\"parameters\": {}}"), "");
  EXPECT_EQ(l.finish().calls.size(), 1u);
  ToolCallStream p(ToolCallSyntax::kLlama3);
  EXPECT_EQ(p.feed(" Hello"), " Hello");
  EXPECT_EQ(p.feed(" {x}"), " {x}");
  ParsedReply pr = p.finish();
  EXPECT_TRUE(pr.calls.empty());
  EXPECT_EQ(pr.content, "");
  // Held JSON that is not a call comes out as content at the end.
  ToolCallStream n(ToolCallSyntax::kJson);
  EXPECT_EQ(n.feed("[1, 2]"), "");
  ParsedReply nr = n.finish();
  EXPECT_TRUE(nr.calls.empty());
  EXPECT_EQ(nr.content, "[1, 2]");
  // A forced call's opener was in the prompt: the reply is held from the start and parsed with it.
  ToolCallStream f(ToolCallSyntax::kHermes, "<tool_call>\n");
  EXPECT_EQ(f.feed("{\"name\": \"ping\", \"arguments\": {}}"), "");
  EXPECT_EQ(f.finish().calls.size(), 1u);
}

// The forced call's schema accepts exactly a call of an allowed function with valid arguments.
TEST(ForcedToolCall, ConstrainsTheReplyToACall) {
  CompletionRequest r = parse_chat(R"("tool_choice": "required")");
  ForcedToolCall f = forced_tool_call(r, ToolCallSyntax::kHermes);
  EXPECT_EQ(f.prompt_suffix, "<tool_call>\n");
  auto schema = parse_json_schema(f.schema_json, true);
  ASSERT_TRUE(std::holds_alternative<engine::JsonSchema>(schema)) << f.schema_json;
  auto accepts = [&](const engine::JsonSchema& sc, const std::string& text) {
    auto c = engine::JsonConstraint::create(std::make_shared<const engine::JsonSchema>(sc));
    if (!c.ok()) return false;
    return c->advance(text) && c->can_end();
  };
  const auto& sc = std::get<engine::JsonSchema>(schema);
  EXPECT_TRUE(accepts(sc, R"({"name": "get_weather", "arguments": {"location": "Oslo", "unit": "celsius"}})"));
  EXPECT_TRUE(accepts(sc, R"({"name": "ping", "arguments": {}})"));
  EXPECT_FALSE(accepts(sc, R"({"name": "launch", "arguments": {}})"));
  EXPECT_FALSE(accepts(sc, R"({"name": "get_weather", "arguments": {"unit": "kelvin", "location": "x"}})"));
  EXPECT_FALSE(accepts(sc, R"({"name": "get_weather", "arguments": {"unit": "celsius"}})"));  // location required
  EXPECT_FALSE(accepts(sc, R"(Sure!)"));

  CompletionRequest named = parse_chat(R"("tool_choice": {"type": "function", "function": {"name": "ping"}})");
  auto ns = parse_json_schema(forced_tool_call(named, ToolCallSyntax::kLlama3).schema_json, true);
  ASSERT_TRUE(std::holds_alternative<engine::JsonSchema>(ns));
  EXPECT_TRUE(accepts(std::get<engine::JsonSchema>(ns), R"({"name": "ping", "parameters": {}})"));
  EXPECT_FALSE(accepts(std::get<engine::JsonSchema>(ns), R"({"name": "get_weather", "parameters": {"location": "x"}})"));
  // Mistral: a list after [TOOL_CALLS], one item unless parallel calls are allowed.
  ForcedToolCall m = forced_tool_call(r, ToolCallSyntax::kMistral);
  EXPECT_EQ(m.prompt_suffix, "[TOOL_CALLS]");
  auto ms = parse_json_schema(m.schema_json, true);
  ASSERT_TRUE(std::holds_alternative<engine::JsonSchema>(ms));
  EXPECT_TRUE(accepts(std::get<engine::JsonSchema>(ms),
                      R"([{"name": "ping", "arguments": {}}, {"name": "ping", "arguments": {}}])"));
}

}  // namespace
}  // namespace hearth::server
