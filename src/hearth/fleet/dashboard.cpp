// The controller's dashboard: its embedded files, the live stream of changes and the telemetry
// history (see dashboard.h).
#include "hearth/fleet/dashboard.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <unordered_map>

#include <fmt/format.h>

#include "hearth/core/log.h"
#include "hearth/http/embedded_file.h"
#include "hearth/fleet/rollout.h"

namespace hearth::fleet {
namespace {

using json = nlohmann::json;
using http::HttpRequest;
using http::HttpResponse;

constexpr int64_t kMinute = 60, kHour = 3600;
constexpr int64_t kMaxRange = 30 * 86400;
constexpr size_t kMaxPoints = 120;
constexpr size_t kAuditPage = 500;
constexpr size_t kMaxRollouts = 200;
constexpr size_t kKeptUpdates = 64;  // a stream further behind than this starts over ("resync")

HttpResponse json_response(int status, const json& body) {
  HttpResponse r;
  r.status = status;
  r.body = body.dump();
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}
HttpResponse error_response(int status, std::string_view message) {
  return json_response(status, json{{"error", {{"message", message}}}});
}

json audit_json(const AuditRecord& a) {
  return json{{"id", a.id},         {"time", a.time},       {"actor", a.actor},
              {"action", a.action}, {"subject", a.subject}, {"detail", a.detail}};
}

// The counter's increase since the last message; a counter that went down (the node restarted)
// counts from zero.
int64_t counter_delta(const json& before, const char* key, uint64_t now_value) {
  const auto now_v = static_cast<int64_t>(std::min<uint64_t>(now_value, INT64_MAX));
  auto it = before.find(key);
  if (it == before.end() || !it->is_number_unsigned()) return 0;  // the first message: no interval yet
  const auto prev = static_cast<int64_t>(std::min<uint64_t>(it->get<uint64_t>(), INT64_MAX));
  return now_v >= prev ? now_v - prev : now_v;
}

double finite(double v) { return std::isfinite(v) ? v : 0.0; }

}  // namespace

struct Dashboard::Impl {
  FleetDb* db;
  AdminCheck is_admin;
  NodeJson node_json;
  DashboardOptions opt;

  std::mutex mu;
  std::condition_variable cv;  // the worker's wake-ups and new updates for the streams
  bool stopping = false;
  std::thread worker;

  // Telemetry not yet written, by (node, minute).
  std::map<std::pair<std::string, int64_t>, TelemetryBucket> pending;
  bool history_unsupported = false;

  // The live streams: the updates the poller made, numbered; each stream sends what it has not.
  int streams = 0;
  uint64_t next_seq = 1;
  std::deque<std::pair<uint64_t, std::string>> updates;
  // What the last poll saw.
  bool baseline = false;
  std::unordered_map<std::string, size_t> node_hash;
  std::unordered_map<std::string, size_t> rollout_hash;
  int64_t last_audit_id = 0;

  Impl(FleetDb* d, AdminCheck a, NodeJson n, DashboardOptions o)
      : db(d), is_admin(std::move(a)), node_json(std::move(n)), opt(o) {}

  static int64_t now_s() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  }

  void start() {
    worker = std::thread([this] { run(); });
  }

  void stop() {
    {
      std::lock_guard lock(mu);
      if (stopping) return;
      stopping = true;
    }
    cv.notify_all();
    if (worker.joinable()) worker.join();
    flush();
  }

  void run() {
    using clock = std::chrono::steady_clock;
    auto next_flush = clock::now() + std::chrono::milliseconds(opt.flush_interval_ms);
    auto next_prune = clock::now() + std::chrono::seconds(5);
    std::unique_lock lock(mu);
    while (!stopping) {
      cv.wait_for(lock, std::chrono::milliseconds(opt.poll_interval_ms), [&] { return stopping; });
      if (stopping) break;
      const bool watched = streams > 0;
      lock.unlock();
      if (watched) poll();
      if (clock::now() >= next_flush) {
        flush();
        next_flush = clock::now() + std::chrono::milliseconds(opt.flush_interval_ms);
      }
      if (clock::now() >= next_prune) {
        prune();
        next_prune = clock::now() + std::chrono::minutes(10);
      }
      lock.lock();
      if (!watched) baseline = false;  // no one watched: the next stream starts from a fresh look
    }
  }

