#include "hearth/onnx/loader.h"

#include <algorithm>
#include <climits>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include <google/protobuf/io/coded_stream.h>

#include "hearth/core/checked_math.h"
#include "hearth/core/mapped_file.h"
#include "hearth/onnx/tensor_proto.h"
#include "onnx.pb.h"

namespace hearth::onnx {
namespace fs = std::filesystem;

// ---- Node attribute getters (graph.h) ----

int64_t Node::attr_int(std::string_view a, int64_t fallback) const {
  auto it = attrs.find(a);
  if (it == attrs.end()) return fallback;
  if (auto* v = std::get_if<int64_t>(&it->second.value)) return *v;
  return fallback;
}
float Node::attr_float(std::string_view a, float fallback) const {
  auto it = attrs.find(a);
  if (it == attrs.end()) return fallback;
  if (auto* v = std::get_if<float>(&it->second.value)) return *v;
  return fallback;
}
std::string Node::attr_string(std::string_view a, std::string fallback) const {
  auto it = attrs.find(a);
  if (it == attrs.end()) return fallback;
  if (auto* v = std::get_if<std::string>(&it->second.value)) return *v;
  return fallback;
}
std::vector<int64_t> Node::attr_ints(std::string_view a, std::vector<int64_t> fallback) const {
  auto it = attrs.find(a);
  if (it == attrs.end()) return fallback;
  if (auto* v = std::get_if<std::vector<int64_t>>(&it->second.value)) return *v;
  return fallback;
}
std::vector<float> Node::attr_floats(std::string_view a, std::vector<float> fallback) const {
  auto it = attrs.find(a);
  if (it == attrs.end()) return fallback;
  if (auto* v = std::get_if<std::vector<float>>(&it->second.value)) return *v;
  return fallback;
}
const Tensor* Node::attr_tensor(std::string_view a) const {
  auto it = attrs.find(a);
  if (it == attrs.end()) return nullptr;
  return std::get_if<Tensor>(&it->second.value);
}
const Graph* Node::attr_graph(std::string_view a) const {
  auto it = attrs.find(a);
  if (it == attrs.end()) return nullptr;
  auto* g = std::get_if<std::shared_ptr<const Graph>>(&it->second.value);
  return g ? g->get() : nullptr;
}
std::string Node::describe() const { return fmt::format("node '{}' ({})", name, op_type); }

namespace {

constexpr int kProtoRecursionLimit = 64;

class Loader {
 public:
  explicit Loader(const LoadOptions& o) : opt_(o) {}

  Result<Model> load(const ::onnx::ModelProto& mp) {
    Model m;
    m.ir_version = mp.ir_version();
    m.producer = mp.producer_name();
    m.producer_version = mp.producer_version();
    bool have_default = false;
    for (const auto& os : mp.opset_import()) {
      const std::string& d = os.domain();
      if (d.empty() || d == "ai.onnx") {
        if (os.version() < 1 || os.version() > 1000) {
          return make_error(ErrorCode::kInvalidArgument, "opset_import: default-domain version {} is not valid", os.version());
        }
        m.opset = std::max<int64_t>(m.opset, os.version());
        have_default = true;
      } else {
        m.other_opsets[d] = os.version();
      }
    }
    if (!have_default) {
      // IR version 3+ requires an import; older files implied opset 1.
      if (mp.ir_version() >= 3) return make_error(ErrorCode::kInvalidArgument, "the model imports no default-domain (ai.onnx) opset");
      m.opset = 1;
    }
    for (const auto& kv : mp.metadata_props()) m.metadata[kv.key()] = kv.value();
    if (!mp.has_graph()) return make_error(ErrorCode::kInvalidArgument, "the model has no graph");
    HEARTH_ASSIGN_OR_RETURN(m.graph, load_graph(mp.graph(), 0, {}));
    return m;
  }

 private:
  using NameSet = std::unordered_set<std::string>;

  // The TensorProto conversion and its checks live in tensor_proto.cpp (shared with .pb files).
  Result<Tensor> load_tensor(const ::onnx::TensorProto& tp, std::string_view what) {
    return tensor_from_proto(tp, what, opt_.external_data_dir);
  }

