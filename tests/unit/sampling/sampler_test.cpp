#include "hearth/sampling/sampler.h"

#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <limits>
#include <set>
#include <vector>

namespace hearth::sampling {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// A config with every filter off: draw straight from softmax(logits / temperature).
SamplerConfig plain(float temperature, uint32_t seed) {
  SamplerConfig cfg;
  cfg.temperature = temperature;
  cfg.top_k = 0;
  cfg.top_p = 1.0f;
  cfg.min_p = 0.0f;
  cfg.seed = seed;
  return cfg;
}

Sampler make_sampler(const SamplerConfig& cfg, int32_t n_vocab) {
  Result<Sampler> s = Sampler::create(cfg, n_vocab);
  EXPECT_TRUE(s.ok()) << s.status().to_string();
  return std::move(s).value();
}

std::vector<int32_t> run(Sampler& s, const std::vector<float>& logits, int steps) {
  std::vector<int32_t> out;
  for (int i = 0; i < steps; ++i) {
    Result<int32_t> t = s.sample(logits);
    EXPECT_TRUE(t.ok()) << t.status().to_string();
    out.push_back(*t);
    EXPECT_TRUE(s.accept(*t).ok());
  }
  return out;
}

// Pearson's chi-square statistic of observed counts against expected probabilities.
double chi_square(const std::vector<int>& counts, const std::vector<double>& p, int n) {
  double chi2 = 0.0;
  for (size_t i = 0; i < p.size(); ++i) {
    double expected = p[i] * n;
    chi2 += (counts[i] - expected) * (counts[i] - expected) / expected;
  }
  return chi2;
}

std::vector<int> histogram(Sampler& s, const std::vector<float>& logits, int n) {
  std::vector<int> counts(logits.size(), 0);
  for (int i = 0; i < n; ++i) {
    Result<int32_t> t = s.sample(logits);
    EXPECT_TRUE(t.ok());
    ++counts[static_cast<size_t>(*t)];
  }
  return counts;
}

TEST(SamplerConfig, DefaultsAreTheCliDefaults) {
  SamplerConfig cfg;
  EXPECT_EQ(cfg.temperature, 0.8f);
  EXPECT_EQ(cfg.top_k, 40);
  EXPECT_EQ(cfg.top_p, 0.95f);
  EXPECT_EQ(cfg.min_p, 0.05f);
  EXPECT_EQ(cfg.repeat_penalty, 1.0f);
  EXPECT_EQ(cfg.presence_penalty, 0.0f);
  EXPECT_EQ(cfg.frequency_penalty, 0.0f);
  EXPECT_EQ(cfg.penalty_window, 64);
  EXPECT_EQ(cfg.seed, kRandomSeed);
  EXPECT_TRUE(validate(cfg, 512).ok());
}

TEST(SamplerConfig, RejectsBadValuesWithSpecificMessages) {
  SamplerConfig cfg;
  cfg.top_p = 0.0f;
  Status s = validate(cfg, 10);
  EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(s.message().find("top_p = 0"), std::string::npos) << s.message();

  cfg = SamplerConfig{};
  cfg.min_p = 1.5f;
  EXPECT_NE(validate(cfg, 10).message().find("min_p = 1.5"), std::string::npos);

  cfg = SamplerConfig{};
  cfg.repeat_penalty = 0.0f;
  EXPECT_FALSE(validate(cfg, 10).ok());

  cfg = SamplerConfig{};
  cfg.temperature = std::numeric_limits<float>::quiet_NaN();
  EXPECT_NE(validate(cfg, 10).message().find("temperature = nan"), std::string::npos);

  cfg = SamplerConfig{};
  cfg.penalty_window = -1;
  EXPECT_FALSE(validate(cfg, 10).ok());

  cfg = SamplerConfig{};
  cfg.logit_bias[10] = 1.0f;
  s = validate(cfg, 10);
  EXPECT_NE(s.message().find("logit_bias token id 10 is out of range [0, 10)"), std::string::npos) << s.message();

  cfg = SamplerConfig{};
  cfg.logit_bias[3] = std::numeric_limits<float>::infinity();
  EXPECT_FALSE(validate(cfg, 10).ok());
  cfg.logit_bias[3] = kNegInf;  // a ban is fine
  EXPECT_TRUE(validate(cfg, 10).ok());
  // Banning the whole vocabulary is an argument error up front, not a failure at sampling.
  for (int32_t id = 0; id < 9; ++id) cfg.logit_bias[id] = kNegInf;
  EXPECT_TRUE(validate(cfg, 10).ok());
  cfg.logit_bias[9] = kNegInf;
  s = validate(cfg, 10);
  EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(s.message().find("logit_bias bans all 10 tokens"), std::string::npos) << s.message();

  cfg = SamplerConfig{};
  cfg.eog_tokens = {2, -1};
  EXPECT_NE(validate(cfg, 10).message().find("end-of-generation token id -1"), std::string::npos);

  EXPECT_FALSE(validate(SamplerConfig{}, 0).ok());
  EXPECT_FALSE(Sampler::create(cfg, 10).ok());
}

TEST(Sampler, TemperatureZeroIsGreedyWithLowestIdOnTies) {
  Sampler s = make_sampler(plain(0.0f, 1), 4);
  EXPECT_EQ(*s.sample(std::vector<float>{0.5f, 2.0f, 2.0f, 1.0f}), 1);
  SamplerConfig neg = plain(-1.0f, 1);
  Sampler s2 = make_sampler(neg, 3);
  EXPECT_EQ(*s2.sample(std::vector<float>{3.0f, 3.0f, 3.0f}), 0);
}

TEST(Sampler, RepeatPenaltyFollowsTheWindow) {
  // logits [3, 2.5, 0]; repeat 2: once 0 is in the window its logit is 3 / 2 = 1.5 < 2.5.
  SamplerConfig cfg = plain(0.0f, 1);
  cfg.repeat_penalty = 2.0f;
  cfg.penalty_window = 2;
  Sampler s = make_sampler(cfg, 3);
  const std::vector<float> logits = {3.0f, 2.5f, 0.0f};
  EXPECT_EQ(*s.sample(logits), 0);
  ASSERT_TRUE(s.accept(0).ok());
  EXPECT_EQ(*s.sample(logits), 1);
  // Two more tokens push 0 out of the 2-token window.
  ASSERT_TRUE(s.accept(2).ok());
  ASSERT_TRUE(s.accept(2).ok());
  EXPECT_EQ(s.history().size(), 2u);
  EXPECT_EQ(*s.sample(logits), 0);
  s.reset_history();
  EXPECT_TRUE(s.history().empty());
}

TEST(Sampler, PresenceAndFrequencyPenalties) {
  // logits [2, 1.6]; window [0, 0]; presence 0.1, frequency 0.2: 2 - (2 * 0.2 + 0.1) = 1.5 < 1.6.
  SamplerConfig cfg = plain(0.0f, 1);
  cfg.presence_penalty = 0.1f;
  cfg.frequency_penalty = 0.2f;
  Sampler s = make_sampler(cfg, 2);
  const std::vector<float> logits = {2.0f, 1.6f};
  ASSERT_TRUE(s.accept(0).ok());
  EXPECT_EQ(*s.sample(logits), 0);  // 2 - 0.3 = 1.7 > 1.6
  ASSERT_TRUE(s.accept(0).ok());
  EXPECT_EQ(*s.sample(logits), 1);  // 1.5 < 1.6
}

TEST(Sampler, ZeroWindowDisablesPenalties) {
  SamplerConfig cfg = plain(0.0f, 1);
  cfg.repeat_penalty = 100.0f;
  cfg.penalty_window = 0;
  Sampler s = make_sampler(cfg, 2);
  ASSERT_TRUE(s.accept(0).ok());
  EXPECT_TRUE(s.history().empty());
  EXPECT_EQ(*s.sample(std::vector<float>{2.0f, 1.0f}), 0);
}

TEST(Sampler, LogitBiasBansToken) {
  SamplerConfig cfg = plain(0.0f, 1);
  cfg.logit_bias[0] = kNegInf;
  Sampler greedy = make_sampler(cfg, 3);
  EXPECT_EQ(*greedy.sample(std::vector<float>{5.0f, 1.0f, 1.0f}), 1);

  cfg.temperature = 1.0f;
  Sampler s = make_sampler(cfg, 3);
  std::vector<int> counts = histogram(s, {5.0f, 1.0f, 1.0f}, 500);
  EXPECT_EQ(counts[0], 0);
  EXPECT_GT(counts[1], 0);
  EXPECT_GT(counts[2], 0);
}

TEST(Sampler, TopKThroughTheChain) {
  // [1, 2, 3, 4] with top-k 2: only ids 3 and 2 can be drawn; P(3) = e / (1 + e) = 0.731.
  SamplerConfig cfg = plain(1.0f, 99);
  cfg.top_k = 2;
  Sampler s = make_sampler(cfg, 4);
  std::vector<int> counts = histogram(s, {1.0f, 2.0f, 3.0f, 4.0f}, 2000);
  EXPECT_EQ(counts[0] + counts[1], 0);
  // Binomial standard deviation sqrt(2000 * 0.731 * 0.269) = 19.8; allow 5 sigma.
  EXPECT_NEAR(counts[3], 2000 * std::exp(1.0) / (1.0 + std::exp(1.0)), 100);
}

TEST(Sampler, DefaultChainOnFourWay) {
  // The default chain with top-p 0.9 on p = [0.15, 0.5, 0.05, 0.3]: top-k 40 keeps all four;
  // top-p 0.9 keeps ids 1, 3, 0 (cumulative 0.5, 0.8, 0.95); min-p 0.05 (threshold 0.025)
  // keeps those three; temperature 0.8 reshapes them. So id 2 is never drawn.
  SamplerConfig cfg;
  cfg.seed = 5;
  cfg.top_p = 0.9f;
  Sampler s = make_sampler(cfg, 4);
  std::vector<int> counts = histogram(s, {std::log(0.15f), std::log(0.5f), std::log(0.05f), std::log(0.3f)}, 3000);
  EXPECT_EQ(counts[2], 0);
  EXPECT_GT(counts[0], 0);
  EXPECT_GT(counts[1], counts[3]);
  EXPECT_EQ(s.last_candidates().size(), 3u);
}

TEST(Sampler, ChiSquareOnKnownFourWayDistribution) {
  // p = [0.1, 0.2, 0.3, 0.4] (logits ln p, temperature 1). 20000 draws with a fixed seed, so
  // the outcome is deterministic. Chi-square with 3 degrees of freedom: the 0.999 quantile is
  // 16.27, so a correct sampler passes for all but 1 in 1000 seeds and this seed is fixed.
  const int n = 20000;
  const std::vector<double> p = {0.1, 0.2, 0.3, 0.4};
  std::vector<float> logits;
  for (double v : p) logits.push_back(static_cast<float>(std::log(v)));
  Sampler s = make_sampler(plain(1.0f, 20240601), 4);
  std::vector<int> counts = histogram(s, logits, n);
  double chi2 = chi_square(counts, p, n);
  EXPECT_LT(chi2, 16.27) << counts[0] << " " << counts[1] << " " << counts[2] << " " << counts[3];

  // Temperature 0.5 squares the probabilities: [0.01, 0.04, 0.09, 0.16] / 0.30
  // = [0.0333, 0.1333, 0.3, 0.5333].
  Sampler cold = make_sampler(plain(0.5f, 777), 4);
  counts = histogram(cold, logits, n);
  chi2 = chi_square(counts, {0.01 / 0.3, 0.04 / 0.3, 0.09 / 0.3, 0.16 / 0.3}, n);
  EXPECT_LT(chi2, 16.27) << counts[0] << " " << counts[1] << " " << counts[2] << " " << counts[3];

  // And the test has power: the untempered counts are far from the tempered distribution.
  Sampler again = make_sampler(plain(1.0f, 20240601), 4);
  counts = histogram(again, logits, n);
  EXPECT_GT(chi_square(counts, {0.01 / 0.3, 0.04 / 0.3, 0.09 / 0.3, 0.16 / 0.3}, n), 1000.0);
}

TEST(Sampler, SameSeedSameSequenceDifferentSeedDifferent) {
  std::vector<float> logits(50);
  for (size_t i = 0; i < logits.size(); ++i) logits[i] = 0.1f * static_cast<float>(i % 7);
  SamplerConfig cfg;  // the default chain, with penalties to exercise the history
  cfg.repeat_penalty = 1.1f;
  cfg.seed = 42;
  Sampler a = make_sampler(cfg, 50);
  Sampler b = make_sampler(cfg, 50);
  cfg.seed = 43;
  Sampler c = make_sampler(cfg, 50);
  std::vector<int32_t> ra = run(a, logits, 200);
  EXPECT_EQ(ra, run(b, logits, 200));
  EXPECT_NE(ra, run(c, logits, 200));
  EXPECT_GT(std::set<int32_t>(ra.begin(), ra.end()).size(), 5u);
}

TEST(Sampler, RandomSeedIsReportedAndReplays) {
  SamplerConfig cfg;
  ASSERT_EQ(cfg.seed, kRandomSeed);
  Sampler a = make_sampler(cfg, 20);
  EXPECT_NE(a.seed(), kRandomSeed);
  cfg.seed = a.seed();
  Sampler b = make_sampler(cfg, 20);
  std::vector<float> logits(20, 0.0f);
  EXPECT_EQ(run(a, logits, 50), run(b, logits, 50));
}

TEST(Sampler, MaskHookConstrainsTokens) {
  Sampler s = make_sampler(plain(1.0f, 3), 10);
  int calls = 0;
  s.set_token_mask([&](std::span<TokenCandidate> cands) {
    ++calls;
    EXPECT_EQ(cands.size(), 10u);
    for (TokenCandidate& t : cands) {
      if (t.id % 2 == 1) t.logit = kNegInf;
    }
    return ok_status();
  });
  std::vector<float> logits(10, 0.0f);
  logits[1] = 10.0f;  // the favourite is odd, so the mask decides
  std::vector<int> counts = histogram(s, logits, 300);
  EXPECT_EQ(calls, 300);
  for (int id = 1; id < 10; id += 2) EXPECT_EQ(counts[static_cast<size_t>(id)], 0);

  // The mask also applies to greedy decoding.
  Sampler g = make_sampler(plain(0.0f, 3), 10);
  g.set_token_mask([](std::span<TokenCandidate> cands) {
    for (TokenCandidate& t : cands) {
      if (t.id != 7) t.logit = kNegInf;
    }
    return ok_status();
  });
  EXPECT_EQ(*g.sample(logits), 7);
}

TEST(Sampler, MaskErrorsAndEverythingMasked) {
  Sampler s = make_sampler(plain(1.0f, 3), 4);
  s.set_token_mask(
      [](std::span<TokenCandidate>) { return make_error(ErrorCode::kInvalidArgument, "grammar: no rule matches"); });
  std::vector<float> logits(4, 0.0f);
  Result<int32_t> r = s.sample(logits);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "sampler: token mask: grammar: no rule matches");

