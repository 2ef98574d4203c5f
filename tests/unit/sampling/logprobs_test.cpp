#include "hearth/sampling/logprobs.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

namespace hearth::sampling {
namespace {

TEST(Logprobs, MatchesHandLogSoftmax) {
  // logits [1, 2, 3, 4]: log Z = 4 + ln(1 + e^-1 + e^-2 + e^-3) = 4 + ln(1.5529917928)
  // = 4.4401896986, so log p = logit - 4.4401896986:
  // [-3.4401896986, -2.4401896986, -1.4401896986, -0.4401896986].
  const std::vector<float> logits = {1.0f, 2.0f, 3.0f, 4.0f};
  Result<LogprobReport> r = compute_logprobs(logits, 1, 3);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->chosen.id, 1);
  EXPECT_NEAR(r->chosen.logprob, -2.4401896986, 1e-6);
  ASSERT_EQ(r->top.size(), 3u);
  EXPECT_EQ(r->top[0].id, 3);
  EXPECT_NEAR(r->top[0].logprob, -0.4401896986, 1e-6);
  EXPECT_EQ(r->top[1].id, 2);
  EXPECT_NEAR(r->top[1].logprob, -1.4401896986, 1e-6);
  EXPECT_EQ(r->top[2].id, 1);
  EXPECT_NEAR(r->top[2].logprob, -2.4401896986, 1e-6);
}

TEST(Logprobs, TiesAndExactProbabilities) {
  // logits [0, 0, ln 2] -> p = [1/4, 1/4, 1/2] -> log p = [-1.3862944, -1.3862944, -0.6931472].
  // Top 2: id 2, then the tie between 0 and 1 goes to the lower id.
  const std::vector<float> logits = {0.0f, 0.0f, std::log(2.0f)};
  Result<LogprobReport> r = compute_logprobs(logits, 0, 2);
  ASSERT_TRUE(r.ok());
  EXPECT_NEAR(r->chosen.logprob, -1.3862944, 1e-6);
  ASSERT_EQ(r->top.size(), 2u);
  EXPECT_EQ(r->top[0].id, 2);
  EXPECT_NEAR(r->top[0].logprob, -0.6931472, 1e-6);
  EXPECT_EQ(r->top[1].id, 0);
}

TEST(Logprobs, LargeLogitsDoNotOverflow) {
  // Shift-invariance: [1001, 1002, 1003, 1004] has the same log-softmax as [1, 2, 3, 4].
  const std::vector<float> logits = {1001.0f, 1002.0f, 1003.0f, 1004.0f};
  Result<LogprobReport> r = compute_logprobs(logits, 3, 0);
  ASSERT_TRUE(r.ok());
  EXPECT_NEAR(r->chosen.logprob, -0.4401896986, 1e-5);
  EXPECT_TRUE(r->top.empty());
}

TEST(Logprobs, TopNIsClampedAndMinusInfinityIsKept) {
  const float ninf = -std::numeric_limits<float>::infinity();
  const std::vector<float> logits = {ninf, 0.0f};
  Result<LogprobReport> r = compute_logprobs(logits, 0, 5);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->chosen.logprob, ninf);
  ASSERT_EQ(r->top.size(), 2u);
  EXPECT_EQ(r->top[0].id, 1);
  EXPECT_EQ(r->top[0].logprob, 0.0f);
  EXPECT_EQ(r->top[1].id, 0);
}

TEST(Logprobs, TopNOverLargerVocabulary) {
  // logits[i] = (i * 37) % 101 over 101 ids: the values are a permutation of 0..100, so the top
  // three are the ids with values 100, 99, 98: i = 37^-1 * v mod 101. 37 * 71 = 2627 = 26 * 101 + 1,
  // so 37^-1 = 71: v = 100 -> i = 7100 % 101 = 30; v = 99 -> 7029 % 101 = 60; v = 98 -> 6958 % 101 = 90.
  std::vector<float> logits(101);
  for (size_t i = 0; i < logits.size(); ++i) logits[i] = static_cast<float>((i * 37) % 101);
  Result<LogprobReport> r = compute_logprobs(logits, 0, 3);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->top.size(), 3u);
  EXPECT_EQ(r->top[0].id, 30);
  EXPECT_EQ(r->top[1].id, 60);
  EXPECT_EQ(r->top[2].id, 90);
  // log Z = 100 + ln(sum_{k>=0} e^-k over 101 terms) ~= 100 + ln(1 / (1 - e^-1)) = 100.4586751.
  EXPECT_NEAR(r->top[0].logprob, -0.4586751, 1e-5);
}

TEST(Logprobs, RejectsBadInput) {
  EXPECT_FALSE(compute_logprobs(std::vector<float>{}, 0, 1).ok());
  Result<LogprobReport> r = compute_logprobs(std::vector<float>{0.0f, 1.0f}, 2, 1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "logprobs: token id 2 is out of range [0, 2)");
  EXPECT_FALSE(compute_logprobs(std::vector<float>{std::numeric_limits<float>::quiet_NaN()}, 0, 1).ok());
}

}  // namespace
}  // namespace hearth::sampling
