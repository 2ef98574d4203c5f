// The controller's web dashboard (GET /): plain HTML, CSS and JS from src/hearth/fleet/dashboard/,
// embedded into the binary at build time (cmake/embed_assets.cmake writes dashboard_assets.cpp), so
// it works with no internet and fetches nothing but the controller itself. Its files carry no
// data and are served to anyone; every piece of fleet data comes from admin routes (the same
// bearer token as the API: the page asks for it once and keeps it in sessionStorage).
//
// Routes (besides / and /dashboard/NAME):
//   GET /v1/dashboard/events          admin  text/event-stream read with fetch() (EventSource
//                                            cannot send Authorization): one "update" event per
//                                            change, at most one a second, with the nodes that
//                                            changed (as /v1/nodes shows them), rollout summaries
//                                            and new audit records (at most max_nodes_per_update
//                                            nodes an update; "more": true when others wait for
//                                            the next one); ": keepalive" every 15 s.
//   GET /v1/dashboard/rollouts        admin  {rollouts: [summary]} newest first (at most 200)
//   GET /v1/dashboard/audit?after=N   admin  {audit: [...]} the newest 500 with id > N
//   GET /v1/nodes/<id>/telemetry?range=S  admin  the node's history over the last S seconds
//                                            (60 .. 30 days) in at most ~120 time buckets.
//
// Telemetry history: each telemetry message the controller takes is added to 1-minute and
// 1-hour buckets (sums and counter deltas, in memory, written to the database in one
// transaction every few seconds). Retention: 1-minute buckets for 12 hours, 1-hour buckets for
// 30 days; older ones are deleted every 10 minutes.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "hearth/fleet/fleet_db.h"
#include "hearth/fleet/protocol.h"
#include "hearth/http/http_server.h"

namespace hearth::fleet {

struct DashboardOptions {
  int64_t minute_retention_s = 12 * 3600;
  int64_t hour_retention_s = 30 * 86400;
  int flush_interval_ms = 3000;  // pending telemetry buckets to the database
  int poll_interval_ms = 1000;   // changes looked for while a live stream is open
  int max_streams = 8;           // open live streams (each holds one HTTP worker); more get 503
  // Changed nodes sent in one update; more changed nodes wait for the next ("more": true), so
  // that a rollout over 10,000 nodes streams in bounded pages.
  size_t max_nodes_per_update = 1000;
};

class Dashboard {
 public:
  using AdminCheck = std::function<bool(const http::HttpRequest&)>;
  using NodeJson = std::function<std::string(const NodeRecord&)>;  // the node as /v1/nodes shows it
  Dashboard(FleetDb* db, AdminCheck is_admin, NodeJson node_json, DashboardOptions options = {});
  ~Dashboard();  // stop()
  Dashboard(const Dashboard&) = delete;
  Dashboard& operator=(const Dashboard&) = delete;

  void register_routes(http::HttpServer& server);
  // One telemetry message taken from `before` (the node's record before it, for the counters'
  // deltas) at controller time `now`.
  void on_telemetry(const NodeRecord& before, const Telemetry& t, int64_t now);
  // Ends the live streams and writes what is pending.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The embedded files (generated at build time).
struct DashboardAsset {
  std::string_view name;    // under dashboard/, e.g. "app.js"
  std::string_view body;
  std::string_view sha256;  // hex (the ETag)
};
std::span<const DashboardAsset> dashboard_assets();

}  // namespace hearth::fleet
