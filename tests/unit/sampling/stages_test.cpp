#include "hearth/sampling/stages.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace hearth::sampling {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

Candidates make(const std::vector<float>& logits) {
  Candidates c;
  c.assign(logits);
  return c;
}

std::vector<int32_t> ids(const Candidates& c) {
  std::vector<int32_t> out;
  for (const TokenCandidate& t : c.items) out.push_back(t.id);
  return out;
}

std::vector<float> logits_by_id(const Candidates& c, size_t n_vocab) {
  std::vector<float> out(n_vocab, std::numeric_limits<float>::quiet_NaN());
  for (const TokenCandidate& t : c.items) out[static_cast<size_t>(t.id)] = t.logit;
  return out;
}

// The distribution used by the top-p and min-p tests, placed out of id order on purpose:
//   id:  0     1    2     3
//   p:   0.15  0.5  0.05  0.3
// Sorted by p: 1 (0.5), 3 (0.3), 0 (0.15), 2 (0.05); cumulative 0.5, 0.8, 0.95, 1.0.
Candidates four_way() { return make({std::log(0.15f), std::log(0.5f), std::log(0.05f), std::log(0.3f)}); }

TEST(Candidates, SoftmaxOfKnownLogits) {
  // softmax([0, ln 3]) = [1/4, 3/4]; -inf gets exactly 0.
  Candidates c = make({0.0f, std::log(3.0f), kNegInf});
  c.softmax();
  EXPECT_NEAR(c.items[0].p, 0.25f, 1e-6f);
  EXPECT_NEAR(c.items[1].p, 0.75f, 1e-6f);
  EXPECT_EQ(c.items[2].p, 0.0f);
}

TEST(Candidates, SortBreaksTiesByLowerId) {
  Candidates c = make({1.0f, 5.0f, 5.0f, 3.0f, 5.0f});
  c.sort();
  EXPECT_EQ(ids(c), (std::vector<int32_t>{1, 2, 4, 3, 0}));
  EXPECT_FALSE(c.id_ordered);
}

TEST(TopK, KeepsTheKLargestInOrder) {
  // [1, 2, 3, 4] with k = 2 keeps logits 4 and 3, i.e. ids 3 then 2.
  Candidates c = make({1.0f, 2.0f, 3.0f, 4.0f});
  keep_top_k(c, 2);
  EXPECT_EQ(ids(c), (std::vector<int32_t>{3, 2}));
  EXPECT_TRUE(c.sorted);
}

TEST(TopK, TiesKeepLowerIds) {
  Candidates c = make({5.0f, 1.0f, 5.0f, 5.0f});
  keep_top_k(c, 2);
  EXPECT_EQ(ids(c), (std::vector<int32_t>{0, 2}));
}

TEST(TopK, ZeroIsOffAndMinKeepWins) {
  Candidates off = make({1.0f, 2.0f, 3.0f, 4.0f});
  keep_top_k(off, 0);
  EXPECT_EQ(off.size(), 4u);

  Candidates c = make({1.0f, 2.0f, 3.0f, 4.0f});
  keep_top_k(c, 1, /*min_keep=*/3);
  EXPECT_EQ(ids(c), (std::vector<int32_t>{3, 2, 1}));

  Candidates big = make({1.0f, 2.0f});
  keep_top_k(big, 10);
  EXPECT_EQ(ids(big), (std::vector<int32_t>{1, 0}));
}

TEST(TopP, KeepsShortestPrefixReachingP) {
  // p = 0.9: cumulative 0.5, 0.8 < 0.9, then 0.95 >= 0.9 -> ids 1, 3, 0.
  Candidates c = four_way();
  keep_top_p(c, 0.9f);
  EXPECT_EQ(ids(c), (std::vector<int32_t>{1, 3, 0}));

  // p = 0.75: 0.5 < 0.75, 0.8 >= 0.75 -> ids 1, 3.
  c = four_way();
  keep_top_p(c, 0.75f);
  EXPECT_EQ(ids(c), (std::vector<int32_t>{1, 3}));

  // p = 0.4: the first already has 0.5 -> id 1 only.
  c = four_way();
  keep_top_p(c, 0.4f);
  EXPECT_EQ(ids(c), (std::vector<int32_t>{1}));

  // p = 0.96: needs all four (0.95 < 0.96).
  c = four_way();
  keep_top_p(c, 0.96f);
  EXPECT_EQ(ids(c), (std::vector<int32_t>{1, 3, 0, 2}));
}

