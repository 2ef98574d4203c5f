#include "hearth/fleet/rollout.h"

#include <algorithm>
#include <chrono>
#include <string_view>
#include <unordered_map>
#include <nlohmann/json.hpp>

#include "hearth/core/log.h"
#include "hearth/core/sha256.h"
#include "hearth/core/status.h"
#include "hearth/fleet/pki.h"

namespace hearth::fleet {
namespace {

using json = nlohmann::json;
constexpr size_t kMaxBatches = 16;

std::string sha_hex(std::string_view s) { return sha256_hex(std::as_bytes(std::span(s.data(), s.size()))); }

// "3" -> 3 nodes; "25%" -> ceil(25% of n).
Result<size_t> size_of(const std::string& spec, size_t n, std::string_view what) {
  if (spec.empty() || spec.size() > 8)
    return make_error(ErrorCode::kInvalidArgument, "{} '{}' is not a count or a percentage", what, spec);
  bool pct = spec.back() == '%';
  std::string digits = pct ? spec.substr(0, spec.size() - 1) : spec;
  if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos)
    return make_error(ErrorCode::kInvalidArgument, "{} '{}' is not a count or a percentage", what, spec);
  uint64_t v = std::stoull(digits);
  if (pct) {
    if (v > 100) return make_error(ErrorCode::kInvalidArgument, "{} '{}' is over 100%", what, spec);
    return static_cast<size_t>((v * n + 99) / 100);
  }
  return static_cast<size_t>(std::min<uint64_t>(v, n));
}

bool terminal_failure(const std::string& state) {
  return state == "failed" || state == "offline" || state == "rolled_back";
}

}  // namespace

std::string rollout_spec_to_json(const RolloutSpec& s) {
  return json{{"model", {{"reference", s.model.reference}, {"digest", s.model.digest}}},
              {"selector", labels_to_string(s.selector)},
              {"batches", s.batches},
              {"gates", s.gates},
              {"eval_text", s.eval_text},
              {"bake_seconds", s.bake_seconds},
              {"max_failures", s.max_failures},
              {"sources", s.sources},
              {"allow_downgrade", s.allow_downgrade},
              {"offline_timeout_seconds", s.offline_timeout_seconds}}
      .dump();
}

Result<RolloutSpec> rollout_spec_from_json(std::string_view text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return make_error(ErrorCode::kInvalidArgument, "rollout: not a JSON object");
  RolloutSpec s;
  try {
    if (!j.contains("model") || !j["model"].is_object())
      return make_error(ErrorCode::kInvalidArgument, "rollout: 'model' (reference and digest) is required");
    s.model.reference = j["model"].value("reference", "");
    s.model.digest = j["model"].value("digest", "");
    auto sel = parse_labels(j.value("selector", ""));
    if (!sel.ok()) return sel.status().with_context("rollout selector");
    s.selector = *sel;
    if (j.contains("batches")) s.batches = j["batches"].get<std::vector<std::string>>();
    if (j.contains("gates")) s.gates = j["gates"].get<std::vector<std::string>>();
    s.eval_text = j.value("eval_text", "");
    s.bake_seconds = j.value("bake_seconds", int64_t{30});
    s.max_failures = j.value("max_failures", "0");
    if (j.contains("sources")) s.sources = j["sources"].get<std::vector<std::string>>();
    s.allow_downgrade = j.value("allow_downgrade", false);
    s.offline_timeout_seconds = j.value("offline_timeout_seconds", int64_t{120});
  } catch (const json::exception& e) {
    return make_error(ErrorCode::kInvalidArgument, "rollout: a field has the wrong type ({})", e.what());
  }
  return s;
}

Status validate_rollout_spec(const RolloutSpec& s) {
  if (s.model.reference.empty() || s.model.digest.size() != 71 || s.model.digest.rfind("sha256:", 0) != 0)
    return make_error(ErrorCode::kInvalidArgument, "rollout: the model needs a reference and a sha256 digest");
  if (s.batches.empty() || s.batches.size() > kMaxBatches)
    return make_error(ErrorCode::kInvalidArgument, "rollout: 1 to {} batches", kMaxBatches);
  if (auto p = plan_batches(s.batches, 100); !p.ok()) return p.status();
  for (const auto& g : s.gates)
    if (auto pg = parse_gate(g); !pg.ok()) return pg.status();
  if (s.gates.size() > 16) return make_error(ErrorCode::kInvalidArgument, "rollout: at most 16 gates");
  if (s.eval_text.size() > kMaxEvalTextBytes)
    return make_error(ErrorCode::kInvalidArgument, "rollout: the evaluation text is over {} bytes", kMaxEvalTextBytes);
  if (s.bake_seconds < 0 || s.bake_seconds > 7 * 86400)
    return make_error(ErrorCode::kInvalidArgument, "rollout: --bake must be 0 to 7 days");
  if (auto m = max_failures_of(s.max_failures, 100); !m.ok()) return m.status();
  if (s.sources.empty() || s.sources.size() > 16)
    return make_error(ErrorCode::kInvalidArgument, "rollout: 1 to 16 sources (registry or mirror URLs)");
  return ok_status();
}

