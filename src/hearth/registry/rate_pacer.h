// RatePacer: one byte budget shared by every parallel range of a download, so that
// `pull --limit-rate` caps the total rate across ranges rather than each range's.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

namespace hearth::registry {

class RatePacer {
 public:
  using Clock = std::chrono::steady_clock;
  // 0: unlimited.
  explicit RatePacer(uint64_t bytes_per_second) : rate_(bytes_per_second), start_(Clock::now()) {}

  bool limited() const { return rate_ > 0; }
  // Counts `n` more bytes (from any thread) and returns when, measured from the start, the
  // total counted so far is due at the rate.
  std::chrono::microseconds reserve(uint64_t n) {
    if (rate_ == 0) return std::chrono::microseconds(0);
    const uint64_t total = received_.fetch_add(n) + n;
    // total * 1e6 / rate without overflowing for large totals.
    return std::chrono::microseconds((total / rate_) * 1000000 + (total % rate_) * 1000000 / rate_);
  }
  // Waits until `n` more bytes are within the budget.
  void pace(uint64_t n) {
    if (rate_ > 0) std::this_thread::sleep_until(start_ + reserve(n));
  }

 private:
  const uint64_t rate_;
  const Clock::time_point start_;
  std::atomic<uint64_t> received_{0};
};

}  // namespace hearth::registry
