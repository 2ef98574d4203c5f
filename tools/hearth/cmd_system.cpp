// `hearth system`: what hearth sees of this machine (cores, memory).
#include <cstdio>

#include "command.h"
#include "hearth/core/process_stats.h"

namespace hearth::cli {
namespace {

void setup(CLI::App& app) {
  auto* sub = app.add_subcommand("system", "show what hearth sees of this machine");
  sub->callback([] {
    std::printf("physical cores: %d\n", physical_core_count());
    std::printf("memory: %.1f GiB total, %.1f GiB available\n", total_memory_bytes() / 1073741824.0,
                available_memory_bytes() / 1073741824.0);
    set_exit_code(0);
  });
}

CommandRegistrar reg(900, setup);

}  // namespace
}  // namespace hearth::cli
