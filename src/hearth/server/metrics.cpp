// Prometheus text rendering of the server's counters and histograms.
#include "hearth/server/metrics.h"

#include <fmt/format.h>

#include <cmath>
#include <limits>

namespace hearth::server {
namespace {

const std::vector<double> kLatencyBounds{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120};
const std::vector<double> kTtftBounds{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};

void header(std::string& out, const char* name, const char* type, const char* help) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

}  // namespace

void Histogram::observe(double v) {
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  ++counts_[i];
  sum_ += v;
  ++count_;
}

void Histogram::render(std::string& out, const std::string& name, const std::string& labels) const {
  const std::string sep = labels.empty() ? "" : ",";
  uint64_t cum = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cum += counts_[i];
    out += fmt::format("{}_bucket{{{}{}le=\"{}\"}} {}\n", name, labels, sep, bounds_[i], cum);
  }
  cum += counts_.back();
  out += fmt::format("{}_bucket{{{}{}le=\"+Inf\"}} {}\n", name, labels, sep, cum);
  const std::string braces = labels.empty() ? "" : "{" + labels + "}";
  out += fmt::format("{}_sum{} {}\n{}_count{} {}\n", name, braces, sum_, name, braces, count_);
}

bool is_inference_route(std::string_view route) {
  return route == "/v1/chat/completions" || route == "/v1/completions" || route == "/v1/embeddings";
}

double window_quantile(double q, const std::vector<double>& bounds, const std::vector<uint64_t>& after,
                       const std::vector<uint64_t>& before) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  if (bounds.empty() || after.size() != bounds.size() + 1 || before.size() != after.size() || !(q > 0 && q <= 1))
    return nan;
  std::vector<uint64_t> d(after.size());
  uint64_t total = 0;
  for (size_t i = 0; i < d.size(); ++i) {
    d[i] = after[i] >= before[i] ? after[i] - before[i] : 0;
    total += d[i];
  }
  if (total == 0) return nan;
  const double rank = q * static_cast<double>(total);
  uint64_t cum = 0;
  for (size_t i = 0; i < d.size(); ++i) {
    if (d[i] == 0 || static_cast<double>(cum + d[i]) < rank) {
      cum += d[i];
      continue;
    }
    if (i == bounds.size()) return bounds.back();  // the +Inf bucket
    const double lo = i == 0 ? 0.0 : bounds[i - 1], hi = bounds[i];
    return lo + (hi - lo) * (rank - static_cast<double>(cum)) / static_cast<double>(d[i]);
  }
  return bounds.back();
}

Metrics::Metrics() : ttft_(kTtftBounds) {}

TrafficSnapshot Metrics::traffic() const {
  TrafficSnapshot t;
  t.latency_bounds = kLatencyBounds;
  t.latency_counts.assign(kLatencyBounds.size() + 1, 0);
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [key, n] : requests_) {
    if (!is_inference_route(key.first)) continue;
    t.requests += n;
    if (key.second >= 500) t.server_errors += n;
    if (key.second >= 400 && key.second < 500) t.client_errors += n;
  }
  for (const auto& [route, h] : latency_) {
    if (!is_inference_route(route)) continue;
    for (size_t i = 0; i < t.latency_counts.size(); ++i) t.latency_counts[i] += h.counts()[i];
  }
  t.ttft_bounds = ttft_.bounds();
  t.ttft_counts = ttft_.counts();
  t.prompt_tokens = prompt_tokens_;
  t.completion_tokens = completion_tokens_;
  return t;
}

void Metrics::record_request(const std::string& route, int status, double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  ++requests_[{route, status}];
  auto it = latency_.find(route);
  if (it == latency_.end()) it = latency_.emplace(route, Histogram(kLatencyBounds)).first;
  it->second.observe(seconds);
}

void Metrics::record_tokens(int64_t prompt, int64_t completion) {
  std::lock_guard<std::mutex> lock(mu_);
  prompt_tokens_ += static_cast<uint64_t>(std::max<int64_t>(prompt, 0));
  completion_tokens_ += static_cast<uint64_t>(std::max<int64_t>(completion, 0));
}

void Metrics::record_ttft(double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  ttft_.observe(seconds);
}

