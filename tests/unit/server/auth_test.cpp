// API key files, constant-time comparison and per-minute quotas.
#include <gtest/gtest.h>

#include "hearth/server/auth.h"

namespace hearth::server {
namespace {

TEST(ApiKeyFile, ParsesKeysAndLimits) {
  auto keys = parse_api_key_file("# comment\n\nsk-a\n  sk-b models=m1,m2 rpm=5 tpm=100  # note\n", "keys.txt");
  ASSERT_TRUE(keys.ok()) << keys.status().to_string();
  ASSERT_EQ(keys->size(), 2u);
  EXPECT_EQ((*keys)[0].key, "sk-a");
  EXPECT_TRUE((*keys)[0].models.empty());
  EXPECT_EQ((*keys)[0].rpm, 0);
  EXPECT_EQ((*keys)[1].key, "sk-b");
  EXPECT_EQ((*keys)[1].models, (std::vector<std::string>{"m1", "m2"}));
  EXPECT_EQ((*keys)[1].rpm, 5);
  EXPECT_EQ((*keys)[1].tpm, 100);
}

TEST(ApiKeyFile, ErrorsNameTheLine) {
  struct Case {
    const char* text;
    const char* expect;
  } cases[] = {
      {"sk-a\nsk-b rpm=-1\n", "keys.txt:2: rpm must be a non-negative integer"},
      {"sk-a burst=3\n", "keys.txt:1: unknown field 'burst'"},
      {"sk-a rpm\n", "keys.txt:1: expected name=value"},
      {"rpm=3\n", "keys.txt:1: the line must start with the key"},
  };
  for (const Case& c : cases) {
    auto r = parse_api_key_file(c.text, "keys.txt");
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_NE(r.status().message().find(c.expect), std::string::npos) << r.status().message();
  }
}

TEST(Auth, ConstantTimeEqual) {
  EXPECT_TRUE(constant_time_equal("abc", "abc"));
  EXPECT_FALSE(constant_time_equal("abc", "abd"));
  EXPECT_FALSE(constant_time_equal("abc", "abcd"));
  EXPECT_FALSE(constant_time_equal("", "a"));
  EXPECT_TRUE(constant_time_equal("", ""));
}

TEST(Auth, AuthenticatesBearerAndXApiKey) {
  Auth a({ApiKey{"sk-1", {}, 0, 0, {}}, ApiKey{"sk-2", {"m"}, 0, 0, {}}});
  EXPECT_TRUE(a.enabled());
  EXPECT_EQ(a.authenticate("Bearer sk-2", ""), 1);
  EXPECT_EQ(a.authenticate("", "sk-1"), 0);
  EXPECT_EQ(a.authenticate("Bearer sk-3", ""), -1);
  EXPECT_EQ(a.authenticate("Basic sk-1", ""), -1);
  EXPECT_EQ(a.authenticate("", ""), -1);
  EXPECT_TRUE(a.model_allowed(0, "anything"));
  EXPECT_TRUE(a.model_allowed(1, "m"));
  EXPECT_FALSE(a.model_allowed(1, "other"));
  EXPECT_FALSE(Auth({}).enabled());
}

TEST(Auth, RequestsPerMinute) {
  Auth a({ApiKey{"k", {}, 2, 0, {}}});
  EXPECT_EQ(a.admit_request(0), 0);
  EXPECT_EQ(a.admit_request(0), 0);
  const int64_t wait = a.admit_request(0);
  EXPECT_GE(wait, 1);
  EXPECT_LE(wait, 61);
}

TEST(Auth, TokensPerMinute) {
  Auth a({ApiKey{"k", {}, 0, 10, {}}});
  EXPECT_EQ(a.admit_request(0), 0);
  a.add_tokens(0, 9);
  EXPECT_EQ(a.admit_request(0), 0);  // 9 < 10: still allowed
  a.add_tokens(0, 5);
  EXPECT_GE(a.admit_request(0), 1);  // 14 >= 10
}

}  // namespace
}  // namespace hearth::server