  Result<ValueInfo> load_value_info(const ::onnx::ValueInfoProto& vi, bool type_required) {
    ValueInfo v;
    v.name = vi.name();
    // An empty TypeProto (no value set: some exporters write one for subgraph outputs) says
    // nothing, like a missing one.
    if (!vi.has_type() || vi.type().value_case() == ::onnx::TypeProto::VALUE_NOT_SET) {
      if (type_required) return make_error(ErrorCode::kInvalidArgument, "value '{}' has no type", v.name);
      return v;
    }
    if (!vi.type().has_tensor_type()) {
      return make_error(ErrorCode::kUnimplemented, "value '{}': only tensor values are supported (not sequences, maps or optionals)", v.name);
    }
    const auto& tt = vi.type().tensor_type();
    v.dtype = dtype_from_onnx(tt.elem_type());
    if (v.dtype == DType::kUndefined && (type_required || tt.elem_type() != 0)) {
      return make_error(ErrorCode::kUnimplemented, "value '{}': element type {} is not supported", v.name, tt.elem_type());
    }
    if (tt.has_shape()) {
      if (static_cast<size_t>(tt.shape().dim_size()) > kMaxRank) {
        return make_error(ErrorCode::kOutOfRange, "value '{}': rank {} exceeds the limit of {}", v.name, tt.shape().dim_size(), kMaxRank);
      }
      v.has_shape = true;
      for (const auto& d : tt.shape().dim()) {
        if (d.has_dim_value()) {
          if (d.dim_value() < 0) return make_error(ErrorCode::kInvalidArgument, "value '{}': negative dimension {}", v.name, d.dim_value());
          v.dims.push_back(d.dim_value());
          v.dim_names.emplace_back();
        } else {
          v.dims.push_back(-1);
          v.dim_names.push_back(d.has_dim_param() ? d.dim_param() : "");
        }
      }
    }
    return v;
  }

  Result<Attribute> load_attribute(const ::onnx::AttributeProto& ap, const Node& node, int depth,
                                   const std::vector<const NameSet*>& scopes) {
    using AP = ::onnx::AttributeProto;
    auto too_long = [&](int n) -> Status {
      if (static_cast<size_t>(n) > opt_.max_list_length) {
        return make_error(ErrorCode::kOutOfRange, "{}: attribute '{}' has {} elements, more than {}", node.describe(), ap.name(), n,
                          opt_.max_list_length);
      }
      return ok_status();
    };
    if (!ap.ref_attr_name().empty()) {
      return make_error(ErrorCode::kUnimplemented, "{}: attribute '{}' refers to a function attribute", node.describe(), ap.name());
    }
    Attribute a;
    switch (ap.type()) {
      case AP::INT: a.value = ap.i(); break;
      case AP::FLOAT: a.value = ap.f(); break;
      case AP::STRING: a.value = ap.s(); break;
      case AP::INTS:
        HEARTH_TRY(too_long(ap.ints_size()));
        a.value = std::vector<int64_t>(ap.ints().begin(), ap.ints().end());
        break;
      case AP::FLOATS:
        HEARTH_TRY(too_long(ap.floats_size()));
        a.value = std::vector<float>(ap.floats().begin(), ap.floats().end());
        break;
      case AP::STRINGS:
        HEARTH_TRY(too_long(ap.strings_size()));
        a.value = std::vector<std::string>(ap.strings().begin(), ap.strings().end());
        break;
      case AP::TENSOR: {
        auto t = load_tensor(ap.t(), fmt::format("{} attribute '{}'", node.describe(), ap.name()));
        if (!t.ok()) return t.status();
        a.value = std::move(t).value();
        break;
      }
      case AP::GRAPH: {
        auto g = load_graph(ap.g(), depth + 1, scopes);
        if (!g.ok()) return g.status().with_context(fmt::format("{} attribute '{}'", node.describe(), ap.name()));
        a.value = std::make_shared<const Graph>(std::move(g).value());
        break;
      }
      default:
        return make_error(ErrorCode::kUnimplemented, "{}: attribute '{}' has unsupported type {}", node.describe(), ap.name(),
                          static_cast<int>(ap.type()));
    }
    return a;
  }

