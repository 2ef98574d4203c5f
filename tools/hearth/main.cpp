// hearth: the command-line entry point. Commands register themselves (see command.h).
#include <algorithm>
#include <cstdio>
#include <utility>
#include <vector>

#include "command.h"
#include "familiar_args.h"
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
  // llama.cpp's "-np 2" / "-ngl 99" become flags CLI11 can parse.
  std::vector<std::string> args = rewrite_familiar_args(argc, argv);
  std::vector<char*> cargs;
  for (std::string& a : args) cargs.push_back(a.data());
  try {
    app.parse(static_cast<int>(cargs.size()), cargs.data());
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() != 0) {
      if (auto msg = explain_unknown_argument(app, args)) {
        std::fprintf(stderr, "error: %s\n", msg->c_str());
        return 2;
      }
    }
    return app.exit(e);
  }
  return exit_code();
}
