// ThreadPool: every index is handed out exactly once, whatever the split, and a pool is
// reusable for many jobs in a row (the decode pattern).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <utility>
#include <vector>

#include "hearth/core/thread_pool.h"

namespace hearth {
namespace {

struct Claims {
  std::mutex mu;
  std::vector<std::pair<int64_t, int64_t>> ranges;
  void add(int64_t b, int64_t e) {
    std::lock_guard<std::mutex> lock(mu);
    ranges.emplace_back(b, e);
  }
  // The claimed ranges tile [0, n) with no gap and no overlap.
  void expect_tiles(int64_t n) {
    std::sort(ranges.begin(), ranges.end());
    int64_t at = 0;
    for (auto [b, e] : ranges) {
      EXPECT_EQ(b, at);
      EXPECT_LT(b, e);
      at = e;
    }
    EXPECT_EQ(at, n);
  }
};

TEST(ThreadPool, ParallelForCoversEveryIndexOnce) {
  for (int threads : {1, 2, 3, 5}) {
    ThreadPool pool(threads);
    for (int64_t n : {1, 2, 7, 64, 1000}) {
      for (int64_t grain : {1, 3, 64}) {
        Claims c;
        pool.parallel_for(n, grain, [&](int64_t b, int64_t e) { c.add(b, e); });
        // One thread runs the whole range in one call; otherwise no claim exceeds the grain.
        if (threads > 1) {
          for (auto [b, e] : c.ranges) EXPECT_LE(e - b, grain);
        }
        c.expect_tiles(n);
      }
    }
  }
}

TEST(ThreadPool, GuidedClaimsShrinkAndCoverEveryIndexOnce) {
  for (int threads : {1, 2, 3, 5}) {
    ThreadPool pool(threads);
    for (int64_t n : {1, 2, 7, 64, 1000, 4097}) {
      for (int64_t min_grain : {1, 2, 16}) {
        Claims c;
        pool.parallel_for_guided(n, min_grain, [&](int64_t b, int64_t e) { c.add(b, e); });
        c.expect_tiles(n);
        // Claims in index order never grow (each is a share of what is left), and only the
        // last may be shorter than min_grain.
        for (size_t i = 0; i + 1 < c.ranges.size(); ++i) {
          const int64_t len = c.ranges[i].second - c.ranges[i].first;
          EXPECT_GE(len, min_grain);
          EXPECT_GE(len, c.ranges[i + 1].second - c.ranges[i + 1].first);
        }
        if (threads > 1 && n >= 64 * min_grain) {
          EXPECT_GT(c.ranges.size(), static_cast<size_t>(threads)) << "n=" << n;
          EXPECT_LE(c.ranges.front().second, n / 2) << "the first claim leaves work for the others";
        }
      }
    }
  }
}

TEST(ThreadPool, ManyJobsInARow) {
  ThreadPool pool(2);
  std::atomic<int64_t> total{0};
  for (int job = 0; job < 2000; ++job) {
    pool.parallel_for_guided(100, 2, [&](int64_t b, int64_t e) { total.fetch_add(e - b); });
  }
  EXPECT_EQ(total.load(), 200000);
}

}  // namespace
}  // namespace hearth
