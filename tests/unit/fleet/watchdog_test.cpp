// The fleet watchdog: a serving model that leaves requests waiting without progress (it hangs
// or loops) is caught after the stall limit, and only then; work that progresses, or no work at
// all, is never a stall. In the bake window the candidate's outcome names the hang.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>

#include "hearth/fleet/reconciler.h"

namespace hearth::fleet {
namespace {

TEST(StallWatch, FiresOnlyAfterTheLimitWithWorkWaitingAndNoProgress) {
  StallWatch w(10.0);
  EXPECT_FALSE(w.observe({1, 100}, 0.0));
  EXPECT_FALSE(w.observe({1, 100}, 9.9));
  auto s = w.observe({1, 100}, 10.0);
  ASSERT_TRUE(s);
  EXPECT_DOUBLE_EQ(*s, 10.0);
  EXPECT_TRUE(w.observe({2, 100}, 15.0));  // still stuck: still reported
  // Progress resumes: the clock starts again from there.
  EXPECT_FALSE(w.observe({2, 101}, 16.0));
  EXPECT_FALSE(w.observe({2, 101}, 25.9));
  EXPECT_TRUE(w.observe({2, 101}, 26.0));
}

TEST(StallWatch, IdleOrProgressingIsNeverAStall) {
  StallWatch w(1.0);
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(w.observe({0, 7}, i * 1.0)) << i;  // nothing waits
  StallWatch p(1.0);
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(p.observe({4, static_cast<uint64_t>(i)}, i * 5.0)) << i;
  // Idle, then work arrives: the stall counts from the arrival, not from the last progress.
  StallWatch a(10.0);
  EXPECT_FALSE(a.observe({0, 5}, 0.0));
  EXPECT_FALSE(a.observe({1, 5}, 100.0));
  EXPECT_FALSE(a.observe({1, 5}, 109.0));
  EXPECT_TRUE(a.observe({1, 5}, 110.0));
  StallWatch off(0.0);
  EXPECT_FALSE(off.observe({1, 5}, 0.0));
  EXPECT_FALSE(off.observe({1, 5}, 1e9));
}

// A serving switch whose model either progresses on every look or is stuck.
class FakeServing final : public ServingSwitch {
 public:
  explicit FakeServing(bool stuck) : stuck_(stuck) {}
  Status switch_to(std::shared_ptr<model::Model>, const std::string&) override { return ok_status(); }
  std::shared_ptr<model::Model> current() const override { return nullptr; }
  std::optional<server::TrafficSnapshot> traffic() const override { return server::TrafficSnapshot{}; }
  std::optional<WorkProgress> work() const override {
    return WorkProgress{3, stuck_ ? uint64_t{42} : ++progress_};
  }

 private:
  bool stuck_;
  mutable std::atomic<uint64_t> progress_{0};
};

DesiredState baked(int64_t seconds) {
  DesiredState d;
  d.bake_seconds = seconds;
  auto g = parse_gate("error_rate <= 0.1");
  EXPECT_TRUE(g.ok());
  d.gates.push_back(*g);
  return d;
}

TEST(BakeWindow, ACandidateThatHangsFailsTheBakeEarlyAndSaysSo) {
  FakeServing stuck(true);
  ReconcileOptions o;
  o.bake_poll_ms = 10;
  o.stall_seconds = 0.2;
  const auto t0 = std::chrono::steady_clock::now();
  BakeOutcome b = bake_window(baked(60), stuck, server::TrafficSnapshot{}, o);
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_FALSE(b.interrupted);
  EXPECT_NE(b.why.find("no progress"), std::string::npos) << b.why;
  EXPECT_NE(b.why.find("3 request(s) waiting"), std::string::npos) << b.why;
  EXPECT_NE(b.why.find("hangs or loops"), std::string::npos) << b.why;
  EXPECT_LT(took, 30.0);  // ended by the watchdog, not by the 60 s window
  EXPECT_EQ(b.values.at("bake_requests"), 0.0);
}

TEST(BakeWindow, ACandidateThatProgressesBakesToTheEnd) {
  FakeServing fine(false);
  ReconcileOptions o;
  o.bake_poll_ms = 10;
  o.stall_seconds = 0.2;
  BakeOutcome b = bake_window(baked(1), fine, server::TrafficSnapshot{}, o);
  EXPECT_TRUE(b.why.empty()) << b.why;
  EXPECT_FALSE(b.interrupted);
  // The watchdog off: a stuck candidate bakes to the end as well.
  FakeServing stuck(true);
  o.stall_seconds = 0;
  b = bake_window(baked(1), stuck, server::TrafficSnapshot{}, o);
  EXPECT_TRUE(b.why.empty()) << b.why;
  // Interrupted (a newer desired state): says so.
  o.interrupted = [] { return true; };
  b = bake_window(baked(60), fine, server::TrafficSnapshot{}, o);
  EXPECT_TRUE(b.interrupted);
  EXPECT_NE(b.why.find("interrupted"), std::string::npos) << b.why;
}

}  // namespace
}  // namespace hearth::fleet
