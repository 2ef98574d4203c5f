// Server metrics in the Prometheus text exposition format (version 0.0.4): request counts by
// route and status, token counters, time-to-first-token and request latency histograms, and
// the scheduler's gauges (queue depth, active slots, KV-cache use, decode speed).
#pragma once

#include <cstdint>
#include <map>
#include <string_view>
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
  const std::vector<double>& bounds() const { return bounds_; }
  const std::vector<uint64_t>& counts() const { return counts_; }

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket (not cumulative); last is +Inf
  double sum_ = 0.0;
  uint64_t count_ = 0;
};

// The inference routes' counters at one moment (chat, completions, embeddings: not /health or
// /metrics). Two snapshots give the rates and quantiles of the window between them: the fleet
// agent's bake-window gates and its telemetry.
struct TrafficSnapshot {
  uint64_t requests = 0;       // answered inference requests
  uint64_t server_errors = 0;  // of them, answered with a 5xx status
  uint64_t client_errors = 0;  // 4xx (the client's fault, not the model's)
  std::vector<double> latency_bounds;  // seconds; counts per bucket, the last one +Inf
  std::vector<uint64_t> latency_counts;
  std::vector<double> ttft_bounds;
  std::vector<uint64_t> ttft_counts;
  uint64_t prompt_tokens = 0, completion_tokens = 0;
};

// True for the routes that run the model (what TrafficSnapshot counts).
bool is_inference_route(std::string_view route);

// The q-quantile (0 < q <= 1) of the observations a histogram gained between two snapshots of
// it (per-bucket counts `after` - `before`, same bounds), interpolated linearly inside the bucket
// that holds it, as Prometheus's histogram_quantile does; one in the +Inf bucket is reported as
// the largest finite bound. NaN when the window holds no observation or the shapes differ.
double window_quantile(double q, const std::vector<double>& bounds, const std::vector<uint64_t>& after,
                       const std::vector<uint64_t>& before);

class Metrics {
 public:
  Metrics();
  void record_request(const std::string& route, int status, double seconds);
  void record_tokens(int64_t prompt, int64_t completion);
  void record_ttft(double seconds);
  // The exposition text; scheduler stats are null while the model loads.
  std::string render(const engine::SchedulerStats* stats) const;
  TrafficSnapshot traffic() const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  std::map<std::string, Histogram> latency_;
  Histogram ttft_;
  uint64_t prompt_tokens_ = 0, completion_tokens_ = 0;
};

}  // namespace hearth::server
