// Runs a shell command line for a test and captures its standard output and exit status.
#pragma once

#include <string>

namespace hearth::testing {

struct CommandResult {
  int exit_code = -1;  // 128 when the command did not exit normally (a signal); -1 when it did not start
  std::string out;     // its standard output (redirect 2>&1 in `command` to capture stderr too)
};

CommandResult run_command(const std::string& command);

}  // namespace hearth::testing
