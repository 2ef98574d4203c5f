// The hearth CLI's command registry. Each command lives in its own cmd_*.cpp file and registers
// itself with a static CommandRegistrar, so adding a command never edits main.cpp.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

#include "hearth/core/status.h"

namespace hearth::cli {

// Creates the subcommand on `app` and sets its callback.
using CommandSetup = void (*)(CLI::App& app);

struct CommandRegistrar {
  // `order` sorts commands in --help (lower first).
  CommandRegistrar(int order, CommandSetup setup);
};

// The process exit code that main() returns once the callback finished.
void set_exit_code(int code);
int exit_code();

// Prints "error: <message>" to stderr and returns the exit code for the status (1, or 2 for
// invalid arguments).
int report_error(const Status& status);

}  // namespace hearth::cli
