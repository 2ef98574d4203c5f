#include "hearth/onnx/session.h"

#include <algorithm>
#include <chrono>
#include <unordered_map>

#include "hearth/core/thread_pool.h"
#include "hearth/kernels/kernel_table.h"
#include "hearth/onnx/loader.h"
#include "hearth/onnx/op_registry.h"

namespace hearth::onnx {
namespace {

// Per graph: each node's function, and after which node each value is last read.
struct Plan {
  std::vector<OpFn> fns;                               // null for If (run by the executor)
  std::vector<std::vector<std::string>> release_after;  // names whose last use is node i
};

// The values visible while a graph runs: its own, its initializers, then the enclosing scope's.
struct Env {
  const Graph* graph;
  const Env* parent;
  std::unordered_map<std::string, Tensor> values;

  const Tensor* find(const std::string& name) const {
    for (const Env* e = this; e; e = e->parent) {
      if (auto it = e->values.find(name); it != e->values.end()) return &it->second;
      if (auto it = e->graph->initializers.find(name); it != e->graph->initializers.end()) return &it->second;
    }
    return nullptr;
  }
};

bool is_if(const Node& n) { return n.op_type == "If" && n.domain.empty(); }

}  // namespace

struct Session::Impl {
  Model model;
  SessionOptions options;
  std::unique_ptr<ThreadPool> pool;
  BufferPool buffers;
  const kernels::KernelTable* kt = nullptr;
  std::unordered_map<const Graph*, Plan> plans;
  SessionStats stats;
  // SessionOptions::profile: each node's entry, by node (index into profiled, first-run order).
  std::unordered_map<const Node*, size_t> profile_index;
  std::vector<NodeProfile> profiled;

  NodeProfile& profile_entry(const Node& n, const std::vector<const Tensor*>& ins) {
    auto [it, added] = profile_index.emplace(&n, profiled.size());
    if (added) {
      NodeProfile e;
      e.node = n.name.empty() ? n.describe() : n.name;
      e.op_type = n.op_type;
      profiled.push_back(std::move(e));
    }
    NodeProfile& e = profiled[it->second];
    e.inputs.clear();
    for (const Tensor* t : ins) {
      if (!e.inputs.empty()) e.inputs += ' ';
      e.inputs += t ? shape_string(t->shape()) : "-";
    }
    return e;
  }

  OpContext context() { return OpContext{*pool, buffers, *kt, model.opset}; }

  Status resolve(const Graph& g) {
    for (const Node& n : g.nodes) {
      if (!n.domain.empty()) {
        return make_error(ErrorCode::kUnimplemented, "{}: operators of domain '{}' are not supported", n.describe(), n.domain);
      }
      if (is_if(n)) {
        const Graph* then_g = n.attr_graph("then_branch");
        const Graph* else_g = n.attr_graph("else_branch");
        if (!then_g || !else_g) return make_error(ErrorCode::kInvalidArgument, "{}: needs then_branch and else_branch graphs", n.describe());
        if (then_g->outputs.size() != n.outputs.size() || else_g->outputs.size() != n.outputs.size()) {
          return make_error(ErrorCode::kInvalidArgument, "{}: has {} outputs but its branches have {} and {}", n.describe(),
                            n.outputs.size(), then_g->outputs.size(), else_g->outputs.size());
        }
        HEARTH_TRY(resolve(*then_g));
        HEARTH_TRY(resolve(*else_g));
        continue;
      }
      if (!op_registry().find(n.op_type, model.opset)) {
        return make_error(ErrorCode::kUnimplemented, "{}: operator {} is not supported (opset {})", n.describe(), n.op_type, model.opset);
      }
    }
    return ok_status();
  }

  // Runs every node whose inputs are all initializers of its graph, and keeps its outputs as
  // initializers. Subgraphs are folded on their own.
  Status fold(Graph& g) {
    std::vector<Node> kept;
    for (Node& n : g.nodes) {
      if (is_if(n)) {
        for (const char* b : {"then_branch", "else_branch"}) {
          auto& attr = n.attrs.find(b)->second;
          auto& sp = std::get<std::shared_ptr<const Graph>>(attr.value);
          auto copy = std::make_shared<Graph>(*sp);
          HEARTH_TRY(fold(*copy));
          sp = std::move(copy);
        }
        kept.push_back(std::move(n));
        continue;
      }
      bool constant = !n.inputs.empty();
      for (const auto& in : n.inputs) {
        if (!in.empty() && !g.initializers.count(in)) constant = false;
      }
      const auto& out_names = g.outputs;
      for (const auto& o : n.outputs) {
        if (std::any_of(out_names.begin(), out_names.end(), [&](const ValueInfo& v) { return v.name == o; })) constant = false;
      }
      if (!constant) {
        kept.push_back(std::move(n));
        continue;
      }
      std::vector<const Tensor*> ins;
      for (const auto& in : n.inputs) ins.push_back(in.empty() ? nullptr : &g.initializers.find(in)->second);
      std::vector<Tensor> outs(n.outputs.size());
      OpContext ctx = context();
      HEARTH_TRY(op_registry().find(n.op_type, model.opset)(ctx, n, ins, outs));
      for (size_t i = 0; i < outs.size(); ++i) {
        if (!n.outputs[i].empty()) g.initializers[n.outputs[i]] = std::move(outs[i]);
      }
      ++stats.folded;
    }
    g.nodes = std::move(kept);
    return ok_status();
  }

