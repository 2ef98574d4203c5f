// `hearth fleet`, `hearth controller`, `hearth agent`: the fleet layer (see src/hearth/fleet/).
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <functional>
#include <nlohmann/json.hpp>
#include <thread>

#include "command.h"
#include "common_options.h"
#include "hearth/core/atomic_file.h"
#include "hearth/core/log.h"
#include "hearth/fleet/agent.h"
#include "hearth/fleet/controller.h"
#include "hearth/fleet/fleet_db.h"
#include "hearth/fleet/fleet_dir.h"
#include "hearth/fleet/sim.h"
#include "hearth/registry/http_client.h"
#include "hearth/store/store.h"
#include "stop_signals.h"

namespace hearth::cli {
namespace {

using json = nlohmann::json;
using namespace hearth::fleet;

void report(const Status& s) { set_exit_code(s.ok() ? 0 : report_error(s)); }

// "90s", "30m", "1h", "2d", or plain seconds.
Result<int64_t> parse_duration_s(const std::string& text) {
  if (text.empty()) return make_error(ErrorCode::kInvalidArgument, "empty duration");
  int64_t n = 0;
  size_t i = 0;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
    if (n > 100000000) return make_error(ErrorCode::kInvalidArgument, "duration '{}' is too long", text);
    n = n * 10 + (text[i] - '0');
  }
  if (i == 0) return make_error(ErrorCode::kInvalidArgument, "duration '{}' does not start with a number", text);
  std::string unit = text.substr(i);
  if (unit.empty() || unit == "s") return n;
  if (unit == "m") return n * 60;
  if (unit == "h") return n * 3600;
  if (unit == "d") return n * 86400;
  return make_error(ErrorCode::kInvalidArgument, "duration '{}': unit must be s, m, h or d", text);
}

// The controller's admin API, as the operator's CLI calls it.
class AdminClient {
 public:
  static Result<AdminClient> open(const std::string& dir) {
    HEARTH_ASSIGN_OR_RETURN(FleetInfo f, load_fleet(dir));
    HEARTH_ASSIGN_OR_RETURN(std::string token, read_file(f.admin_token_path(), 4096));
    while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
    return AdminClient(std::move(f), std::move(token));
  }

  // A standby controller answers writes with 503 and the leader's URL: the call is sent once
  // more, to that leader (an https URL; its certificate is checked against the same fleet CA,
  // so the admin token only ever goes to a controller of this fleet).
  Result<json> call(const std::string& method, const std::string& path, const json& body = nullptr) {
    std::string base = fleet_.controller.to_string();
    for (int attempt = 0;; ++attempt) {
      registry::HttpRequest req;
      req.method = method;
      req.url = base + path;
      req.ca_file = fleet_.ca_cert_path();
      req.redirects = registry::Redirects::kNone;
      req.headers = {"Authorization: Bearer " + token_, "Content-Type: application/json"};
      if (!body.is_null()) req.body = body.dump();
      registry::HttpClient http;
      HEARTH_ASSIGN_OR_RETURN(registry::HttpResponse r, http.send(req));
      json j = json::parse(r.body, nullptr, false);
      if (r.status == 503 && attempt == 0 && j.is_object() && j.contains("leader") && j["leader"].is_string()) {
        auto leader = parse_endpoint(j["leader"].get<std::string>(), "https", 8443);
        if (leader.ok() && leader->to_string() != base) {
          base = leader->to_string();
          continue;
        }
      }
      if (r.status != 200) {
        std::string msg = j.is_object() && j.contains("error") ? j["error"].value("message", "") : r.body.substr(0, 200);
        return make_error(
            r.status == 401 || r.status == 403 ? ErrorCode::kPermissionDenied : ErrorCode::kFailedPrecondition,
            "controller {} answered HTTP {}: {}", base, r.status, msg);
      }
      if (j.is_discarded()) return make_error(ErrorCode::kInvalidArgument, "controller: the answer is not JSON");
      return j;
    }
  }
  const FleetInfo& fleet() const { return fleet_; }

