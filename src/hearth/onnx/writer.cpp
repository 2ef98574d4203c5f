#include "hearth/onnx/writer.h"

#include "hearth/core/atomic_file.h"
#include "onnx.pb.h"

namespace hearth::onnx {
namespace {

Status set_tensor(::onnx::TensorProto* tp, const std::string& name, const Tensor& t) {
  tp->set_name(name);
  tp->set_data_type(static_cast<int32_t>(t.dtype()));
  for (int64_t d : t.shape()) tp->add_dims(d);
  if (dtype_size(t.dtype()) == 0) return make_error(ErrorCode::kInvalidArgument, "tensor '{}' has no element type", name);
  tp->set_raw_data(std::string(reinterpret_cast<const char*>(t.raw()), t.nbytes()));
  return ok_status();
}

void set_value_info(::onnx::ValueInfoProto* vp, const ValueInfo& v) {
  vp->set_name(v.name);
  auto* tt = vp->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(static_cast<int32_t>(v.dtype));
  if (!v.has_shape) return;
  auto* sh = tt->mutable_shape();
  for (size_t i = 0; i < v.dims.size(); ++i) {
    auto* d = sh->add_dim();
    if (v.dims[i] >= 0) d->set_dim_value(v.dims[i]);
    else d->set_dim_param(i < v.dim_names.size() && !v.dim_names[i].empty() ? v.dim_names[i] : "N");
  }
}

}  // namespace

Result<std::string> serialize_model(const Model& m) {
  ::onnx::ModelProto mp;
  mp.set_ir_version(8);
  mp.set_producer_name(m.producer.empty() ? "hearth" : m.producer);
  mp.set_producer_version(m.producer_version);
  auto* os = mp.add_opset_import();
  os->set_domain("");
  os->set_version(m.opset);
  for (const auto& [k, v] : m.metadata) {
    auto* e = mp.add_metadata_props();
    e->set_key(k);
    e->set_value(v);
  }
  auto* g = mp.mutable_graph();
  g->set_name(m.graph.name);
  for (const auto& [name, t] : m.graph.initializers) HEARTH_TRY(set_tensor(g->add_initializer(), name, t));
  for (const auto& v : m.graph.inputs) set_value_info(g->add_input(), v);
  for (const auto& v : m.graph.outputs) set_value_info(g->add_output(), v);
  for (const Node& n : m.graph.nodes) {
    auto* np = g->add_node();
    np->set_name(n.name);
    np->set_op_type(n.op_type);
    if (!n.domain.empty()) np->set_domain(n.domain);
    for (const auto& i : n.inputs) np->add_input(i);
    for (const auto& o : n.outputs) np->add_output(o);
    for (const auto& [key, a] : n.attrs) {
      auto* ap = np->add_attribute();
      ap->set_name(key);
      if (auto* i = std::get_if<int64_t>(&a.value)) {
        ap->set_type(::onnx::AttributeProto::INT);
        ap->set_i(*i);
      } else if (auto* f = std::get_if<float>(&a.value)) {
        ap->set_type(::onnx::AttributeProto::FLOAT);
        ap->set_f(*f);
      } else if (auto* s = std::get_if<std::string>(&a.value)) {
        ap->set_type(::onnx::AttributeProto::STRING);
        ap->set_s(*s);
      } else if (auto* is = std::get_if<std::vector<int64_t>>(&a.value)) {
        ap->set_type(::onnx::AttributeProto::INTS);
        for (int64_t x : *is) ap->add_ints(x);
      } else if (auto* fs = std::get_if<std::vector<float>>(&a.value)) {
        ap->set_type(::onnx::AttributeProto::FLOATS);
        for (float x : *fs) ap->add_floats(x);
      } else {
        return make_error(ErrorCode::kUnimplemented, "{}: attribute '{}' is of a kind the writer does not write", n.describe(), key);
      }
    }
  }
  std::string out;
  if (!mp.SerializeToString(&out)) return make_error(ErrorCode::kInternal, "serializing the ONNX model failed");
  return out;
}

Status save_model(const Model& m, const std::string& path) {
  HEARTH_ASSIGN_OR_RETURN(std::string bytes, serialize_model(m));
  return write_file_atomic(path, bytes);
}

}  // namespace hearth::onnx