  s.set_token_mask([](std::span<TokenCandidate> cands) {
    for (TokenCandidate& t : cands) t.logit = kNegInf;
    return ok_status();
  });
  r = s.sample(logits);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kFailedPrecondition);

  s.set_token_mask(nullptr);
  EXPECT_TRUE(s.sample(logits).ok());
}

TEST(Sampler, RejectsBadInput) {
  Sampler s = make_sampler(plain(1.0f, 3), 4);
  Result<int32_t> r = s.sample(std::vector<float>{0.0f, 1.0f});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "sampler: got 2 logits, expected n_vocab = 4");

  r = s.sample(std::vector<float>{0.0f, std::numeric_limits<float>::quiet_NaN(), 0.0f, 0.0f});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("logit of token 1 is nan"), std::string::npos);

  r = s.sample(std::vector<float>{0.0f, 0.0f, std::numeric_limits<float>::infinity(), 0.0f});
  EXPECT_FALSE(r.ok());

  // -inf logits from the model are fine (a masked vocabulary slot).
  EXPECT_EQ(*s.sample(std::vector<float>{kNegInf, kNegInf, 0.0f, kNegInf}), 2);

  Status a = s.accept(4);
  EXPECT_EQ(a.message(), "sampler: accepted token id 4 is out of range [0, 4)");
  EXPECT_FALSE(s.accept(-1).ok());
}

TEST(Sampler, EndOfGenerationTokens) {
  SamplerConfig cfg = plain(1.0f, 1);
  cfg.eog_tokens = {2, 5};
  Sampler s = make_sampler(cfg, 8);
  EXPECT_TRUE(s.is_eog(2));
  EXPECT_TRUE(s.is_eog(5));
  EXPECT_FALSE(s.is_eog(0));
  EXPECT_FALSE(s.is_eog(-1));
}

}  // namespace
}  // namespace hearth::sampling
