// ONNX operators that select or join parts of tensors (https://onnx.ai/onnx/operators/):
// Slice, Concat, Split, Gather, GatherElements. Elements move by size, so every held type
// goes through the same code; indices are bounds-checked with errors naming the node.
#include <algorithm>
#include <cstring>
#include <limits>

#include "hearth/core/checked_math.h"
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

// Slice: starts/ends/axes attributes before opset 10; inputs starts, ends, axes, steps after.
// Per axis (the spec): negative starts/ends count from the end, then are clamped to [0, dim]
// for a positive step and to [0, dim-1] / [-1, dim-1] for a negative one.
Status slice_op(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  std::vector<int64_t> starts, ends, axes, steps;
  if (ctx.opset < 10) {
    HEARTH_TRY(require_inputs(node, in, 1, 1));
    starts = node.attr_ints("starts");
    ends = node.attr_ints("ends");
    axes = node.attr_ints("axes");
  } else {
    HEARTH_TRY(require_inputs(node, in, 3, 5));
    HEARTH_ASSIGN_OR_RETURN(starts, int_list(node, *in[1], "starts"));
    HEARTH_ASSIGN_OR_RETURN(ends, int_list(node, *in[2], "ends"));
    if (const Tensor* t = opt_input(in, 3)) {
      HEARTH_ASSIGN_OR_RETURN(axes, int_list(node, *t, "axes"));
    }
    if (const Tensor* t = opt_input(in, 4)) {
      HEARTH_ASSIGN_OR_RETURN(steps, int_list(node, *t, "steps"));
    }
  }
  const Tensor& x = *in[0];
  const int64_t rank = static_cast<int64_t>(x.rank());
  const size_t n = starts.size();
  if (ends.size() != n || (!axes.empty() && axes.size() != n) || (!steps.empty() && steps.size() != n)) {
    return make_error(ErrorCode::kInvalidArgument, "{}: starts, ends, axes and steps must have the same length ({}, {}, {}, {})",
                      node.describe(), n, ends.size(), axes.size(), steps.size());
  }
  if (axes.empty()) {
    if (static_cast<int64_t>(n) > rank) {
      return make_error(ErrorCode::kInvalidArgument, "{}: {} starts for an input of rank {}", node.describe(), n, rank);
    }
    for (size_t i = 0; i < n; ++i) axes.push_back(static_cast<int64_t>(i));
  }
  if (steps.empty()) steps.assign(n, 1);
  const std::vector<int64_t> in_st = contiguous_strides(x.shape());
  Shape shape = x.shape();
  std::vector<int64_t> strides = in_st;
  std::vector<bool> seen(x.rank(), false);
  int64_t base = 0;
  for (size_t i = 0; i < n; ++i) {
    HEARTH_ASSIGN_OR_RETURN(int64_t a, normalize_axis(node, axes[i], rank));
    const size_t ax = static_cast<size_t>(a);
    if (seen[ax]) return make_error(ErrorCode::kInvalidArgument, "{}: axis {} is given twice", node.describe(), axes[i]);
    seen[ax] = true;
    const int64_t dim = x.dim(ax), step = steps[i];
    if (step == 0) return make_error(ErrorCode::kInvalidArgument, "{}: step for axis {} is 0", node.describe(), axes[i]);
    int64_t s = starts[i], e = ends[i];
    if (s < 0) s += dim;
    if (e < 0) e += dim;
    int64_t count;
    if (dim == 0) {
      count = 0;
    } else if (step > 0) {
      s = std::clamp<int64_t>(s, 0, dim);
      e = std::clamp<int64_t>(e, 0, dim);
      count = e > s ? (e - s - 1) / step + 1 : 0;
    } else {
      s = std::clamp<int64_t>(s, 0, dim - 1);
      e = std::clamp<int64_t>(e, -1, dim - 1);
      const uint64_t neg = uint64_t{0} - static_cast<uint64_t>(step);
      count = s > e ? static_cast<int64_t>(static_cast<uint64_t>(s - e - 1) / neg + 1) : 0;
    }
    shape[ax] = count;
    if (count > 0) base += s * in_st[ax];
    strides[ax] = count > 1 ? step * in_st[ax] : 0;  // |step| < dim here: no overflow
  }
  HEARTH_ASSIGN_OR_RETURN(Tensor o, alloc_out(ctx, node, x.dtype(), shape));
  if (o.numel() > 0) strided_copy(ctx.pool, x.raw(), base, shape, strides, o.raw(), dtype_size(x.dtype()));
  out[0] = std::move(o);
  return ok_status();
}

