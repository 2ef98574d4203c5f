// The "lora" request field and the POST /lora-adapters body: accepted shapes, and each bad
// input refused with a 400 whose param names the field.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "hearth/server/openai_request.h"

namespace hearth::server {
namespace {

TEST(LoraRequest, CompletionFieldIsOptionalAndParsed) {
  auto none = parse_completion_request(R"({"prompt":"hi"})", false, RequestLimits{});
  ASSERT_TRUE(std::holds_alternative<CompletionRequest>(none));
  EXPECT_FALSE(std::get<CompletionRequest>(none).lora.has_value());

  auto empty = parse_completion_request(R"({"prompt":"hi","lora":[]})", false, RequestLimits{});
  ASSERT_TRUE(std::holds_alternative<CompletionRequest>(empty));
  ASSERT_TRUE(std::get<CompletionRequest>(empty).lora.has_value());
  EXPECT_TRUE(std::get<CompletionRequest>(empty).lora->empty());

  auto two = parse_completion_request(R"({"messages":[{"role":"user","content":"x"}],
      "lora":[{"id":1,"scale":0.25},{"id":0,"scale":-2}]})",
                                      true, RequestLimits{});
  ASSERT_TRUE(std::holds_alternative<CompletionRequest>(two));
  const auto& l = *std::get<CompletionRequest>(two).lora;
  ASSERT_EQ(l.size(), 2u);
  EXPECT_EQ(l[0].id, 1);
  EXPECT_EQ(l[0].scale, 0.25f);
  EXPECT_EQ(l[1].id, 0);
  EXPECT_EQ(l[1].scale, -2.0f);
}

TEST(LoraRequest, BadListsNameTheField) {
  struct Case {
    const char* lora;
    const char* param;
    const char* message;
  };
  const Case cases[] = {
      {R"({"id":0,"scale":1})", "lora", "'lora' must be an array"},
      {R"([1])", "lora[0]", "'lora[0]' must be an object"},
      {R"([{"scale":1}])", "lora[0].id", "'lora[0].id' must be a non-negative integer"},
      {R"([{"id":1.5,"scale":1}])", "lora[0].id", "'lora[0].id' must be a non-negative integer"},
      {R"([{"id":-2,"scale":1}])", "lora[0].id", "'lora[0].id' must be a non-negative integer"},
      {R"([{"id":0}])", "lora[0].scale", "'lora[0].scale' must be a number"},
      {R"([{"id":0,"scale":null}])", "lora[0].scale", "'lora[0].scale' must be a number"},
      {R"([{"id":0,"scale":-1e6}])", "lora[0].scale", "'lora[0].scale' must be between -1000 and 1000"},
      {R"([{"id":0,"scale":1},{"id":0,"scale":1}])", "lora[1].id", "adapter 0 is listed twice"},
  };
  for (const Case& c : cases) {
    const std::string body = std::string(R"({"prompt":"hi","lora":)") + c.lora + "}";
    auto r = parse_completion_request(body, false, RequestLimits{});
    ASSERT_TRUE(std::holds_alternative<ApiError>(r)) << c.lora;
    const ApiError& e = std::get<ApiError>(r);
    EXPECT_EQ(e.status, 400) << c.lora;
    EXPECT_EQ(e.param, c.param) << c.lora;
    EXPECT_NE(e.message.find(c.message), std::string::npos) << c.lora << ": " << e.message;
  }
  std::string many = R"({"prompt":"hi","lora":[)";
  for (size_t i = 0; i <= kMaxLoraEntries; ++i) many += (i ? "," : "") + std::string(R"({"id":0,"scale":0})");
  auto r = parse_completion_request(many + "]}", false, RequestLimits{});
  ASSERT_TRUE(std::holds_alternative<ApiError>(r));
  EXPECT_NE(std::get<ApiError>(r).message.find("at most 64"), std::string::npos) << std::get<ApiError>(r).message;
}

TEST(LoraRequest, AdapterScalesBody) {
  auto ok = parse_lora_scales(R"([{"id":2,"scale":0.5}])");
  ASSERT_TRUE(std::holds_alternative<std::vector<LoraScale>>(ok));
  ASSERT_EQ(std::get<std::vector<LoraScale>>(ok).size(), 1u);
  EXPECT_EQ(std::get<std::vector<LoraScale>>(ok)[0].id, 2);
  for (const char* bad : {"", "not json", R"({"id":0,"scale":1})", R"([{"id":"0","scale":1}])", "[[[[]]]]"}) {
    auto r = parse_lora_scales(bad);
    ASSERT_TRUE(std::holds_alternative<ApiError>(r)) << bad;
    EXPECT_EQ(std::get<ApiError>(r).status, 400) << bad;
  }
  std::string deep(100, '[');
  auto r = parse_lora_scales(deep);
  ASSERT_TRUE(std::holds_alternative<ApiError>(r));
  EXPECT_NE(std::get<ApiError>(r).message.find("levels deep"), std::string::npos);
}

}  // namespace
}  // namespace hearth::server
