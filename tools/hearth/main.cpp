// hearth: the command-line entry point. Commands register themselves (see command.h).
#include <algorithm>
#include <cstdio>
#include <utility>
#include <vector>

#include "command.h"
#include "hearth/core/log.h"

namespace hearth::cli {
namespace {

std::vector<std::pair<int, CommandSetup>>& registry() {
  static std::vector<std::pair<int, CommandSetup>> r;
  return r;
}

int g_exit_code = 0;

}  // namespace

CommandRegistrar::CommandRegistrar(int order, CommandSetup setup) { registry().emplace_back(order, setup); }

void set_exit_code(int code) { g_exit_code = code; }
int exit_code() { return g_exit_code; }

int report_error(const Status& status) {
  std::fprintf(stderr, "error: %s\n", status.message().c_str());
  return status.code() == ErrorCode::kInvalidArgument ? 2 : 1;
}

}  // namespace hearth::cli

int main(int argc, char** argv) {
  using namespace hearth::cli;
  CLI::App app{"hearth: run open-weight AI models on hardware you own"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("hearth ") + HEARTH_VERSION);
  bool verbose = false;
  app.add_flag("-v,--verbose", verbose, "log more (also: HEARTH_LOG=debug|info|warn|error)");
  app.parse_complete_callback([&] {
    if (verbose) hearth::log::set_level(hearth::log::Level::kInfo);
  });
  auto& reg = registry();
  std::stable_sort(reg.begin(), reg.end(), [](auto& a, auto& b) { return a.first < b.first; });
  for (auto& [order, setup] : reg) setup(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return exit_code();
}
