// ONNX operators on shapes (https://onnx.ai/onnx/operators/): Shape, Size, the zero-copy
// views Reshape / Flatten / Squeeze / Unsqueeze (Tensor::reshaped shares the input's bytes),
// ConstantOfShape, Range, NonZero, OneHot and EyeLike. The ops that move elements are in
// slice.cpp (Slice, Concat, Split, Gather, GatherElements), layout.cpp (Transpose, Expand,
// Tile, Trilu, DepthToSpace, SpaceToDepth) and scatter.cpp (GatherND, ScatterND,
// ScatterElements), registered from here.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "hearth/core/checked_math.h"
#include "hearth/onnx/ops/dtype_dispatch.h"
#include "hearth/onnx/ops/op_common.h"
#include "hearth/onnx/ops/shape_internal.h"

namespace hearth::onnx {
namespace {

Status set_view(const Node& node, const Tensor& x, Shape shape, std::vector<Tensor>& out) {
  auto v = x.reshaped(std::move(shape));
  if (!v.ok()) return v.status().with_context(node.describe());
  out[0] = std::move(v).value();
  return ok_status();
}

// Shape (opset 15: the dims [start, end), each clamped to [0, rank] after adding rank if < 0).
Status shape_op(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  HEARTH_TRY(require_inputs(node, in, 1, 1));
  const int64_t rank = static_cast<int64_t>(in[0]->rank());
  auto clamp = [rank](int64_t v) {
    if (v < 0) v += rank;
    return std::clamp<int64_t>(v, 0, rank);
  };
  const int64_t start = clamp(node.attr_int("start", 0));
  const int64_t end = clamp(node.attr_int("end", rank));
  const int64_t n = std::max<int64_t>(0, end - start);
  HEARTH_ASSIGN_OR_RETURN(Tensor o, alloc_out(ctx, node, DType::kInt64, {n}));
  for (int64_t i = 0; i < n; ++i) o.data<int64_t>()[i] = in[0]->dim(static_cast<size_t>(start + i));
  out[0] = std::move(o);
  return ok_status();
}

Status size_op(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  HEARTH_TRY(require_inputs(node, in, 1, 1));
  HEARTH_ASSIGN_OR_RETURN(Tensor o, alloc_out(ctx, node, DType::kInt64, {}));
  o.data<int64_t>()[0] = in[0]->numel();
  out[0] = std::move(o);
  return ok_status();
}

// Reshape: 0 copies the input's dim (unless allowzero, opset 14, makes it a literal 0), one -1
// is inferred from the element count.
Status reshape_op(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  HEARTH_TRY(require_inputs(node, in, 2, 2));
  const Tensor& x = *in[0];
  HEARTH_ASSIGN_OR_RETURN(Shape shape, int_list(node, *in[1], "shape"));
  const bool allowzero = node.attr_int("allowzero", 0) != 0;
  if (shape.size() > kMaxRank) {
    return make_error(ErrorCode::kInvalidArgument, "{}: shape has {} dims, at most {}", node.describe(), shape.size(), kMaxRank);
  }
  int64_t infer = -1;
  int64_t known = 1;
  bool has_zero = false;
  for (size_t i = 0; i < shape.size(); ++i) {
    int64_t& d = shape[i];
    if (d == -1) {
      if (infer >= 0) return make_error(ErrorCode::kInvalidArgument, "{}: shape {} has more than one -1", node.describe(), shape_string(shape));
      infer = static_cast<int64_t>(i);
      continue;
    }
    if (d < -1) return make_error(ErrorCode::kInvalidArgument, "{}: shape {} has a negative dim", node.describe(), shape_string(shape));
    if (d == 0 && !allowzero) {
      if (i >= x.rank()) {
        return make_error(ErrorCode::kInvalidArgument, "{}: shape {} copies dim {} (0) of an input of rank {}",
                          node.describe(), shape_string(shape), i, x.rank());
      }
      d = x.dim(i);
    }
    if (d == 0) has_zero = true;
    auto m = checked_mul<int64_t>(known, d);
    if (!m || *m > kMaxElements) {
      return make_error(ErrorCode::kInvalidArgument, "{}: shape {} is too large", node.describe(), shape_string(shape));
    }
    known = *m;
  }
  if (infer >= 0) {
    if (has_zero && allowzero) {
      return make_error(ErrorCode::kInvalidArgument, "{}: shape {} has both -1 and 0 with allowzero", node.describe(),
                        shape_string(shape));
    }
    if (known == 0 || x.numel() % known != 0) {
      return make_error(ErrorCode::kInvalidArgument, "{}: cannot reshape {} ({} elements) to {}", node.describe(),
                        shape_string(x.shape()), x.numel(), shape_string(shape));
    }
    shape[static_cast<size_t>(infer)] = x.numel() / known;
  }
  return set_view(node, x, std::move(shape), out);
}

// Flatten: [prod(dims[:axis]), prod(dims[axis:])], axis in [-rank, rank].
Status flatten_op(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  HEARTH_TRY(require_inputs(node, in, 1, 1));
  const Tensor& x = *in[0];
  const int64_t rank = static_cast<int64_t>(x.rank());
  int64_t axis = node.attr_int("axis", 1);
  if (axis < -rank || axis > rank) {
    return make_error(ErrorCode::kInvalidArgument, "{}: axis {} is out of range for rank {}", node.describe(), axis, rank);
  }
  if (axis < 0) axis += rank;
  int64_t outer = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= x.dim(static_cast<size_t>(d));
  const int64_t inner = outer == 0 ? 0 : x.numel() / outer;
  if (outer == 0) {  // a zero dim before the axis: the inner size is still the product after it
    int64_t p = 1;
    for (int64_t d = axis; d < rank; ++d) p *= x.dim(static_cast<size_t>(d));
    return set_view(node, x, {0, p}, out);
  }
  return set_view(node, x, {outer, inner}, out);
}

// The axes of Squeeze/Unsqueeze: an attribute before opset 13, an optional input from 13.
Result<std::vector<int64_t>> axes_arg(OpContext& ctx, const Node& node, OpInputs in, bool& given) {
  given = false;
  if (ctx.opset < 13) {
    given = node.has("axes");
    return node.attr_ints("axes");
  }
  const Tensor* t = opt_input(in, 1);
  if (!t) return std::vector<int64_t>{};
  given = true;
  return int_list(node, *t, "axes");
}

Status squeeze_op(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  HEARTH_TRY(require_inputs(node, in, 1, ctx.opset < 13 ? 1 : 2));
  const Tensor& x = *in[0];
  bool given = false;
  HEARTH_ASSIGN_OR_RETURN(std::vector<int64_t> axes, axes_arg(ctx, node, in, given));
  const int64_t rank = static_cast<int64_t>(x.rank());
  if (axes.empty()) given = false;  // an empty axes list squeezes every 1 (as onnxruntime)
  std::vector<bool> drop(x.rank(), false);
  if (!given) {
    for (size_t d = 0; d < x.rank(); ++d) drop[d] = x.dim(d) == 1;
  }
  for (int64_t a : axes) {
    HEARTH_ASSIGN_OR_RETURN(int64_t d, normalize_axis(node, a, rank));
    if (drop[static_cast<size_t>(d)]) {
      return make_error(ErrorCode::kInvalidArgument, "{}: axis {} is given twice", node.describe(), a);
    }
    if (x.dim(static_cast<size_t>(d)) != 1) {
      return make_error(ErrorCode::kInvalidArgument, "{}: cannot squeeze axis {} of shape {} (not 1)", node.describe(), a,
                        shape_string(x.shape()));
    }
    drop[static_cast<size_t>(d)] = true;
  }
  Shape shape;
  for (size_t d = 0; d < x.rank(); ++d) if (!drop[d]) shape.push_back(x.dim(d));
  return set_view(node, x, std::move(shape), out);
}

Status unsqueeze_op(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  HEARTH_TRY(require_inputs(node, in, ctx.opset < 13 ? 1 : 2, ctx.opset < 13 ? 1 : 2));
  const Tensor& x = *in[0];
  bool given = false;
  HEARTH_ASSIGN_OR_RETURN(std::vector<int64_t> axes, axes_arg(ctx, node, in, given));
  const int64_t out_rank = static_cast<int64_t>(x.rank() + axes.size());
  if (out_rank > static_cast<int64_t>(kMaxRank)) {
    return make_error(ErrorCode::kInvalidArgument, "{}: the output would have rank {}, at most {}", node.describe(), out_rank,
                      kMaxRank);
  }
  std::vector<bool> added(static_cast<size_t>(out_rank), false);
  for (int64_t a : axes) {
    HEARTH_ASSIGN_OR_RETURN(int64_t d, normalize_axis(node, a, out_rank));
    if (added[static_cast<size_t>(d)]) return make_error(ErrorCode::kInvalidArgument, "{}: axis {} is given twice", node.describe(), a);
    added[static_cast<size_t>(d)] = true;
  }
  Shape shape;
  size_t next = 0;
  for (int64_t d = 0; d < out_rank; ++d) shape.push_back(added[static_cast<size_t>(d)] ? 1 : x.dim(next++));
  return set_view(node, x, std::move(shape), out);
}

// ConstantOfShape: the shape from the input, every element the one-element `value` attribute
// (float 0 if absent), of its type.
Status constant_of_shape(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  HEARTH_TRY(require_inputs(node, in, 1, 1));
  HEARTH_ASSIGN_OR_RETURN(Shape shape, int_list(node, *in[0], "shape"));
  const Tensor* value = node.attr_tensor("value");
  if (value && value->numel() != 1) {
    return make_error(ErrorCode::kInvalidArgument, "{}: value must have one element, has {}", node.describe(), value->numel());
  }
  const DType dtype = value ? value->dtype() : DType::kFloat;
  for (int64_t d : shape) {
    if (d < 0) return make_error(ErrorCode::kInvalidArgument, "{}: shape {} has a negative dim", node.describe(), shape_string(shape));
  }
  HEARTH_ASSIGN_OR_RETURN(Tensor o, alloc_out(ctx, node, dtype, shape));
  if (value) {
    const size_t es = dtype_size(dtype);
    std::byte* p = o.raw();
    bool zero = true;
    for (size_t b = 0; b < es; ++b) zero = zero && value->raw()[b] == std::byte{0};
    if (!zero) {
      for (int64_t i = 0; i < o.numel(); ++i) std::memcpy(p + static_cast<size_t>(i) * es, value->raw(), es);
    }
  }
  out[0] = std::move(o);
  return ok_status();
}

// Range: ceil((limit - start) / delta) elements start + i * delta (none if negative).
Status range_op(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  HEARTH_TRY(require_inputs(node, in, 3, 3));
  for (size_t i = 0; i < 3; ++i) {
    if (in[i]->numel() != 1) {
      return make_error(ErrorCode::kInvalidArgument, "{}: input {} must be a scalar, has shape {}", node.describe(), i,
                        shape_string(in[i]->shape()));
    }
    HEARTH_TRY(require_same_dtype(node, *in[0], *in[i], "input"));
  }
  const DType dt = in[0]->dtype();
  Status st = ok_status();
  const bool known = dispatch_types<float, double, int16_t, int32_t, int64_t>(dt, [&]<typename T>(Tag<T>) {
    const T start = in[0]->data<T>()[0], limit = in[1]->data<T>()[0], delta = in[2]->data<T>()[0];
    if (delta == T(0)) {
      st = make_error(ErrorCode::kInvalidArgument, "{}: delta is 0", node.describe());
      return;
    }
    const long double span = (static_cast<long double>(limit) - static_cast<long double>(start)) / static_cast<long double>(delta);
    const long double count = std::max<long double>(0, std::ceil(span));
    if (!(count <= static_cast<long double>(kMaxElements))) {
      st = make_error(ErrorCode::kInvalidArgument, "{}: range of {} elements is too large", node.describe(),
                      static_cast<double>(count));
      return;
    }
    auto o = alloc_out(ctx, node, dt, {static_cast<int64_t>(count)});
    if (!o.ok()) {
      st = o.status();
      return;
    }
    T* p = o->template data<T>();
    for (int64_t i = 0; i < o->numel(); ++i) {
      if constexpr (std::is_integral_v<T>) p[i] = static_cast<T>(wrap_add<T>(start, wrap_mul<T>(static_cast<T>(i), delta)));
      else p[i] = static_cast<T>(start + static_cast<T>(i) * delta);
    }
    out[0] = std::move(o).value();
  });
  if (!known) return unsupported_dtype(node, "start", *in[0]);
  return st;
}

// NonZero: the indices of the nonzero elements, [rank, count] int64 in row-major order
// (a scalar counts as rank 1, as numpy.nonzero does).
Status nonzero_op(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  HEARTH_TRY(require_inputs(node, in, 1, 1));
  const Tensor& x = *in[0];
  std::vector<int64_t> hits;
  const bool known = dispatch_all(x.dtype(), [&]<typename T>(Tag<T>) {
    const T* p = x.data<T>();
    for (int64_t i = 0; i < x.numel(); ++i) {
      if (as_double(p[i]) != 0.0) hits.push_back(i);
    }
  });
  if (!known) return unsupported_dtype(node, "input", x);
  const Shape shape = x.rank() == 0 ? Shape{1} : x.shape();
  const int64_t n = static_cast<int64_t>(hits.size());
  HEARTH_ASSIGN_OR_RETURN(Tensor o, alloc_out(ctx, node, DType::kInt64, {static_cast<int64_t>(shape.size()), n}));
  int64_t* po = o.data<int64_t>();
  for (int64_t j = 0; j < n; ++j) {
    int64_t rem = hits[static_cast<size_t>(j)];
    for (size_t d = shape.size(); d-- > 0;) {
      po[static_cast<int64_t>(d) * n + j] = rem % shape[d];
      rem /= shape[d];
    }
  }
  out[0] = std::move(o);
  return ok_status();
}

// OneHot: depth inserted at axis (of the output's rank); values = [off, on]; an index outside
// [-depth, depth) gives a row of off (the spec).
Status one_hot(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  HEARTH_TRY(require_inputs(node, in, 3, 3));
  const Tensor& idx = *in[0];
  const Tensor& values = *in[2];
  if (in[1]->numel() != 1) return make_error(ErrorCode::kInvalidArgument, "{}: depth must have one element", node.describe());
  const double depth_d = in[1]->double_at(0);
  if (!(depth_d >= 1 && depth_d <= static_cast<double>(kMaxElements))) {
    return make_error(ErrorCode::kInvalidArgument, "{}: depth {} must be >= 1", node.describe(), depth_d);
  }
  const int64_t depth = static_cast<int64_t>(depth_d);
  if (values.numel() != 2) return make_error(ErrorCode::kInvalidArgument, "{}: values must have 2 elements", node.describe());
  const int64_t out_rank = static_cast<int64_t>(idx.rank()) + 1;
  HEARTH_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(node, node.attr_int("axis", -1), out_rank));
  Shape shape = idx.shape();
  shape.insert(shape.begin() + axis, depth);
  HEARTH_ASSIGN_OR_RETURN(Tensor o, alloc_out(ctx, node, values.dtype(), shape));
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= idx.dim(static_cast<size_t>(d));
  for (size_t d = static_cast<size_t>(axis); d < idx.rank(); ++d) inner *= idx.dim(d);
  const size_t es = dtype_size(values.dtype());
  const std::byte* off = values.raw();
  const std::byte* on = values.raw() + es;
  for (int64_t i = 0; i < o.numel(); ++i) std::memcpy(o.raw() + static_cast<size_t>(i) * es, off, es);
  for (int64_t a = 0; a < outer; ++a) {
    for (int64_t b = 0; b < inner; ++b) {
      const double v = idx.double_at(a * inner + b);
      if (std::isnan(v)) continue;
      int64_t k = static_cast<int64_t>(std::clamp(v, -static_cast<double>(depth) - 1, static_cast<double>(depth)));
      if (k < 0) k += depth;
      if (k < 0 || k >= depth) continue;
      std::memcpy(o.raw() + static_cast<size_t>((a * depth + k) * inner + b) * es, on, es);
    }
  }
  out[0] = std::move(o);
  return ok_status();
}

// EyeLike: a 2-D tensor of the input's shape with ones on the k-th diagonal (dtype attribute,
// else the input's type).
Status eye_like(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  HEARTH_TRY(require_inputs(node, in, 1, 1));
  const Tensor& x = *in[0];
  if (x.rank() != 2) return make_error(ErrorCode::kInvalidArgument, "{}: input must be 2-D, is {}", node.describe(), shape_string(x.shape()));
  DType dt = x.dtype();
  if (node.has("dtype")) {
    dt = dtype_from_onnx(node.attr_int("dtype", 0));
    if (dt == DType::kUndefined) return make_error(ErrorCode::kUnimplemented, "{}: dtype {} is not supported", node.describe(), node.attr_int("dtype", 0));
  }
  const int64_t k = node.attr_int("k", 0);
  HEARTH_ASSIGN_OR_RETURN(Tensor o, alloc_out(ctx, node, dt, x.shape()));
  const bool known = dispatch_all(dt, [&]<typename T>(Tag<T>) {
    const T one = convert<T>(1.0);
    const int64_t rows = x.dim(0), cols = x.dim(1);
    for (int64_t i = 0; i < rows; ++i) {
      if (k > cols || k < -rows) break;
      const int64_t j = i + k;
      if (j >= 0 && j < cols) o.data<T>()[i * cols + j] = one;
    }
  });
  if (!known) return unsupported_dtype(node, "output", o);
  out[0] = std::move(o);
  return ok_status();
}

}  // namespace

void register_shape_ops(OpRegistry& r) {
  r.add("Shape", 1, shape_op);
  r.add("Size", 1, size_op);
  r.add("Reshape", 5, reshape_op);
  r.add("Flatten", 1, flatten_op);
  r.add("Squeeze", 1, squeeze_op);
  r.add("Unsqueeze", 1, unsqueeze_op);
  r.add("ConstantOfShape", 9, constant_of_shape);
  r.add("Range", 11, range_op);
  r.add("NonZero", 9, nonzero_op);
  r.add("OneHot", 9, one_hot);
  r.add("EyeLike", 9, eye_like);
  register_slice_ops(r);
  register_layout_ops(r);
  register_scatter_ops(r);
}

}  // namespace hearth::onnx
