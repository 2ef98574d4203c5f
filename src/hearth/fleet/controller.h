// The fleet controller (`hearth controller`): an HTTPS JSON API on hearth's HTTP adapter and an
// MQTT client (identity hearth-controller) that records what nodes report.
//
// API (JSON; admin routes need "Authorization: Bearer <DIR/controller/admin.token>"):
//   GET  /v1/ca                          the fleet CA certificate (PEM), which enrollment pins
//   POST /v1/enroll                      {token, node, csr} -> {certificate, ca, fleet, broker_url,
//                                        desired_public_key}: one use per token, before it expires
//   POST /v1/tokens             admin    {labels, ttl_seconds} -> {token, expires_at}
//   GET  /v1/nodes?selector=k=v admin    {nodes: [...]}
//   PUT  /v1/nodes/<id>/labels  admin    {labels}
//   GET  /v1/audit?subject=     admin    {audit: [...]}
//   GET  /metrics               admin    Prometheus text format (fleet_metrics.h)
//   GET  /v1/leader                      {leader, self, leading}
// Every decision (token made, node enrolled or refused, labels changed) goes to the audit table.
//
// Throughput (10,000 nodes): the MQTT thread only queues what nodes send; a writer thread
// commits whatever is queued (reports, presence, telemetry, events; up to 10,000 messages) in one
// transaction and wakes the rollout driver. Each driver pass records what it decides in one
// transaction (FleetDb::write) and then publishes the batch's desired states pipelined
// (MqttClient::publish_many); every recorded desired state is published again on each connect.
//
// Several controllers may share one PostgreSQL database: one leads (FleetDb::lead), connects to
// the broker as hearth-controller and drives rollouts. A standby serves the GET routes from the
// database and answers every write (enroll, tokens, labels, rollouts) with 503 and the leader's
// URL; it takes over within about a second of the leader's database session ending. A leader
// that loses its session exits (status 75) rather than risk publishing beside a new leader.
#pragma once

#include <memory>
#include <string>

#include "hearth/core/status.h"
#include "hearth/fleet/fleet_db.h"
#include "hearth/fleet/fleet_dir.h"

namespace hearth::fleet {

struct ControllerOptions {
  std::string listen_host;  // default: the controller URL's host
  int listen_port = -1;     // default: the controller URL's port; 0: any free port
  std::string db_url;       // default: sqlite:DIR/controller/fleet.db
  bool metrics_per_node = false;  // GET /metrics with per-node series (fleet_metrics.h)
};

class Controller {
 public:
  static Result<std::unique_ptr<Controller>> create(const FleetInfo& fleet, const ControllerOptions& options);
  virtual ~Controller() = default;
  // Binds the HTTPS port (known after this) and starts the MQTT client in the background.
  virtual Status start() = 0;
  virtual int port() const = 0;
  // Serves until stop().
  virtual Status serve() = 0;
  virtual void stop() = 0;
};

}  // namespace hearth::fleet