TEST(TopP, OneIsOffAndMinKeepIsRespected) {
  Candidates c = four_way();
  keep_top_p(c, 1.0f);
  EXPECT_EQ(c.size(), 4u);
  EXPECT_TRUE(c.id_ordered);  // untouched

  c = four_way();
  keep_top_p(c, 0.4f, /*min_keep=*/2);
  EXPECT_EQ(ids(c), (std::vector<int32_t>{1, 3}));
}

TEST(TopP, LargeVocabularyHandCase) {
  // 10000 ids: logit 10 at id 7000, 9 at id 3000, 8 at id 9999, 0 elsewhere (9997 ids).
  // Z = e^10 + e^9 + e^8 + 9997 = 43107.5077; the top three have p = 0.51097, 0.18797, 0.06915,
  // cumulative 0.51097, 0.69894, 0.76809; each zero-logit id has p = 1 / Z = 2.3198e-5.
  std::vector<float> logits(10000, 0.0f);
  logits[7000] = 10.0f;
  logits[3000] = 9.0f;
  logits[9999] = 8.0f;

  // top-p 0.75: the three large ones (this goes through the bucket prefilter).
  Candidates c = make(logits);
  keep_top_p(c, 0.75f);
  EXPECT_EQ(ids(c), (std::vector<int32_t>{7000, 3000, 9999}));

  // top-p 0.6: 0.51097 < 0.6 <= 0.69894 -> two.
  c = make(logits);
  keep_top_p(c, 0.6f);
  EXPECT_EQ(ids(c), (std::vector<int32_t>{7000, 3000}));

  // top-p 0.8: after the top three, k zero-logit ids with (e^10 + e^9 + e^8 + k) / Z >= 0.8,
  // k >= 0.8 Z - 33110.5077 = 1375.498, so k = 1376; ties go to the lowest ids: 0..1375.
  c = make(logits);
  keep_top_p(c, 0.8f);
  ASSERT_EQ(c.size(), 3u + 1376u);
  EXPECT_EQ(c.items[2].id, 9999);
  for (int32_t i = 0; i < 1376; ++i) ASSERT_EQ(c.items[3 + static_cast<size_t>(i)].id, i);
}

