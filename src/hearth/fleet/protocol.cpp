#include "hearth/fleet/protocol.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "hearth/core/base64.h"
#include "hearth/core/sha256.h"
#include "hearth/core/status.h"
#include "hearth/fleet/pki.h"
#include "hearth/server/openai_request.h"
#include "hearth/trust/dsse.h"
#include "hearth/trust/signing_key.h"

namespace hearth::fleet {
namespace {

using json = nlohmann::json;

constexpr std::string_view kTopicRoot = "hearth/v1/";
constexpr size_t kMaxReasonBytes = 1024;
constexpr size_t kMaxMessageBytes = 4096;
constexpr size_t kMaxStringBytes = 2048;
constexpr size_t kMaxSources = 16;
constexpr size_t kMaxGates = 16;
constexpr size_t kMaxSignatures = 4;

constexpr std::string_view kDesiredSchema = "hearth.fleet.desired/v1";
constexpr std::string_view kReportedSchema = "hearth.fleet.reported/v1";
constexpr std::string_view kTelemetrySchema = "hearth.fleet.telemetry/v1";
constexpr std::string_view kEventSchema = "hearth.fleet.event/v1";
constexpr std::string_view kPresenceSchema = "hearth.fleet.presence/v1";

constexpr std::string_view kMetrics[] = {"decode_tok_s",   "prefill_tok_s", "ttft_ms",        "eval_ppl",
                                         "eval_ppl_ratio", "error_rate",    "p95_latency_ms", "bake_requests"};

// Parses a payload of kind `what` whose "schema" must be `schema`.
Result<json> parse_payload(std::string_view text, std::string_view what, std::string_view schema) {
  if (text.size() > kMaxPayloadBytes)
    return make_error(ErrorCode::kInvalidArgument, "{}: {} bytes, more than the {} allowed", what, text.size(),
                      kMaxPayloadBytes);
  if (server::json_nesting_depth(text, kMaxPayloadDepth) > kMaxPayloadDepth)
    return make_error(ErrorCode::kInvalidArgument, "{}: nested more than {} levels deep", what, kMaxPayloadDepth);
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return make_error(ErrorCode::kInvalidArgument, "{}: not valid JSON", what);
  if (!j.is_object()) return make_error(ErrorCode::kInvalidArgument, "{}: not a JSON object", what);
  auto it = j.find("schema");
  if (it == j.end() || !it->is_string())
    return make_error(ErrorCode::kInvalidArgument, "{}: no \"schema\" string", what);
  if (it->get_ref<const std::string&>() != schema)
    return make_error(ErrorCode::kInvalidArgument, "{}: schema '{}' is not the supported '{}'", what,
                      it->get_ref<const std::string&>(), schema);
  return j;
}

// Field readers: each names the payload and the field in its error.
class Fields {
 public:
  Fields(const json& j, std::string_view what) : j_(j), what_(what) {}

