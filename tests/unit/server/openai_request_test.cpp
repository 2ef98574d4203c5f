// Parsing of OpenAI request bodies: defaults, validation errors (status, param), schemas.
#include <gtest/gtest.h>

#include <cmath>

#include "hearth/server/openai_request.h"

namespace hearth::server {
namespace {

CompletionRequest ok_chat(const std::string& body) {
  auto r = parse_completion_request(body, true, RequestLimits{});
  if (auto* e = std::get_if<ApiError>(&r)) ADD_FAILURE() << e->message;
  return std::get<CompletionRequest>(std::move(r));
}

ApiError err(const std::string& body, bool chat = true) {
  auto r = parse_completion_request(body, chat, RequestLimits{});
  EXPECT_TRUE(std::holds_alternative<ApiError>(r)) << body;
  return std::holds_alternative<ApiError>(r) ? std::get<ApiError>(r) : ApiError{};
}

TEST(OpenAiRequest, ChatDefaultsAndFields) {
  CompletionRequest r = ok_chat(R"({"model":"m","messages":[{"role":"developer","content":"s"},
      {"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}],
      "temperature":0,"max_completion_tokens":7,"stop":"x","seed":5,"n":2,"logprobs":true,"top_logprobs":3,
      "logit_bias":{"10":-100,"11":2.5},"stream":true,"stream_options":{"include_usage":true},"top_k":5})");
  EXPECT_EQ(r.model, "m");
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.messages[0].role, "system");
  EXPECT_EQ(r.messages[1].content, "ab");
  EXPECT_EQ(r.gen.sampler.temperature, 0.0f);
  EXPECT_EQ(r.gen.max_tokens, 7);
  EXPECT_EQ(r.gen.stop, std::vector<std::string>{"x"});
  EXPECT_EQ(r.gen.sampler.seed, 5u);
  EXPECT_EQ(r.gen.n_choices, 2);
  EXPECT_EQ(r.gen.top_logprobs, 3);
  EXPECT_TRUE(std::isinf(r.gen.sampler.logit_bias.at(10)));
  EXPECT_EQ(r.gen.sampler.logit_bias.at(11), 2.5f);
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
  EXPECT_EQ(r.gen.sampler.top_k, 5);

