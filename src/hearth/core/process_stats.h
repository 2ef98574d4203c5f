// Process statistics: peak resident memory, physical core count, a monotonic clock.
#pragma once

#include <cstdint>

namespace hearth {

// Peak resident set size of this process in bytes (VmHWM), 0 when unknown.
uint64_t peak_rss_bytes();
// Current resident set size in bytes (VmRSS), 0 when unknown.
uint64_t current_rss_bytes();
// Number of physical cores (not SMT siblings) available to this process; at least 1.
int physical_core_count();
// Total physical memory in bytes, 0 when unknown.
uint64_t total_memory_bytes();
// Available memory (MemAvailable) in bytes, 0 when unknown.
uint64_t available_memory_bytes();
// Monotonic time in seconds.
double now_seconds();

}  // namespace hearth
