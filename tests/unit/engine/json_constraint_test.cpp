// JsonConstraint: which byte strings are valid prefixes of JSON under a schema.
#include <gtest/gtest.h>

#include "hearth/engine/json_constraint.h"

namespace hearth::engine {
namespace {

namespace jt = json_type;

JsonConstraint make(JsonSchema s) {
  auto c = JsonConstraint::create(std::make_shared<JsonSchema>(std::move(s)));
  EXPECT_TRUE(c.ok());
  return std::move(c).value();
}

// Feeds the text in one go and reports (accepted, can_end).
std::pair<bool, bool> run(const JsonSchema& s, std::string_view text) {
  JsonConstraint c = make(s);
  bool ok = c.advance(text);
  return {ok, ok && c.can_end()};
}

bool complete(const JsonSchema& s, std::string_view text) { return run(s, text).second; }
bool prefix_ok(const JsonSchema& s, std::string_view text) { return run(s, text).first; }

TEST(JsonConstraint, AnyValueAcceptsValidJson) {
  JsonSchema any;
  for (const char* t : {"{}", "[]", "\"a\\n\\u00e9\"", "-0.5e+3", "0", "true", "null", "{\"a\": [1, {\"b\": null}]}",
                        "[1,2,3]", "\"caf\xc3\xa9\""}) {
    EXPECT_TRUE(complete(any, t)) << t;
  }
}

TEST(JsonConstraint, RejectsInvalidJson) {
  JsonSchema any;
  for (const char* t : {"{,", "[1,]", "01", "-", "\"a\\x\"", "tru e", "{\"a\" 1}", "}", "1.", "[1 2]", "{\"a\":1,}"}) {
    JsonConstraint c = make(any);
    EXPECT_FALSE(c.advance(t) && c.can_end()) << t;
  }
  EXPECT_FALSE(prefix_ok(any, "\"a\x01"));  // raw control character in a string
  EXPECT_FALSE(prefix_ok(any, "[1,]"));
  EXPECT_TRUE(prefix_ok(any, "[1,"));  // a prefix, not yet complete
  EXPECT_FALSE(complete(any, "[1,"));
}

TEST(JsonConstraint, AdvanceLeavesStateUnchangedOnFailure) {
  JsonConstraint c = make(JsonSchema{});
  ASSERT_TRUE(c.advance("[1"));
  EXPECT_FALSE(c.advance("}"));
  EXPECT_TRUE(c.advance("]"));
  EXPECT_TRUE(c.must_end());
}

TEST(JsonConstraint, WhitespaceIsBounded) {
  JsonSchema any;
  EXPECT_TRUE(prefix_ok(any, "[ 1,  2]"));
  EXPECT_FALSE(prefix_ok(any, "[   1]"));  // 3 > kMaxWhitespace
}

TEST(JsonConstraint, NumbersAreBounded) {
  JsonSchema any;
  EXPECT_TRUE(prefix_ok(any, std::string(15, '7')));
  EXPECT_FALSE(prefix_ok(any, std::string(16, '7')));
}

JsonSchema person() {
  // {name: string(maxLength 3), age: integer, tags: array of enum, maxItems 2}, name+age required.
  JsonSchema s;
  JsonSchemaNode name;
  name.types = jt::kString;
  name.max_length = 3;
  JsonSchemaNode age;
  age.types = jt::kInteger;
  JsonSchemaNode tag;
  tag.literals = {"\"x\"", "\"yz\""};
  s.nodes.push_back(name);  // 1
  s.nodes.push_back(age);   // 2
  s.nodes.push_back(tag);   // 3
  JsonSchemaNode tags;
  tags.types = jt::kArray;
  tags.items = 3;
  tags.max_items = 2;
  s.nodes.push_back(tags);  // 4
  JsonSchemaNode obj;
  obj.types = jt::kObject;
  obj.properties = {{"name", 1}, {"age", 2}, {"tags", 4}};
  obj.required = {"name", "age"};
  obj.additional_properties = false;
  s.nodes.push_back(obj);  // 5
  s.root = 5;
  return s;
}

TEST(JsonConstraint, ObjectSchema) {
  const JsonSchema s = person();
  EXPECT_TRUE(complete(s, R"({"name":"Al","age":7})"));
  EXPECT_TRUE(complete(s, R"({"age":-7, "name":"Bob", "tags":["x","yz"]})"));
  EXPECT_FALSE(prefix_ok(s, R"({"nam":)"));  // not a declared key
  EXPECT_FALSE(prefix_ok(s, R"({"nick")"));
  EXPECT_FALSE(prefix_ok(s, R"({"name":"Abcd")"));                           // maxLength 3
  EXPECT_FALSE(prefix_ok(s, R"({"name":"A","age":1.5)"));                    // integer only
  EXPECT_FALSE(prefix_ok(s, R"({"name":"A"})"));                             // age is required
  EXPECT_FALSE(prefix_ok(s, R"({"name":"A","name")"));                       // no repeated keys
  EXPECT_FALSE(prefix_ok(s, R"({"name":"A","age":1,"tags":["q")"));          // not in the enum
  EXPECT_FALSE(prefix_ok(s, R"({"name":"A","age":1,"tags":["x","x","x")"));  // maxItems 2
  EXPECT_FALSE(prefix_ok(s, R"([)"));                                        // the root is an object
}

TEST(JsonConstraint, MustEndAfterTheRootCloses) {
  JsonConstraint c = make(person());
  ASSERT_TRUE(c.advance(R"({"name":"A","age":1)"));
  EXPECT_FALSE(c.can_end());
  EXPECT_FALSE(c.must_end());
  ASSERT_TRUE(c.advance("}"));
  EXPECT_TRUE(c.can_end());
  EXPECT_TRUE(c.must_end());
  EXPECT_FALSE(c.accepts("x"));
}

TEST(JsonConstraint, TopLevelNumberCanEndButNeedNot) {
  JsonSchema s;
  JsonSchemaNode n;
  n.types = jt::kNumber | jt::kInteger;
  s.nodes.push_back(n);
  s.root = 1;
  JsonConstraint c = make(s);
  ASSERT_TRUE(c.advance("12"));
  EXPECT_TRUE(c.can_end());
  EXPECT_FALSE(c.must_end());
  EXPECT_TRUE(c.accepts("3"));
}

TEST(JsonConstraint, AnyOfKeepsAlternativesUntilDecided) {
  JsonSchema s;
  JsonSchemaNode str;
  str.types = jt::kString;
  JsonSchemaNode num;
  num.types = jt::kInteger;
  s.nodes.push_back(str);  // 1
  s.nodes.push_back(num);  // 2
  JsonSchemaNode u;
  u.any_of = {1, 2};
  s.nodes.push_back(u);  // 3
  JsonSchemaNode arr;
  arr.types = jt::kArray;
  arr.items = 3;
  s.nodes.push_back(arr);  // 4
  s.root = 4;
  EXPECT_TRUE(complete(s, R"(["a",1,"b"])"));
  EXPECT_FALSE(prefix_ok(s, R"([true)"));
}

TEST(JsonConstraint, EnumLiteralsThatArePrefixesOfEachOther) {
  JsonSchema s;
  JsonSchemaNode e;
  e.literals = {"1", "12"};
  s.nodes.push_back(e);
  JsonSchemaNode arr;
  arr.types = jt::kArray;
  arr.items = 1;
  s.nodes.push_back(arr);
  s.root = 2;
  EXPECT_TRUE(complete(s, "[1,12,1]"));
  EXPECT_FALSE(prefix_ok(s, "[13"));
  EXPECT_FALSE(prefix_ok(s, "[123"));
}

TEST(JsonConstraint, CreateValidatesIndices) {
  auto s = std::make_shared<JsonSchema>();
  s->root = 7;
  EXPECT_FALSE(JsonConstraint::create(s).ok());
  auto t = std::make_shared<JsonSchema>();
  JsonSchemaNode n;
  n.items = 99;
  t->nodes.push_back(n);
  EXPECT_FALSE(JsonConstraint::create(t).ok());
}

}  // namespace
}  // namespace hearth::engine

