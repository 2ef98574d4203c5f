// ONNX operators that index with tensors of coordinates (https://onnx.ai/onnx/operators/):
// GatherND (batch_dims), ScatterND and ScatterElements / Scatter (reduction none, add, mul,
// max, min). Every index is bounds-checked (negative ones count from the end) before anything
// is written, with errors naming the node and the index's position.
#include <cstring>

#include "hearth/onnx/ops/dtype_dispatch.h"
#include "hearth/onnx/ops/op_common.h"
#include "hearth/onnx/ops/shape_internal.h"
#include "hearth/onnx/ops/strided_copy.h"

namespace hearth::onnx {
namespace {

int64_t prod(const Shape& s, size_t from, size_t to) {
  int64_t p = 1;
  for (size_t d = from; d < to; ++d) p *= s[d];
  return p;
}

// Index i of `idx` made non-negative and checked against dim.
Result<int64_t> checked_index(const Node& node, const Tensor& idx, int64_t i, int64_t dim, size_t axis) {
  const int64_t k = idx.int_at(i);
  if (k < -dim || k >= dim) {
    return make_error(ErrorCode::kInvalidArgument, "{}: index {} (at position {} of indices) is out of range for axis {} of size {}",
                      node.describe(), k, i, axis, dim);
  }
  return k < 0 ? k + dim : k;
}

// The element offsets in data of each index tuple of a [..., k] indices tensor (GatherND's and
// ScatterND's addressing) over data dims [first, first + k), as an index into those dims.
Result<std::vector<int64_t>> tuple_offsets(const Node& node, const Tensor& data, const Tensor& idx, size_t first) {
  HEARTH_TRY(require_dtype(node, idx, "indices", {DType::kInt64, DType::kInt32}));
  const int64_t k = idx.dim(idx.rank() - 1);  // >= 1 (the callers check)
  std::vector<int64_t> offs(static_cast<size_t>(prod(idx.shape(), 0, idx.rank() - 1)));
  for (size_t t = 0; t < offs.size(); ++t) {
    int64_t off = 0;
    for (int64_t j = 0; j < k; ++j) {
      const size_t d = first + static_cast<size_t>(j);
      HEARTH_ASSIGN_OR_RETURN(int64_t c, checked_index(node, idx, static_cast<int64_t>(t) * k + j, data.dim(d), d));
      off = off * data.dim(d) + c;
    }
    offs[t] = off;
  }
  return offs;
}

Status gather_nd(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  HEARTH_TRY(require_inputs(node, in, 2, 2));
  const Tensor& x = *in[0];
  const Tensor& idx = *in[1];
  const int64_t b = node.attr_int("batch_dims", 0);
  if (x.rank() < 1 || idx.rank() < 1 || b < 0 || b >= static_cast<int64_t>(std::min(x.rank(), idx.rank()))) {
    return make_error(ErrorCode::kInvalidArgument, "{}: bad ranks (data {}, indices {}, batch_dims {})", node.describe(),
                      shape_string(x.shape()), shape_string(idx.shape()), b);
  }
  const size_t nb = static_cast<size_t>(b);
  const int64_t k = idx.dim(idx.rank() - 1);
  if (k < 1 || k > static_cast<int64_t>(x.rank() - nb)) {
    return make_error(ErrorCode::kInvalidArgument, "{}: indices' last dim {} must be in [1, {}]", node.describe(), k, x.rank() - nb);
  }
  for (size_t d = 0; d < nb; ++d) {
    if (x.dim(d) != idx.dim(d)) return make_error(ErrorCode::kInvalidArgument, "{}: batch dim {} differs", node.describe(), d);
  }
  Shape shape(idx.shape().begin(), idx.shape().end() - 1);
  shape.insert(shape.end(), x.shape().begin() + b + k, x.shape().end());
  HEARTH_ASSIGN_OR_RETURN(std::vector<int64_t> offs, tuple_offsets(node, x, idx, nb));
  HEARTH_ASSIGN_OR_RETURN(Tensor o, alloc_out(ctx, node, x.dtype(), shape));
  const size_t es = dtype_size(x.dtype());
  const int64_t slice = prod(x.shape(), nb + static_cast<size_t>(k), x.rank());
  const int64_t batches = prod(x.shape(), 0, nb);
  const int64_t per_batch = batches == 0 ? 0 : static_cast<int64_t>(offs.size()) / batches;
  const int64_t batch_elems = prod(x.shape(), nb, x.rank());
  for (size_t t = 0; t < offs.size(); ++t) {
    const int64_t bt = per_batch == 0 ? 0 : static_cast<int64_t>(t) / per_batch;
    const int64_t src = bt * batch_elems + offs[t] * slice;
    std::memcpy(o.raw() + t * static_cast<size_t>(slice) * es, x.raw() + static_cast<size_t>(src) * es, static_cast<size_t>(slice) * es);
  }
  out[0] = std::move(o);
  return ok_status();
}

enum class Reduction { kNone, kAdd, kMul, kMax, kMin };

Result<Reduction> reduction_attr(const Node& node) {
  const std::string r = node.attr_string("reduction", "none");
  if (r == "none") return Reduction::kNone;
  if (r == "add") return Reduction::kAdd;
  if (r == "mul") return Reduction::kMul;
  if (r == "max") return Reduction::kMax;
  if (r == "min") return Reduction::kMin;
  return make_error(ErrorCode::kInvalidArgument, "{}: unknown reduction \"{}\"", node.describe(), r);
}

template <typename T>
void apply(Reduction red, T& dst, T v) {
  switch (red) {
    case Reduction::kNone: dst = v; break;
    case Reduction::kAdd: dst = wrap_add(dst, v); break;
    case Reduction::kMul: dst = wrap_mul(dst, v); break;
    case Reduction::kMax: dst = v > dst ? v : dst; break;
    case Reduction::kMin: dst = v < dst ? v : dst; break;
  }
}

// Copies data into a new output and writes updates[i] into element dst[i] of it.
Status scatter_into(OpContext& ctx, const Node& node, const Tensor& x, const Tensor& upd, Reduction red,
                    const std::vector<int64_t>& dst, int64_t slice, std::vector<Tensor>& out) {
  HEARTH_TRY(require_same_dtype(node, x, upd, "updates"));
  HEARTH_ASSIGN_OR_RETURN(Tensor o, alloc_out(ctx, node, x.dtype(), x.shape()));
  if (x.nbytes()) std::memcpy(o.raw(), x.raw(), x.nbytes());
  const bool known = dispatch_types<float, double, int32_t, int64_t, int8_t, uint8_t, int16_t, uint16_t, uint32_t,
                                    uint64_t, Bool8, Half, BFloat>(x.dtype(), [&]<typename T>(Tag<T>) {
    T* po = o.data<T>();
    const T* pu = upd.data<T>();
    for (size_t t = 0; t < dst.size(); ++t) {
      for (int64_t e = 0; e < slice; ++e) {
        T& d = po[dst[t] * slice + e];
        const T v = pu[static_cast<int64_t>(t) * slice + e];
        if constexpr (std::is_arithmetic_v<T>) apply(red, d, v);
        else d = v;  // 16-bit floats and bool: reductions refused below
      }
    }
  });
  if (!known) return unsupported_dtype(node, "data", x);
  out[0] = std::move(o);
  return ok_status();
}

Status check_reduction_type(const Node& node, const Tensor& x, Reduction red) {
  const bool plain = x.dtype() == DType::kFloat16 || x.dtype() == DType::kBFloat16 || x.dtype() == DType::kBool;
  if (red != Reduction::kNone && plain) return unsupported_dtype(node, "data with a reduction", x);
  return ok_status();
}

Status scatter_nd(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  HEARTH_TRY(require_inputs(node, in, 3, 3));
  const Tensor& x = *in[0];
  const Tensor& idx = *in[1];
  const Tensor& upd = *in[2];
  HEARTH_ASSIGN_OR_RETURN(Reduction red, reduction_attr(node));
  HEARTH_TRY(check_reduction_type(node, x, red));
  if (x.rank() < 1 || idx.rank() < 1) return make_error(ErrorCode::kInvalidArgument, "{}: data and indices need rank >= 1", node.describe());
  const int64_t k = idx.dim(idx.rank() - 1);
  if (k < 1 || k > static_cast<int64_t>(x.rank())) {
    return make_error(ErrorCode::kInvalidArgument, "{}: indices' last dim {} must be in [1, {}]", node.describe(), k, x.rank());
  }
  Shape want(idx.shape().begin(), idx.shape().end() - 1);
  want.insert(want.end(), x.shape().begin() + k, x.shape().end());
  if (upd.shape() != want) {
    return make_error(ErrorCode::kInvalidArgument, "{}: updates have shape {}, expected {}", node.describe(),
                      shape_string(upd.shape()), shape_string(want));
  }
  HEARTH_ASSIGN_OR_RETURN(std::vector<int64_t> offs, tuple_offsets(node, x, idx, 0));
  return scatter_into(ctx, node, x, upd, red, offs, prod(x.shape(), static_cast<size_t>(k), x.rank()), out);
}

// ScatterElements (and Scatter, opsets 9-10): out[pos with the axis coordinate replaced by
// indices[pos]] = updates[pos].
Status scatter_elements(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  HEARTH_TRY(require_inputs(node, in, 3, 3));
  const Tensor& x = *in[0];
  const Tensor& idx = *in[1];
  const Tensor& upd = *in[2];
  HEARTH_ASSIGN_OR_RETURN(Reduction red, reduction_attr(node));
  HEARTH_TRY(check_reduction_type(node, x, red));
  HEARTH_TRY(require_dtype(node, idx, "indices", {DType::kInt64, DType::kInt32}));
  const int64_t rank = static_cast<int64_t>(x.rank());
  if (rank == 0 || idx.rank() != x.rank() || upd.shape() != idx.shape()) {
    return make_error(ErrorCode::kInvalidArgument, "{}: data {}, indices {} and updates {} must have one rank, indices and updates one shape",
                      node.describe(), shape_string(x.shape()), shape_string(idx.shape()), shape_string(upd.shape()));
  }
  HEARTH_ASSIGN_OR_RETURN(int64_t a, normalize_axis(node, node.attr_int("axis", 0), rank));
  const size_t axis = static_cast<size_t>(a);
  for (size_t d = 0; d < x.rank(); ++d) {
    if (d != axis && idx.dim(d) > x.dim(d)) {
      return make_error(ErrorCode::kInvalidArgument, "{}: indices {} exceed data {} on axis {}", node.describe(),
                        shape_string(idx.shape()), shape_string(x.shape()), d);
    }
  }
  const std::vector<int64_t> st = contiguous_strides(x.shape());
  std::vector<int64_t> dst(static_cast<size_t>(idx.numel()));
  for (int64_t i = 0; i < idx.numel(); ++i) {
    HEARTH_ASSIGN_OR_RETURN(int64_t c, checked_index(node, idx, i, x.dim(axis), axis));
    int64_t rem = i, off = 0;
    for (size_t d = x.rank(); d-- > 0;) {
      const int64_t p = rem % idx.dim(d);
      rem /= idx.dim(d);
      off += (d == axis ? c : p) * st[d];
    }
    dst[static_cast<size_t>(i)] = off;
  }
  return scatter_into(ctx, node, x, upd, red, dst, 1, out);
}

}  // namespace

void register_scatter_ops(OpRegistry& r) {
  r.add("GatherND", 11, gather_nd);
  r.add("ScatterND", 11, scatter_nd);
  r.add("ScatterElements", 11, scatter_elements);
  r.add("Scatter", 9, scatter_elements);
}

}  // namespace hearth::onnx
