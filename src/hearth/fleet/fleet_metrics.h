// The controller's Prometheus endpoint (GET /metrics, admin token as for the API): the fleet as
// the controller's database sees it, in the text exposition format 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/).
//
//   hearth_fleet_nodes{presence,state}                nodes by presence and last reported state
//   hearth_fleet_nodes_serving{reference,digest}      nodes by the model they serve
//   hearth_fleet_rollouts{state}                      rollouts by state
//   hearth_fleet_rollout_info{rollout,state,reference,digest}                  1 per shown rollout
//   hearth_fleet_rollout_nodes{rollout,state}         the rollout's nodes by their state in it
//   hearth_fleet_rollout_batch{rollout}, _batches{rollout}   current batch (1-based), batch count
//   hearth_fleet_rollout_gate_threshold{rollout,gate,metric}            the gate's number
//   hearth_fleet_rollout_gate_value{rollout,metric,stat=min|max|mean}   over the nodes measured
//   hearth_fleet_rollout_gate_measured{rollout,metric}                  nodes with a value
//
// Labels stay bounded: every value comes from a closed set (states), from rollouts (running and
// paused ones, plus the kMaxFinishedRollouts most recent finished ones), or from the models being
// served (at most kMaxServingSeries; the rest are summed into reference="other"). Per-node series
// (hearth_fleet_node_*: presence, last seen, state, gate values in running rollouts, telemetry)
// grow with the fleet and are off unless MetricsOptions::per_node (`controller --metrics-per-node`).
#pragma once

#include <cstdint>
#include <string>

#include "hearth/core/status.h"
#include "hearth/fleet/fleet_db.h"
#include "hearth/http/http_server.h"

namespace hearth::fleet {

inline constexpr size_t kMaxFinishedRollouts = 5;
inline constexpr size_t kMaxServingSeries = 50;
inline constexpr std::string_view kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

struct MetricsOptions {
  bool per_node = false;
};

// The whole exposition, read from `db` at the time of the call.
Result<std::string> render_fleet_metrics(FleetDb& db, const MetricsOptions& options);

// The route's answer: 200 with the exposition, or 500 naming the database error.
http::HttpResponse metrics_response(FleetDb& db, const MetricsOptions& options);

// A label value as the text format writes it: backslash, double quote and newline escaped.
std::string escape_label_value(std::string_view v);

}  // namespace hearth::fleet