  // A Constant node's value as a tensor.
  Result<Tensor> constant_value(const Node& n) {
    if (n.attrs.size() != 1) {
      return make_error(ErrorCode::kInvalidArgument, "{}: a Constant needs exactly one value attribute, has {}", n.describe(), n.attrs.size());
    }
    const std::string& key = n.attrs.begin()->first;  // (no structured binding: clang 14 cannot capture one)
    const Attribute& attr = n.attrs.begin()->second;
    auto wrong = [&] { return make_error(ErrorCode::kInvalidArgument, "{}: attribute '{}' has the wrong type", n.describe(), key); };
    if (key == "value") {
      if (auto* t = std::get_if<Tensor>(&attr.value)) return *t;
      return wrong();
    }
    if (key == "value_float") {
      if (auto* f = std::get_if<float>(&attr.value)) return Tensor::scalar<float>(*f);
      return wrong();
    }
    if (key == "value_int") {
      if (auto* i = std::get_if<int64_t>(&attr.value)) return Tensor::scalar<int64_t>(*i);
      return wrong();
    }
    if (key == "value_floats") {
      if (auto* v = std::get_if<std::vector<float>>(&attr.value)) return Tensor::from_values<float>({static_cast<int64_t>(v->size())}, *v);
      return wrong();
    }
    if (key == "value_ints") {
      if (auto* v = std::get_if<std::vector<int64_t>>(&attr.value)) return Tensor::from_values<int64_t>({static_cast<int64_t>(v->size())}, *v);
      return wrong();
    }
    return make_error(ErrorCode::kUnimplemented, "{}: Constant attribute '{}' is not supported", n.describe(), key);
  }

