#include "hearth/onnx/op_registry.h"

#include <algorithm>

namespace hearth::onnx {

OpFn OpRegistry::find(std::string_view op_type, int64_t opset) const {
  OpFn best = nullptr;
  int64_t best_since = -1;
  for (const auto& d : defs_) {
    if (d.op_type == op_type && d.min_opset <= opset && d.min_opset > best_since) {
      best = d.fn;
      best_since = d.min_opset;
    }
  }
  return best;
}

std::vector<std::string_view> OpRegistry::op_types() const {
  std::vector<std::string_view> v;
  for (const auto& d : defs_) v.push_back(d.op_type);
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

const OpRegistry& op_registry() {
  static const OpRegistry r = [] {
    OpRegistry reg;
    register_elementwise_ops(reg);
    register_shape_ops(reg);
    register_reduce_ops(reg);
    register_conv_ops(reg);
    register_nn_ops(reg);
    register_resize_ops(reg);
    register_matmul_ops(reg);
    register_rnn_ops(reg);
    return reg;
  }();
  return r;
}

Status require_inputs(const Node& node, OpInputs in, size_t min_count, size_t max_count) {
  if (in.size() < min_count || in.size() > max_count) {
    return make_error(ErrorCode::kInvalidArgument, "{}: takes {} to {} inputs, has {}", node.describe(), min_count, max_count, in.size());
  }
  for (size_t i = 0; i < min_count; ++i) {
    if (in[i] == nullptr) return make_error(ErrorCode::kInvalidArgument, "{}: input {} is required", node.describe(), i);
  }
  return ok_status();
}

Status require_dtype(const Node& node, const Tensor& t, std::string_view what, std::initializer_list<DType> allowed) {
  for (DType d : allowed) if (t.dtype() == d) return ok_status();
  std::string names;
  for (DType d : allowed) {
    if (!names.empty()) names += ", ";
    names += dtype_name(d);
  }
  return make_error(ErrorCode::kInvalidArgument, "{}: {} is {}, expected {}", node.describe(), what, dtype_name(t.dtype()), names);
}

Result<std::vector<int64_t>> int_list(const Node& node, const Tensor& t, std::string_view what) {
  if (t.dtype() != DType::kInt64 && t.dtype() != DType::kInt32) {
    return make_error(ErrorCode::kInvalidArgument, "{}: {} must be int64 or int32, is {}", node.describe(), what, dtype_name(t.dtype()));
  }
  if (t.rank() > 1) return make_error(ErrorCode::kInvalidArgument, "{}: {} must be 1-D, has shape {}", node.describe(), what, shape_string(t.shape()));
  std::vector<int64_t> v(static_cast<size_t>(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) v[static_cast<size_t>(i)] = t.int_at(i);
  return v;
}

Result<int64_t> normalize_axis(const Node& node, int64_t axis, int64_t rank) {
  if (axis < -rank || axis >= rank) {
    return make_error(ErrorCode::kInvalidArgument, "{}: axis {} is out of range for rank {}", node.describe(), axis, rank);
  }
  return axis < 0 ? axis + rank : axis;
}

}  // namespace hearth::onnx