Result<std::vector<size_t>> plan_batches(const std::vector<std::string>& batches, size_t n) {
  std::vector<size_t> ends;
  size_t prev = 0;
  for (const auto& b : batches) {
    auto size = size_of(b, n, "batch");
    if (!size.ok()) return size.status();
    size_t end = std::max(prev, *size);
    if (end > prev) ends.push_back(end);
    prev = end;
  }
  if (ends.empty() || ends.back() < n) ends.push_back(n);
  if (n == 0) ends.clear();
  return ends;
}

std::vector<std::string> order_nodes(std::vector<std::string> ids) {
  std::sort(ids.begin(), ids.end(), [](const std::string& a, const std::string& b) {
    std::string ha = sha_hex(a), hb = sha_hex(b);
    return ha != hb ? ha < hb : a < b;
  });
  return ids;
}

Result<size_t> max_failures_of(const std::string& spec, size_t n_nodes) {
  return size_of(spec, n_nodes, "--max-failures");
}

Result<std::string> start_rollout(RolloutEnv& env, const RolloutSpec& spec, const std::string& actor) {
  if (auto st = validate_rollout_spec(spec); !st.ok()) return st;
  auto nodes = env.db->nodes(spec.selector);
  if (!nodes.ok()) return nodes.status();
  if (nodes->empty())
    return make_error(ErrorCode::kFailedPrecondition, "no node matches the selector '{}'",
                      labels_to_string(spec.selector));
  std::vector<std::string> ids;
  std::map<std::string, NodeRecord> by_id;
  for (auto& n : *nodes) {
    ids.push_back(n.id);
    by_id[n.id] = n;
  }
  ids = order_nodes(std::move(ids));
  auto ends = plan_batches(spec.batches, ids.size());
  if (!ends.ok()) return ends.status();
  auto rid = random_hex(6);
  if (!rid.ok()) return rid.status();
  RolloutRecord r;
  r.id = "r-" + *rid;
  r.created = env.now();
  r.state = "running";
  r.spec_json = rollout_spec_to_json(spec);
  // The rollout, its nodes and its audit entry in one transaction.
  FleetWrites w;
  w.rollout_nodes.reserve(ids.size());
  size_t batch = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    while (i >= (*ends)[batch]) ++batch;
    RolloutNodeRecord n;
    n.rollout_id = r.id;
    n.node = ids[i];
    n.batch = static_cast<int64_t>(batch);
    n.previous_reference = by_id[ids[i]].serving_reference;
    n.previous_digest = by_id[ids[i]].serving_digest;
    w.rollout_nodes.push_back(std::move(n));
  }
  w.rollout = r;
  w.audit.push_back({0, env.now(), actor, "rollout_started", r.id,
                     fmt::format("{} ({}) to {} nodes in {} batches{}", spec.model.reference, spec.model.digest,
                                 ids.size(), ends->size(), spec.allow_downgrade ? "; downgrade allowed" : "")});
  if (auto st = env.db->write(w); !st.ok()) return st;
  return r.id;
}

