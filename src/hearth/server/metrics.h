// Server metrics in the Prometheus text exposition format (version 0.0.4): request counts by
// route and status, token counters, time-to-first-token and request latency histograms, and
// the scheduler's gauges (queue depth, active slots, KV-cache use, decode speed).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "hearth/engine/scheduler.h"

namespace hearth::server {

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}
  void observe(double v);
  // Appends the _bucket/_sum/_count lines of metric `name` with extra labels (may be empty).
  void render(std::string& out, const std::string& name, const std::string& labels) const;

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket (not cumulative); last is +Inf
  double sum_ = 0.0;
  uint64_t count_ = 0;
};

class Metrics {
 public:
  Metrics();
  void record_request(const std::string& route, int status, double seconds);
  void record_tokens(int64_t prompt, int64_t completion);
  void record_ttft(double seconds);
  // The exposition text; scheduler stats are null while the model loads.
  std::string render(const engine::SchedulerStats* stats) const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  std::map<std::string, Histogram> latency_;
  Histogram ttft_;
  uint64_t prompt_tokens_ = 0, completion_tokens_ = 0;
};

}  // namespace hearth::server
