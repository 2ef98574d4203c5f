#include "hearth/fleet/reconciler.h"

#include <sys/statvfs.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <thread>

#include "hearth/core/log.h"
#include "hearth/core/status.h"
#include "hearth/eval/bench.h"
#include "hearth/eval/perplexity.h"
#include "hearth/model/context.h"
#include "hearth/model/model.h"
#include "hearth/registry/model_transfer.h"
#include "hearth/store/reference.h"
#include "hearth/store/store.h"
#include "hearth/tokenizer/tokenizer.h"
#include "hearth/trust/trust_policy.h"
#include "hearth/trust/verifier.h"

namespace hearth::fleet {
namespace {

constexpr int64_t kBenchPrompt = 64;
constexpr int64_t kBenchGen = 16;
constexpr int64_t kEvalCtx = 128;

// MemAvailable from /proc/meminfo, in bytes (0: unknown).
uint64_t available_memory() {
  std::ifstream f("/proc/meminfo");
  std::string key;
  uint64_t kib = 0;
  std::string unit;
  while (f >> key >> kib >> unit)
    if (key == "MemAvailable:") return kib * 1024;
  return 0;
}

uint64_t free_disk(const std::string& path) {
  struct statvfs s {};
  if (statvfs(path.c_str(), &s) != 0) return 0;
  return static_cast<uint64_t>(s.f_bavail) * s.f_frsize;
}

Result<store::Reference> pinned_reference(const ModelPin& pin) {
  auto ref = store::parse_reference(pin.reference);
  if (!ref.ok()) return ref.status().with_context("desired model reference");
  auto digest = store::parse_reference(ref->name + "@" + pin.digest);
  if (!digest.ok()) return digest.status().with_context("desired model digest");
  return *digest;
}

Result<double> eval_ppl(const model::Model& m, const std::string& text, int n_threads) {
  auto tok = tokenizer::Tokenizer::from_gguf(m.gguf());
  if (!tok.ok()) return tok.status();
  std::vector<int32_t> ids = (*tok)->encode(text, /*add_special=*/true, /*parse_special=*/false);
  int64_t n_ctx = std::min<int64_t>(kEvalCtx, std::max<int64_t>(m.hparams().n_ctx_train, 16));
  if (static_cast<int64_t>(ids.size()) < 2 * 16)
    return make_error(ErrorCode::kInvalidArgument, "the evaluation text is too short ({} tokens)", ids.size());
  n_ctx = std::min<int64_t>(n_ctx, static_cast<int64_t>(ids.size()));
  model::ContextParams cp;
  cp.n_ctx = n_ctx;
  cp.n_batch = n_ctx;
  cp.n_threads = n_threads;
  auto ctx = model::Context::create(m, cp);
  if (!ctx.ok()) return ctx.status();
  eval::PerplexityParams pp;
  pp.n_ctx = n_ctx;
  pp.bos = (*tok)->bos();
  auto r = eval::compute_perplexity(**ctx, ids, pp, {});
  if (!r.ok()) return r.status();
  return r->ppl;
}

}  // namespace

bool is_traffic_gate(const Gate& g) {
  return g.metric == "error_rate" || g.metric == "p95_latency_ms" || g.metric == "bake_requests";
}

std::map<std::string, double> traffic_gate_values(const server::TrafficSnapshot& before,
                                                  const server::TrafficSnapshot& after) {
  const uint64_t requests = after.requests >= before.requests ? after.requests - before.requests : 0;
  const uint64_t errors = after.server_errors >= before.server_errors ? after.server_errors - before.server_errors : 0;
  std::map<std::string, double> v;
  v["bake_requests"] = static_cast<double>(requests);
  v["error_rate"] = requests == 0 ? 0.0 : static_cast<double>(errors) / static_cast<double>(requests);
  const double p95 = server::window_quantile(0.95, after.latency_bounds, after.latency_counts, before.latency_counts);
  if (std::isfinite(p95)) v["p95_latency_ms"] = 1000.0 * p95;  // none without a request
  return v;
}

GateOutcome run_gates(const model::Model& m, const model::Model* current, const DesiredState& d, int n_threads) {
  GateOutcome out;
  bool need_bench = false, need_ppl = false, need_ratio = false;
  for (const auto& g : d.gates) {
    if (g.metric == "decode_tok_s" || g.metric == "prefill_tok_s" || g.metric == "ttft_ms") need_bench = true;
    if (g.metric == "eval_ppl") need_ppl = true;
    if (g.metric == "eval_ppl_ratio") need_ppl = need_ratio = true;
    // Traffic gates are measured after the switch, during the bake window (reconcile).
  }
  if (need_bench) {
    eval::BenchParams bp;
    bp.n_prompt = kBenchPrompt;
    bp.n_gen = kBenchGen;
    bp.reps = 1;
    bp.n_threads = n_threads;
    auto b = eval::run_bench(m, bp);
    if (!b.ok()) {
      out.reason = "self-benchmark failed: " + b.status().message();
      return out;
    }
    out.values["prefill_tok_s"] = b->prefill_mean;
    out.values["decode_tok_s"] = b->decode_mean;
    // Time to the first token of a kBenchPrompt-token prompt: its prefill plus one decode step.
    if (b->prefill_mean > 0 && b->decode_mean > 0)
      out.values["ttft_ms"] = 1000.0 * (kBenchPrompt / b->prefill_mean + 1.0 / b->decode_mean);
  }
  if (need_ppl) {
    if (d.eval_text.empty()) {
      out.reason = "an eval_ppl gate needs an evaluation text (rollout --eval-text)";
      return out;
    }
    auto ppl = eval_ppl(m, d.eval_text, n_threads);
    if (!ppl.ok()) {
      out.reason = "perplexity failed: " + ppl.status().message();
      return out;
    }
    out.values["eval_ppl"] = *ppl;
    if (need_ratio) {
      if (current == nullptr) {
        out.values["eval_ppl_ratio"] = 1.0;  // nothing to compare with: the first model of this node
      } else {
        auto base = eval_ppl(*current, d.eval_text, n_threads);
        if (!base.ok() || *base <= 0) {
          out.reason = "perplexity of the serving model failed: " + base.status().message();
          return out;
        }
        out.values["eval_ppl_ratio"] = *ppl / *base;
      }
    }
  }
  for (const auto& g : d.gates) {
    if (is_traffic_gate(g)) continue;
    auto it = out.values.find(g.metric);
    double v = it == out.values.end() ? std::nan("") : it->second;
    if (!g.passes(v)) {
      out.reason = fmt::format("gate '{}' failed: measured {:.4g}", g.to_string(), v);
      return out;
    }
  }
  out.passed = true;
  return out;
}

std::optional<double> StallWatch::observe(const WorkProgress& w, double now_s) {
  if (limit_s_ <= 0) return std::nullopt;
  // The clock (re)starts at the first look, at any progress, and when work arrives after none.
  const bool was_waiting = waiting_;
  waiting_ = w.waiting > 0;
  if (!seen_ || !waiting_ || !was_waiting || w.progress != last_progress_) {
    seen_ = true;
    last_progress_ = w.progress;
    since_ = now_s;
    return std::nullopt;
  }
  const double stalled = now_s - since_;
  if (stalled >= limit_s_) return stalled;
  return std::nullopt;
}

BakeOutcome bake_window(const DesiredState& d, const ServingSwitch& serving, const server::TrafficSnapshot& before,
                        const ReconcileOptions& o) {
  BakeOutcome out;
  const auto start = std::chrono::steady_clock::now();
  const auto end = start + std::chrono::seconds(d.bake_seconds);
  auto seconds_since_start = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  StallWatch watch(o.stall_seconds);
  while (std::chrono::steady_clock::now() < end) {
    if (o.interrupted && o.interrupted()) {
      out.interrupted = true;
      break;
    }
    if (auto w = serving.work()) {
      if (auto stalled = watch.observe(*w, seconds_since_start())) {
        out.why = fmt::format(
            "the model made no progress for {:.0f} s with {} request(s) waiting during the bake: it hangs or loops",
            *stalled, w->waiting);
        break;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(std::max(o.bake_poll_ms, 1)));
  }
  const std::optional<server::TrafficSnapshot> after = serving.traffic();
  out.values = traffic_gate_values(before, after ? *after : before);
  if (out.interrupted) {
    out.why = "the bake window was interrupted (the agent is stopping, or a newer desired state arrived)";
  } else if (out.why.empty()) {
    const bool any = out.values["bake_requests"] > 0;
    for (const auto& g : d.gates) {
      // With no request at all, only a bake_requests gate has something to judge.
      if (!is_traffic_gate(g) || (!any && g.metric != "bake_requests") || g.passes(out.values[g.metric])) continue;
      out.why = fmt::format("gate '{}' failed during the {} s bake: measured {:.4g} over {} requests", g.to_string(),
                            d.bake_seconds, out.values[g.metric], out.values["bake_requests"]);
      break;
    }
  }
  return out;
}

Result<std::shared_ptr<model::Model>> load_verified(const std::string& home, const ModelPin& pin, bool record_version,
                                                    int n_threads, bool allow_downgrade) {
  auto ref = pinned_reference(pin);
  if (!ref.ok()) return ref.status();
  auto st = store::Store::open(home);
  if (!st.ok()) return st.status();
  auto policy = trust::load_policy(trust::default_policy_path(home));
  if (!policy.ok()) return policy.status();
  trust::ArtifactVerifier v(*st, std::move(*policy));
  trust::VerifyOptions vo;
  vo.record_version = record_version;
  vo.allow_downgrade = allow_downgrade;
  auto a = v.verify(*ref, vo);
  if (!a.ok()) return a.status();
  auto m = model::Model::load(a->weights(), model::LoadOptions{.n_threads = n_threads});
  if (!m.ok()) return m.status();
  return std::shared_ptr<model::Model>(std::move(*m));
}

ReconcileResult reconcile(const DesiredState& d, ServingSwitch& serving, ServingRecord& record,
                          const ReconcileOptions& o) {
  ReconcileResult res;
  std::map<std::string, double> none;
  auto step = [&](NodeState s, const std::string& why) {
    if (o.progress) o.progress(s, why, none);
  };
  auto fail = [&](std::string why) {
    res.state = NodeState::kFailed;
    res.reason = std::move(why);
    return res;
  };
  if (d.model.empty()) return fail("the desired state names no model");
  if (!record.serving.empty() && record.serving.digest == d.model.digest) {
    res.state = NodeState::kServing;
    return res;  // already there
  }
  auto ref = pinned_reference(d.model);
  if (!ref.ok()) return fail(ref.status().message());

  // 1. pull (a model already in the store is not fetched again).
  step(NodeState::kPulling, "");
  auto st = store::Store::open(o.home);
  if (!st.ok()) return fail(st.status().message());
  registry::PullOptions po;
  po.sources = d.sources;
  po.record_version = false;  // the version lock advances only at commit, after the gates
  uint64_t disk = free_disk(o.home);
  if (disk > (uint64_t{1} << 30)) po.max_total_bytes = disk - (uint64_t{1} << 30);  // keep 1 GiB free
  auto pulled = registry::pull_model(*st, *ref, po);
  if (!pulled.ok()) return fail(pulled.status().message());
  if (pulled->manifest.str() != d.model.digest)
    return fail(fmt::format("pulled manifest {} is not the pinned {}", pulled->manifest.str(), d.model.digest));

  // 2. verify against this node's policy; 3. fit.
  step(NodeState::kVerifying, "");
  auto policy = trust::load_policy(trust::default_policy_path(o.home));
  if (!policy.ok()) return fail(policy.status().message());
  trust::ArtifactVerifier verifier(*st, std::move(*policy));
  trust::VerifyOptions vo;
  vo.record_version = false;  // the version lock advances only at commit
  vo.allow_downgrade = d.allow_downgrade;
  auto artifact = verifier.verify(*ref, vo);
  if (!artifact.ok()) return fail("refused by this node's trust policy: " + artifact.status().message());
  uint64_t mem = available_memory();
  if (mem != 0 && artifact->gguf_size() + artifact->gguf_size() / 4 > mem)
    return fail(fmt::format("the model needs {} MiB and only {} MiB of memory is available",
                            artifact->gguf_size() >> 20, mem >> 20));

  const bool bake_traffic = std::any_of(d.gates.begin(), d.gates.end(), is_traffic_gate);
  if (bake_traffic && !serving.traffic())
    return fail(
        "the desired state has traffic gates (error_rate, p95_latency_ms), and this node does not measure "
        "its traffic");
  if (bake_traffic && d.bake_seconds <= 0)
    return fail("traffic gates (error_rate, p95_latency_ms) need a bake window (rollout --bake)");

  // 4. gate, with the model loaded beside the serving one.
  step(NodeState::kGating, "");
  auto loaded = model::Model::load(artifact->weights(), model::LoadOptions{.n_threads = o.n_threads});
  if (!loaded.ok()) return fail("the model does not load: " + loaded.status().message());
  std::shared_ptr<model::Model> candidate(std::move(*loaded));
  std::shared_ptr<model::Model> current = serving.current();
  GateOutcome gates = run_gates(*candidate, current.get(), d, o.n_threads);
  res.gate_values = gates.values;
  if (!gates.passed) return fail(gates.reason);

  // 5. switch.
  const std::optional<server::TrafficSnapshot> before = serving.traffic();
  if (auto s = serving.switch_to(candidate, d.model.reference); !s.ok()) return fail("switch failed: " + s.message());

  // 5b. bake on real traffic; a failed gate switches straight back.
  if (bake_traffic) {
    // Reported as gating (the rollout waits for it), with the candidate serving on probation.
    if (o.progress)
      o.progress(
          NodeState::kGating,
          fmt::format("serving {} on probation: {} s of real traffic before commit", d.model.reference, d.bake_seconds),
          res.gate_values);
    BakeOutcome baked = bake_window(d, serving, before ? *before : server::TrafficSnapshot{}, o);
    for (const auto& [k, v] : baked.values) res.gate_values[k] = v;
    const std::string& why = baked.why;
    const bool interrupted = baked.interrupted;
    if (!why.empty()) {
      res.state = NodeState::kFailed;
      res.interrupted = interrupted;
      if (current == nullptr) {
        res.state = NodeState::kFailed;
        res.reason = why + "; there is no previous model to switch back to, so it is still served uncommitted";
        return res;
      }
      if (auto back = serving.switch_to(current, record.serving.empty() ? "previous" : record.serving.reference);
          !back.ok()) {
        res.state = NodeState::kFailed;
        res.reason = why + "; switching back failed: " + back.message();
        return res;
      }
      res.reason = fmt::format("{}; switched back to {}", why,
                               record.serving.empty() ? "the previous model" : record.serving.reference);
      return res;
    }
  }

  // 6. commit.
  vo.record_version = !d.allow_downgrade;
  if (auto again = verifier.verify(*ref, vo); !again.ok())
    log::warn("agent: recording the version of {} failed: {}", d.model.reference, again.status().message());
  if (!record.serving.empty()) record.last_known_good = record.serving;
  record.serving = d.model;
  auto it = gates.values.find("eval_ppl");
  record.serving_eval_ppl = it == gates.values.end() ? 0 : it->second;
  record.serving_eval_digest = d.eval_text_digest;
  res.state = NodeState::kServing;
  return res;
}

}  // namespace hearth::fleet