  CompletionRequest d = ok_chat(R"({"messages":[{"role":"user","content":"hi"}]})");
  EXPECT_EQ(d.gen.sampler.temperature, 1.0f);
  EXPECT_EQ(d.gen.sampler.top_p, 1.0f);
  EXPECT_EQ(d.gen.max_tokens, -1);
  EXPECT_EQ(d.gen.top_logprobs, -1);
  EXPECT_EQ(d.gen.sampler.seed, sampling::kRandomSeed);
}

TEST(OpenAiRequest, CompletionsPromptForms) {
  auto a = parse_completion_request(R"({"prompt":"hello"})", false, {});
  ASSERT_TRUE(std::holds_alternative<CompletionRequest>(a));
  EXPECT_EQ(std::get<CompletionRequest>(a).prompt, "hello");
  EXPECT_EQ(std::get<CompletionRequest>(a).gen.max_tokens, 16);  // the completions API default
  auto b = parse_completion_request(R"({"prompt":[1,2,3],"logprobs":2})", false, {});
  ASSERT_TRUE(std::holds_alternative<CompletionRequest>(b));
  EXPECT_EQ(std::get<CompletionRequest>(b).prompt_tokens, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(std::get<CompletionRequest>(b).gen.top_logprobs, 2);
  auto c = parse_completion_request(R"({"prompt":["one"],"max_tokens":100})", false, RequestLimits{50, 8});
  ASSERT_TRUE(std::holds_alternative<CompletionRequest>(c));
  EXPECT_EQ(std::get<CompletionRequest>(c).prompt, "one");
  EXPECT_EQ(std::get<CompletionRequest>(c).gen.max_tokens, 50);  // capped by the server
}

TEST(OpenAiRequest, ErrorsNameTheParam) {
  struct Case {
    const char* body;
    const char* param;
  } cases[] = {
      {R"({"messages":[]})", "messages"},
      {R"({})", "messages"},
      {R"({"messages":[{"role":"wizard","content":"x"}]})", "messages[0].role"},
      {R"({"messages":[{"role":"user","content":[{"type":"image_url"}]}]})", "messages[0].content[0].type"},
      {R"({"messages":[{"role":"user","content":"x"}],"temperature":3})", "temperature"},
      {R"({"messages":[{"role":"user","content":"x"}],"top_p":0})", "top_p"},
      {R"({"messages":[{"role":"user","content":"x"}],"max_tokens":0})", "max_tokens"},
      {R"({"messages":[{"role":"user","content":"x"}],"n":9})", "n"},
      {R"({"messages":[{"role":"user","content":"x"}],"stop":[1]})", "stop"},
      {R"({"messages":[{"role":"user","content":"x"}],"logit_bias":{"a":1}})", "logit_bias"},
      {R"({"messages":[{"role":"user","content":"x"}],"top_logprobs":2})", "top_logprobs"},
      {R"({"messages":[{"role":"user","content":"x"}],"response_format":{"type":"xml"}})", "response_format.type"},
      {R"({"messages":[{"role":"user","content":"x"}],"model":3})", "model"},
  };
  for (const Case& c : cases) {
    ApiError e = err(c.body);
    EXPECT_EQ(e.status, 400) << c.body;
    EXPECT_EQ(e.param, c.param) << c.body << ": " << e.message;
  }
  ApiError bad_json = err("{nope");
  EXPECT_EQ(bad_json.status, 400);
  EXPECT_TRUE(bad_json.param.empty());
  EXPECT_EQ(err(R"({"prompt":{}})", false).param, "prompt");
}

TEST(OpenAiRequest, ErrorBodyShape) {
  ApiError e = bad_request("bad thing", "temperature");
  EXPECT_EQ(error_body(e),
            R"({"error":{"code":null,"message":"bad thing","param":"temperature","type":"invalid_request_error"}})");
  EXPECT_EQ(api_error_from_status(make_error(ErrorCode::kResourceExhausted, "full")).status, 503);
  EXPECT_EQ(api_error_from_status(make_error(ErrorCode::kOutOfRange, "long")).code, "context_length_exceeded");
  EXPECT_EQ(api_error_from_status(make_error(ErrorCode::kInternal, "x")).status, 500);
}

TEST(OpenAiRequest, JsonSchemaConversion) {
  auto r = parse_json_schema(R"({"type":"object","properties":{"a":{"type":"integer"},"b":{"$ref":"#/$defs/B"}},
      "required":["a"],"$defs":{"B":{"enum":["x",2,null]}}})");
  ASSERT_TRUE(std::holds_alternative<engine::JsonSchema>(r)) << std::get<ApiError>(r).message;
  const engine::JsonSchema& s = std::get<engine::JsonSchema>(r);
  const engine::JsonSchemaNode& root = s.nodes[static_cast<size_t>(s.root)];
  EXPECT_EQ(root.types, engine::json_type::kObject);
  ASSERT_EQ(root.properties.size(), 2u);
  EXPECT_FALSE(root.additional_properties);
  EXPECT_EQ(root.required, std::vector<std::string>{"a"});
  const auto& ref = s.nodes[static_cast<size_t>(root.properties[1].second)];
  ASSERT_EQ(ref.any_of.size(), 1u);
  EXPECT_EQ(s.nodes[static_cast<size_t>(ref.any_of[0])].literals, (std::vector<std::string>{"\"x\"", "2", "null"}));

  for (const char* bad : {R"({"type":"decimal"})", R"({"$ref":"http://x/y"})", R"({"$ref":"#/nowhere"})",
                          R"({"enum":[]})", R"({"minLength":5,"maxLength":2})", "false", "[1"}) {
    EXPECT_TRUE(std::holds_alternative<ApiError>(parse_json_schema(bad))) << bad;
  }
  // A recursive schema terminates.
  EXPECT_TRUE(std::holds_alternative<engine::JsonSchema>(
      parse_json_schema(R"({"$defs":{"n":{"type":"array","items":{"$ref":"#/$defs/n"}}},"$ref":"#/$defs/n"})")));
}

TEST(OpenAiRequest, SanitizeUtf8) {
  EXPECT_EQ(sanitize_utf8("caf\xc3\xa9"), "caf\xc3\xa9");
  EXPECT_EQ(sanitize_utf8("a\xff"
                          "b"),
            "a\xef\xbf\xbd"
            "b");
  EXPECT_EQ(sanitize_utf8("\xe2\x82"), "\xef\xbf\xbd");
  // Invalid UTF-8 inside a JSON string is replaced, not rejected.
  auto r = parse_completion_request("{\"prompt\":\"x\xff\"}", false, {});
  ASSERT_TRUE(std::holds_alternative<CompletionRequest>(r));
  EXPECT_EQ(std::get<CompletionRequest>(r).prompt, "x\xef\xbf\xbd");
}

}  // namespace
}  // namespace hearth::server