  void plan(const Graph& g) {
    Plan p;
    p.fns.resize(g.nodes.size());
    p.release_after.resize(g.nodes.size());
    std::unordered_map<std::string, size_t> last;
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      const Node& n = g.nodes[i];
      if (is_if(n)) {
        for (const char* b : {"then_branch", "else_branch"}) {
          const Graph* sub = n.attr_graph(b);
          plan(*sub);
          for (const auto& r : sub->outer_refs) last[r] = i;
        }
      } else {
        p.fns[i] = op_registry().find(n.op_type, model.opset);
      }
      for (const auto& in : n.inputs) if (!in.empty()) last[in] = i;
      // An output nobody reads is released right after its node.
      for (const auto& o : n.outputs) if (!o.empty() && !last.count(o)) last[o] = i;
    }
    for (const auto& v : g.outputs) last.erase(v.name);
    // Only values produced by this graph's nodes are released (not inputs, initializers or
    // outer values).
    std::unordered_map<std::string, bool> produced;
    for (const Node& n : g.nodes) for (const auto& o : n.outputs) if (!o.empty()) produced[o] = true;
    for (auto& [name, i] : last) {
      if (produced.count(name)) p.release_after[i].push_back(name);
    }
    plans[&g] = std::move(p);
  }

  Status run_graph(const Graph& g, Env& env) {
    const Plan& p = plans.at(&g);
    std::vector<const Tensor*> ins;
    std::vector<Tensor> outs;
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      const Node& n = g.nodes[i];
      ins.clear();
      for (const auto& in : n.inputs) {
        if (in.empty()) {
          ins.push_back(nullptr);
          continue;
        }
        const Tensor* t = env.find(in);
        if (!t) return make_error(ErrorCode::kInvalidArgument, "{}: input '{}' was not produced", n.describe(), in);
        ins.push_back(t);
      }
      outs.assign(n.outputs.size(), Tensor());
      if (is_if(n)) {
        HEARTH_TRY(run_if(n, ins, env, outs));
      } else if (options.profile) {
        NodeProfile& e = profile_entry(n, ins);
        OpContext ctx = context();
        const auto t0 = std::chrono::steady_clock::now();
        HEARTH_TRY(p.fns[i](ctx, n, ins, outs));
        e.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        ++e.calls;
      } else {
        OpContext ctx = context();
        HEARTH_TRY(p.fns[i](ctx, n, ins, outs));
      }
      for (size_t o = 0; o < outs.size(); ++o) {
        if (n.outputs[o].empty()) continue;
        if (outs[o].empty_value()) {
          return make_error(ErrorCode::kInternal, "{}: output '{}' was not produced", n.describe(), n.outputs[o]);
        }
        env.values[n.outputs[o]] = std::move(outs[o]);
      }
      for (const auto& name : p.release_after[i]) {
        auto it = env.values.find(name);
        if (it != env.values.end()) {
          buffers.release(it->second);
          env.values.erase(it);
        }
      }
    }
    return ok_status();
  }

  Status run_if(const Node& n, const std::vector<const Tensor*>& ins, Env& env, std::vector<Tensor>& outs) {
    if (ins.size() != 1 || !ins[0]) return make_error(ErrorCode::kInvalidArgument, "{}: takes one condition input", n.describe());
    const Tensor& c = *ins[0];
    if (c.dtype() != DType::kBool || c.numel() != 1) {
      return make_error(ErrorCode::kInvalidArgument, "{}: the condition must be one bool, is {} {}", n.describe(),
                        dtype_name(c.dtype()), shape_string(c.shape()));
    }
    const Graph* branch = n.attr_graph(c.data<uint8_t>()[0] ? "then_branch" : "else_branch");
    Env sub{branch, &env, {}};
    HEARTH_TRY(run_graph(*branch, sub));
    for (size_t o = 0; o < branch->outputs.size(); ++o) {
      const Tensor* t = sub.find(branch->outputs[o].name);
      if (!t) return make_error(ErrorCode::kInternal, "{}: branch output '{}' missing", n.describe(), branch->outputs[o].name);
      outs[o] = *t;
    }
    return ok_status();
  }
};