  // ------------------------------------------------------------------ telemetry history

  void on_telemetry(const NodeRecord& before, const Telemetry& t, int64_t now) {
    json prev = json::parse(before.telemetry_json.empty() ? "{}" : before.telemetry_json, nullptr, false);
    if (!prev.is_object()) prev = json::object();
    TelemetryBucket b;
    b.node = before.id;
    b.resolution = kMinute;
    b.bucket = now - now % kMinute;
    b.samples = 1;
    b.decode_tok_s = finite(t.decode_tok_s);
    b.prefill_tok_s = finite(t.prefill_tok_s);
    b.ttft_p50_ms = finite(t.ttft_p50_ms);
    b.ttft_p95_ms = finite(t.ttft_p95_ms);
    b.requests = counter_delta(prev, "requests", t.requests);
    b.errors = std::min(counter_delta(prev, "errors", t.errors), b.requests);
    std::lock_guard lock(mu);
    if (history_unsupported || stopping) return;
    auto [it, fresh] = pending.try_emplace({b.node, b.bucket}, b);
    if (!fresh) {
      TelemetryBucket& p = it->second;
      p.samples += 1;
      p.decode_tok_s += b.decode_tok_s;
      p.prefill_tok_s += b.prefill_tok_s;
      p.ttft_p50_ms += b.ttft_p50_ms;
      p.ttft_p95_ms += b.ttft_p95_ms;
      p.requests += b.requests;
      p.errors += b.errors;
    }
  }

  void flush() {
    std::vector<TelemetryBucket> rows;
    {
      std::lock_guard lock(mu);
      if (pending.empty()) return;
      rows.reserve(pending.size() * 2);
      for (auto& [key, b] : pending) {
        rows.push_back(b);
        TelemetryBucket h = b;
        h.resolution = kHour;
        h.bucket = b.bucket - b.bucket % kHour;
        rows.push_back(std::move(h));
      }
      pending.clear();
    }
    if (auto st = db->add_telemetry(rows); !st.ok()) {
      if (st.code() == ErrorCode::kUnimplemented) {
        std::lock_guard lock(mu);
        history_unsupported = true;
      }
      log::warn("dashboard: telemetry history: {}", st.message());
    }
  }

  void prune() {
    const int64_t now = now_s();
    for (auto [res, keep] : {std::pair{kMinute, opt.minute_retention_s}, std::pair{kHour, opt.hour_retention_s}}) {
      if (auto st = db->prune_telemetry(res, now - keep); !st.ok() && st.code() != ErrorCode::kUnimplemented)
        log::warn("dashboard: telemetry retention: {}", st.message());
    }
  }