Status concat_op(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  if (in.empty()) return make_error(ErrorCode::kInvalidArgument, "{}: needs at least one input", node.describe());
  for (size_t i = 0; i < in.size(); ++i) {
    if (!in[i]) return make_error(ErrorCode::kInvalidArgument, "{}: input {} is required", node.describe(), i);
  }
  if (!node.has("axis")) return make_error(ErrorCode::kInvalidArgument, "{}: attribute 'axis' is required", node.describe());
  const Tensor& first = *in[0];
  const size_t rank = first.rank();
  if (rank == 0) return make_error(ErrorCode::kInvalidArgument, "{}: cannot concatenate scalars", node.describe());
  HEARTH_ASSIGN_OR_RETURN(int64_t a, normalize_axis(node, node.attr_int("axis", 0), static_cast<int64_t>(rank)));
  const size_t axis = static_cast<size_t>(a);
  Shape shape = first.shape();
  shape[axis] = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    const Tensor& t = *in[i];
    HEARTH_TRY(require_same_dtype(node, first, t, "input"));
    bool match = t.rank() == rank;
    for (size_t d = 0; match && d < rank; ++d) match = d == axis || t.dim(d) == first.dim(d);
    if (!match) {
      return make_error(ErrorCode::kInvalidArgument, "{}: input {} has shape {}, which does not match {} except on axis {}",
                        node.describe(), i, shape_string(t.shape()), shape_string(first.shape()), a);
    }
    auto sum = checked_add<int64_t>(shape[axis], t.dim(axis));
    if (!sum) return make_error(ErrorCode::kInvalidArgument, "{}: concatenated axis is too large", node.describe());
    shape[axis] = *sum;
  }
  HEARTH_ASSIGN_OR_RETURN(Tensor o, alloc_out(ctx, node, first.dtype(), shape));
  if (o.numel() == 0) {
    out[0] = std::move(o);
    return ok_status();
  }
  const size_t es = dtype_size(first.dtype());
  const int64_t outer = prod(shape, 0, axis);
  const int64_t inner = prod(shape, axis + 1, rank) * static_cast<int64_t>(es);  // bytes per axis index
  const int64_t out_row = shape[axis] * inner;
  int64_t col = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    const int64_t chunk = in[i]->dim(axis) * inner;
    const std::byte* src = in[i]->raw();
    std::byte* dst = o.raw() + col;
    if (chunk > 0) {
      ctx.pool.parallel_for(outer, std::max<int64_t>(1, (int64_t{1} << 17) / chunk), [&](int64_t b, int64_t e) {
        for (int64_t r = b; r < e; ++r) std::memcpy(dst + r * out_row, src + r * chunk, static_cast<size_t>(chunk));
      });
    }
    col += chunk;
  }
  out[0] = std::move(o);
  return ok_status();
}