  // Loads one graph. `scopes` are the names visible from enclosing graphs (innermost last).
  Result<Graph> load_graph(const ::onnx::GraphProto& gp, int depth, std::vector<const NameSet*> scopes) {
    if (depth > opt_.max_graph_depth) {
      return make_error(ErrorCode::kOutOfRange, "subgraphs nest deeper than {}", opt_.max_graph_depth);
    }
    Graph g;
    g.name = gp.name();
    if (!gp.sparse_initializer().empty()) return make_error(ErrorCode::kUnimplemented, "graph '{}': sparse initializers are not supported", g.name);

    // Every name this graph defines, for the subgraphs' scope and for duplicate checks.
    NameSet defined;
    auto define = [&](const std::string& name, std::string_view by) -> Status {
      if (name.empty()) return ok_status();
      if (!defined.insert(name).second) {
        return make_error(ErrorCode::kInvalidArgument, "graph '{}': value '{}' is defined twice (again by {})", g.name, name, by);
      }
      return ok_status();
    };
    for (const auto& tp : gp.initializer()) {
      if (tp.name().empty()) return make_error(ErrorCode::kInvalidArgument, "graph '{}': an initializer has no name", g.name);
      HEARTH_ASSIGN_OR_RETURN(Tensor t, load_tensor(tp, "initializer"));
      HEARTH_TRY(define(tp.name(), "an initializer"));
      g.initializers.emplace(tp.name(), std::move(t));
    }
    for (const auto& vi : gp.input()) {
      HEARTH_ASSIGN_OR_RETURN(ValueInfo v, load_value_info(vi, depth == 0));
      auto init = g.initializers.find(v.name);
      if (init != g.initializers.end()) {  // an input with a default (the initializer)
        if (v.dtype != DType::kUndefined && v.dtype != init->second.dtype()) {
          return make_error(ErrorCode::kInvalidArgument, "input '{}' is declared {} but its initializer is {}", v.name,
                            dtype_name(v.dtype), dtype_name(init->second.dtype()));
        }
        continue;
      }
      if (v.name.empty()) return make_error(ErrorCode::kInvalidArgument, "graph '{}': an input has no name", g.name);
      HEARTH_TRY(define(v.name, "a graph input"));
      g.inputs.push_back(std::move(v));
    }
    // Node outputs are defined too (the graph is SSA), before the subgraphs are read, so that a
    // subgraph may use any of them (the sort below orders the If after its producers).
    const int n_nodes = gp.node_size();
    total_nodes_ += static_cast<size_t>(n_nodes);
    if (total_nodes_ > opt_.max_nodes) return make_error(ErrorCode::kOutOfRange, "the model has more than {} nodes", opt_.max_nodes);
    for (int i = 0; i < n_nodes; ++i) {
      const auto& np = gp.node(i);
      for (const auto& o : np.output()) {
        HEARTH_TRY(define(o, fmt::format("node '{}' ({})", np.name(), np.op_type())));
      }
    }
    scopes.push_back(&defined);

    std::vector<Node> nodes;
    nodes.reserve(static_cast<size_t>(n_nodes));
    std::vector<std::vector<std::string>> outer_of_node(static_cast<size_t>(n_nodes));
    for (int i = 0; i < n_nodes; ++i) {
      const auto& np = gp.node(i);
      Node n;
      n.op_type = np.op_type();
      n.domain = np.domain() == "ai.onnx" ? "" : np.domain();
      n.name = np.name().empty() ? fmt::format("{}#{}", np.op_type(), i) : np.name();
      if (n.op_type.empty()) return make_error(ErrorCode::kInvalidArgument, "graph '{}': node {} has no op_type", g.name, i);
      n.inputs.assign(np.input().begin(), np.input().end());
      n.outputs.assign(np.output().begin(), np.output().end());
      for (const auto& ap : np.attribute()) {
        if (ap.name().empty()) return make_error(ErrorCode::kInvalidArgument, "{}: an attribute has no name", n.describe());
        HEARTH_ASSIGN_OR_RETURN(Attribute a, load_attribute(ap, n, depth, scopes));
        if (auto* sub = std::get_if<std::shared_ptr<const Graph>>(&a.value)) {
          for (const auto& r : (*sub)->outer_refs) outer_of_node[static_cast<size_t>(i)].push_back(r);
        }
        if (!n.attrs.emplace(ap.name(), std::move(a)).second) {
          return make_error(ErrorCode::kInvalidArgument, "{}: attribute '{}' is given twice", n.describe(), ap.name());
        }
      }
      nodes.push_back(std::move(n));
    }

    // Constant nodes (default domain) become initializers.
    std::vector<bool> keep(nodes.size(), true);
    for (size_t i = 0; i < nodes.size(); ++i) {
      Node& n = nodes[i];
      if (n.op_type != "Constant" || !n.domain.empty()) continue;
      if (!n.inputs.empty() || n.outputs.size() != 1 || n.outputs[0].empty()) {
        return make_error(ErrorCode::kInvalidArgument, "{}: a Constant takes no inputs and has one output", n.describe());
      }
      HEARTH_ASSIGN_OR_RETURN(Tensor t, constant_value(n));
      g.initializers.emplace(n.outputs[0], std::move(t));
      keep[i] = false;
    }

    // Topological sort (Kahn), keeping the file's order among ready nodes. A node depends on
    // the producers of its inputs and of the names its subgraphs read from this graph.
    std::unordered_map<std::string, size_t> producer;
    for (size_t i = 0; i < nodes.size(); ++i) {
      if (!keep[i]) continue;
      for (const auto& o : nodes[i].outputs) if (!o.empty()) producer[o] = i;
    }
    auto visible_outside = [&](const std::string& name) {
      for (size_t s = 0; s + 1 < scopes.size(); ++s) if (scopes[s]->count(name)) return true;
      return false;
    };
    std::vector<std::vector<size_t>> users(nodes.size());
    std::vector<size_t> pending(nodes.size(), 0);
    std::set<std::string> outer_refs_seen;
    auto depend = [&](size_t i, const std::string& name, bool from_subgraph) -> Status {
      if (name.empty()) return ok_status();
      if (auto p = producer.find(name); p != producer.end()) {
        if (p->second == i && !from_subgraph) {
          return make_error(ErrorCode::kInvalidArgument, "{} reads its own output '{}'", nodes[i].describe(), name);
        }
        users[p->second].push_back(i);
        ++pending[i];
        return ok_status();
      }
      if (g.initializers.count(name) || defined.count(name)) return ok_status();
      if (visible_outside(name)) {
        if (outer_refs_seen.insert(name).second) g.outer_refs.push_back(name);
        return ok_status();
      }
      return make_error(ErrorCode::kInvalidArgument, "{}: input '{}' is not defined", nodes[i].describe(), name);
    };
    for (size_t i = 0; i < nodes.size(); ++i) {
      if (!keep[i]) continue;
      for (const auto& in : nodes[i].inputs) HEARTH_TRY(depend(i, in, false));
      for (const auto& r : outer_of_node[i]) HEARTH_TRY(depend(i, r, true));
    }
    std::vector<size_t> order;
    std::vector<size_t> ready;
    for (size_t i = 0; i < nodes.size(); ++i) if (keep[i] && pending[i] == 0) ready.push_back(i);
    std::make_heap(ready.begin(), ready.end(), std::greater<>());
    while (!ready.empty()) {
      std::pop_heap(ready.begin(), ready.end(), std::greater<>());
      const size_t i = ready.back();
      ready.pop_back();
      order.push_back(i);
      for (size_t u : users[i]) {
        if (--pending[u] == 0) {
          ready.push_back(u);
          std::push_heap(ready.begin(), ready.end(), std::greater<>());
        }
      }
    }
    const size_t kept = static_cast<size_t>(std::count(keep.begin(), keep.end(), true));
    if (order.size() != kept) {
      for (size_t i = 0; i < nodes.size(); ++i) {
        if (keep[i] && pending[i] != 0) {
          return make_error(ErrorCode::kInvalidArgument, "graph '{}' has a cycle through {}", g.name, nodes[i].describe());
        }
      }
    }
    for (size_t i : order) g.nodes.push_back(std::move(nodes[i]));

    for (const auto& vi : gp.output()) {
      HEARTH_ASSIGN_OR_RETURN(ValueInfo v, load_value_info(vi, false));
      if (v.name.empty()) return make_error(ErrorCode::kInvalidArgument, "graph '{}': an output has no name", g.name);
      if (!defined.count(v.name) && !g.initializers.count(v.name)) {
        if (!visible_outside(v.name)) return make_error(ErrorCode::kInvalidArgument, "graph '{}': output '{}' is not defined", g.name, v.name);
        if (outer_refs_seen.insert(v.name).second) g.outer_refs.push_back(v.name);
      }
      g.outputs.push_back(std::move(v));
    }
    if (depth == 0 && g.outputs.empty()) return make_error(ErrorCode::kInvalidArgument, "the graph has no outputs");
    return g;
  }