  // GET /v1/nodes/<id>/telemetry?range=S
  HttpResponse telemetry_route(const HttpRequest& req) {
    const std::string& id = req.path_params.at(0);
    int64_t range = 3600;
    if (auto q = req.query_param("range"); q && !q->empty()) {
      if (q->size() > 9 || q->find_first_not_of("0123456789") != std::string::npos)
        return error_response(400, fmt::format("'range' must be seconds in [60, {}]", kMaxRange));
      range = std::stoll(*q);
      if (range < 60 || range > kMaxRange)
        return error_response(400, fmt::format("'range' must be seconds in [60, {}]", kMaxRange));
    }
    auto node = db->node(id);
    if (!node.ok()) return error_response(500, node.status().message());
    if (!node->has_value()) return error_response(404, "no node '" + id + "' in this fleet");
    flush();  // what arrived since the last write is part of the answer
    const int64_t now = now_s();
    const int64_t resolution = range <= opt.minute_retention_s ? kMinute : kHour;
    // Buckets of `step` seconds, a multiple of the stored resolution, so that at most
    // kMaxPoints cover the range.
    const int64_t per = (range + resolution * static_cast<int64_t>(kMaxPoints) - 1) /
                        (resolution * static_cast<int64_t>(kMaxPoints));
    const int64_t step = resolution * std::max<int64_t>(1, per);
    const int64_t from = (now - range) - (now - range) % step;
    auto rows = db->telemetry(id, resolution, from);
    if (!rows.ok()) {
      if (rows.status().code() == ErrorCode::kUnimplemented)
        return json_response(200, json{{"node", id}, {"step", step}, {"from", from}, {"to", now},
                                       {"points", json::array()}, {"note", rows.status().message()}});
      return error_response(500, rows.status().message());
    }
    std::map<int64_t, TelemetryBucket> merged;
    for (const auto& r : *rows) {
      TelemetryBucket& m = merged[r.bucket - r.bucket % step];
      m.samples += r.samples;
      m.decode_tok_s += r.decode_tok_s;
      m.prefill_tok_s += r.prefill_tok_s;
      m.ttft_p50_ms += r.ttft_p50_ms;
      m.ttft_p95_ms += r.ttft_p95_ms;
      m.requests += r.requests;
      m.errors += r.errors;
    }
    json points = json::array();
    for (const auto& [t, m] : merged) {
      if (m.samples <= 0) continue;
      const double n = static_cast<double>(m.samples);
      points.push_back({{"t", t},
                        {"samples", m.samples},
                        {"decode_tok_s", m.decode_tok_s / n},
                        {"prefill_tok_s", m.prefill_tok_s / n},
                        {"ttft_p50_ms", m.ttft_p50_ms / n},
                        {"ttft_p95_ms", m.ttft_p95_ms / n},
                        {"requests", m.requests},
                        {"errors", m.errors},
                        {"error_rate", m.requests > 0 ? json(static_cast<double>(m.errors) /
                                                             static_cast<double>(m.requests))
                                                      : json(nullptr)}});
    }
    return json_response(200, json{{"node", id}, {"step", step}, {"from", from}, {"to", now}, {"points", points}});
  }

  // ------------------------------------------------------------------ rollouts, audit

  // A rollout in a few fields, with its nodes counted by state.
  Result<json> rollout_summary(const RolloutRecord& r, size_t* hash) {
    auto nodes = db->rollout_nodes(r.id);
    if (!nodes.ok()) return nodes.status();
    std::map<std::string, int> states;
    size_t h = std::hash<std::string>{}(r.state + '\n' + r.reason + '\n' + std::to_string(r.current_batch) + '\n' +
                                        std::to_string(r.batch_done_at));
    int64_t batches = 0;
    for (const auto& n : *nodes) {
      ++states[n.state];
      batches = std::max(batches, n.batch + 1);
      h = h * 1000003u ^ std::hash<std::string>{}(n.node + '\n' + n.state + '\n' + n.gate_values_json);
    }
    if (hash) *hash = h;
    auto spec = rollout_spec_from_json(r.spec_json);
    return json{{"id", r.id},
                {"created", r.created},
                {"state", r.state},
                {"reason", r.reason},
                {"current_batch", r.current_batch},
                {"batches", batches},
                {"model", spec.ok() ? json{{"reference", spec->model.reference}, {"digest", spec->model.digest}}
                                    : json(nullptr)},
                {"selector", spec.ok() ? labels_to_string(spec->selector) : std::string()},
                {"nodes", nodes->size()},
                {"states", states}};
  }

  HttpResponse rollouts_route() {
    auto all = db->rollouts();
    if (!all.ok()) return error_response(500, all.status().message());
    json out = json::array();
    for (auto it = all->rbegin(); it != all->rend() && out.size() < kMaxRollouts; ++it) {
      auto s = rollout_summary(*it, nullptr);
      if (!s.ok()) return error_response(500, s.status().message());
      out.push_back(std::move(*s));
    }
    return json_response(200, json{{"rollouts", out}});
  }