namespace {

DesiredState desired_for(const RolloutSpec& spec, const std::string& rollout_id) {
  DesiredState d;
  d.rollout_id = rollout_id;
  d.model = spec.model;
  d.sources = spec.sources;
  for (const auto& g : spec.gates)
    if (auto pg = parse_gate(g); pg.ok()) d.gates.push_back(*pg);
  d.eval_text = spec.eval_text;
  if (!d.eval_text.empty()) d.eval_text_digest = "sha256:" + sha_hex(d.eval_text);
  d.bake_seconds = spec.bake_seconds;
  d.allow_downgrade = spec.allow_downgrade;
  return d;
}

// A step's desired states: each prepared (signed), added to the step's writes with its audit
// entry; publish_step then records the whole step in one transaction and only then sends them.
struct Step {
  FleetWrites writes;
  std::vector<PreparedDesired> sends;
  std::chrono::steady_clock::time_point begun = std::chrono::steady_clock::now();
  double begun_unix = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
};

Result<uint64_t> stage_desired(RolloutEnv& env, Step& step, const std::string& node, DesiredState d, int64_t now) {
  auto p = env.prepare(node, d);
  if (!p.ok()) return p.status();
  if (p->recorded) {
    step.writes.audit.push_back({0, now, "controller", "desired_republished", node,
                                 fmt::format("generation {} for rollout {}", p->generation, d.rollout_id)});
  } else {
    step.writes.desired.push_back({node, p->generation, p->envelope});
    step.writes.audit.push_back(
        {0, now, "controller", "desired_published", node,
         fmt::format("generation {}: {} ({}){}{}", p->generation, d.model.reference, d.model.digest,
                     d.rollout_id.empty() ? "" : " for rollout " + d.rollout_id,
                     d.allow_downgrade ? ", downgrade allowed" : "")});
  }
  const uint64_t generation = p->generation;
  step.sends.push_back(std::move(*p));
  return generation;
}

Status publish_step(RolloutEnv& env, Step& step, const std::string& rollout_id) {
  using clock = std::chrono::steady_clock;
  const auto recording = clock::now();
  if (auto st = env.db->write(step.writes); !st.ok()) return st;
  if (step.sends.empty()) return ok_status();
  const auto sending = clock::now();
  if (auto st = env.send(step.sends); !st.ok())
    log::warn("rollout {}: {} (recorded; sent again when the controller reconnects)", rollout_id, st.message());
  auto secs = [](clock::duration d) { return std::chrono::duration<double>(d).count(); };
  log::info("rollout {}: {} desired state(s) (pass at unix {:.3f}) prepared in {:.2f} s, recorded in {:.2f} s, "
            "published in {:.2f} s",
            rollout_id, step.sends.size(), step.begun_unix, secs(recording - step.begun), secs(sending - recording),
            secs(clock::now() - sending));
  return ok_status();
}

Status abort_rollout(RolloutEnv& env, Step& step, RolloutRecord& r, const RolloutSpec& spec,
                     std::vector<RolloutNodeRecord>& nodes, const std::string& reason, const std::string& actor) {
  r.state = "aborted";
  r.reason = reason;
  const int64_t now = env.now();
  for (auto& n : nodes) {
    if (n.generation == 0 || n.batch != r.current_batch) continue;
    if (n.state == "failed" || n.state == "offline") {
      // It never switched (a failed gate leaves the old model serving): it is on its previous model.
      if (n.state == "failed") n.state = "rolled_back";
    } else if (!n.previous_digest.empty() && n.rollback_generation == 0) {
      DesiredState back;
      back.rollout_id = r.id;
      back.model = {n.previous_reference, n.previous_digest};
      back.sources = spec.sources;
      back.allow_downgrade = true;  // the controller's own rollback, recorded below
      auto gen = stage_desired(env, step, n.node, back, now);
      if (!gen.ok()) return gen.status();
      n.rollback_generation = *gen;
      n.state = "rolled_back";
      n.reason = "rollout aborted: " + reason;
      step.writes.audit.push_back(
          {0, now, actor, "node_rolled_back", n.node,
           fmt::format("rollout {} aborted; back to {} ({})", r.id, n.previous_reference, n.previous_digest)});
    }
    step.writes.rollout_nodes.push_back(n);
  }
  step.writes.rollout = r;
  step.writes.audit.push_back({0, now, actor, "rollout_aborted", r.id, reason});
  return publish_step(env, step, r.id);
}

// One pass over a running rollout. Everything it decides (its nodes' new states, the next
// batch's desired states, the rollout's progress and their audit entries) is written in one
// transaction at its end, and the desired states are sent after it. A batch that is done and
// baked starts the next one in the same pass.
Status drive_one(RolloutEnv& env, RolloutRecord& r) {
  auto spec = rollout_spec_from_json(r.spec_json);
  if (!spec.ok()) return spec.status();
  auto nodes = env.db->rollout_nodes(r.id);
  if (!nodes.ok()) return nodes.status();
  int64_t now = env.now();
  auto max_fail = max_failures_of(spec->max_failures, nodes->size());
  if (!max_fail.ok()) return max_fail.status();
  Step step;

  // Observe: what each assigned node reported about this rollout's desired state (one read of
  // every node, not one per node).
  auto fleet = env.db->nodes({});
  if (!fleet.ok()) return fleet.status();
  std::unordered_map<std::string_view, const NodeRecord*> by_id;
  by_id.reserve(fleet->size());
  for (const auto& nr : *fleet) by_id.emplace(nr.id, &nr);
  size_t failures = 0;
  for (auto& n : *nodes) {
    if (n.generation != 0 && !terminal_failure(n.state)) {
      auto it = by_id.find(n.node);
      if (it != by_id.end()) {
        const NodeRecord& nr = *it->second;
        std::string before = n.state;
        if (nr.reported_generation == n.generation) {
          if (nr.state == "serving" && nr.serving_digest == spec->model.digest) {
            n.state = "serving";
          } else if (nr.state == "failed") {
            n.state = "failed";
            n.reason = nr.reason;
          } else if (nr.state == "pulling" || nr.state == "verifying" || nr.state == "gating") {
            n.state = nr.state;  // on its way; "serving" another model is not this rollout's
          }
          n.gate_values_json = nr.gate_values_json;
        } else if (!nr.online && now - n.assigned_at > spec->offline_timeout_seconds) {
          n.state = "offline";
          n.reason = fmt::format("offline for more than {} s", spec->offline_timeout_seconds);
        }
        if (n.state != before) {
          step.writes.rollout_nodes.push_back(n);
          if (terminal_failure(n.state))
            step.writes.audit.push_back(
                {0, now, "controller", "node_failed", n.node, fmt::format("rollout {}: {}", r.id, n.reason)});
        }
      }
    }
    if (terminal_failure(n.state)) ++failures;
  }
  if (failures > *max_fail)
    return abort_rollout(env, step, r, *spec, *nodes,
                         fmt::format("{} node(s) failed, more than --max-failures {}", failures, spec->max_failures),
                         "controller");
  if (r.state != "running") return publish_step(env, step, r.id);

  int64_t n_batches = 0;
  for (const auto& n : *nodes) n_batches = std::max(n_batches, n.batch + 1);
  for (;;) {
    // Assign: the current batch's nodes get their desired state (once).
    bool batch_healthy = true, any = false, assigned = false;
    for (auto& n : *nodes) {
      if (n.batch != r.current_batch) continue;
      any = true;
      if (n.generation == 0) {
        auto gen = stage_desired(env, step, n.node, desired_for(*spec, r.id), now);
        if (!gen.ok()) return gen.status();
        n.generation = *gen;
        n.assigned_at = now;
        n.state = "pending";
        step.writes.rollout_nodes.push_back(n);
        assigned = true;
      }
      if (n.state != "serving" && !terminal_failure(n.state)) batch_healthy = false;
    }
    if (assigned || !any || !batch_healthy) {
      if (r.batch_done_at != 0) {
        r.batch_done_at = 0;
        step.writes.rollout = r;
      }
      return publish_step(env, step, r.id);
    }
    // Bake: the batch must stay healthy for bake_seconds before the next one starts.
    if (r.batch_done_at == 0) {
      r.batch_done_at = now;
      step.writes.rollout = r;
    }
    if (now - r.batch_done_at < spec->bake_seconds) return publish_step(env, step, r.id);
    // The step and its audit entries in one transaction: a controller killed here leaves
    // neither, and the next leader takes (and records) the step once.
    step.writes.audit.push_back(
        {0, now, "controller", "batch_done", r.id,
         fmt::format("batch {} of {} healthy for {} s", r.current_batch + 1, n_batches, spec->bake_seconds)});
    r.current_batch += 1;
    r.batch_done_at = 0;
    step.writes.rollout = r;
    if (r.current_batch >= n_batches) {
      r.state = "succeeded";
      step.writes.rollout = r;
      step.writes.audit.push_back({0, now, "controller", "rollout_succeeded", r.id, spec->model.reference});
      return publish_step(env, step, r.id);
    }
  }
}

}  // namespace

