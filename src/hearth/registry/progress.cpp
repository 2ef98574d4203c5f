#include "hearth/registry/progress.h"

#include <unistd.h>

#include <cstdio>

namespace hearth::registry {

bool stderr_is_terminal() { return ::isatty(2) == 1; }

Progress::Progress(std::string label, uint64_t total, bool enabled, Listener listener)
    : label_(std::move(label)),
      total_(total),
      enabled_(enabled),
      listener_(std::move(listener)),
      start_(std::chrono::steady_clock::now()) {}

Progress::~Progress() { finish(); }

void Progress::add(uint64_t bytes) {
  const uint64_t done = done_ += bytes;
  if (listener_) listener_(done, total_);
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  std::lock_guard<std::mutex> lock(mu_);
  if (now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  draw(false);
}

void Progress::finish() {
  if (!enabled_) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (finished_) return;
  finished_ = true;
  draw(true);
}

void Progress::draw(bool final) {
  uint64_t done = done_.load();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  double rate = secs > 0 ? done / secs / 1048576.0 : 0;
  int pct = total_ > 0 ? static_cast<int>(done * 100 / total_) : 100;
  constexpr int kWidth = 24;
  char bar[kWidth + 1];
  for (int i = 0; i < kWidth; ++i) bar[i] = i < pct * kWidth / 100 ? '#' : '.';
  bar[kWidth] = '\0';
  std::fprintf(stderr, "\r%-28.28s [%s] %3d%% %8.1f/%.1f MiB %6.1f MiB/s%s", label_.c_str(), bar, pct, done / 1048576.0,
               total_ / 1048576.0, rate, final ? "\n" : "");
  std::fflush(stderr);
}

}  // namespace hearth::registry