  HttpResponse audit_route(const HttpRequest& req) {
    int64_t after = 0;
    if (auto q = req.query_param("after"); q && !q->empty()) {
      if (q->size() > 18 || q->find_first_not_of("0123456789") != std::string::npos)
        return error_response(400, "'after' must be an audit record id");
      after = std::stoll(*q);
    }
    auto log = db->audit_recent(after, kAuditPage);
    if (!log.ok()) return error_response(500, log.status().message());
    json out = json::array();
    for (const auto& a : *log) out.push_back(audit_json(a));
    return json_response(200, json{{"audit", out}});
  }

  // ------------------------------------------------------------------ live stream

  // One look at the database: what changed since the last look becomes one update.
  void poll() {
    json nodes_changed = json::array(), removed = json::array(), rollouts_changed = json::array(),
         audit_new = json::array();
    auto nodes = db->nodes({});
    if (!nodes.ok()) {
      log::warn("dashboard: {}", nodes.status().message());
      return;
    }
    std::unordered_map<std::string, size_t> seen_nodes;
    seen_nodes.reserve(nodes->size());
    bool more = false;
    for (const auto& n : *nodes) {
      std::string j = node_json(n);
      const size_t h = std::hash<std::string>{}(j);
      auto it = node_hash.find(n.id);
      if (baseline && (it == node_hash.end() || it->second != h)) {
        if (nodes_changed.size() >= opt.max_nodes_per_update) {
          // A page is full: this node goes with a later update (its old hash is kept, so it
          // still differs then; a new node is still new then).
          more = true;
          if (it != node_hash.end()) seen_nodes.emplace(n.id, it->second);
          continue;
        }
        nodes_changed.push_back(json::parse(j));
      }
      seen_nodes.emplace(n.id, h);
    }
    if (baseline)
      for (const auto& [id, h] : node_hash)
        if (!seen_nodes.count(id)) removed.push_back(id);
    node_hash = std::move(seen_nodes);

    if (auto all = db->rollouts(); all.ok()) {
      std::unordered_map<std::string, size_t> seen;
      for (const auto& r : *all) {
        auto old = rollout_hash.find(r.id);
        const bool active = r.state == "running" || r.state == "paused";
        // A finished rollout no longer changes: once seen finished, its nodes are not read again.
        const size_t final_hash = std::hash<std::string>{}("final\n" + r.state + '\n' + r.reason);
        if (!active && old != rollout_hash.end() && old->second == final_hash) {
          seen.emplace(r.id, final_hash);
          continue;
        }
        size_t h = 0;
        auto s = rollout_summary(r, &h);
        if (!s.ok()) continue;
        if (!active) h = final_hash;
        if (baseline && (old == rollout_hash.end() || old->second != h)) rollouts_changed.push_back(std::move(*s));
        seen[r.id] = h;
      }
      rollout_hash = std::move(seen);
    }

    if (auto log = db->audit_recent(last_audit_id, kAuditPage); log.ok()) {
      for (const auto& a : *log) {
        if (baseline) audit_new.push_back(audit_json(a));
        last_audit_id = std::max(last_audit_id, a.id);
      }
    }

    std::lock_guard lock(mu);
    if (!baseline) {
      // The first look after no one watched: pages that connected before it fetch everything
      // again, so that nothing that changed between their first fetch and this look is missed.
      baseline = true;
      updates.emplace_back(next_seq++, "event: resync\ndata: {}\n\n");
      while (updates.size() > kKeptUpdates) updates.pop_front();
      cv.notify_all();
      return;
    }
    if (nodes_changed.empty() && removed.empty() && rollouts_changed.empty() && audit_new.empty()) return;
    const uint64_t seq = next_seq++;
    json u = {{"seq", seq},       {"time", now_s()},      {"nodes", nodes_changed}, {"removed", removed},
              {"rollouts", rollouts_changed}, {"audit", audit_new}, {"more", more}};
    updates.emplace_back(seq, "event: update\ndata: " + u.dump() + "\n\n");
    while (updates.size() > kKeptUpdates) updates.pop_front();
    cv.notify_all();
  }

