#include "hearth/fleet/fleet_metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include "hearth/fleet/rollout.h"

namespace hearth::fleet {
namespace {

using json = nlohmann::json;
using LabelPairs = std::vector<std::pair<std::string_view, std::string>>;

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", v);
}

// One metric family: its HELP and TYPE lines, then every sample, contiguous as the format wants.
class Exposition {
 public:
  void family(std::string_view name, std::string_view type, std::string_view help) {
    name_ = name;
    out_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, escape_help(help), name, type);
  }
  void sample(const LabelPairs& labels, double value) {
    out_ += name_;
    if (!labels.empty()) {
      out_ += '{';
      for (size_t i = 0; i < labels.size(); ++i) {
        if (i) out_ += ',';
        out_ += fmt::format("{}=\"{}\"", labels[i].first, escape_label_value(labels[i].second));
      }
      out_ += '}';
    }
    out_ += ' ';
    out_ += format_value(value);
    out_ += '\n';
  }
  std::string take() { return std::move(out_); }

 private:
  static std::string escape_help(std::string_view h) {
    std::string o;
    for (char c : h) {
      if (c == '\\') {
        o += "\\\\";
      } else if (c == '\n') {
        o += "\\n";
      } else {
        o += c;
      }
    }
    return o;
  }
  std::string out_;
  std::string name_;
};

constexpr std::string_view kNodeStates[] = {"pending", "pulling",     "verifying", "gating",
                                            "serving", "failed", "rolled_back", "offline"};

std::map<std::string, double> numbers_of(const std::string& text) {
  std::map<std::string, double> out;
  json j = json::parse(text.empty() ? "{}" : text, nullptr, false);
  if (!j.is_object()) return out;
  for (auto& [k, v] : j.items())
    if (v.is_number()) out[k] = v.get<double>();
  return out;
}

struct ShownRollout {
  RolloutRecord record;
  RolloutSpec spec;
  std::vector<RolloutNodeRecord> nodes;
  bool running = false;
};

}  // namespace

std::string escape_label_value(std::string_view v) {
  std::string o;
  o.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      o += "\\\\";
    } else if (c == '"') {
      o += "\\\"";
    } else if (c == '\n') {
      o += "\\n";
    } else {
      o += c;
    }
  }
  return o;
}