std::string Metrics::render(const engine::SchedulerStats* s) const {
  std::string out;
  std::lock_guard<std::mutex> lock(mu_);
  header(out, "hearth_requests_total", "counter", "HTTP requests by route and status.");
  for (const auto& [k, v] : requests_) {
    out += fmt::format("hearth_requests_total{{route=\"{}\",status=\"{}\"}} {}\n", k.first, k.second, v);
  }
  header(out, "hearth_request_duration_seconds", "histogram", "Request latency (until the last byte) by route.");
  for (const auto& [route, h] : latency_) h.render(out, "hearth_request_duration_seconds", "route=\"" + route + "\"");
  header(out, "hearth_time_to_first_token_seconds", "histogram", "Time from request to the first generated token.");
  ttft_.render(out, "hearth_time_to_first_token_seconds", "");
  header(out, "hearth_prompt_tokens_total", "counter", "Prompt tokens of completed requests.");
  out += fmt::format("hearth_prompt_tokens_total {}\n", prompt_tokens_);
  header(out, "hearth_completion_tokens_total", "counter", "Generated tokens of completed requests.");
  out += fmt::format("hearth_completion_tokens_total {}\n", completion_tokens_);
  header(out, "hearth_model_loaded", "gauge", "1 when the model is loaded and serving.");
  out += fmt::format("hearth_model_loaded {}\n", s ? 1 : 0);
  if (!s) return out;
  header(out, "hearth_queue_depth", "gauge", "Tasks waiting for a slot.");
  out += fmt::format("hearth_queue_depth {}\n", s->queue_depth);
  header(out, "hearth_slots", "gauge", "Parallel slots.");
  out += fmt::format("hearth_slots {}\n", s->n_slots);
  header(out, "hearth_slots_active", "gauge", "Slots running a request.");
  out += fmt::format("hearth_slots_active {}\n", s->active_slots);
  header(out, "hearth_kv_cache_tokens", "gauge", "Cached positions over all slots.");
  out += fmt::format("hearth_kv_cache_tokens {}\n", s->kv_tokens);
  header(out, "hearth_kv_cache_capacity_tokens", "gauge", "Positions the KV cache can hold (n_ctx * slots).");
  out += fmt::format("hearth_kv_cache_capacity_tokens {}\n", s->kv_capacity);
  header(out, "hearth_kv_cache_usage_ratio", "gauge", "Cached positions / capacity.");
  out +=
      fmt::format("hearth_kv_cache_usage_ratio {}\n",
                  s->kv_capacity > 0 ? static_cast<double>(s->kv_tokens) / static_cast<double>(s->kv_capacity) : 0.0);
  header(out, "hearth_kv_cache_bytes", "gauge", "Bytes reserved for the KV cache.");
  out += fmt::format("hearth_kv_cache_bytes {}\n", s->kv_bytes);
  header(out, "hearth_decode_tokens_per_second", "gauge", "Aggregate decode speed over recent steps.");
  out += fmt::format("hearth_decode_tokens_per_second {:.2f}\n", s->decode_tokens_per_second);
  header(out, "hearth_prompt_tokens_evaluated_total", "counter", "Prompt tokens run through the model.");
  out += fmt::format("hearth_prompt_tokens_evaluated_total {}\n", s->prompt_tokens);
  header(out, "hearth_prompt_tokens_cached_total", "counter", "Prompt tokens reused from a slot's KV cache.");
  out += fmt::format("hearth_prompt_tokens_cached_total {}\n", s->cached_prompt_tokens);
  header(out, "hearth_generated_tokens_total", "counter", "Tokens decoded by the scheduler.");
  out += fmt::format("hearth_generated_tokens_total {}\n", s->generated_tokens);
  header(out, "hearth_scheduler_steps_total", "counter", "Batched forward passes.");
  out += fmt::format("hearth_scheduler_steps_total {}\n", s->steps);
  header(out, "hearth_draft_tokens_proposed_total", "counter", "Draft tokens checked (serve --draft-ngram).");
  out += fmt::format("hearth_draft_tokens_proposed_total {}\n", s->draft_proposed);
  header(out, "hearth_draft_tokens_accepted_total", "counter", "Draft tokens the model kept (serve --draft-ngram).");
  out += fmt::format("hearth_draft_tokens_accepted_total {}\n", s->draft_accepted);
  return out;
}

}  // namespace hearth::server
