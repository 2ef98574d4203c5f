// API key files, constant-time comparison and per-minute quotas.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

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

namespace hearth::server {
namespace {

// Before: tokens were only counted when a request ended, so requests admitted together could
// all generate (six against tpm=20 used 612). Now each reserves before generating.
TEST(AuthQuota, ConcurrentReservationsNeverExceedTpm) {
  Auth a({ApiKey{"k", {}, 0, 20, {}}});
  constexpr int kThreads = 6;
  std::atomic<int64_t> granted{0};
  std::atomic<int> refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      // A 5-token prompt asking for up to 64 tokens; at least the prompt and one token.
      const Auth::TokenGrant g = a.reserve_tokens(0, 6, 69);
      if (g.tokens == 0) {
        ++refused;
        EXPECT_GE(g.retry_after, 1);
        return;
      }
      granted += g.tokens;
      TokenReservation r(&a, 0, g.tokens);
      r.settle(g.tokens);  // used all it reserved
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_LE(granted.load(), 20);
  EXPECT_GE(granted.load(), 6);
  EXPECT_GE(refused.load(), 1);
  EXPECT_LE(a.tokens_committed(0), 20);
}

TEST(AuthQuota, ReservationsSettleToWhatWasUsed) {
  Auth a({ApiKey{"k", {}, 0, 20, {}}});
  {
    TokenReservation r(&a, 0, a.reserve_tokens(0, 5, 15).tokens);
    EXPECT_EQ(r.reserved(), 15);
    EXPECT_EQ(a.tokens_committed(0), 15);
    EXPECT_EQ(a.reserve_tokens(0, 6, 10).tokens, 0);  // 15 held: 5 left
    r.settle(7);                                      // used 7 of 15
  }
  EXPECT_EQ(a.tokens_committed(0), 7);
  EXPECT_EQ(a.reserve_tokens(0, 1, 100).tokens, 13);  // capped to what is left
  a.settle_tokens(0, 13, 0);
  // Dropped unsettled: everything reserved is charged.
  { TokenReservation r(&a, 0, a.reserve_tokens(0, 3, 3).tokens); }
  EXPECT_EQ(a.tokens_committed(0), 10);
  // More than the key could ever allow.
  const Auth::TokenGrant never = a.reserve_tokens(0, 21, 30);
  EXPECT_EQ(never.tokens, 0);
  EXPECT_EQ(never.retry_after, -1);
  // Unlimited keys and no key get what they ask for.
  Auth u({ApiKey{"k", {}, 0, 0, {}}});
  EXPECT_EQ(u.reserve_tokens(0, 1, 1000).tokens, 1000);
  EXPECT_EQ(u.reserve_tokens(-1, 1, 5).tokens, 5);
}

TEST(AuthQuota, RequestsAreRefusedWhileReservationsHoldTheWindow) {
  Auth a({ApiKey{"k", {}, 0, 10, {}}});
  TokenReservation r(&a, 0, a.reserve_tokens(0, 10, 10).tokens);
  EXPECT_GE(a.admit_request(0), 1);
  r.settle(4);
  EXPECT_EQ(a.admit_request(0), 0);
}

}  // namespace
}  // namespace hearth::server
