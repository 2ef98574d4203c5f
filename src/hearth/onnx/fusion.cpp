// Conv + BatchNormalization + activation fusion, and Add + Relu (session.h).
#include <cmath>
#include <unordered_map>

#include "hearth/onnx/session.h"

namespace hearth::onnx {
namespace {

// How many times each value is read in g (node inputs, subgraph references, graph outputs).
std::unordered_map<std::string, int> use_counts(const Graph& g) {
  std::unordered_map<std::string, int> uses;
  for (const Node& n : g.nodes) {
    for (const auto& in : n.inputs) if (!in.empty()) ++uses[in];
    for (const auto& [k, a] : n.attrs) {
      if (auto* sub = std::get_if<std::shared_ptr<const Graph>>(&a.value)) {
        for (const auto& r : (*sub)->outer_refs) ++uses[r];
      }
    }
  }
  for (const auto& o : g.outputs) uses[o.name] += 2;  // never fuse away a graph output
  return uses;
}

const Tensor* float_init(const Graph& g, const std::string& name) {
  auto it = g.initializers.find(name);
  if (it == g.initializers.end() || it->second.dtype() != DType::kFloat) return nullptr;
  return &it->second;
}

bool plain_conv(const Node& n) { return n.op_type == "Conv" && n.domain.empty() && n.outputs.size() == 1; }
bool plain_add(const Node& n) {
  return n.op_type == "Add" && n.domain.empty() && n.inputs.size() == 2 && n.outputs.size() == 1;
}

// Folds BN into the conv's weights and bias; false if the shapes do not allow it.
bool fold_bn(Graph& g, Node& conv, const Node& bn, int serial) {
  if (conv.inputs.size() < 2 || bn.inputs.size() != 5) return false;
  const Tensor* w = float_init(g, conv.inputs[1]);
  const Tensor* b = conv.inputs.size() > 2 && !conv.inputs[2].empty() ? float_init(g, conv.inputs[2]) : nullptr;
  if (!w || w->rank() < 3 || (conv.inputs.size() > 2 && !conv.inputs[2].empty() && !b)) return false;
  const int64_t m = w->dim(0);
  const Tensor* p[4];
  for (int i = 0; i < 4; ++i) {
    p[i] = float_init(g, bn.inputs[static_cast<size_t>(i) + 1]);
    if (!p[i] || p[i]->numel() != m) return false;
  }
  if (b && b->numel() != m) return false;
  const float eps = bn.attr_float("epsilon", 1e-5f);
  auto nw = Tensor::make(DType::kFloat, w->shape());
  auto nb = Tensor::make(DType::kFloat, {m});
  if (!nw.ok() || !nb.ok()) return false;
  const int64_t per = w->numel() / m;
  const float* scale = p[0]->data<float>();
  const float* shift = p[1]->data<float>();
  const float* mean = p[2]->data<float>();
  const float* var = p[3]->data<float>();
  for (int64_t o = 0; o < m; ++o) {
    const float s = scale[o] / std::sqrt(var[o] + eps);
    for (int64_t k = 0; k < per; ++k) nw->data<float>()[o * per + k] = w->data<float>()[o * per + k] * s;
    nb->data<float>()[o] = ((b ? b->data<float>()[o] : 0.0f) - mean[o]) * s + shift[o];
  }
  const std::string wn = fmt::format("{}.hearth_fused_w{}", conv.name, serial);
  const std::string bname = fmt::format("{}.hearth_fused_b{}", conv.name, serial);
  g.initializers[wn] = std::move(nw).value();
  g.initializers[bname] = std::move(nb).value();
  conv.inputs.resize(3);
  conv.inputs[1] = wn;
  conv.inputs[2] = bname;
  conv.outputs[0] = bn.outputs[0];
  return true;
}

// Sets the conv's activation from a following Relu / LeakyRelu / Clip; false if not one.
bool fold_activation(const Graph& g, Node& conv, const Node& act, int64_t opset) {
  if (!act.domain.empty() || act.outputs.size() != 1) return false;
  if (act.op_type == "Relu") {
    conv.attrs["hearth.activation"] = Attribute{std::string("relu")};
  } else if (act.op_type == "LeakyRelu") {
    conv.attrs["hearth.activation"] = Attribute{std::string("leaky_relu")};
    conv.attrs["hearth.alpha"] = Attribute{act.attr_float("alpha", 0.01f)};
  } else if (act.op_type == "Clip") {
    float lo = -INFINITY, hi = INFINITY;
    if (opset < 11) {
      lo = act.attr_float("min", lo);
      hi = act.attr_float("max", hi);
    } else {
      for (size_t i = 1; i < act.inputs.size() && i < 3; ++i) {
        if (act.inputs[i].empty()) continue;
        const Tensor* t = float_init(g, act.inputs[i]);
        if (!t || t->numel() != 1) return false;
        (i == 1 ? lo : hi) = t->data<float>()[0];
      }
    }
    conv.attrs["hearth.activation"] = Attribute{std::string("clip")};
    conv.attrs["hearth.alpha"] = Attribute{lo};
    conv.attrs["hearth.beta"] = Attribute{hi};
  } else {
    return false;
  }
  conv.outputs[0] = act.outputs[0];
  return true;
}

}  // namespace

size_t fuse_conv_bn_activation(Graph& g, int64_t opset) {
  size_t fused = 0;
  int serial = 0;
  bool changed = true;
  while (changed) {
    changed = false;
    auto uses = use_counts(g);
    std::unordered_map<std::string, size_t> consumer;
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      for (const auto& in : g.nodes[i].inputs) if (!in.empty()) consumer[in] = i;
    }
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      Node& conv = g.nodes[i];
      const bool is_add = plain_add(conv);
      if ((!plain_conv(conv) && !is_add) || conv.has("hearth.activation")) continue;
      const std::string out = conv.outputs[0];
      if (uses[out] != 1 || !consumer.count(out)) continue;
      const size_t j = consumer[out];
      const Node& next = g.nodes[j];
      if (next.inputs.empty() || next.inputs[0] != out) continue;
      bool done = false;
      if (is_add) {
        // Add + Relu (a residual block's tail): one pass instead of two.
        if (next.op_type == "Relu" && next.domain.empty() && next.outputs.size() == 1) {
          conv.attrs["hearth.activation"] = Attribute{std::string("relu")};
          conv.outputs[0] = next.outputs[0];
          done = true;
        }
      } else if (next.op_type == "BatchNormalization" && next.domain.empty() && next.outputs.size() >= 1) {
        bool extra_outputs = false;
        for (size_t k = 1; k < next.outputs.size(); ++k) extra_outputs |= !next.outputs[k].empty();
        done = !extra_outputs && fold_bn(g, conv, next, serial++);
      } else {
        done = fold_activation(g, conv, next, opset);
      }
      if (done) {
        g.nodes.erase(g.nodes.begin() + static_cast<std::ptrdiff_t>(j));
        ++fused;
        changed = true;
        break;
      }
    }
  }
  return fused;
}

}  // namespace hearth::onnx