 private:
  AdminClient(FleetInfo f, std::string t) : fleet_(std::move(f)), token_(std::move(t)) {}
  FleetInfo fleet_;
  std::string token_;
};

std::string age(int64_t then) {
  if (then == 0) return "never";
  int64_t d = std::time(nullptr) - then;
  if (d < 120) return std::to_string(d) + "s ago";
  if (d < 7200) return std::to_string(d / 60) + "m ago";
  return std::to_string(d / 3600) + "h ago";
}

struct FleetCli {
  std::string fleet_dir;
  // init
  std::string init_dir;
  FleetInitOptions init;
  bool json_out = false;
  // token create
  std::string labels, ttl = "1h";
  // nodes
  std::string selector;
  // label
  std::string node;
  std::vector<std::string> label_pairs;
  // history
  std::string history_node;
};

Status run_init(FleetCli& c) {
  HEARTH_ASSIGN_OR_RETURN(FleetInfo f, init_fleet(c.init_dir, c.init));
  if (c.json_out) {
    std::printf("%s\n", json{{"dir", f.dir},
                             {"name", f.name},
                             {"controller_url", f.controller.to_string()},
                             {"broker_url", f.broker_urls()},  // every member of a cluster
                             {"ca_sha256", f.ca_sha256},
                             {"mosquitto_conf", f.mosquitto_conf_path()}}
                            .dump()
                            .c_str());
    return ok_status();
  }
  std::printf(
      "fleet '%s' in %s\n"
      "  CA sha256:   %s   (nodes pin it: hearth agent enroll --ca-sha256 %s)\n"
      "  broker%s %s   start it: mosquitto -c %s\n"
      "  controller:  %s   start it: hearth controller --fleet %s\n"
      "  admin token: %s (keep it secret)\n",
      f.name.c_str(), f.dir.c_str(), f.ca_sha256.c_str(), f.ca_sha256.substr(0, 12).c_str(),
      f.brokers.size() > 1 ? "s:    " : ":     ", f.broker_urls().c_str(), f.mosquitto_conf_path().c_str(),
      f.controller.to_string().c_str(), f.dir.c_str(),
      f.admin_token_path().c_str());
  return ok_status();
}

Status run_token_create(FleetCli& c) {
  HEARTH_ASSIGN_OR_RETURN(AdminClient admin, AdminClient::open(c.fleet_dir));
  HEARTH_ASSIGN_OR_RETURN(Labels labels, parse_labels(c.labels));
  HEARTH_ASSIGN_OR_RETURN(int64_t ttl, parse_duration_s(c.ttl));
  HEARTH_ASSIGN_OR_RETURN(
      json r, admin.call("POST", "/v1/tokens", json{{"labels", labels_to_string(labels)}, {"ttl_seconds", ttl}}));
  if (c.json_out) {
    std::printf("%s\n", r.dump().c_str());
  } else {
    std::printf("%s\n", r.value("token", "").c_str());
  }
  return ok_status();
}

Status run_nodes(FleetCli& c) {
  HEARTH_ASSIGN_OR_RETURN(AdminClient admin, AdminClient::open(c.fleet_dir));
  HEARTH_ASSIGN_OR_RETURN(Labels selector, parse_labels(c.selector));
  std::string path = "/v1/nodes";
  if (!selector.empty()) path += "?selector=" + labels_to_string(selector);  // label characters need no escaping
  HEARTH_ASSIGN_OR_RETURN(json r, admin.call("GET", path));
  if (c.json_out) {
    std::printf("%s\n", r.dump().c_str());
    return ok_status();
  }
  std::printf("%-24s %-8s %-12s %-32s %-10s %8s %9s %8s %7s %7s  %s\n", "NODE", "PRESENCE", "STATE", "SERVING",
              "LAST SEEN", "TOK/S", "TTFT p95", "REQUESTS", "ERRORS", "RSS MB", "LABELS");
  for (const auto& n : r["nodes"]) {
    std::string serving = n["serving"].is_object() ? n["serving"].value("reference", "") : "-";
    Labels l;
    for (auto& [k, v] : n["labels"].items()) l[k] = v.get<std::string>();
    // The last telemetry (counters only): generated tok/s and TTFT p95 over its interval.
    const json t = n.value("telemetry", json());
    const auto num = [&t](const char* key, const char* fmt_spec, double scale) {
      return t.is_object() && t.contains(key) && t[key].is_number()
                 ? fmt::format(fmt::runtime(fmt_spec), t[key].get<double>() * scale)
                 : std::string("-");
    };
    std::printf("%-24s %-8s %-12s %-32s %-10s %8s %9s %8s %7s %7s  %s\n", n.value("id", "").c_str(),
                n.value("presence", "").c_str(), n.value("state", "").empty() ? "-" : n.value("state", "").c_str(),
                serving.c_str(), age(n.value("last_seen", int64_t{0})).c_str(),
                num("decode_tok_s", "{:.1f}", 1).c_str(), num("ttft_p95_ms", "{:.0f} ms", 1).c_str(),
                num("requests", "{:.0f}", 1).c_str(), num("errors", "{:.0f}", 1).c_str(),
                num("memory_bytes", "{:.0f}", 1.0 / (1 << 20)).c_str(), labels_to_string(l).c_str());
  }
  return ok_status();
}

Status run_label(FleetCli& c) {
  HEARTH_ASSIGN_OR_RETURN(AdminClient admin, AdminClient::open(c.fleet_dir));
  std::string joined;
  for (const auto& p : c.label_pairs) joined += (joined.empty() ? "" : ",") + p;
  HEARTH_ASSIGN_OR_RETURN(Labels labels, parse_labels(joined));
  HEARTH_ASSIGN_OR_RETURN(
      json r, admin.call("PUT", "/v1/nodes/" + c.node + "/labels", json{{"labels", labels_to_string(labels)}}));
  std::printf("%s: %s\n", c.node.c_str(), labels_to_string(labels).c_str());
  return ok_status();
}

Status run_history(FleetCli& c) {
  HEARTH_ASSIGN_OR_RETURN(AdminClient admin, AdminClient::open(c.fleet_dir));
  std::string path = "/v1/audit";
  if (!c.history_node.empty()) path += "?subject=" + c.history_node;
  HEARTH_ASSIGN_OR_RETURN(json r, admin.call("GET", path));
  if (c.json_out) {
    std::printf("%s\n", r.dump().c_str());
    return ok_status();
  }
  for (const auto& a : r["audit"]) {
    std::time_t t = a.value("time", int64_t{0});
    char when[32];
    std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
    std::printf("%s  %-18s %-22s %-20s %s\n", when, a.value("actor", "").c_str(), a.value("action", "").c_str(),
                a.value("subject", "").c_str(), a.value("detail", "").c_str());
  }
  return ok_status();
}

struct RolloutCli {
  std::string ref, selector, batches = "1,100%", eval_text_file, bake = "30s", max_failures = "0", id;
  std::vector<std::string> gates, mirrors;
  bool allow_downgrade = false, json_out = false, wait = false;
  std::string timeout = "30m", offline_timeout = "2m";
};

Status run_rollout_start(const std::string& fleet_dir, RolloutCli& c) {
  HEARTH_ASSIGN_OR_RETURN(AdminClient admin, AdminClient::open(fleet_dir));
  HEARTH_ASSIGN_OR_RETURN(Labels selector, parse_labels(c.selector));
  HEARTH_ASSIGN_OR_RETURN(int64_t bake, parse_duration_s(c.bake));
  HEARTH_ASSIGN_OR_RETURN(int64_t offline, parse_duration_s(c.offline_timeout));
  std::string eval_text;
  if (!c.eval_text_file.empty()) {
    HEARTH_ASSIGN_OR_RETURN(eval_text, read_file(c.eval_text_file, fleet::kMaxEvalTextBytes));
  }
  std::vector<std::string> batches;
  for (size_t pos = 0; pos <= c.batches.size();) {
    size_t comma = c.batches.find(',', pos);
    batches.push_back(c.batches.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos));
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  std::string reference = c.ref, digest;
  if (size_t at = c.ref.find('@'); at != std::string::npos) digest = c.ref.substr(at + 1);
  json spec = {{"model", {{"reference", reference}, {"digest", digest}}},
               {"selector", labels_to_string(selector)},
               {"batches", batches},
               {"gates", c.gates},
               {"eval_text", eval_text},
               {"bake_seconds", bake},
               {"max_failures", c.max_failures},
               {"sources", c.mirrors},
               {"allow_downgrade", c.allow_downgrade},
               {"offline_timeout_seconds", offline}};
  HEARTH_ASSIGN_OR_RETURN(json r, admin.call("POST", "/v1/rollouts", spec));
  if (c.json_out) {
    std::printf("%s\n", r.dump().c_str());
  } else {
    std::printf("%s\n", r.value("id", "").c_str());
  }
  return ok_status();
}

void print_rollout(const json& r) {
  std::printf("rollout %s: %s%s%s\n  model %s (%s)\n", r.value("id", "").c_str(), r.value("state", "").c_str(),
              r.value("reason", "").empty() ? "" : " - ", r.value("reason", "").c_str(),
              r["model"].is_object() ? r["model"].value("reference", "").c_str() : "?",
              r["model"].is_object() ? r["model"].value("digest", "").c_str() : "?");
  for (const auto& b : r["batches"]) {
    std::printf("  batch %d%s\n", b.value("index", 0) + 1,
                b.value("index", 0) == r.value("current_batch", 0) ? " (current)" : "");
    for (const auto& n : b["nodes"]) {
      std::string gates;
      for (auto& [k, v] : n["gate_values"].items()) gates += fmt::format(" {}={:.4g}", k, v.get<double>());
      std::printf("    %-24s %-12s%s%s%s\n", n.value("node", "").c_str(), n.value("state", "").c_str(), gates.c_str(),
                  n.value("reason", "").empty() ? "" : "  ", n.value("reason", "").c_str());
    }
  }
}

Status run_rollout_status(const std::string& fleet_dir, RolloutCli& c) {
  HEARTH_ASSIGN_OR_RETURN(AdminClient admin, AdminClient::open(fleet_dir));
  HEARTH_ASSIGN_OR_RETURN(int64_t timeout, parse_duration_s(c.timeout));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout);
  for (;;) {
    HEARTH_ASSIGN_OR_RETURN(json r, admin.call("GET", "/v1/rollouts/" + c.id));
    std::string state = r.value("state", "");
    bool done = state == "succeeded" || state == "aborted";
    if (!c.wait || done || std::chrono::steady_clock::now() >= deadline) {
      if (c.json_out) {
        std::printf("%s\n", r.dump().c_str());
      } else {
        print_rollout(r);
      }
      if (c.wait && !done)
        return make_error(ErrorCode::kUnavailable, "rollout {} still {} after {}", c.id, state, c.timeout);
      return ok_status();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
}

Status run_rollout_control(const std::string& fleet_dir, RolloutCli& c, const std::string& action) {
  HEARTH_ASSIGN_OR_RETURN(AdminClient admin, AdminClient::open(fleet_dir));
  HEARTH_ASSIGN_OR_RETURN(json r, admin.call("POST", "/v1/rollouts/" + c.id + "/" + action, json::object()));
  std::printf("rollout %s: %s\n", c.id.c_str(), r.value("state", "").c_str());
  return ok_status();
}

struct SimCli {
  SimOptions o;
  std::string labels;
  std::vector<std::string> gates;  // metric=value
  std::string stats_path;
};

Status run_sim(const std::string& fleet_dir, SimCli& c) {
  c.o.fleet_dir = fleet_dir;
  HEARTH_ASSIGN_OR_RETURN(c.o.labels, parse_labels(c.labels));
  for (const auto& g : c.gates) {
    size_t eq = g.find('=');
    double v = 0;
    const char* end = nullptr;
    if (eq != std::string::npos && eq > 0) {
      auto r = std::from_chars(g.data() + eq + 1, g.data() + g.size(), v);
      end = r.ec == std::errc() ? r.ptr : nullptr;
    }
    if (end != g.data() + g.size())
      return make_error(ErrorCode::kInvalidArgument, "--gate '{}' is not METRIC=NUMBER (e.g. decode_tok_s=25)", g);
    c.o.gate_values[g.substr(0, eq)] = v;
  }
  if (std::getenv("HEARTH_LOG") == nullptr && log::level() > log::Level::kInfo) log::set_level(log::Level::kInfo);
  StopSignals signals;  // before any thread starts
  HEARTH_ASSIGN_OR_RETURN(std::unique_ptr<Sim> sim, Sim::create(c.o));
  const auto t0 = std::chrono::steady_clock::now();
  HEARTH_TRY(sim->enroll([](size_t done, size_t total) {
    std::fprintf(stderr, "sim: enrolled %zu of %zu new node(s)\n", done, total);
  }));
  const double enroll_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("sim: %zu node(s) enrolled (%.1f s); connecting\n", c.o.nodes, enroll_s);
  std::fflush(stdout);
  std::atomic<bool> done{false};
  std::thread progress([&] {
    // One line when every node is connected, then one every 10 s when something changed.
    const SimStats& s = sim->stats();
    bool all = false;
    std::string last;
    auto next = std::chrono::steady_clock::now(), next_stats = next;
    while (!done.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      if (!all && s.connected.load() >= c.o.nodes) {
        all = true;
        std::printf("sim: %zu node(s) connected in %.1f s\n", c.o.nodes,
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() - enroll_s);
        std::fflush(stdout);
      }
      if (!c.stats_path.empty() && std::chrono::steady_clock::now() >= next_stats) {
        next_stats = std::chrono::steady_clock::now() + std::chrono::seconds(1);
        const json j = {{"time", std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count()},
                        {"connected", s.connected.load()},
                        {"connects", s.connects.load()},
                        {"published", s.published.load()},
                        {"received", s.received.load()},
                        {"desired", s.desired_ok.load()},
                        {"refused", s.refused.load()},
                        {"serving", s.served.load()},
                        {"failed", s.failed.load()}};
        (void)write_file_atomic(c.stats_path, j.dump() + "\n");
      }
      if (std::chrono::steady_clock::now() < next) continue;
      next = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      std::string line = fmt::format(
          "sim: connected {}/{}, published {}, received {}, desired states {} (refused {}), serving {}, failed {}",
          s.connected.load(), c.o.nodes, s.published.load(), s.received.load(), s.desired_ok.load(), s.refused.load(),
          s.served.load(), s.failed.load());
      if (line != last) std::fprintf(stderr, "%s\n", line.c_str());
      last = line;
    }
  });
  Status st = signals.run([&] { return sim->run(); }, [&] { sim->stop(); });
  done = true;
  progress.join();
  return st;
}

struct ControllerCli {
  std::string fleet_dir;
  std::string listen;
  std::string db;
  bool metrics_per_node = false;
};

Status run_controller(ControllerCli& c) {
  HEARTH_ASSIGN_OR_RETURN(FleetInfo f, load_fleet(c.fleet_dir));
  ControllerOptions o;
  o.db_url = c.db;
  o.metrics_per_node = c.metrics_per_node;
  if (!c.listen.empty()) {
    HEARTH_ASSIGN_OR_RETURN(Endpoint ep, parse_endpoint("https://" + c.listen, "https", 8443));
    o.listen_host = ep.host;
    o.listen_port = ep.port;
  }
  if (std::getenv("HEARTH_LOG") == nullptr && log::level() > log::Level::kInfo) log::set_level(log::Level::kInfo);
  StopSignals signals;  // before any thread starts
  HEARTH_ASSIGN_OR_RETURN(std::unique_ptr<Controller> ctl, Controller::create(f, o));
  HEARTH_TRY(ctl->start());
  std::printf("controller for fleet '%s' at https://%s:%d (broker%s %s)\n", f.name.c_str(),
              (o.listen_host.empty() ? f.controller.host : o.listen_host).c_str(), ctl->port(),
              f.brokers.size() > 1 ? "s" : "", f.broker_urls().c_str());
  std::fflush(stdout);
  return signals.run([&] { return ctl->serve(); }, [&] { ctl->stop(); });
}

struct AgentCli {
  EnrollOptions enroll;
  bool json_out = false;
  std::string serve = "127.0.0.1:8080";
  int threads = 0;
  int telemetry_interval_s = 10;
  int keepalive_s = 30;
  int stall_timeout_s = 60;
  std::string labels;
};

Status run_enroll(AgentCli& c) {
  c.enroll.home = store::default_home();
  HEARTH_ASSIGN_OR_RETURN(AgentConfig cfg, enroll_agent(c.enroll));
  if (c.enroll.ca_sha256.empty())
    std::fprintf(stderr, "warning: no --ca-sha256 given; trusted the controller's CA on first use: sha256 %s\n",
                 cfg.ca_sha256.c_str());
  std::printf("enrolled node '%s' in fleet '%s' (broker %s); identity in %s\n", cfg.node.c_str(), cfg.fleet.c_str(),
              cfg.broker_url.c_str(), cfg.dir.c_str());
  return ok_status();
}

Status run_agent(AgentCli& c) {
  AgentRunOptions o;
  o.home = store::default_home();
  o.n_threads = c.threads;
  o.telemetry_interval_s = c.telemetry_interval_s;
  o.keepalive_s = c.keepalive_s;
  o.stall_timeout_s = c.stall_timeout_s;
  HEARTH_ASSIGN_OR_RETURN(o.labels, parse_labels(c.labels));
  {
    size_t colon = c.serve.rfind(':');
    const std::string port = colon == std::string::npos ? "" : c.serve.substr(colon + 1);
    if (colon == std::string::npos || colon == 0 || port.empty() || port.size() > 5 ||
        port.find_first_not_of("0123456789") != std::string::npos || std::stoi(port) > 65535)
      return make_error(ErrorCode::kInvalidArgument, "--serve '{}' is not HOST:PORT (port 0-65535)", c.serve);
    o.serve_host = c.serve.substr(0, colon);
    if (o.serve_host.size() > 2 && o.serve_host.front() == '[' && o.serve_host.back() == ']')
      o.serve_host = o.serve_host.substr(1, o.serve_host.size() - 2);
    o.serve_port = std::stoi(port);
  }
  if (std::getenv("HEARTH_LOG") == nullptr && log::level() > log::Level::kInfo) log::set_level(log::Level::kInfo);
  StopSignals signals;  // before any thread starts
  HEARTH_ASSIGN_OR_RETURN(std::unique_ptr<Agent> agent, Agent::create(o));
  HEARTH_ASSIGN_OR_RETURN(AgentConfig cfg, load_agent(o.home));
  std::printf("agent '%s' of fleet '%s' (broker %s), serving the OpenAI API at http://%s:%d\n", cfg.node.c_str(),
              cfg.fleet.c_str(), cfg.broker_url.c_str(), o.serve_host.c_str(), agent->serve_port());
  std::fflush(stdout);
  return signals.run([&] { return agent->run(); }, [&] { agent->stop(); });
}

Status run_agent_status(AgentCli& c) {
  HEARTH_ASSIGN_OR_RETURN(AgentConfig cfg, load_agent(store::default_home()));
  json state = json::object();
  if (auto text = read_file(cfg.state_path(), 1 << 20); text.ok()) {
    state = json::parse(*text, nullptr, false);
    if (state.is_discarded()) state = json::object();
  }
  json out = {{"node", cfg.node},
              {"fleet", cfg.fleet},
              {"broker_url", cfg.broker_url},
              {"controller_url", cfg.controller_url},
              {"ca_sha256", cfg.ca_sha256},
              {"labels", cfg.labels},
              {"desired_generation", state.value("generation", uint64_t{0})}};
  if (c.json_out) {
    std::printf("%s\n", out.dump().c_str());
  } else {
    std::printf("node %s of fleet %s\n  broker %s\n  controller %s\n  desired generation seen: %llu\n",
                cfg.node.c_str(), cfg.fleet.c_str(), cfg.broker_url.c_str(), cfg.controller_url.c_str(),
                static_cast<unsigned long long>(out["desired_generation"].get<uint64_t>()));
  }
  return ok_status();
}

void setup(CLI::App& app) {
  static FleetCli fc;
  auto* fleet = app.add_subcommand("fleet", "make and run a fleet of nodes: init, tokens, nodes, labels, history");
  fleet->add_option("--fleet", fc.fleet_dir, "the fleet directory that `fleet init` made");
  fleet->require_subcommand(1);

  auto* init = fleet->add_subcommand("init", "make a fleet: its CA, controller and broker identities, broker config");
  init->add_option("dir", fc.init_dir, "directory to create")->required();
  init->add_option("--name", fc.init.name, "fleet name ([a-z0-9-])")->capture_default_str();
  init->add_option("--controller-url", fc.init.controller_url, "where nodes reach the controller")
      ->capture_default_str();
  init->add_option("--broker-url", fc.init.broker_url, "where nodes reach the MQTT broker")->capture_default_str();
  init->add_flag("--json", fc.json_out, "print one JSON object");
  init->callback([] { report(run_init(fc)); });

  auto* token = fleet->add_subcommand("token", "join tokens for enrolling nodes");
  token->require_subcommand(1);
  auto* create = token->add_subcommand("create", "make a one-time join token (printed once)");
  create->add_option("--labels", fc.labels, "labels the node gets, k=v,...");
  create->add_option("--ttl", fc.ttl, "how long the token is valid (90s, 30m, 1h, 2d)")->capture_default_str();
  create->add_flag("--json", fc.json_out, "print one JSON object");
  create->callback([] {
    report(fc.fleet_dir.empty() ? make_error(ErrorCode::kInvalidArgument, "--fleet DIR is required")
                                : run_token_create(fc));
  });

  auto* nodes = fleet->add_subcommand("nodes", "list the fleet's nodes");
  nodes->add_option("--selector", fc.selector, "only nodes with these labels, k=v,...");
  nodes->add_flag("--json", fc.json_out, "print one JSON object");
  nodes->callback([] {
    report(fc.fleet_dir.empty() ? make_error(ErrorCode::kInvalidArgument, "--fleet DIR is required") : run_nodes(fc));
  });

  auto* label = fleet->add_subcommand("label", "set a node's labels");
  label->add_option("node", fc.node, "node id")->required();
  label->add_option("labels", fc.label_pairs, "k=v ...")->required();
  label->callback([] {
    report(fc.fleet_dir.empty() ? make_error(ErrorCode::kInvalidArgument, "--fleet DIR is required") : run_label(fc));
  });

  auto* history = fleet->add_subcommand("history", "the controller's decisions, oldest first");
  history->add_option("--node", fc.history_node, "only this node's");
  history->add_flag("--json", fc.json_out, "print one JSON object");
  history->callback([] {
    report(fc.fleet_dir.empty() ? make_error(ErrorCode::kInvalidArgument, "--fleet DIR is required") : run_history(fc));
  });

  static RolloutCli rc;
  auto* rollout = fleet->add_subcommand("rollout", "staged rollouts: start, status, pause, resume, abort");
  rollout->require_subcommand(1);
  auto need_fleet = [](const std::function<Status()>& f) {
    report(fc.fleet_dir.empty() ? make_error(ErrorCode::kInvalidArgument, "--fleet DIR is required") : f());
  };
  auto* start = rollout->add_subcommand("start", "roll a model out to the nodes a selector matches (prints its id)");
  start->add_option("ref", rc.ref, "name:tag (pinned to its digest now) or name@sha256:...")->required();
  start->add_option("--selector", rc.selector, "nodes with these labels, k=v,... (empty: all)");
  start->add_option("--batches", rc.batches, "cumulative batch sizes, counts or percentages")->capture_default_str();
  start->add_option("--gate", rc.gates, "METRIC OP NUMBER, e.g. 'eval_ppl < 40' (repeatable)");
  start->add_option("--eval-text", rc.eval_text_file, "evaluation text for the eval_ppl gates (at most 64 KiB)");
  start->add_option("--bake", rc.bake, "how long a batch must stay healthy before the next")->capture_default_str();
  start->add_option("--max-failures", rc.max_failures, "failed nodes tolerated, N or N%")->capture_default_str();
  start->add_option("--mirror", rc.mirrors, "registry or mirror URL the nodes pull from (repeatable)")->required();
  start->add_option("--offline-timeout", rc.offline_timeout, "an offline node counts as failed after this")
      ->capture_default_str();
  start->add_flag("--allow-downgrade", rc.allow_downgrade, "allow a version lower than the nodes have seen");
  start->add_flag("--json", rc.json_out, "print one JSON object");
  start->callback([need_fleet] { need_fleet([] { return run_rollout_start(fc.fleet_dir, rc); }); });
  auto* status_cmd = rollout->add_subcommand("status", "a rollout's batches and each node's state and gate values");
  status_cmd->add_option("id", rc.id, "rollout id")->required();
  status_cmd->add_flag("--json", rc.json_out, "print one JSON object");
  status_cmd->add_flag("--wait", rc.wait, "wait until it succeeded or aborted");
  status_cmd->add_option("--timeout", rc.timeout, "how long --wait waits")->capture_default_str();
  status_cmd->callback([need_fleet] { need_fleet([] { return run_rollout_status(fc.fleet_dir, rc); }); });
  for (const char* action : {"pause", "resume", "abort"}) {
    auto* sub = rollout->add_subcommand(action, std::string(action) + " a rollout");
    sub->add_option("id", rc.id, "rollout id")->required();
    std::string a = action;
    sub->callback([need_fleet, a] { need_fleet([a] { return run_rollout_control(fc.fleet_dir, rc, a); }); });
  }

  static SimCli sc;
  auto* sim = fleet->add_subcommand(
      "sim", "simulated nodes for scale tests: enrolled, connected and verifying like agents, with no engine");
  sim->add_option("--fleet", fc.fleet_dir, "the fleet directory (as `fleet --fleet DIR sim`)");
  sim->add_option("--nodes", sc.o.nodes, "how many nodes")->required();
  sim->add_option("--prefix", sc.o.prefix, "node ids are PREFIX00000, PREFIX00001, ...")->capture_default_str();
  sim->add_option("--labels", sc.labels, "k=v,... operator labels of the nodes' join tokens (at enrollment)");
  sim->add_option("--fail-rate", sc.o.fail_rate,
                  "share of the nodes (0..1) that fail a rollout's first gate; which ones follows from --seed, the "
                  "node id and the model digest")
      ->capture_default_str();
  sim->add_option("--seed", sc.o.seed, "for --fail-rate")->capture_default_str();
  sim->add_option("--gate", sc.gates,
                  "METRIC=VALUE that every node measures (repeatable); metrics not given pass their gate");
  sim->add_option("--threads", sc.o.threads, "network threads")->capture_default_str();
  sim->add_option("--enroll-parallel", sc.o.enroll_parallel, "enrollment requests in flight")->capture_default_str();
  sim->add_option("--keepalive", sc.o.keepalive_s, "MQTT keep-alive in seconds")->capture_default_str();
  sim->add_option("--telemetry-interval", sc.o.telemetry_interval_s, "seconds between telemetry messages (0: none)")
      ->capture_default_str();
  sim->add_option("--step-ms", sc.o.step_ms, "milliseconds between a node's pulling, verifying, gating and final reports")
      ->capture_default_str();
  sim->add_option("--timeline", sc.o.timeline_path,
                  "append a JSON line for every desired state received and every final report sent");
  sim->add_option("--stats", sc.stats_path, "rewrite this file every second with the sim's counters (JSON)");
  sim->callback([need_fleet] { need_fleet([] { return run_sim(fc.fleet_dir, sc); }); });

  static ControllerCli cc;
  auto* ctl = app.add_subcommand("controller", "run the fleet controller (HTTPS API + MQTT)");
  ctl->add_option("--fleet", cc.fleet_dir, "the fleet directory")->required();
  ctl->add_option("--listen", cc.listen, "HOST:PORT to listen on (default: the controller URL's)");
  ctl->add_option("--db", cc.db,
                  "state database: sqlite:PATH, or postgresql://USER@HOST:PORT/DB that standby controllers share "
                  "(default: DIR/controller/fleet.db)");
  ctl->add_flag("--metrics-per-node", cc.metrics_per_node,
                "GET /metrics also has per-node series (presence, state, gate values, telemetry): one set per node, "
                "so off by default");
  ctl->callback([] { report(run_controller(cc)); });

  static AgentCli ac;
  auto* agent = app.add_subcommand("agent", "this node's fleet agent: enroll, run, status");
  agent->require_subcommand(1);
  auto* enroll = agent->add_subcommand("enroll", "join a fleet with a one-time token (uses $HEARTH_HOME)");
  enroll->add_option("--controller", ac.enroll.controller_url, "https://HOST:PORT of the controller")->required();
  enroll->add_option("--token", ac.enroll.token, "the join token")->required();
  enroll->add_option("--ca-sha256", ac.enroll.ca_sha256, "the fleet CA's sha256 (from fleet init), pinned");
  enroll->add_option("--node-id", ac.enroll.node_id, "this node's id (default: from the host name)");
  enroll->callback([] { report(run_enroll(ac)); });
  auto* run = agent->add_subcommand("run", "connect to the fleet and follow its signed desired state");
  run->add_option("--serve", ac.serve, "HOST:PORT of this node's OpenAI-compatible API (port 0: any free port)")
      ->capture_default_str();
  add_threads_option(run, ac.threads);
  run->add_option("--telemetry-interval", ac.telemetry_interval_s,
                  "seconds between telemetry messages (counters only: tok/s, TTFT, requests, errors, memory, disk)")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  run->add_option("--keepalive", ac.keepalive_s,
                  "MQTT keep-alive in seconds: the fleet sees this node offline 1.5 times this after its link drops")
      ->check(CLI::Range(5, 3600))
      ->capture_default_str();
  run->add_option("--stall-timeout", ac.stall_timeout_s,
                  "the watchdog, in seconds: requests waiting and no progress for this long means the model hangs "
                  "or loops; it is switched back out (bake window) or rolled back to the last-known-good (0: off)")
      ->check(CLI::Range(0, 86400))
      ->capture_default_str();
  run->add_option("--labels", ac.labels,
                  "k=v,... labels this node declares for itself (rollout selectors match them; the operator's "
                  "labels win a key)");
  run->callback([] { report(run_agent(ac)); });
  auto* status = agent->add_subcommand("status", "this node's enrollment and state");
  status->add_flag("--json", ac.json_out, "print one JSON object");
  status->callback([] { report(run_agent_status(ac)); });
}

CommandRegistrar reg(80, setup);

}  // namespace
}  // namespace hearth::cli
