// How the long-running commands (serve, registry serve, controller, agent run) stop: SIGINT and
// SIGTERM are taken by one watcher thread, which calls the command's stop (a signal handler may
// not touch a server). The signals must be blocked before any other thread starts, so that no
// thread takes them with the default action (which ends the process at once): construct
// StopSignals first, then create the servers, then run().
#pragma once

#include <signal.h>

#include <functional>

#include "hearth/core/status.h"

namespace hearth::cli {

class StopSignals {
 public:
  // Blocks SIGINT/SIGTERM in this thread (every thread started later inherits the mask) and
  // ignores SIGPIPE.
  StopSignals();
  // Runs serve() until it returns; the first SIGINT/SIGTERM meanwhile calls stop() once.
  Status run(const std::function<Status()>& serve, const std::function<void()>& stop);

 private:
  sigset_t set_;
};

}  // namespace hearth::cli