  Status str(const char* name, std::string& out, bool required, size_t max_bytes = kMaxStringBytes) {
    auto it = j_.find(name);
    if (it == j_.end() || it->is_null()) return required ? missing(name) : ok_status();
    if (!it->is_string()) return wrong(name, "a string");
    const auto& s = it->get_ref<const std::string&>();
    if (s.size() > max_bytes)
      return make_error(ErrorCode::kInvalidArgument, "{}: '{}' is longer than {} bytes", what_, name, max_bytes);
    out = s;
    return ok_status();
  }
  Status i64(const char* name, int64_t& out, bool required, int64_t lo = 0, int64_t hi = INT64_MAX) {
    auto it = j_.find(name);
    if (it == j_.end() || it->is_null()) return required ? missing(name) : ok_status();
    if (!it->is_number_integer()) return wrong(name, "an integer");
    if (it->is_number_unsigned() && it->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
      return wrong(name, "an integer in range");
    int64_t v = it->get<int64_t>();
    if (v < lo || v > hi)
      return make_error(ErrorCode::kInvalidArgument, "{}: '{}' = {} is outside [{}, {}]", what_, name, v, lo, hi);
    out = v;
    return ok_status();
  }
  Status u64(const char* name, uint64_t& out, bool required) {
    auto it = j_.find(name);
    if (it == j_.end() || it->is_null()) return required ? missing(name) : ok_status();
    if (!it->is_number_unsigned() && !(it->is_number_integer() && it->get<int64_t>() >= 0))
      return wrong(name, "a non-negative integer");
    out = it->get<uint64_t>();
    return ok_status();
  }
  Status num(const char* name, double& out, bool required) {
    auto it = j_.find(name);
    if (it == j_.end() || it->is_null()) return required ? missing(name) : ok_status();
    if (!it->is_number()) return wrong(name, "a number");
    double v = it->get<double>();
    if (!std::isfinite(v) || v < 0) return wrong(name, "a finite non-negative number");
    out = v;
    return ok_status();
  }
  Status boolean(const char* name, bool& out, bool required) {
    auto it = j_.find(name);
    if (it == j_.end() || it->is_null()) return required ? missing(name) : ok_status();
    if (!it->is_boolean()) return wrong(name, "true or false");
    out = it->get<bool>();
    return ok_status();
  }
  Status node(const char* name, std::string& out) {
    if (auto st = str(name, out, true, 63); !st.ok()) return st;
    if (!valid_node_id(out))
      return make_error(ErrorCode::kInvalidArgument, "{}: '{}' is not a node id (1-63 of [a-z0-9-])", what_, name);
    return ok_status();
  }
  Status pin(const char* name, ModelPin& out, bool required) {
    auto it = j_.find(name);
    if (it == j_.end() || it->is_null()) return required ? missing(name) : ok_status();
    if (!it->is_object()) return wrong(name, "an object");
    Fields f(*it, what_);
    if (auto st = f.str("reference", out.reference, true, 512); !st.ok()) return st;
    if (auto st = f.str("digest", out.digest, true, 80); !st.ok()) return st;
    if (!valid_digest(out.digest))
      return make_error(ErrorCode::kInvalidArgument, "{}: '{}.digest' is not sha256:<64 hex>", what_, name);
    return ok_status();
  }

  static bool valid_digest(std::string_view d) {
    if (d.size() != 71 || d.substr(0, 7) != "sha256:") return false;
    for (char c : d.substr(7))
      if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return true;
  }

 private:
  Status missing(const char* name) {
    return make_error(ErrorCode::kInvalidArgument, "{}: '{}' is missing", what_, name);
  }
  Status wrong(const char* name, const char* expected) {
    return make_error(ErrorCode::kInvalidArgument, "{}: '{}' must be {}", what_, name, expected);
  }
  const json& j_;
  std::string_view what_;
};

json pin_json(const ModelPin& p) {
  if (p.empty()) return nullptr;
  return json{{"reference", p.reference}, {"digest", p.digest}};
}

bool valid_name(std::string_view id) { return valid_node_id(id); }

bool label_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
         c == '-' || c == '/';
}

}  // namespace

Result<Labels> parse_labels(std::string_view text) {
  Labels out;
  if (text.empty()) return out;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    std::string_view pair = text.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
    size_t eq = pair.find('=');
    if (eq == std::string_view::npos || eq == 0 || eq + 1 >= pair.size())
      return make_error(ErrorCode::kInvalidArgument, "label '{}' is not key=value", pair.substr(0, 100));
    std::string_view k = pair.substr(0, eq), v = pair.substr(eq + 1);
    if (k.size() > 63 || v.size() > 63)
      return make_error(ErrorCode::kInvalidArgument, "label '{}': key and value are at most 63 characters",
                        pair.substr(0, 100));
    for (char c : pair.substr(0, eq))
      if (!label_char(c))
        return make_error(ErrorCode::kInvalidArgument, "label key '{}' has characters other than [A-Za-z0-9._-/]", k);
    for (char c : v)
      if (!label_char(c))
        return make_error(ErrorCode::kInvalidArgument, "label value '{}' has characters other than [A-Za-z0-9._-/]", v);
    out[std::string(k)] = std::string(v);
    if (out.size() > 32) return make_error(ErrorCode::kInvalidArgument, "more than 32 labels");
    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
  return out;
}

std::string labels_to_string(const Labels& labels) {
  std::string out;
  for (const auto& [k, v] : labels) out += (out.empty() ? "" : ",") + k + "=" + v;
  return out;
}

bool labels_match(const Labels& labels, const Labels& selector) {
  for (const auto& [k, v] : selector) {
    auto it = labels.find(k);
    if (it == labels.end() || it->second != v) return false;
  }
  return true;
}

bool valid_fleet_name(std::string_view name) { return valid_name(name); }

std::string_view node_topic_name(NodeTopic t) {
  switch (t) {
    case NodeTopic::kDesired: return "desired";
    case NodeTopic::kReported: return "reported";
    case NodeTopic::kTelemetry: return "telemetry";
    case NodeTopic::kEvents: return "events";
    case NodeTopic::kPresence: return "presence";
  }
  return "?";
}

std::string node_topic(std::string_view fleet, std::string_view node, NodeTopic kind) {
  return fmt::format("{}{}/nodes/{}/{}", kTopicRoot, fleet, node, node_topic_name(kind));
}

std::string all_nodes_topic(std::string_view fleet, NodeTopic kind) {
  return fmt::format("{}{}/nodes/+/{}", kTopicRoot, fleet, node_topic_name(kind));
}

std::optional<ParsedTopic> parse_node_topic(std::string_view fleet, std::string_view topic) {
  std::string prefix = fmt::format("{}{}/nodes/", kTopicRoot, fleet);
  if (topic.substr(0, prefix.size()) != prefix) return std::nullopt;
  topic.remove_prefix(prefix.size());
  size_t slash = topic.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  std::string_view node = topic.substr(0, slash), kind = topic.substr(slash + 1);
  if (!valid_node_id(node)) return std::nullopt;
  for (NodeTopic t :
       {NodeTopic::kDesired, NodeTopic::kReported, NodeTopic::kTelemetry, NodeTopic::kEvents, NodeTopic::kPresence})
    if (kind == node_topic_name(t)) return ParsedTopic{std::string(node), t};
  return std::nullopt;
}

bool Gate::passes(double m) const {
  if (!std::isfinite(m)) return false;
  if (op == "<") return m < value;
  if (op == "<=") return m <= value;
  if (op == ">") return m > value;
  if (op == ">=") return m >= value;
  return false;
}

std::string Gate::to_string() const { return fmt::format("{} {} {}", metric, op, value); }

Result<Gate> parse_gate(std::string_view expr) {
  auto bad = [&](std::string_view why) {
    return make_error(ErrorCode::kInvalidArgument, "gate '{}': {} (expected METRIC OP NUMBER, e.g. 'eval_ppl < 40')",
                      expr.substr(0, 200), why);
  };
  if (expr.size() > 200) return bad("longer than 200 characters");
  auto trim = [](std::string_view s) {
    while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
    while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
    return s;
  };
  size_t op_pos = expr.find_first_of("<>");
  if (op_pos == std::string_view::npos) return bad("no operator < <= > >=");
  Gate g;
  g.metric = std::string(trim(expr.substr(0, op_pos)));
  size_t op_len = (op_pos + 1 < expr.size() && expr[op_pos + 1] == '=') ? 2 : 1;
  g.op = std::string(expr.substr(op_pos, op_len));
  std::string number(trim(expr.substr(op_pos + op_len)));
  bool known = false;
  for (auto m : kMetrics) known |= (g.metric == m);
  if (!known)
    return bad(
        fmt::format("unknown metric '{}'; known: decode_tok_s prefill_tok_s ttft_ms eval_ppl eval_ppl_ratio "
                    "error_rate p95_latency_ms bake_requests",
                    g.metric));
  if (number.empty()) return bad("no number");
  char* end = nullptr;
  g.value = std::strtod(number.c_str(), &end);
  if (end != number.c_str() + number.size() || !std::isfinite(g.value)) return bad("the value is not a number");
  return g;
}

// ---------------------------------------------------------------- desired

std::string desired_to_json(const DesiredState& d) {
  json gates = json::array();
  for (const auto& g : d.gates) gates.push_back(g.to_string());
  json j = {{"schema", kDesiredSchema},
            {"fleet", d.fleet},
            {"node", d.node},
            {"generation", d.generation},
            {"issued_at", d.issued_at},
            {"rollout_id", d.rollout_id},
            {"model", pin_json(d.model)},
            {"sources", d.sources},
            {"gates", gates},
            {"eval_text", d.eval_text},
            {"eval_text_digest", d.eval_text_digest},
            {"bake_seconds", d.bake_seconds},
            {"allow_downgrade", d.allow_downgrade}};
  return j.dump();
}

Result<DesiredState> desired_from_json(std::string_view text) {
  constexpr std::string_view what = "desired state";
  auto j = parse_payload(text, what, kDesiredSchema);
  if (!j.ok()) return j.status();
  DesiredState d;
  Fields f(*j, what);
  Status st;
  if (!(st = f.str("fleet", d.fleet, true, 63)).ok()) return st;
  if (!valid_fleet_name(d.fleet))
    return make_error(ErrorCode::kInvalidArgument, "{}: 'fleet' is not a fleet name", what);
  if (!(st = f.node("node", d.node)).ok()) return st;
  if (!(st = f.u64("generation", d.generation, true)).ok()) return st;
  if (!(st = f.i64("issued_at", d.issued_at, true)).ok()) return st;
  if (!(st = f.str("rollout_id", d.rollout_id, false, 64)).ok()) return st;
  if (!(st = f.pin("model", d.model, false)).ok()) return st;
  if (auto it = j->find("sources"); it != j->end() && !it->is_null()) {
    if (!it->is_array() || it->size() > kMaxSources)
      return make_error(ErrorCode::kInvalidArgument, "{}: 'sources' must be an array of at most {} URLs", what,
                        kMaxSources);
    for (const auto& s : *it) {
      if (!s.is_string() || s.get_ref<const std::string&>().size() > 512)
        return make_error(ErrorCode::kInvalidArgument, "{}: each of 'sources' must be a URL string", what);
      d.sources.push_back(s.get<std::string>());
    }
  }
  if (auto it = j->find("gates"); it != j->end() && !it->is_null()) {
    if (!it->is_array() || it->size() > kMaxGates)
      return make_error(ErrorCode::kInvalidArgument, "{}: 'gates' must be an array of at most {} expressions", what,
                        kMaxGates);
    for (const auto& g : *it) {
      if (!g.is_string()) return make_error(ErrorCode::kInvalidArgument, "{}: each gate must be a string", what);
      auto gate = parse_gate(g.get_ref<const std::string&>());
      if (!gate.ok()) return gate.status().with_context(what);
      d.gates.push_back(*gate);
    }
  }
  if (!(st = f.str("eval_text", d.eval_text, false, kMaxEvalTextBytes)).ok()) return st;
  if (!(st = f.str("eval_text_digest", d.eval_text_digest, false, 80)).ok()) return st;
  if (!d.eval_text.empty() || !d.eval_text_digest.empty()) {
    std::string actual = "sha256:" + sha256_hex(std::as_bytes(std::span(d.eval_text.data(), d.eval_text.size())));
    if (actual != d.eval_text_digest)
      return make_error(ErrorCode::kDataLoss, "{}: eval_text does not match eval_text_digest", what);
  }
  if (!(st = f.i64("bake_seconds", d.bake_seconds, false, 0, 7 * 86400)).ok()) return st;
  if (!(st = f.boolean("allow_downgrade", d.allow_downgrade, false)).ok()) return st;
  return d;
}

Result<std::string> sign_desired(const DesiredState& d, const trust::PrivateKey& key) {
  std::string payload = desired_to_json(d);
  auto sig = key.sign(trust::pae(kDesiredPayloadType, payload));
  if (!sig.ok()) return sig.status();
  json env = {{"payloadType", kDesiredPayloadType},
              {"payload", base64_encode(payload)},
              {"signatures", json::array({{{"keyid", key.public_key().key_id()}, {"sig", base64_encode(*sig)}}})}};
  return env.dump();
}

Result<DesiredState> verify_desired(std::string_view envelope, const trust::PublicKey& controller_key) {
  constexpr std::string_view what = "desired state envelope";
  // The envelope is the payload base64-encoded plus signatures: 4/3 of the cap, plus room.
  if (envelope.size() > kMaxPayloadBytes * 4 / 3 + 4096)
    return make_error(ErrorCode::kInvalidArgument, "{}: {} bytes is too large", what, envelope.size());
  if (server::json_nesting_depth(envelope, kMaxPayloadDepth) > kMaxPayloadDepth)
    return make_error(ErrorCode::kInvalidArgument, "{}: nested too deep", what);
  json j = json::parse(envelope, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return make_error(ErrorCode::kInvalidArgument, "{}: not a JSON object", what);
  auto type = j.find("payloadType");
  auto payload = j.find("payload");
  auto sigs = j.find("signatures");
  if (type == j.end() || !type->is_string() || payload == j.end() || !payload->is_string() || sigs == j.end() ||
      !sigs->is_array())
    return make_error(ErrorCode::kInvalidArgument, "{}: needs payloadType, payload and signatures", what);
  if (type->get_ref<const std::string&>() != kDesiredPayloadType)
    return make_error(ErrorCode::kInvalidArgument, "{}: payloadType '{}' is not '{}'", what,
                      type->get_ref<const std::string&>().substr(0, 100), kDesiredPayloadType);
  if (sigs->empty() || sigs->size() > kMaxSignatures)
    return make_error(ErrorCode::kInvalidArgument, "{}: 1 to {} signatures expected", what, kMaxSignatures);
  auto body = base64_decode(payload->get_ref<const std::string&>());
  if (!body.ok()) return body.status().with_context(std::string(what) + ": payload");
  std::string signed_bytes = trust::pae(kDesiredPayloadType, *body);
  bool verified = false;
  for (const auto& s : *sigs) {
    if (!s.is_object()) continue;
    auto sig = s.find("sig");
    if (sig == s.end() || !sig->is_string()) continue;
    auto raw = base64_decode(sig->get_ref<const std::string&>());
    if (!raw.ok()) continue;
    if (controller_key.verify(signed_bytes, *raw).ok()) {
      verified = true;
      break;
    }
  }
  if (!verified)
    return make_error(ErrorCode::kUnauthenticated, "{}: not signed by the controller key pinned at enrollment ({})",
                      what, controller_key.key_id().substr(0, 16));
  return desired_from_json(*body);
}

// ---------------------------------------------------------------- node states

std::string_view node_state_name(NodeState s) {
  switch (s) {
    case NodeState::kPending: return "pending";
    case NodeState::kPulling: return "pulling";
    case NodeState::kVerifying: return "verifying";
    case NodeState::kGating: return "gating";
    case NodeState::kServing: return "serving";
    case NodeState::kFailed: return "failed";
    case NodeState::kRolledBack: return "rolled_back";
    case NodeState::kOffline: return "offline";
  }
  return "?";
}

std::optional<NodeState> parse_node_state(std::string_view name) {
  for (NodeState s : {NodeState::kPending, NodeState::kPulling, NodeState::kVerifying, NodeState::kGating,
                      NodeState::kServing, NodeState::kFailed, NodeState::kRolledBack, NodeState::kOffline})
    if (node_state_name(s) == name) return s;
  return std::nullopt;
}

namespace {
Status read_state(Fields& f, const char* name, NodeState& out, std::string_view what) {
  std::string s;
  if (auto st = f.str(name, s, true, 32); !st.ok()) return st;
  auto parsed = parse_node_state(s);
  if (!parsed) return make_error(ErrorCode::kInvalidArgument, "{}: '{}' is not a node state", what, name);
  out = *parsed;
  return ok_status();
}
}  // namespace

// ---------------------------------------------------------------- reported

std::string reported_to_json(const ReportedState& r) {
  json gates = json::object();
  for (const auto& [k, v] : r.gate_values) gates[k] = v;
  json j = {{"schema", kReportedSchema},
            {"node", r.node},
            {"generation", r.generation},
            {"seq", r.seq},
            {"state", node_state_name(r.state)},
            {"reason", r.reason},
            {"serving", pin_json(r.serving)},
            {"last_known_good", pin_json(r.last_known_good)},
            {"gate_values", gates},
            {"time", r.time}};
  if (!r.labels.empty()) j["labels"] = labels_to_string(r.labels);
  return j.dump();
}

Result<ReportedState> reported_from_json(std::string_view text) {
  constexpr std::string_view what = "reported state";
  auto j = parse_payload(text, what, kReportedSchema);
  if (!j.ok()) return j.status();
  ReportedState r;
  Fields f(*j, what);
  Status st;
  if (!(st = f.node("node", r.node)).ok()) return st;
  if (!(st = f.u64("generation", r.generation, true)).ok()) return st;
  if (!(st = f.u64("seq", r.seq, false)).ok()) return st;
  if (!(st = read_state(f, "state", r.state, what)).ok()) return st;
  if (!(st = f.str("reason", r.reason, false, kMaxReasonBytes)).ok()) return st;
  std::string labels;
  if (!(st = f.str("labels", labels, false, 32 * 128)).ok()) return st;
  if (auto l = parse_labels(labels); l.ok()) {
    r.labels = std::move(*l);
  } else {
    return l.status().with_context(std::string(what));
  }
  if (!(st = f.pin("serving", r.serving, false)).ok()) return st;
  if (!(st = f.pin("last_known_good", r.last_known_good, false)).ok()) return st;
  if (auto it = j->find("gate_values"); it != j->end() && !it->is_null()) {
    if (!it->is_object() || it->size() > kMaxGates)
      return make_error(ErrorCode::kInvalidArgument, "{}: 'gate_values' must be an object of at most {} numbers", what,
                        kMaxGates);
    for (const auto& [k, v] : it->items()) {
      bool known = false;
      for (auto m : kMetrics) known |= (k == m);
      if (!known || !v.is_number() || !std::isfinite(v.get<double>()))
        return make_error(ErrorCode::kInvalidArgument, "{}: gate value '{}' is not a known metric with a number", what,
                          k.substr(0, 64));
      r.gate_values[k] = v.get<double>();
    }
  }
  if (!(st = f.i64("time", r.time, true)).ok()) return st;
  return r;
}

// ---------------------------------------------------------------- telemetry

std::string telemetry_to_json(const Telemetry& t) {
  json j = {{"schema", kTelemetrySchema},
            {"node", t.node},
            {"time", t.time},
            {"serving", pin_json(t.serving)},
            {"state", node_state_name(t.state)},
            {"decode_tok_s", t.decode_tok_s},
            {"prefill_tok_s", t.prefill_tok_s},
            {"ttft_p50_ms", t.ttft_p50_ms},
            {"ttft_p95_ms", t.ttft_p95_ms},
            {"requests", t.requests},
            {"errors", t.errors},
            {"memory_bytes", t.memory_bytes},
            {"disk_free_bytes", t.disk_free_bytes}};
  return j.dump();
}

Result<Telemetry> telemetry_from_json(std::string_view text) {
  constexpr std::string_view what = "telemetry";
  auto j = parse_payload(text, what, kTelemetrySchema);
  if (!j.ok()) return j.status();
  Telemetry t;
  Fields f(*j, what);
  Status st;
  if (!(st = f.node("node", t.node)).ok()) return st;
  if (!(st = f.i64("time", t.time, true)).ok()) return st;
  if (!(st = f.pin("serving", t.serving, false)).ok()) return st;
  if (!(st = read_state(f, "state", t.state, what)).ok()) return st;
  for (auto [name, out] : {std::pair{"decode_tok_s", &t.decode_tok_s}, std::pair{"prefill_tok_s", &t.prefill_tok_s},
                           std::pair{"ttft_p50_ms", &t.ttft_p50_ms}, std::pair{"ttft_p95_ms", &t.ttft_p95_ms}})
    if (!(st = f.num(name, *out, false)).ok()) return st;
  for (auto [name, out] :
       {std::pair{"requests", &t.requests}, std::pair{"errors", &t.errors}, std::pair{"memory_bytes", &t.memory_bytes},
        std::pair{"disk_free_bytes", &t.disk_free_bytes}})
    if (!(st = f.u64(name, *out, false)).ok()) return st;
  return t;
}

// ---------------------------------------------------------------- events, presence

std::string event_to_json(const Event& e) {
  json j = {{"schema", kEventSchema}, {"node", e.node}, {"time", e.time},
            {"seq", e.seq},           {"type", e.type}, {"message", e.message}};
  return j.dump();
}

Result<Event> event_from_json(std::string_view text) {
  constexpr std::string_view what = "event";
  auto j = parse_payload(text, what, kEventSchema);
  if (!j.ok()) return j.status();
  Event e;
  Fields f(*j, what);
  Status st;
  if (!(st = f.node("node", e.node)).ok()) return st;
  if (!(st = f.i64("time", e.time, true)).ok()) return st;
  if (!(st = f.u64("seq", e.seq, true)).ok()) return st;
  if (!(st = f.str("type", e.type, true, 64)).ok()) return st;
  if (!(st = f.str("message", e.message, false, kMaxMessageBytes)).ok()) return st;
  return e;
}

std::string presence_to_json(const Presence& p) {
  return json{{"schema", kPresenceSchema}, {"node", p.node}, {"online", p.online}}.dump();
}

Result<Presence> presence_from_json(std::string_view text) {
  constexpr std::string_view what = "presence";
  auto j = parse_payload(text, what, kPresenceSchema);
  if (!j.ok()) return j.status();
  Presence p;
  Fields f(*j, what);
  Status st;
  if (!(st = f.node("node", p.node)).ok()) return st;
  if (!(st = f.boolean("online", p.online, true)).ok()) return st;
  return p;
}

}  // namespace hearth::fleet