  HttpResponse events_route(const HttpRequest& req) {
    {
      std::lock_guard lock(mu);
      if (stopping) return error_response(503, "the controller is stopping");
      if (streams >= opt.max_streams)
        return error_response(503, fmt::format("already {} live dashboard streams (the most)", opt.max_streams));
    }
    HttpResponse r;
    r.content_type = "text/event-stream";
    r.headers.emplace_back("Cache-Control", "no-store");
    r.headers.emplace_back("X-Accel-Buffering", "no");
    auto closed = req.connection_closed;
    r.stream = [this, closed](http::StreamWriter& w) {
      // Counted while the body is being written (a response never sent never counts).
      struct Release {
        Impl* self;
        ~Release() {
          std::lock_guard lock(self->mu);
          --self->streams;
        }
      };
      uint64_t sent;
      {
        std::lock_guard lock(mu);
        ++streams;
        sent = next_seq - 1;  // from now on
      }
      Release release{this};
      cv.notify_all();
      if (!w.write("retry: 2000\nevent: hello\ndata: {\"seq\":" + std::to_string(sent) + "}\n\n")) return;
      auto last_write = std::chrono::steady_clock::now();
      std::unique_lock lock(mu);
      while (!stopping) {
        cv.wait_for(lock, std::chrono::seconds(1), [&] { return stopping || next_seq - 1 > sent; });
        if (stopping) break;
        std::string out;
        if (next_seq - 1 > sent) {
          if (updates.empty() || updates.front().first > sent + 1) {
            out = "event: resync\ndata: {}\n\n";  // too far behind: the page fetches everything again
          } else {
            for (const auto& [seq, text] : updates)
              if (seq > sent) out += text;
          }
          sent = next_seq - 1;
        }
        lock.unlock();
        const auto now = std::chrono::steady_clock::now();
        if (out.empty() && now - last_write >= std::chrono::seconds(15)) out = ": keepalive\n\n";
        if (closed && closed()) return;
        if (!out.empty()) {
          if (!w.write(out)) return;
          last_write = now;
        }
        lock.lock();
      }
    };
    return r;
  }

  // ------------------------------------------------------------------ files

  HttpResponse asset_route(const HttpRequest& req) {
    std::string_view name = req.path == "/" ? std::string_view("index.html") : std::string_view(req.path).substr(11);
    const DashboardAsset* a = nullptr;
    for (const auto& x : dashboard_assets())
      if (x.name == name) a = &x;
    if (!a) return error_response(404, "no such file");
    return http::embedded_file_response(req, a->name, a->body, a->sha256);
  }
};

Dashboard::Dashboard(FleetDb* db, AdminCheck is_admin, NodeJson node_json, DashboardOptions options)
    : impl_(std::make_unique<Impl>(db, std::move(is_admin), std::move(node_json), options)) {
  impl_->start();
}

Dashboard::~Dashboard() { stop(); }

void Dashboard::stop() { impl_->stop(); }

void Dashboard::on_telemetry(const NodeRecord& before, const Telemetry& t, int64_t now) {
  impl_->on_telemetry(before, t, now);
}

void Dashboard::register_routes(http::HttpServer& server) {
  Impl* d = impl_.get();
  auto admin = [d](auto f) -> http::HttpHandler {
    return [d, f](const HttpRequest& req) {
      if (!d->is_admin(req))
        return error_response(401, "this route needs the fleet's admin token (Authorization: Bearer)");
      return f(req);
    };
  };
  server.route("GET", "/", [d](const HttpRequest& req) { return d->asset_route(req); });
  server.route("GET", "/dashboard/[a-z0-9_-]{1,40}\\.(html|js|css|svg)",
               [d](const HttpRequest& req) { return d->asset_route(req); });
  server.route("GET", "/v1/dashboard/events", admin([d](const HttpRequest& req) { return d->events_route(req); }));
  server.route("GET", "/v1/dashboard/rollouts", admin([d](const HttpRequest&) { return d->rollouts_route(); }));
  server.route("GET", "/v1/dashboard/audit", admin([d](const HttpRequest& req) { return d->audit_route(req); }));
  server.route("GET", "/v1/nodes/([a-z0-9-]{1,63})/telemetry",
               admin([d](const HttpRequest& req) { return d->telemetry_route(req); }));
}

}  // namespace hearth::fleet