  const LoadOptions& opt_;
  size_t total_nodes_ = 0;
};

Result<Model> parse_with(std::span<const std::byte> bytes, const LoadOptions& options) {
  if (bytes.size() > static_cast<size_t>(INT_MAX)) {
    return make_error(ErrorCode::kOutOfRange, "the model is {} bytes; protobuf files are limited to 2 GiB (use external data)", bytes.size());
  }
  ::onnx::ModelProto mp;
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()), static_cast<int>(bytes.size()));
  in.SetTotalBytesLimit(INT_MAX);
  in.SetRecursionLimit(kProtoRecursionLimit);
  if (!mp.ParseFromCodedStream(&in) || !in.ConsumedEntireMessage()) {
    return make_error(ErrorCode::kInvalidArgument, "not a valid ONNX model (protobuf parse failed)");
  }
  Loader l(options);
  return l.load(mp);
}

}  // namespace

Result<Model> parse_model(std::span<const std::byte> bytes, const LoadOptions& options) { return parse_with(bytes, options); }

Result<Model> load_model_file(const std::string& path) {
  auto mf = MappedFile::open(path);
  if (!mf.ok()) return mf.status();
  LoadOptions o;
  o.external_data_dir = fs::path(path).parent_path().string();
  if (o.external_data_dir.empty()) o.external_data_dir = ".";
  auto m = parse_with(mf->bytes(), o);
  if (!m.ok()) return m.status().with_context(path);
  return m;
}

}  // namespace hearth::onnx