// Split: sizes from the 'split' attribute (before opset 13) or input (from 13); else equal
// parts for the outputs, the last one smaller when num_outputs (opset 18) does not divide.
Status split_op(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  HEARTH_TRY(require_inputs(node, in, 1, ctx.opset < 13 ? 1 : 2));
  const Tensor& x = *in[0];
  const int64_t rank = static_cast<int64_t>(x.rank());
  HEARTH_ASSIGN_OR_RETURN(int64_t a, normalize_axis(node, node.attr_int("axis", 0), rank));
  const size_t axis = static_cast<size_t>(a);
  const int64_t dim = x.dim(axis);
  const size_t n_out = out.size();
  std::vector<int64_t> split;
  if (ctx.opset < 13) {
    split = node.attr_ints("split");
  } else if (const Tensor* t = opt_input(in, 1)) {
    HEARTH_ASSIGN_OR_RETURN(split, int_list(node, *t, "split"));
  }
  if (split.empty()) {
    if (n_out == 0) return make_error(ErrorCode::kInvalidArgument, "{}: has no outputs", node.describe());
    const int64_t parts = static_cast<int64_t>(n_out);
    if (ctx.opset >= 18 && node.has("num_outputs")) {
      if (node.attr_int("num_outputs", 0) != parts) {
        return make_error(ErrorCode::kInvalidArgument, "{}: num_outputs is {} but the node has {} outputs", node.describe(),
                          node.attr_int("num_outputs", 0), parts);
      }
      const int64_t chunk = (dim + parts - 1) / parts;
      for (int64_t i = 0; i < parts; ++i) split.push_back(std::clamp<int64_t>(dim - i * chunk, 0, chunk));
    } else {
      if (dim % parts != 0) {
        return make_error(ErrorCode::kInvalidArgument, "{}: axis {} of size {} does not split into {} equal parts",
                          node.describe(), a, dim, parts);
      }
      split.assign(n_out, dim / parts);
    }
  }
  if (split.size() != n_out) {
    return make_error(ErrorCode::kInvalidArgument, "{}: split has {} sizes for {} outputs", node.describe(), split.size(), n_out);
  }
  int64_t total = 0;
  for (int64_t s : split) {
    auto t = checked_add<int64_t>(total, s);
    if (s < 0 || !t) return make_error(ErrorCode::kInvalidArgument, "{}: bad split size {}", node.describe(), s);
    total = *t;
  }
  if (total != dim) {
    return make_error(ErrorCode::kInvalidArgument, "{}: split sizes sum to {}, axis {} has {}", node.describe(), total, a, dim);
  }
  const size_t es = dtype_size(x.dtype());
  const int64_t outer = prod(x.shape(), 0, axis);
  const int64_t inner = prod(x.shape(), axis + 1, x.rank()) * static_cast<int64_t>(es);
  const int64_t in_row = dim * inner;
  int64_t col = 0;
  for (size_t i = 0; i < n_out; ++i) {
    Shape shape = x.shape();
    shape[axis] = split[i];
    HEARTH_ASSIGN_OR_RETURN(Tensor o, alloc_out(ctx, node, x.dtype(), shape));
    const int64_t chunk = split[i] * inner;
    if (chunk > 0) {
      for (int64_t r = 0; r < outer; ++r) std::memcpy(o.raw() + r * chunk, x.raw() + r * in_row + col, static_cast<size_t>(chunk));
    }
    col += chunk;
    out[i] = std::move(o);
  }
  return ok_status();
}

// The index list of Gather/GatherElements, each made non-negative and checked against dim.
Result<std::vector<int64_t>> checked_indices(const Node& node, const Tensor& idx, int64_t dim, int64_t axis) {
  HEARTH_TRY(require_dtype(node, idx, "indices", {DType::kInt64, DType::kInt32}));
  std::vector<int64_t> v(static_cast<size_t>(idx.numel()));
  for (int64_t i = 0; i < idx.numel(); ++i) {
    int64_t k = idx.int_at(i);
    if (k < -dim || k >= dim) {
      return make_error(ErrorCode::kInvalidArgument, "{}: index {} (at position {} of indices) is out of range for axis {} of size {}",
                        node.describe(), k, i, axis, dim);
    }
    v[static_cast<size_t>(i)] = k < 0 ? k + dim : k;
  }
  return v;
}