Result<std::string> render_fleet_metrics(FleetDb& db, const MetricsOptions& options) {
  auto nodes = db.nodes({});
  if (!nodes.ok()) return nodes.status();
  auto all_rollouts = db.rollouts();
  if (!all_rollouts.ok()) return all_rollouts.status();

  Exposition e;
  // Nodes by presence and state: every combination, zeros included, so that a series does not
  // vanish when its last node leaves it.
  std::map<std::pair<std::string, std::string>, double> by_state;
  for (std::string_view presence : {"online", "offline"}) {
    for (std::string_view s : kNodeStates) by_state[{std::string(presence), std::string(s)}] = 0;
    by_state[{std::string(presence), "none"}] = 0;
  }
  std::map<std::pair<std::string, std::string>, double> by_version;
  for (const auto& n : *nodes) {
    std::string state = n.state.empty() ? "none" : n.state;
    if (state != "none" && std::find(std::begin(kNodeStates), std::end(kNodeStates), state) == std::end(kNodeStates))
      state = "other";  // a state this controller does not know (a newer agent's)
    by_state[{n.online ? "online" : "offline", state}] += 1;
    if (!n.serving_digest.empty()) by_version[{n.serving_reference, n.serving_digest}] += 1;
  }
  e.family("hearth_fleet_nodes", "gauge", "Enrolled nodes by presence and last reported state (none: no report yet).");
  for (const auto& [k, v] : by_state) e.sample({{"presence", k.first}, {"state", k.second}}, v);

  // The most common versions by name; beyond kMaxServingSeries, the rest as "other".
  std::vector<std::pair<std::pair<std::string, std::string>, double>> versions(by_version.begin(), by_version.end());
  std::stable_sort(versions.begin(), versions.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  e.family("hearth_fleet_nodes_serving", "gauge", "Nodes by the model they serve (reference and manifest digest).");
  double other = 0;
  for (size_t i = 0; i < versions.size(); ++i) {
    if (i >= kMaxServingSeries) {
      other += versions[i].second;
      continue;
    }
    e.sample({{"reference", versions[i].first.first}, {"digest", versions[i].first.second}}, versions[i].second);
  }
  if (other > 0) e.sample({{"reference", "other"}, {"digest", "other"}}, other);

  std::map<std::string, double> rollouts_by_state = {{"running", 0}, {"paused", 0}, {"succeeded", 0}, {"aborted", 0}};
  for (const auto& r : *all_rollouts) rollouts_by_state[r.state] += 1;
  e.family("hearth_fleet_rollouts", "gauge", "Rollouts by state.");
  for (const auto& [state, v] : rollouts_by_state) e.sample({{"state", state}}, v);

  // The rollouts shown: running and paused ones, then the most recent finished ones.
  std::vector<RolloutRecord> ordered = *all_rollouts;
  std::stable_sort(ordered.begin(), ordered.end(),
                   [](const RolloutRecord& a, const RolloutRecord& b) { return a.created > b.created; });
  std::vector<ShownRollout> shown;
  size_t finished = 0;
  for (const auto& r : ordered) {
    const bool active = r.state == "running" || r.state == "paused";
    if (!active && finished++ >= kMaxFinishedRollouts) continue;
    auto spec = rollout_spec_from_json(r.spec_json);
    if (!spec.ok()) continue;
    auto rn = db.rollout_nodes(r.id);
    if (!rn.ok()) return rn.status();
    shown.push_back({r, *spec, std::move(*rn), r.state == "running"});
  }

  e.family("hearth_fleet_rollout_info", "gauge",
           "1 for each rollout shown (running, paused and the most recent finished ones), with its model.");
  for (const auto& s : shown)
    e.sample({{"rollout", s.record.id},
              {"state", s.record.state},
              {"reference", s.spec.model.reference},
              {"digest", s.spec.model.digest}},
             1);
  e.family("hearth_fleet_rollout_nodes", "gauge", "A rollout's nodes by their state in it.");
  for (const auto& s : shown) {
    std::map<std::string, double> counts;
    for (std::string_view st : kNodeStates) counts[std::string(st)] = 0;
    for (const auto& n : s.nodes) counts[n.state] += 1;
    for (const auto& [st, v] : counts) e.sample({{"rollout", s.record.id}, {"state", st}}, v);
  }
  e.family("hearth_fleet_rollout_batch", "gauge", "The rollout's current batch, from 1 (batches + 1 once finished).");
  for (const auto& s : shown) e.sample({{"rollout", s.record.id}}, static_cast<double>(s.record.current_batch + 1));
  e.family("hearth_fleet_rollout_batches", "gauge", "The rollout's number of batches.");
  for (const auto& s : shown) {
    int64_t n_batches = 0;
    for (const auto& n : s.nodes) n_batches = std::max(n_batches, n.batch + 1);
    e.sample({{"rollout", s.record.id}}, static_cast<double>(n_batches));
  }
  e.family("hearth_fleet_rollout_gate_threshold", "gauge", "The number each gate of a running rollout compares with.");
  for (const auto& s : shown) {
    if (!s.running) continue;
    for (const auto& g : s.spec.gates)
      if (auto pg = parse_gate(g); pg.ok())
        e.sample({{"rollout", s.record.id}, {"gate", pg->to_string()}, {"metric", pg->metric}}, pg->value);
  }
  // Gate values of running rollouts, summarised over the nodes that reported one.
  struct Summary {
    double min = std::numeric_limits<double>::infinity(), max = -std::numeric_limits<double>::infinity(), sum = 0;
    double count = 0;
  };
  std::vector<std::pair<std::string, std::map<std::string, Summary>>> summaries;
  for (const auto& s : shown) {
    if (!s.running) continue;
    std::map<std::string, Summary> per_metric;
    for (const auto& n : s.nodes) {
      for (const auto& [metric, v] : numbers_of(n.gate_values_json)) {
        Summary& m = per_metric[metric];
        m.min = std::min(m.min, v);
        m.max = std::max(m.max, v);
        m.sum += v;
        m.count += 1;
      }
    }
    summaries.emplace_back(s.record.id, std::move(per_metric));
  }
  e.family("hearth_fleet_rollout_gate_value", "gauge",
           "Gate values that the nodes of a running rollout measured: min, max and mean over those that reported.");
  for (const auto& [id, per_metric] : summaries)
    for (const auto& [metric, m] : per_metric) {
      e.sample({{"rollout", id}, {"metric", metric}, {"stat", "min"}}, m.min);
      e.sample({{"rollout", id}, {"metric", metric}, {"stat", "max"}}, m.max);
      e.sample({{"rollout", id}, {"metric", metric}, {"stat", "mean"}}, m.sum / m.count);
    }
  e.family("hearth_fleet_rollout_gate_measured", "gauge", "Nodes of a running rollout that reported a gate value.");
  for (const auto& [id, per_metric] : summaries)
    for (const auto& [metric, m] : per_metric) e.sample({{"rollout", id}, {"metric", metric}}, m.count);

  if (options.per_node) {
    e.family("hearth_fleet_node_online", "gauge", "1 when the node is connected to the broker (per node).");
    for (const auto& n : *nodes) e.sample({{"node", n.id}}, n.online ? 1 : 0);
    e.family("hearth_fleet_node_last_seen_timestamp_seconds", "gauge", "When the node was last heard from (per node).");
    for (const auto& n : *nodes) e.sample({{"node", n.id}}, static_cast<double>(n.last_seen));
    e.family("hearth_fleet_node_state", "gauge", "1 for the node's last reported state (per node).");
    for (const auto& n : *nodes) e.sample({{"node", n.id}, {"state", n.state.empty() ? "none" : n.state}}, 1);
    e.family("hearth_fleet_node_gate_value", "gauge", "Gate values a node measured in a running rollout (per node).");
    for (const auto& s : shown) {
      if (!s.running) continue;
      for (const auto& n : s.nodes)
        for (const auto& [metric, v] : numbers_of(n.gate_values_json))
          e.sample({{"rollout", s.record.id}, {"node", n.node}, {"metric", metric}}, v);
    }
    // From each node's last telemetry message.
    struct TelemetryMetric {
      const char* field;
      const char* name;
      const char* type;
      const char* help;
      double scale;
    };
    const TelemetryMetric tm[] = {
        {"decode_tok_s", "hearth_fleet_node_decode_tokens_per_second", "gauge",
         "Generated tokens per second over the node's last telemetry interval.", 1},
        {"ttft_p95_ms", "hearth_fleet_node_ttft_p95_seconds", "gauge",
         "Time to first token, 95th percentile, over the node's last telemetry interval.", 1e-3},
        {"requests", "hearth_fleet_node_requests_total", "counter", "Requests the node has served since it started.",
         1},
        {"errors", "hearth_fleet_node_errors_total", "counter", "Requests answered with a 5xx since the node started.",
         1},
        {"memory_bytes", "hearth_fleet_node_resident_memory_bytes", "gauge", "The node's resident memory.", 1},
    };
    std::vector<std::map<std::string, double>> telemetry;
    telemetry.reserve(nodes->size());
    for (const auto& n : *nodes) telemetry.push_back(numbers_of(n.telemetry_json));
    for (const auto& m : tm) {
      e.family(m.name, m.type, m.help);
      for (size_t i = 0; i < nodes->size(); ++i)
        if (auto it = telemetry[i].find(m.field); it != telemetry[i].end())
          e.sample({{"node", (*nodes)[i].id}}, it->second * m.scale);
    }
  }
  return e.take();
}

http::HttpResponse metrics_response(FleetDb& db, const MetricsOptions& options) {
  http::HttpResponse r;
  auto text = render_fleet_metrics(db, options);
  if (!text.ok()) {
    r.status = 500;
    r.content_type = "text/plain; charset=utf-8";
    r.body = "metrics: " + text.status().message() + "\n";
    return r;
  }
  r.content_type = std::string(kMetricsContentType);
  r.body = std::move(*text);
  return r;
}

}  // namespace hearth::fleet
