#include "hearth/core/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cstdlib>
#include <string>

namespace hearth::log {
namespace {

Level initial_level() {
  const char* env = std::getenv("HEARTH_LOG");
  if (env == nullptr) return Level::kWarn;
  std::string v(env);
  if (v == "debug") return Level::kDebug;
  if (v == "info") return Level::kInfo;
  if (v == "error") return Level::kError;
  if (v == "off") return Level::kOff;
  return Level::kWarn;
}

std::atomic<Level>& current() {
  static std::atomic<Level> lvl{initial_level()};
  return lvl;
}

spdlog::logger& logger() {
  static std::shared_ptr<spdlog::logger> l = [] {
    auto lg = spdlog::stderr_color_mt("hearth");
    lg->set_pattern("%^%l%$: %v");
    lg->set_level(spdlog::level::trace);
    return lg;
  }();
  return *l;
}

}  // namespace

void set_level(Level level) { current().store(level); }
Level level() { return current().load(std::memory_order_relaxed); }

void write(Level lvl, std::string_view message) {
  switch (lvl) {
    case Level::kDebug: logger().debug("{}", message); break;
    case Level::kInfo: logger().info("{}", message); break;
    case Level::kWarn: logger().warn("{}", message); break;
    case Level::kError: logger().error("{}", message); break;
    case Level::kOff: break;
  }
}

}  // namespace hearth::log
