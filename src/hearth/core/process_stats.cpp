#include "hearth/core/process_stats.h"

#include <sched.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <utility>

namespace hearth {
namespace {

uint64_t read_kb_field(const char* file, const std::string& key) {
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) {
      std::istringstream ss(line.substr(key.size()));
      uint64_t kb = 0;
      ss >> kb;
      return kb * 1024;
    }
  }
  return 0;
}

}  // namespace

uint64_t peak_rss_bytes() { return read_kb_field("/proc/self/status", "VmHWM:"); }
uint64_t current_rss_bytes() { return read_kb_field("/proc/self/status", "VmRSS:"); }
uint64_t total_memory_bytes() { return read_kb_field("/proc/meminfo", "MemTotal:"); }
uint64_t available_memory_bytes() { return read_kb_field("/proc/meminfo", "MemAvailable:"); }

int physical_core_count() {
  cpu_set_t set;
  CPU_ZERO(&set);
  int allowed = 0;
  if (sched_getaffinity(0, sizeof set, &set) == 0) allowed = CPU_COUNT(&set);
  if (allowed <= 0) allowed = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  // Count distinct (package, core) pairs among the allowed CPUs.
  std::set<std::pair<int, int>> cores;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (!CPU_ISSET(cpu, &set)) continue;
    std::string base = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
    std::ifstream pk(base + "physical_package_id"), co(base + "core_id");
    int p = -1, c = -1;
    if (!(pk >> p) || !(co >> c)) return allowed > 0 ? allowed : 1;
    cores.insert({p, c});
  }
  int n = static_cast<int>(cores.size());
  if (n <= 0) n = allowed;
  return n > 0 ? n : 1;
}

double now_seconds() {
  using clock = std::chrono::steady_clock;
  return std::chrono::duration<double>(clock::now().time_since_epoch()).count();
}

}  // namespace hearth
