// Limits inside requests (issue 12, section 2): nesting depth checked before the JSON library
// recurses, JSON-schema work bounds, keywords hearth cannot enforce, stop-string bounds.
#include <gtest/gtest.h>

#include <string>

#include "hearth/engine/json_constraint.h"
#include "hearth/server/openai_request.h"

namespace hearth::server {
namespace {

std::string error_of(const ApiResult<engine::JsonSchema>& r) {
  return std::holds_alternative<ApiError>(r) ? std::get<ApiError>(r).message : std::string();
}

std::string chat_with_schema(const std::string& schema, const std::string& extra = "") {
  return R"({"messages":[{"role":"user","content":"x"}],)" + extra +
         R"("response_format":{"type":"json_schema","json_schema":{"name":"s","schema":)" + schema + "}}}";
}

ApiError completion_error(const std::string& body) {
  auto r = parse_completion_request(body, true, RequestLimits{});
  EXPECT_TRUE(std::holds_alternative<ApiError>(r)) << body.substr(0, 200);
  return std::holds_alternative<ApiError>(r) ? std::get<ApiError>(r) : ApiError{};
}

TEST(RequestLimits, NestingDepthCountsBracketsOutsideStrings) {
  EXPECT_EQ(json_nesting_depth(R"({"a":[1,{"b":[]}]})"), 4);
  EXPECT_EQ(json_nesting_depth(R"({"a":"[[[[{{{{\"[["})"), 1);  // brackets in strings, escaped quote
  EXPECT_EQ(json_nesting_depth("42"), 0);
  // Stops at the limit instead of scanning on.
  EXPECT_EQ(json_nesting_depth(std::string(1000, '['), 10), 11);
}

// Before: nlohmann parsed the 60,000 levels, then dumped the schema recursively (and the
// schema walk recursed), which overflowed the stack and killed the server.
TEST(RequestLimits, DeepJsonSchemaIsA400NotACrash) {
  constexpr int kDepth = 60000;
  std::string schema;
  for (int i = 0; i < kDepth; ++i) schema += R"({"type":"array","items":)";
  schema += "{}";
  for (int i = 0; i < kDepth; ++i) schema += "}";
  const ApiError e = completion_error(chat_with_schema(schema));
  EXPECT_EQ(e.status, 400);
  EXPECT_NE(e.message.find("levels deep"), std::string::npos) << e.message;

  // The same through parse_json_schema directly, and a deep array in any field.
  EXPECT_NE(error_of(parse_json_schema(schema)).find("levels deep"), std::string::npos);
  const std::string deep_prompt = R"({"prompt":)" + std::string(kDepth, '[') + std::string(kDepth, ']') + "}";
  EXPECT_EQ(completion_error(deep_prompt).status, 400);
  EXPECT_EQ(std::get<ApiError>(parse_embedding_request(deep_prompt)).status, 400);

  // Within the limit, nesting is fine.
  std::string ok = "{}";
  for (int i = 0; i < 20; ++i) ok = R"({"type":"array","items":)" + ok + "}";
  EXPECT_TRUE(std::holds_alternative<engine::JsonSchema>(parse_json_schema(ok))) << error_of(parse_json_schema(ok));
}

// The audit's schema: a $ref that loops into a 60-way anyOf of itself (1.5 KB). Before, every
// byte of every candidate token expanded the alternatives 8 levels deep (51 s for 2 tokens).
std::string ref_loop_schema(const std::string& extra_alternative) {
  std::string alts;
  for (int i = 0; i < 60; ++i) alts += std::string(i ? "," : "") + R"({"$ref":"#/$defs/a"})";
  if (!extra_alternative.empty()) alts += "," + extra_alternative;
  return R"({"$defs":{"a":{"anyOf":[)" + alts + R"(]}},"$ref":"#/$defs/a"})";
}

TEST(RequestLimits, RefLoopIntoWideAnyOfIsRefusedOrBounded) {
  const std::string attack = ref_loop_schema("");
  EXPECT_GE(attack.size(), 1200u);
  const ApiError e = completion_error(chat_with_schema(attack));
  EXPECT_EQ(e.status, 400);
  EXPECT_EQ(e.param, "response_format.json_schema.schema");
  EXPECT_NE(e.message.find("matches no value"), std::string::npos) << e.message;

  // With one concrete alternative the loop is harmless: it flattens to that alternative once,
  // and matching stays within a small number of steps per byte.
  auto r = parse_json_schema(ref_loop_schema(R"({"type":"string","maxLength":4})"));
  ASSERT_TRUE(std::holds_alternative<engine::JsonSchema>(r)) << error_of(r);
  auto c = engine::JsonConstraint::create(std::make_shared<engine::JsonSchema>(std::get<engine::JsonSchema>(r)));
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  ASSERT_TRUE(c->advance("\"ab"));
  EXPECT_FALSE(c->accepts("cde"));
  EXPECT_TRUE(c->advance("\""));
  EXPECT_TRUE(c->must_end());
  EXPECT_LT(c->total_work(), 100u);  // 4 bytes; the old expansion took millions of steps per byte
}

TEST(RequestLimits, TooManyAlternativesIsA400NamingTheBudget) {
  // 2 x 40 distinct alternatives through nested unions: 80 > 64 once flattened.
  std::string a, b;
  for (int i = 0; i < 40; ++i) {
    a += std::string(i ? "," : "") + R"({"const":"a)" + std::to_string(i) + R"("})";
    b += std::string(i ? "," : "") + R"({"const":"b)" + std::to_string(i) + R"("})";
  }
  const std::string schema = R"({"anyOf":[{"anyOf":[)" + a + R"(]},{"anyOf":[)" + b + "]}]}";
  const std::string msg = error_of(parse_json_schema(schema));
  EXPECT_NE(msg.find("more than 64 alternatives"), std::string::npos) << msg;
  EXPECT_NE(msg.find("budget"), std::string::npos) << msg;
}

TEST(RequestLimits, RefUsesCountAgainstTheNodeBudget) {
  // One small definition used 5000 times: resolved once, but each use counts.
  std::string props;
  for (int i = 0; i < 5000; ++i)
    props += std::string(i ? "," : "") + "\"p" + std::to_string(i) + R"(":{"$ref":"#/$defs/d"})";
  const std::string schema = R"({"$defs":{"d":{"type":"integer"}},"type":"object","properties":{)" + props + "}}";
  const std::string msg = error_of(parse_json_schema(schema));
  EXPECT_NE(msg.find("more than 4096 nodes"), std::string::npos) << msg;
  EXPECT_NE(msg.find("$ref uses"), std::string::npos) << msg;
}

TEST(RequestLimits, UnenforcedKeywordsAreNamedUnlessBestEffort) {
  const std::string schema = R"({"type":"object","properties":{"d":{"type":"string","format":"date"},
      "n":{"type":"integer","minimum":3}},"required":["d"],"title":"T","description":"annotations are fine"})";
  ApiError e = completion_error(chat_with_schema(schema));
  EXPECT_EQ(e.status, 400);
  EXPECT_EQ(e.param, "response_format.json_schema.schema");
  EXPECT_NE(e.message.find("'format'"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("#/properties/d"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("hearth_schema_best_effort"), std::string::npos) << e.message;

  for (const char* bad :
       {R"({"type":"string","pattern":"^a+$"})", R"({"$ref":"#/$defs/x","maxLength":2,"$defs":{"x":{}}})",
        R"({"type":"object","anyOf":[{"required":["a"]}],"properties":{"a":{}}})", R"({"anyOf":[{}],"oneOf":[{}]})"}) {
    EXPECT_TRUE(std::holds_alternative<ApiError>(parse_json_schema(bad))) << bad;
  }
  EXPECT_NE(error_of(parse_json_schema(R"({"type":"string","pattern":"^a+$"})")).find("'pattern'"), std::string::npos);

  // Opting in skips them, and says which were skipped.
  auto r = parse_completion_request(chat_with_schema(schema, R"("hearth_schema_best_effort":true,)"), true, {});
  ASSERT_TRUE(std::holds_alternative<CompletionRequest>(r)) << std::get<ApiError>(r).message;
  EXPECT_EQ(std::get<CompletionRequest>(r).skipped_schema_keywords, (std::vector<std::string>{"format", "minimum"}));
  EXPECT_EQ(completion_error(chat_with_schema(schema, R"("hearth_schema_best_effort":"yes",)")).param,
            "hearth_schema_best_effort");
}

TEST(RequestLimits, StopStringsAreBounded) {
  auto body = [](const std::string& stop) { return R"({"prompt":"x","stop":)" + stop + "}"; };
  auto ok = parse_completion_request(body(R"(["a","b","c","d"])"), false, {});
  ASSERT_TRUE(std::holds_alternative<CompletionRequest>(ok));
  EXPECT_EQ(std::get<CompletionRequest>(ok).gen.stop.size(), 4u);
  const std::string long_stop = "\"" + std::string(kMaxStopBytes + 1, 'x') + "\"";
  for (const std::string& bad : {std::string(R"(["a","b","c","d","e"])"), long_stop, "[" + long_stop + "]",
                                 std::string("[1]"), std::string("7")}) {
    auto r = parse_completion_request(body(bad), false, {});
    ASSERT_TRUE(std::holds_alternative<ApiError>(r)) << bad.substr(0, 40);
    EXPECT_EQ(std::get<ApiError>(r).param, "stop");
  }
  auto exact = parse_completion_request(body("\"" + std::string(kMaxStopBytes, 'x') + "\""), false, {});
  EXPECT_TRUE(std::holds_alternative<CompletionRequest>(exact));
}

}  // namespace
}  // namespace hearth::server