Session::Session(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;
Session::~Session() = default;

const Model& Session::model() const { return impl_->model; }
const std::vector<ValueInfo>& Session::inputs() const { return impl_->model.graph.inputs; }
const std::vector<ValueInfo>& Session::outputs() const { return impl_->model.graph.outputs; }
SessionStats Session::stats() const {
  SessionStats s = impl_->stats;
  s.buffers_reused = impl_->buffers.reused();
  return s;
}
std::vector<NodeProfile> Session::profile() const { return impl_->profiled; }

Result<Session> Session::create(Model model, const SessionOptions& options) {
  if (model.opset > kMaxOpset) {
    return make_error(ErrorCode::kUnimplemented, "the model's opset {} is newer than hearth supports (up to {})", model.opset, kMaxOpset);
  }
  auto impl = std::make_unique<Impl>();
  impl->model = std::move(model);
  impl->options = options;
  int threads = options.n_threads > 0 ? options.n_threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  impl->pool = std::make_unique<ThreadPool>(threads);
  impl->buffers.set_max_tensor_bytes(options.max_tensor_bytes);
  impl->kt = &kernels::active_kernels();
  Graph& g = impl->model.graph;
  HEARTH_TRY(impl->resolve(g));
  if (options.fold_constants) HEARTH_TRY(impl->fold(g));
  if (options.fuse) impl->stats.fused = fuse_conv_bn_activation(g, impl->model.opset);
  impl->plan(g);
  impl->stats.nodes = g.nodes.size();
  return Session(std::move(impl));
}

Result<std::vector<Tensor>> Session::run(const std::vector<std::pair<std::string, Tensor>>& feeds) {
  const Graph& g = impl_->model.graph;
  Env env{&g, nullptr, {}};
  for (const auto& feed : feeds) {
    const std::string& name = feed.first;  // (no structured binding: clang 14 cannot capture one)
    const Tensor& t = feed.second;
    auto it = std::find_if(g.inputs.begin(), g.inputs.end(), [&](const ValueInfo& v) { return v.name == name; });
    if (it == g.inputs.end()) {
      if (g.initializers.count(name)) {
        env.values[name] = t;  // overrides an input's default
        continue;
      }
      return make_error(ErrorCode::kInvalidArgument, "the model has no input named '{}'", name);
    }
    if (it->dtype != DType::kUndefined && it->dtype != t.dtype()) {
      return make_error(ErrorCode::kInvalidArgument, "input '{}' must be {}, got {}", name, dtype_name(it->dtype), dtype_name(t.dtype()));
    }
    if (it->has_shape) {
      bool ok = it->dims.size() == t.rank();
      for (size_t d = 0; ok && d < t.rank(); ++d) ok = it->dims[d] < 0 || it->dims[d] == t.dim(d);
      if (!ok) {
        std::string want = "[";
        for (size_t d = 0; d < it->dims.size(); ++d) {
          if (d) want += ',';
          want += it->dims[d] >= 0 ? std::to_string(it->dims[d]) : (it->dim_names[d].empty() ? "?" : it->dim_names[d]);
        }
        return make_error(ErrorCode::kInvalidArgument, "input '{}' must have shape {}], got {}", name, want, shape_string(t.shape()));
      }
    }
    if (!env.values.emplace(name, t).second) return make_error(ErrorCode::kInvalidArgument, "input '{}' is given twice", name);
  }
  for (const auto& v : g.inputs) {
    if (!env.values.count(v.name)) return make_error(ErrorCode::kInvalidArgument, "input '{}' is missing", v.name);
  }
  HEARTH_TRY(impl_->run_graph(g, env));
  std::vector<Tensor> out;
  for (const auto& v : g.outputs) {
    const Tensor* t = env.find(v.name);
    if (!t) return make_error(ErrorCode::kInternal, "output '{}' was not produced", v.name);
    out.push_back(*t);
  }
  return out;
}

Result<Session> open_session(const std::string& path, const SessionOptions& options) {
  HEARTH_ASSIGN_OR_RETURN(Model m, load_model_file(path));
  auto s = Session::create(std::move(m), options);
  if (!s.ok()) return s.status().with_context(path);
  return s;
}

Result<Session> open_session(std::span<const std::byte> bytes, const std::string& what, const SessionOptions& options) {
  auto m = parse_model(bytes, LoadOptions{});
  if (!m.ok()) return m.status().with_context(what);
  auto s = Session::create(std::move(m).value(), options);
  if (!s.ok()) return s.status().with_context(what);
  return s;
}

}  // namespace hearth::onnx