Status drive_rollouts(RolloutEnv& env) {
  auto all = env.db->rollouts();
  if (!all.ok()) return all.status();
  for (auto& r : *all) {
    if (r.state != "running") continue;
    if (auto st = drive_one(env, r); !st.ok()) log::warn("rollout {}: {}", r.id, st.message());
  }
  return ok_status();
}

Status control_rollout(RolloutEnv& env, const std::string& id, const std::string& action, const std::string& actor) {
  auto r = env.db->rollout(id);
  if (!r.ok()) return r.status();
  if (!r->has_value()) return make_error(ErrorCode::kNotFound, "no rollout '{}'", id);
  RolloutRecord rec = **r;
  if (action == "pause") {
    if (rec.state != "running")
      return make_error(ErrorCode::kFailedPrecondition, "rollout {} is {}, not running", id, rec.state);
    rec.state = "paused";
  } else if (action == "resume") {
    if (rec.state != "paused")
      return make_error(ErrorCode::kFailedPrecondition, "rollout {} is {}, not paused", id, rec.state);
    rec.state = "running";
  } else if (action == "abort") {
    if (rec.state != "running" && rec.state != "paused")
      return make_error(ErrorCode::kFailedPrecondition, "rollout {} is already {}", id, rec.state);
    auto spec = rollout_spec_from_json(rec.spec_json);
    if (!spec.ok()) return spec.status();
    auto nodes = env.db->rollout_nodes(id);
    if (!nodes.ok()) return nodes.status();
    Step step;
    return abort_rollout(env, step, rec, *spec, *nodes, "aborted by " + actor, actor);
  } else {
    return make_error(ErrorCode::kInvalidArgument, "rollout action '{}' is not pause, resume or abort", action);
  }
  FleetWrites w;
  w.rollout = rec;
  w.audit.push_back({0, env.now(), actor, "rollout_" + action + "d", id, ""});
  return env.db->write(w);
}

}  // namespace hearth::fleet