// The plain definition, as an oracle for the incremental/bucketed keep_top_p: sort everything,
// accumulate, cut.
std::vector<int32_t> top_p_by_definition(const std::vector<float>& logits, double p) {
  std::vector<int32_t> order(logits.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int32_t>(i);
  std::sort(order.begin(), order.end(),
            [&](int32_t a, int32_t b) { return logits[a] != logits[b] ? logits[a] > logits[b] : a < b; });
  double z = 0.0;
  const double max_logit = logits[static_cast<size_t>(order[0])];
  for (float l : logits) z += std::exp(l - max_logit);
  double cumulative = 0.0;
  for (size_t i = 0; i < order.size(); ++i) {
    cumulative += std::exp(logits[static_cast<size_t>(order[i])] - max_logit) / z;
    if (cumulative >= p) {
      order.resize(i + 1);
      break;
    }
  }
  return order;
}

TEST(TopP, LargeRandomArraysMatchTheDefinition) {
  Rng rng(2024);
  for (float spread : {0.5f, 3.0f, 8.0f}) {
    for (float p : {0.3f, 0.9f, 0.99f}) {
      std::vector<float> logits(20000);
      for (float& l : logits) {
        // Rounded to a 1/8 grid so that exact ties occur.
        l = std::round(static_cast<float>(rng.next_double() * 2.0 - 1.0) * spread * 8.0f) / 8.0f;
      }
      logits[123] = spread * 2.0f;  // a clear favourite
      Candidates c = make(logits);
      keep_top_p(c, p);
      std::vector<int32_t> want = top_p_by_definition(logits, p);
      // Float rounding of p may move the cut by one item at an exact boundary, never more.
      ASSERT_LE(std::max(c.size(), want.size()) - std::min(c.size(), want.size()), 1u)
          << "spread " << spread << " p " << p;
      std::vector<int32_t> got = ids(c);
      size_t common = std::min(got.size(), want.size());
      EXPECT_TRUE(std::equal(got.begin(), got.begin() + static_cast<ptrdiff_t>(common), want.begin()))
          << "spread " << spread << " p " << p;
    }
  }
}

TEST(TopP, HugeLogitRangeTakesThePlainPath) {
  // max - min overflows float: 3e38 - (-3e38). softmax puts all mass on id 4096.
  std::vector<float> logits(5000, -3e38f);
  logits[4096] = 3e38f;
  Candidates c = make(logits);
  keep_top_p(c, 0.5f);
  EXPECT_EQ(ids(c), (std::vector<int32_t>{4096}));
}

TEST(MinP, KeepsTokensAboveFractionOfBest) {
  // min_p 0.2: threshold 0.2 * 0.5 = 0.1 -> drop id 2 (0.05); order is preserved (id order).
  Candidates c = four_way();
  keep_min_p(c, 0.2f);
  EXPECT_EQ(ids(c), (std::vector<int32_t>{0, 1, 3}));

  // min_p 0.5: threshold 0.25 -> ids 1 (0.5) and 3 (0.3).
  c = four_way();
  keep_min_p(c, 0.5f);
  EXPECT_EQ(ids(c), (std::vector<int32_t>{1, 3}));

  // min_p 0.9: threshold 0.45 -> only id 1; with min_keep 2 the best two are kept instead.
  c = four_way();
  keep_min_p(c, 0.9f);
  EXPECT_EQ(ids(c), (std::vector<int32_t>{1}));
  c = four_way();
  keep_min_p(c, 0.9f, /*min_keep=*/2);
  EXPECT_EQ(ids(c), (std::vector<int32_t>{1, 3}));

  c = four_way();
  keep_min_p(c, 0.0f);
  EXPECT_EQ(c.size(), 4u);
}

TEST(Penalties, RepeatPresenceFrequencyExactValues) {
  // logits [2, -1, 0.5, 3, 0], window [0, 1, 0, 4] -> counts {0: 2, 1: 1, 4: 1};
  // repeat 2, presence 0.5, frequency 0.25:
  //   id 0:  2 > 0  -> 2 / 2 = 1;     1 - (2 * 0.25 + 0.5) = 0
  //   id 1: -1 <= 0 -> -1 * 2 = -2;  -2 - (1 * 0.25 + 0.5) = -2.75
  //   id 2: not in the window -> 0.5
  //   id 3: not in the window -> 3
  //   id 4:  0 <= 0 -> 0 * 2 = 0;     0 - 0.75 = -0.75
  const std::vector<float> logits = {2.0f, -1.0f, 0.5f, 3.0f, 0.0f};
  const std::vector<int32_t> window = {0, 1, 0, 4};
  const std::vector<float> want = {0.0f, -2.75f, 0.5f, 3.0f, -0.75f};
  std::vector<TokenCount> counts = count_tokens(window);
  ASSERT_EQ(counts.size(), 3u);
  EXPECT_EQ(counts[0].id, 0);
  EXPECT_EQ(counts[0].count, 2);

  Candidates c = make(logits);
  apply_penalties(c, counts, PenaltyParams{2.0f, 0.5f, 0.25f});
  EXPECT_EQ(logits_by_id(c, 5), want);

  // The same on candidates that are no longer in id order.
  Candidates sorted = make(logits);
  sorted.sort();
  apply_penalties(sorted, counts, PenaltyParams{2.0f, 0.5f, 0.25f});
  EXPECT_EQ(logits_by_id(sorted, 5), want);
}

TEST(Penalties, RepeatOnlyDividesPositiveMultipliesNegative) {
  // repeat 1.5: 3 -> 2, -2 -> -3 (llama.cpp semantics: always makes the token less likely).
  Candidates c = make({3.0f, -2.0f, 1.0f});
  std::vector<TokenCount> counts = count_tokens(std::vector<int32_t>{0, 1});
  apply_penalties(c, counts, PenaltyParams{1.5f, 0.0f, 0.0f});
  EXPECT_EQ(logits_by_id(c, 3), (std::vector<float>{2.0f, -3.0f, 1.0f}));
}

TEST(LogitBias, AddsAndBans) {
  // [1, 2, 3] + {0: +2.5, 2: -inf} = [3.5, 2, -inf].
  std::map<int32_t, float> bias = {{0, 2.5f}, {2, kNegInf}};
  Candidates c = make({1.0f, 2.0f, 3.0f});
  apply_logit_bias(c, bias);
  EXPECT_EQ(logits_by_id(c, 3), (std::vector<float>{3.5f, 2.0f, kNegInf}));
  EXPECT_EQ(select_greedy(c), 0);

  Candidates sorted = make({1.0f, 2.0f, 3.0f});
  sorted.sort();
  apply_logit_bias(sorted, bias);
  EXPECT_EQ(logits_by_id(sorted, 3), (std::vector<float>{3.5f, 2.0f, kNegInf}));
}

TEST(Temperature, ScalesLogits) {
  // T = 0.5 doubles, T = 2 halves: [1, 2, -4] -> [2, 4, -8] and [0.5, 1, -2].
  Candidates c = make({1.0f, 2.0f, -4.0f});
  apply_temperature(c, 0.5f);
  EXPECT_EQ(logits_by_id(c, 3), (std::vector<float>{2.0f, 4.0f, -8.0f}));
  c = make({1.0f, 2.0f, -4.0f});
  apply_temperature(c, 2.0f);
  EXPECT_EQ(logits_by_id(c, 3), (std::vector<float>{0.5f, 1.0f, -2.0f}));
  // Probabilities: softmax([2, 4]) after T = 0.5 of [1, 2] is [1/(1+e^2), e^2/(1+e^2)].
  c = make({1.0f, 2.0f});
  apply_temperature(c, 0.5f);
  c.softmax();
  EXPECT_NEAR(c.items[0].p, 1.0 / (1.0 + std::exp(2.0)), 1e-6);
}

TEST(Temperature, ZeroKeepsOnlyTheBest) {
  Candidates c = make({1.0f, 7.0f, 3.0f, 7.0f});
  apply_temperature(c, 0.0f);
  EXPECT_EQ(ids(c), (std::vector<int32_t>{1}));
}

TEST(Greedy, LowestIdWinsExactTies) {
  EXPECT_EQ(select_greedy(make({1.0f, 7.0f, 3.0f, 7.0f})), 1);
  EXPECT_EQ(select_greedy(make({2.0f, 2.0f})), 0);
  Candidates sorted = make({1.0f, 7.0f, 3.0f, 7.0f});
  std::reverse(sorted.items.begin(), sorted.items.end());
  sorted.id_ordered = false;
  EXPECT_EQ(select_greedy(sorted), 1);
  EXPECT_EQ(select_greedy(make({kNegInf, kNegInf})), std::nullopt);
  EXPECT_EQ(select_greedy(Candidates{}), std::nullopt);
}

TEST(Draw, InverseCdfWithKnownUniform) {
  // From state {1, 2, 3, 4}, next_double() gives 5 * 2^-53, 0, ~8.2e-11 and then
  // (1215971899390074240 >> 11) * 2^-53 = 0.0659179...; the fourth draw picks id 0 iff its
  // probability exceeds 0.0659.
  Rng rng = Rng::from_state({1, 2, 3, 4});
  Candidates c = make({std::log(0.06f), std::log(0.94f)});
  for (int i = 0; i < 3; ++i) EXPECT_EQ(draw(c, rng), 0);  // tiny u: the first candidate
  EXPECT_EQ(draw(c, rng), 1);                              // 0.0659 > 0.06

  rng = Rng::from_state({1, 2, 3, 4});
  for (int i = 0; i < 3; ++i) (void)rng.next_u64();
  c = make({std::log(0.07f), std::log(0.93f)});
  EXPECT_EQ(draw(c, rng), 0);  // 0.0659 < 0.07
}

TEST(Draw, NeverPicksBannedTokens) {
  Rng rng(1);
  Candidates c = make({kNegInf, 0.0f, kNegInf});
  for (int i = 0; i < 100; ++i) EXPECT_EQ(draw(c, rng), 1);
  Candidates none = make({kNegInf, kNegInf});
  EXPECT_EQ(draw(none, rng), std::nullopt);
  Candidates empty;
  EXPECT_EQ(draw(empty, rng), std::nullopt);
}

}  // namespace
}  // namespace hearth::sampling