Status gather_op(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  HEARTH_TRY(require_inputs(node, in, 2, 2));
  const Tensor& x = *in[0];
  const Tensor& idx = *in[1];
  const int64_t rank = static_cast<int64_t>(x.rank());
  if (rank == 0) return make_error(ErrorCode::kInvalidArgument, "{}: data must have rank >= 1", node.describe());
  HEARTH_ASSIGN_OR_RETURN(int64_t a, normalize_axis(node, node.attr_int("axis", 0), rank));
  const size_t axis = static_cast<size_t>(a);
  HEARTH_ASSIGN_OR_RETURN(std::vector<int64_t> ids, checked_indices(node, idx, x.dim(axis), a));
  Shape shape(x.shape().begin(), x.shape().begin() + a);
  shape.insert(shape.end(), idx.shape().begin(), idx.shape().end());
  shape.insert(shape.end(), x.shape().begin() + a + 1, x.shape().end());
  HEARTH_ASSIGN_OR_RETURN(Tensor o, alloc_out(ctx, node, x.dtype(), shape));
  const int64_t es = static_cast<int64_t>(dtype_size(x.dtype()));
  const int64_t outer = prod(x.shape(), 0, axis);
  const int64_t inner = prod(x.shape(), axis + 1, x.rank()) * es;  // bytes per index
  const int64_t n = static_cast<int64_t>(ids.size());
  const int64_t dim = x.dim(axis);
  if (o.numel() == 0) {
    out[0] = std::move(o);
    return ok_status();
  }
  ctx.pool.parallel_for(outer * n, std::max<int64_t>(1, (int64_t{1} << 15) / inner), [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      const int64_t r = t / n, j = t % n;
      std::memcpy(o.raw() + t * inner, x.raw() + (r * dim + ids[static_cast<size_t>(j)]) * inner, static_cast<size_t>(inner));
    }
  });
  out[0] = std::move(o);
  return ok_status();
}

// GatherElements: out[i] = data[i with the axis coordinate replaced by indices[i]].
Status gather_elements_op(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  HEARTH_TRY(require_inputs(node, in, 2, 2));
  const Tensor& x = *in[0];
  const Tensor& idx = *in[1];
  const int64_t rank = static_cast<int64_t>(x.rank());
  if (rank == 0 || idx.rank() != x.rank()) {
    return make_error(ErrorCode::kInvalidArgument, "{}: data {} and indices {} must have the same rank >= 1", node.describe(),
                      shape_string(x.shape()), shape_string(idx.shape()));
  }
  HEARTH_ASSIGN_OR_RETURN(int64_t a, normalize_axis(node, node.attr_int("axis", 0), rank));
  const size_t axis = static_cast<size_t>(a);
  for (size_t d = 0; d < x.rank(); ++d) {
    if (d != axis && idx.dim(d) > x.dim(d)) {
      return make_error(ErrorCode::kInvalidArgument, "{}: indices {} exceed data {} on axis {}", node.describe(),
                        shape_string(idx.shape()), shape_string(x.shape()), d);
    }
  }
  HEARTH_ASSIGN_OR_RETURN(std::vector<int64_t> ids, checked_indices(node, idx, x.dim(axis), a));
  HEARTH_ASSIGN_OR_RETURN(Tensor o, alloc_out(ctx, node, x.dtype(), idx.shape()));
  const size_t es = dtype_size(x.dtype());
  const std::vector<int64_t> st = contiguous_strides(x.shape());
  for (int64_t i = 0; i < idx.numel(); ++i) {
    int64_t rem = i, off = 0;
    for (size_t d = x.rank(); d-- > 0;) {
      const int64_t c = rem % idx.dim(d);
      rem /= idx.dim(d);
      off += (d == axis ? ids[static_cast<size_t>(i)] : c) * st[d];
    }
    std::memcpy(o.raw() + static_cast<size_t>(i) * es, x.raw() + static_cast<size_t>(off) * es, es);
  }
  out[0] = std::move(o);
  return ok_status();
}

}  // namespace

void register_slice_ops(OpRegistry& r) {
  r.add("Slice", 1, slice_op);
  r.add("Concat", 4, concat_op);
  r.add("Split", 2, split_op);
  r.add("Gather", 1, gather_op);
  r.add("GatherElements", 11, gather_elements_op);
}

}  // namespace hearth::onnx