namespace hearth::engine {
namespace {

TEST(JsonConstraintBudget, WorkIsChargedAndCapped) {
  // 40 enum values: every byte compares the candidates still alive.
  JsonSchema s;
  JsonSchemaNode e;
  for (int i = 0; i < 40; ++i) e.literals.push_back("\"v" + std::to_string(i) + "\"");
  s.nodes.push_back(e);
  s.root = 1;
  auto unlimited = JsonConstraint::create(std::make_shared<JsonSchema>(s));
  ASSERT_TRUE(unlimited.ok());
  ASSERT_TRUE(unlimited->advance("\"v1"));
  EXPECT_GT(unlimited->token_work(), 40u);
  EXPECT_FALSE(unlimited->over_budget());

  s.budget = JsonWorkBudget{50, 1000};
  auto tight = JsonConstraint::create(std::make_shared<JsonSchema>(s));
  ASSERT_TRUE(tight.ok());
  EXPECT_FALSE(tight->advance("\"v1"));  // refused once over the per-token budget
  EXPECT_TRUE(tight->over_budget());
  tight->reset_token_work();
  EXPECT_FALSE(tight->over_budget());
  EXPECT_TRUE(tight->advance("\""));
  // The total budget is not reset per token.
  s.budget = JsonWorkBudget{1000, 300};
  auto total = JsonConstraint::create(std::make_shared<JsonSchema>(s));
  ASSERT_TRUE(total.ok());
  int tokens = 0;
  for (; tokens < 100 && !total->over_budget(); ++tokens) {
    total->reset_token_work();
    (void)total->accepts("\"v1");
  }
  EXPECT_TRUE(total->over_budget());
  EXPECT_GT(tokens, 1);
  EXPECT_GT(total->total_work(), 300u);
  total->reset_token_work();
  EXPECT_FALSE(total->accepts("\""));
}

TEST(JsonConstraintBudget, UnionCyclesAreFlattenedOnce) {
  // 1 = anyOf[1, 2, 1], 2 = string: the cycle adds nothing; a pure cycle is refused.
  JsonSchema s;
  JsonSchemaNode u;
  u.any_of = {1, 2, 1};
  JsonSchemaNode str;
  str.types = json_type::kString;
  s.nodes.push_back(u);
  s.nodes.push_back(str);
  s.root = 1;
  auto c = JsonConstraint::create(std::make_shared<JsonSchema>(s));
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_TRUE(c->advance("\"a\""));
  EXPECT_FALSE(JsonConstraint(std::move(c).value()).accepts("1"));

  JsonSchema loop;
  JsonSchemaNode self;
  self.any_of = {1, 1};
  loop.nodes.push_back(self);
  loop.root = 1;
  auto dead = JsonConstraint::create(std::make_shared<JsonSchema>(loop));
  ASSERT_FALSE(dead.ok());
  EXPECT_NE(dead.status().message().find("matches no value"), std::string::npos);
}

}  // namespace
}  // namespace hearth::engine
