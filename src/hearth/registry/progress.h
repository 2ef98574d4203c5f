// A transfer progress line on stderr ("\r" updates, at most ~10 per second), shown when stderr
// is a terminal or when forced. Safe to update from several download threads.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>

namespace hearth::registry {

class Progress {
 public:
  // `listener` (optional) hears every add() and the finish, as (bytes done, total), from
  // whichever download thread made the progress: it must be thread-safe.
  using Listener = std::function<void(uint64_t done, uint64_t total)>;
  Progress(std::string label, uint64_t total, bool enabled, Listener listener = {});
  ~Progress();
  void add(uint64_t bytes);
  void finish();

 private:
  void draw(bool final);
  std::string label_;
  uint64_t total_;
  bool enabled_;
  Listener listener_;
  std::atomic<uint64_t> done_{0};
  std::mutex mu_;
  std::chrono::steady_clock::time_point start_, last_draw_;
  bool finished_ = false;
};

// True when stderr is a terminal.
bool stderr_is_terminal();

}  // namespace hearth::registry
