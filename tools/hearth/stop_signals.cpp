#include "stop_signals.h"

#include <pthread.h>

#include <atomic>
#include <ctime>
#include <thread>

#include "hearth/core/log.h"

namespace hearth::cli {

StopSignals::StopSignals() {
  sigemptyset(&set_);
  sigaddset(&set_, SIGINT);
  sigaddset(&set_, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set_, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

Status StopSignals::run(const std::function<Status()>& serve, const std::function<void()>& stop) {
  std::atomic<bool> done{false};
  std::thread watcher([&] {
    const timespec tick{0, 200 * 1000 * 1000};
    while (!done.load()) {
      if (sigtimedwait(&set_, nullptr, &tick) > 0) {
        log::info("stopping");
        stop();
        return;
      }
    }
  });
  Status s = serve();
  done.store(true);
  watcher.join();
  return s;
}

}  // namespace hearth::cli
