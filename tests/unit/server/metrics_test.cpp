// The traffic snapshot behind the fleet agent's bake-window gates: which requests count, and
// the windowed quantile of a histogram (checked against hand-computed Prometheus-style
// interpolation).
#include <gtest/gtest.h>

#include <cmath>

#include "hearth/server/metrics.h"

namespace hearth::server {
namespace {

TEST(WindowQuantile, InterpolatesInsideTheBucketThatHoldsIt) {
  const std::vector<double> bounds{1, 2, 4};
  // Window: 10 observations in (1,2], 10 in (2,4]. p50: rank 10 -> the end of bucket (1,2] = 2.
  // p95: rank 19 -> 9 of the 10 in (2,4] -> 2 + 2 * 9/10 = 3.8.
  const std::vector<uint64_t> before{5, 0, 0, 0}, after{5, 10, 10, 0};
  EXPECT_DOUBLE_EQ(window_quantile(0.5, bounds, after, before), 2.0);
  EXPECT_DOUBLE_EQ(window_quantile(0.95, bounds, after, before), 3.8);
  // Observations before the window do not count: the 5 in [0,1] were there already.
  EXPECT_GT(window_quantile(0.1, bounds, after, before), 1.0);
}

TEST(WindowQuantile, EmptyWindowAndBadShapesAreNaN) {
  const std::vector<double> bounds{1, 2};
  EXPECT_TRUE(std::isnan(window_quantile(0.5, bounds, {3, 1, 0}, {3, 1, 0})));
  EXPECT_TRUE(std::isnan(window_quantile(0.5, bounds, {3, 1}, {0, 0})));
  EXPECT_TRUE(std::isnan(window_quantile(0.0, bounds, {3, 1, 0}, {0, 0, 0})));
  EXPECT_TRUE(std::isnan(window_quantile(1.5, bounds, {3, 1, 0}, {0, 0, 0})));
}

TEST(WindowQuantile, TheInfBucketReportsTheLargestFiniteBound) {
  EXPECT_DOUBLE_EQ(window_quantile(0.99, {1, 2}, {0, 0, 7}, {0, 0, 0}), 2.0);
}

TEST(Traffic, CountsOnlyInferenceRoutesAndSplitsErrors) {
  Metrics m;
  m.record_request("/v1/chat/completions", 200, 0.03);
  m.record_request("/v1/chat/completions", 500, 0.2);
  m.record_request("/v1/completions", 400, 0.001);
  m.record_request("/v1/embeddings", 503, 0.002);
  m.record_request("/health", 500, 0.001);
  m.record_request("/metrics", 200, 0.001);
  m.record_tokens(7, 3);
  m.record_ttft(0.02);
  const TrafficSnapshot t = m.traffic();
  EXPECT_EQ(t.requests, 4u);
  EXPECT_EQ(t.server_errors, 2u);
  EXPECT_EQ(t.client_errors, 1u);
  uint64_t latency_total = 0;
  for (uint64_t c : t.latency_counts) latency_total += c;
  EXPECT_EQ(latency_total, 4u);
  ASSERT_EQ(t.latency_counts.size(), t.latency_bounds.size() + 1);
  EXPECT_EQ(t.prompt_tokens, 7u);
  EXPECT_EQ(t.completion_tokens, 3u);
  const std::vector<uint64_t> none(t.ttft_counts.size(), 0);
  const double p50 = window_quantile(0.5, t.ttft_bounds, t.ttft_counts, none);
  EXPECT_GT(p50, 0.01);
  EXPECT_LE(p50, 0.025);
}

}  // namespace
}  // namespace hearth::server
